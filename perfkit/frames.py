"""The samples frame: perfkit's data contract, and helpers to build and reshape it.

A samples frame is long and tidy, one row a measurement::

    ts      datetime64[ns, UTC]
    host    str      (pandas' default string dtype: ``str`` on pandas 3, object before)
    metric  str
    value   float64
    labels  str      ('k=v,k=v', '' when none)
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

__all__ = ["SAMPLE_COLUMNS", "empty_samples", "as_samples", "to_wide", "from_series",
           "format_labels", "parse_labels"]

SAMPLE_COLUMNS = ("ts", "host", "metric", "value", "labels")


def empty_samples() -> pd.DataFrame:
    """A samples frame with no rows and the contract's dtypes."""
    return pd.DataFrame({
        "ts": pd.Series([], dtype="datetime64[ns, UTC]"),
        "host": pd.Series([], dtype=str),
        "metric": pd.Series([], dtype=str),
        "value": pd.Series([], dtype="float64"),
        "labels": pd.Series([], dtype=str),
    })


def format_labels(labels: Mapping[str, object] | str | None) -> str:
    """``{'endpoint': 'GET /x'}`` → ``'endpoint=GET /x'`` (keys sorted, stable)."""
    if labels is None:
        return ""
    if isinstance(labels, str):
        return labels
    if not isinstance(labels, Mapping):
        raise TypeError(f"labels must be a mapping or a 'k=v,k=v' string, got {type(labels).__name__}")
    parts = []
    for k in sorted(labels):
        v = str(labels[k])
        if "," in v or "=" in v or "," in str(k) or "=" in str(k):
            raise ValueError(f"label {k!r}={v!r} may not contain ',' or '='")
        parts.append(f"{k}={v}")
    return ",".join(parts)


def parse_labels(labels: str) -> dict[str, str]:
    """``'a=1,b=2'`` → ``{'a': '1', 'b': '2'}``."""
    if not labels:
        return {}
    return dict(p.split("=", 1) for p in labels.split(","))


def as_samples(frame: pd.DataFrame, *, drop_invalid: bool = False) -> pd.DataFrame:
    """Check ``frame`` against the contract and return it with the exact dtypes.

    Missing ``labels`` becomes ``''``; naive timestamps are taken as UTC. A
    non-finite value raises ``ValueError`` naming the metric, unless
    ``drop_invalid`` is true, in which case those rows are dropped.
    """
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"expected a samples DataFrame, got {type(frame).__name__}")
    missing = [c for c in ("ts", "metric", "value") if c not in frame.columns]
    if missing:
        raise ValueError(f"samples frame lacks column(s) {missing}; "
                         f"expected {list(SAMPLE_COLUMNS)}")
    null = frame["metric"].isna() | frame["ts"].isna()
    if "host" in frame:
        null |= frame["host"].isna()
    if null.any():
        if not drop_invalid:
            raise ValueError(f"{int(null.sum())} row(s) with a missing ts, host or metric "
                             f"(first at position {int(null.to_numpy().argmax())}); fill or drop them")
        frame = frame[~null]
    out = pd.DataFrame({
        "ts": _utc(frame["ts"]),
        "host": frame["host"].astype(str) if "host" in frame else "",
        "metric": frame["metric"].astype(str),
        "value": pd.to_numeric(frame["value"], errors="coerce").astype("float64"),
        "labels": frame["labels"].fillna("").astype(str) if "labels" in frame else "",
    })
    bad = ~np.isfinite(out["value"].to_numpy())
    if bad.any():
        if not drop_invalid:
            names = sorted(set(out.loc[bad, "metric"]))[:5]
            raise ValueError(f"{int(bad.sum())} non-finite value(s) (NaN/inf or not a number) "
                             f"for metric(s) {names}")
        out = out[~bad]
    return out.reset_index(drop=True)


def _utc(ts: pd.Series) -> pd.Series:
    s = pd.to_datetime(ts, utc=True)
    return s.astype("datetime64[ns, UTC]")


def to_wide(frame: pd.DataFrame, *, labels: bool = False, agg: str = "mean") -> pd.DataFrame:
    """Pivot a samples frame to a ``ts`` index with one column per metric.

    Rows with labels (per-endpoint breakdowns) are left out unless ``labels``
    is true, in which case columns are named ``metric{labels}``. Several hosts
    at one timestamp are combined with ``agg``.
    """
    if frame.empty:
        return pd.DataFrame(index=pd.DatetimeIndex([], tz="UTC", name="ts"))
    f = frame
    if "labels" in f:
        if labels:
            f = f.assign(metric=np.where(f["labels"] == "", f["metric"],
                                         f["metric"] + "{" + f["labels"] + "}"))
        else:
            f = f[f["labels"] == ""]
    wide = f.pivot_table(index="ts", columns="metric", values="value", aggfunc=agg)
    wide.columns.name = None
    return wide.sort_index()


def from_series(series: pd.Series, metric: str | None = None, host: str = "") -> pd.DataFrame:
    """A samples frame from one series with a datetime index (name → metric)."""
    name = metric or series.name
    if not name:
        raise ValueError("the series has no name; pass metric='group.name'")
    if not isinstance(series.index, pd.DatetimeIndex):
        raise TypeError("the series needs a DatetimeIndex")
    return as_samples(pd.DataFrame({"ts": series.index, "host": host, "metric": str(name),
                                    "value": series.to_numpy(dtype="float64"), "labels": ""}),
                      drop_invalid=True)


def is_finite_number(v: object) -> bool:
    """True for an int/float (not bool) that is finite."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
