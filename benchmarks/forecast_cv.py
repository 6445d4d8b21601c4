"""Leave-series-out cross-validation of ``auto``'s rule on ``forecast_eval.py`` results.

For each of the N series: choose the candidate rule with the lowest median MASE on
the other N - 1 series, then score that choice on the held-out series. The median and
mean of those N held-out scores estimate what the rule selection does on series it
has never seen (the honest figure); the in-sample winner on all N is printed too.
Candidates are the ``nab_forecasters.py`` functions that map to an
``AUTO_RULES`` entry; the anchors are listed for comparison::

    python /work/shared/eval/forecast_eval.py data/nab --csv /tmp/cand.csv --methods ses,holt \\
        --forecaster benchmarks/nab_forecasters.py:comb ...      # one per candidate
    python benchmarks/forecast_cv.py /tmp/cand.csv [more.csv ...]
"""

from __future__ import annotations

import argparse

import pandas as pd

CANDIDATES = {"comb": "comb", "comb_median": "comb+median", "gate": "gate",
              "gate_comb": "gate+comb", "ses_rule": "ses", "ses_median": "ses+median"}
ANCHORS = ("ses", "holt", "sf_autoets", "sf_autotheta", "naive", "linear_trend",
           "pk_ses", "pk_damped")


def _short(label: str) -> str:
    return label.rsplit(":", 1)[-1]


def load(paths: list[str]) -> pd.DataFrame:
    """Per-series rows of one or more forecast_eval CSVs, ``method`` shortened to the function."""
    df = pd.concat([pd.read_csv(p) for p in paths], ignore_index=True)
    df["method"] = df["method"].map(_short)
    return df.drop_duplicates(["method", "series"], keep="last")


def table(df: pd.DataFrame, methods: list[str]) -> str:
    """Markdown: median / mean of per-series MASE, pooled-by-series coverage, worst series."""
    lines = ["| method | median MASE | mean MASE | mean 80% coverage | lowest series coverage |",
             "|---|---:|---:|---:|---:|"]
    for m in methods:
        d = df[df.method == m]
        if d.empty:
            continue
        lines.append(f"| {m} | {d.mase.median():.3f} | {d.mase.mean():.3f} | "
                     f"{d.coverage.mean():.3f} | {d.coverage.min():.3f} |")
    return "\n".join(lines)


TREND_FOLLOWING = ("gate", "gate_comb")
"""Rules that forecast a significant trend in full (the others halve or drop it)."""


def cross_validate(df: pd.DataFrame, only: tuple[str, ...] = ()) -> tuple[pd.DataFrame, str]:
    """Held-out rows (series, chosen rule, its MASE and coverage) and the in-sample winner."""
    cands = [c for c in CANDIDATES if c in set(df.method) and (not only or c in only)]
    wide = df[df.method.isin(cands)].pivot(index="series", columns="method", values="mase")
    cov = df[df.method.isin(cands)].pivot(index="series", columns="method", values="coverage")
    rows = []
    for s in wide.index:
        rest = wide.drop(index=s)
        pick = rest.median().idxmin()
        rows.append({"series": s, "rule": CANDIDATES[pick], "mase": wide.loc[s, pick],
                     "coverage": cov.loc[s, pick]})
    return pd.DataFrame(rows), CANDIDATES[wide.median().idxmin()]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("csv", nargs="+", help="forecast_eval.py --csv outputs")
    args = ap.parse_args(argv)
    df = load(args.csv)
    present = [m for m in list(CANDIDATES) + list(ANCHORS) if m in set(df.method)]
    print(table(df, present))
    anchors = [m for m in ("ses", "holt", "sf_autoets", "sf_autotheta") if m in set(df.method)]
    for title, only in (("all candidate rules", ()), ("trend-following rules", TREND_FOLLOWING)):
        held, winner = cross_validate(df, only)
        picks = held.rule.value_counts().to_dict()
        print(f"\n{title}: leave-one-series-out picked {picks}; held-out median MASE "
              f"{held.mase.median():.3f}, mean {held.mase.mean():.3f}, mean coverage "
              f"{held.coverage.mean():.3f} (lowest {held.coverage.min():.3f}); "
              f"in-sample winner on all {len(held)} series: {winner}")
        if anchors:
            best = min(df[df.method == m].mase.median() for m in anchors)
            print(f"  best anchor median MASE {best:.3f}: held-out / best = "
                  f"{held.mase.median() / best:.3f} (goal <= 0.97)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
