"""The page's sentences and small tables, each built from the numbers it states.

Every value goes through one formatter (:func:`fmt`, perfkit's shared value and
duration formatting), so a number reads the same in a tile, an alert and a
recommendation; comparisons are worded from the values themselves, never from
their rounded text ("at its warning threshold" when the two round alike).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import pandas as pd

from perfkit._format import format_duration, format_value
from perfkit.catalog import find_metric

__all__ = ["change_table", "compare", "evidence_table", "fmt", "fmt_age", "fmt_seconds",
           "record_of", "typed_rows", "verdict_sentence"]


def typed_rows(frame: pd.DataFrame) -> Iterator[Any]:
    """``frame.itertuples()`` with rows typed ``Any``: the stubs type every field as a scalar
    union, so each access would need a cast."""
    return iter(frame.itertuples())


def fmt(value: Any, unit: str = "") -> str:
    """A value with its unit, as everywhere on the page ("—" for a missing one)."""
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float, np.number)) \
            or not np.isfinite(value):
        return "—"
    if unit == "1/s":  # a rate reads "20/s", as on the chart axes
        return format_value(float(value)) + "/s"
    return format_value(float(value), "" if unit == "count" else unit)


def fmt_age(td: pd.Timedelta) -> str:
    """A duration as the page writes it ("45 s", "7 min", "2 h 10 min")."""
    return format_duration(td)


def fmt_seconds(seconds: float) -> str:
    """A short run time: ``"3.92 ms"`` below a second, ``"1.25 s"`` above."""
    return format_duration(seconds)


def compare(metric: str, value: float, threshold: float, severity: str) -> str:
    """``"79.6 %, below its warning threshold of 80 %"`` worded from the values.

    The side comes from the numbers (and the metric's direction), not from their
    rounded text; when both round to the same text it says "at".
    """
    m = find_metric(metric)
    unit = m.unit if m is not None else ""
    v, t = fmt(value, unit), fmt(threshold, unit)
    if v == t or value == threshold:
        return f"{v}, at its {severity} threshold"
    side = "above" if value > threshold else "below"
    return f"{v}, {side} its {severity} threshold of {t}"


def evidence_table(evidence: Any) -> pd.DataFrame:
    """A recommendation's evidence as ``what | value`` rows (numbers with their units)."""
    if not isinstance(evidence, Mapping) or not evidence:
        return pd.DataFrame({"what": [], "value": []})
    unit = ""
    metric = evidence.get("metric")
    if isinstance(metric, str) and (m := find_metric(metric)) is not None:
        unit = m.unit
    rows = []
    for k, v in evidence.items():
        if v is None or v == "":
            continue
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            text = fmt(v, unit if k in ("value", "threshold") else
                       "ms" if k.endswith("_ms") else "%" if k.endswith(("_pct", "share"))
                       and v > 1 else "")
            if k.endswith("share") and 0 <= v <= 1:
                text = f"{v:.0%}"
        elif isinstance(v, (list, tuple)):
            text = ", ".join(str(x) for x in v[:10]) + (" …" if len(v) > 10 else "")
        elif isinstance(v, Mapping):
            text = ", ".join(f"{a}={b}" for a, b in list(v.items())[:10])
        else:
            text = str(v)
        rows.append({"what": k.replace("_", " "), "value": text[:300]})
    return pd.DataFrame(rows, columns=["what", "value"])


def change_table(before: Any, after: Any, *, dry_run: bool = False) -> pd.DataFrame:
    """``measure | before | after | change`` for every number measured before the action.

    A measure missing afterwards reads "unchanged (dry run)" for a dry run, else
    "not measured"; ``change`` is relative, in words when there is none.
    """
    b = before if isinstance(before, Mapping) else {}
    a = after if isinstance(after, Mapping) else {}
    rows = []
    for k, x in b.items():
        if not isinstance(x, (int, float)) or isinstance(x, bool):
            continue
        y = a.get(k)
        m = find_metric(k)
        unit = m.unit if m is not None else ("ms" if k.endswith("_ms") else "")
        if not isinstance(y, (int, float)) or isinstance(y, bool):
            rows.append({"measure": k, "before": fmt(x, unit),
                         "after": "unchanged (dry run)" if dry_run else "not measured",
                         "change": "—"})
            continue
        if x and np.isfinite(x) and np.isfinite(y):
            rel = (y - x) / abs(x)
            change = "no change" if abs(rel) < 5e-4 else f"{rel:+.1%}"
        else:
            change = "no change" if x == y else "—"
        rows.append({"measure": k, "before": fmt(x, unit), "after": fmt(y, unit),
                     "change": change})
    return pd.DataFrame(rows, columns=["measure", "before", "after", "change"])


_VERDICTS = {
    "improved": "improved what it set out to change",
    "no change": "made no measurable difference",
    "worse": "made things worse",
}


def verdict_sentence(row: Any) -> str:
    """The outcome of one action row in words: what ran, where, and what it did."""
    kind = "A dry run of" if bool(row.get("dry_run")) else "Running"
    head = f"{kind} {row.get('action')} on {row.get('host')}"
    status = row.get("status")
    if status == "done":
        verdict = row.get("verdict")
        if bool(row.get("dry_run")):
            tail = "changed nothing (dry run); what it found is listed below"
        else:
            tail = _VERDICTS.get(str(verdict), f"finished ({verdict})")
        took = row.get("duration_s")
        if isinstance(took, (int, float)) and np.isfinite(took):
            tail += f" in {fmt_seconds(took)}"
        return f"{head} {tail}."
    if status in ("failed", "rejected"):
        err = row.get("error") or "no error message recorded"
        return f"{head} {status}: {err}."
    return f"{head} is {status}."


def record_of(row: Any) -> dict[str, Any]:
    """The full audit record of one action, JSON-ready (timestamps as ISO text)."""
    out: dict[str, Any] = {}
    for k, v in dict(row).items():
        if isinstance(v, pd.Timestamp):
            out[k] = v.isoformat()
        elif isinstance(v, float) and not np.isfinite(v):
            out[k] = None
        elif isinstance(v, (np.generic,)):
            out[k] = v.item()
        else:
            out[k] = v
    return out
