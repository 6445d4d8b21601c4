"""The terminal summary table printed at the end of a pytest session."""

from __future__ import annotations

from collections.abc import Iterable

from perfkit._format import format_duration

HEADERS = ("test", "rounds x iter", "median", "p95", "vs baseline [CI]", "verdict", "note")


def ratio_text(r: dict) -> str:
    if r.get("ratio") is None:
        return "-"
    return f"{r['ratio']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}]"


def _short(test: str, width: int) -> str:
    return test if len(test) <= width else "…" + test[-(width - 1):]


def rows_for(results: Iterable[dict], test_width: int = 60) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for r in sorted(results, key=lambda r: r["test"]):
        verdict = r.get("verdict") or "-"
        if r.get("budget_failed"):
            measured_only = verdict in ("-", "measured")
            verdict = "over budget" if measured_only else f"{verdict}, over budget"
        rows.append((
            _short(r["test"], test_width),
            f"{r['rounds']} x {r['iterations']}",
            format_duration(r.get("median_s")),
            format_duration(r.get("p95_s")),
            ratio_text(r),
            verdict,
            r.get("note") or "",
        ))
    return rows


def table_lines(results: Iterable[dict], test_width: int = 60) -> list[str]:
    rows = rows_for(results, test_width)
    cols = list(zip(HEADERS, *rows))
    widths = [max(len(c) for c in col) for col in cols]
    # the note column is free text: do not pad it
    def fmt(cells: tuple[str, ...]) -> str:
        parts = [c.ljust(w) if i < len(cells) - 1 else c
                 for i, (c, w) in enumerate(zip(cells, widths))]
        return "  ".join(parts).rstrip()
    lines = [fmt(HEADERS), fmt(tuple("-" * w for w in widths))]
    lines += [fmt(r) for r in rows]
    return lines


def counts_line(results: list[dict]) -> str:
    counts: dict[str, int] = {}
    for r in results:
        counts[r.get("verdict") or "-"] = counts.get(r.get("verdict") or "-", 0) + 1
        if r.get("budget_failed"):
            counts["over budget"] = counts.get("over budget", 0) + 1
    order = ["regression", "over budget", "inconclusive", "improved", "ok", "no baseline",
             "saved", "measured"]
    parts = [f"{counts[k]} {k}" for k in order if k in counts]
    parts += [f"{v} {k}" for k, v in counts.items() if k not in order]
    return ", ".join(parts)
