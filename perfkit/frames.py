"""The samples frame: perfkit's data contract, and helpers to build and reshape it.

A samples frame is long and tidy, one row a measurement::

    ts      datetime64[ns, UTC]
    host    str      (pandas' default string dtype: ``str`` on pandas 3, object before)
    metric  str
    value   float64
    labels  str      ('k=v,k=v', '' when none)
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping
from typing import Any, cast

import numpy as np
import pandas as pd

from perfkit.errors import InvalidInputError

__all__ = [
    "LABELS_FORM",
    "MAX_HOST_CHARS",
    "MAX_LABELS_CHARS",
    "MAX_LABEL_PAIRS",
    "MAX_METRIC_CHARS",
    "SAMPLE_COLUMNS",
    "as_samples",
    "check_labels",
    "empty_samples",
    "format_labels",
    "from_series",
    "label_problem",
    "parse_labels",
    "to_wide",
]

SAMPLE_COLUMNS = ("ts", "host", "metric", "value", "labels")

# A series key (host, metric, labels) must fit every backend's index: PostgreSQL's
# btree refuses entries over ~2.7 kB, and a key that cannot be stored would hold up
# every write behind it. These limits keep a key well under that for ASCII text.
MAX_HOST_CHARS = 200
"""Longest ``host`` a sample may carry (characters)."""
MAX_METRIC_CHARS = 200
"""Longest ``metric`` name (characters)."""
MAX_LABELS_CHARS = 1000
"""Longest ``labels`` string, all pairs together (characters)."""
MAX_LABEL_PAIRS = 20
"""Most ``k=v`` pairs one series may carry."""
LABELS_FORM = ("'' (no labels) or 'key=value,key=value' (keys without spaces; no ',' or '=' "
               f"inside a key or value; at most {MAX_LABEL_PAIRS} pairs and "
               f"{MAX_LABELS_CHARS} characters), e.g. 'endpoint=GET /markets,status=200'")
"""The accepted form of a labels string, as error messages show it."""

_KEY = re.compile(r"[^\s,=\x00-\x1f\x7f]+")
_VALUE = re.compile(r"[^,=\x00-\x1f\x7f]*")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _excerpt(text: str, n: int = 60) -> str:
    return repr(text if len(text) <= n else text[:n] + "...") + (
        f" ({len(text)} characters)" if len(text) > n else "")


def label_problem(labels: str) -> str | None:
    """What is wrong with a labels string (None when it is well formed)."""
    if labels == "":
        return None
    if len(labels) > MAX_LABELS_CHARS:  # checked before the cache: it must not hold huge keys
        return f"labels longer than {MAX_LABELS_CHARS} characters"
    return _pairs_problem(labels)


@functools.lru_cache(maxsize=4096)
def _pairs_problem(labels: str) -> str | None:
    pairs = labels.split(",")
    if len(pairs) > MAX_LABEL_PAIRS:
        return f"more than {MAX_LABEL_PAIRS} labels"
    for p in pairs:
        k, eq, v = p.partition("=")
        if not eq or not _KEY.fullmatch(k) or not _VALUE.fullmatch(v):
            return f"malformed label {_excerpt(p)}"
    return None


def check_labels(labels: str) -> str:
    """``labels`` if it is a well-formed labels string; else :class:`InvalidInputError`
    whose message shows the accepted form."""
    if not isinstance(labels, str):
        raise InvalidInputError(f"labels must be a str or a mapping, got {type(labels).__name__}")
    why = label_problem(labels)
    if why is not None:
        raise InvalidInputError(f"labels {_excerpt(labels)} rejected: {why}; accepted form: "
                                f"{LABELS_FORM}")
    return labels


def name_problem(value: str, field: str, limit: int) -> str | None:
    """What is wrong with a host or metric name (None when it is fine)."""
    if len(value) > limit:
        return f"a '{field}' longer than {limit} characters"
    if _CONTROL.search(value):
        return f"a '{field}' containing control characters"
    return None


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
    """``{'endpoint': 'GET /x'}`` → ``'endpoint=GET /x'`` (keys sorted, stable).

    A string is checked and returned as is. A malformed string, a ',' or '=' inside
    a key or value, or more than the limits (:data:`MAX_LABEL_PAIRS` pairs,
    :data:`MAX_LABELS_CHARS` characters) raise :class:`InvalidInputError` (a
    ``ValueError``) showing the accepted form.
    """
    if labels is None:
        return ""
    if isinstance(labels, str):
        return check_labels(labels)
    if not isinstance(labels, Mapping):
        raise TypeError("labels must be a mapping or a 'k=v,k=v' string, "
                        f"got {type(labels).__name__}")
    parts = []
    for k in sorted(labels):
        v = str(labels[k])
        if "," in v or "=" in v or "," in str(k) or "=" in str(k):
            raise InvalidInputError(f"label {_excerpt(str(k))}={_excerpt(v)} may not contain ',' "
                                    f"or '='; accepted form: {LABELS_FORM}")
        parts.append(f"{k}={v}")
    return check_labels(",".join(parts))


def parse_labels(labels: str) -> dict[str, str]:
    """``'a=1,b=2'`` → ``{'a': '1', 'b': '2'}``; a malformed string raises
    :class:`InvalidInputError` showing the accepted form."""
    if not labels:
        return {}
    out = {}
    for p in labels.split(","):
        k, eq, v = p.partition("=")
        if not eq:
            raise InvalidInputError(f"labels {_excerpt(labels)} rejected: malformed label "
                                    f"{_excerpt(p)}; accepted form: {LABELS_FORM}")
        out[k] = v
    return out


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
                             f"(first at position {int(null.to_numpy().argmax())}); "
                             "fill or drop them")
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
    if isinstance(ts.dtype, pd.DatetimeTZDtype):
        # already zone-aware: ``to_datetime`` would only build its parsing cache (~7 ms for
        # 2,000 rows) before converting
        return ts.dt.tz_convert("UTC").astype("datetime64[ns, UTC]")
    s = pd.to_datetime(ts, utc=True)
    return s.astype("datetime64[ns, UTC]")


def to_wide(frame: pd.DataFrame, *, labels: bool = False, agg: str = "mean") -> pd.DataFrame:
    """Pivot a samples frame to a ``ts`` index with one column per metric.

    Rows with labels (per-endpoint breakdowns) are left out unless ``labels``
    is true, in which case columns are named ``metric{labels}``. Several hosts
    at one timestamp are combined with ``agg``.
    """
    missing = [c for c in ("ts", "metric", "value") if c not in frame.columns]
    if missing:
        raise InvalidInputError(f"to_wide needs a samples frame with columns {list(SAMPLE_COLUMNS)}"
                                f"; this one lacks {missing} (it has {list(frame.columns)[:10]})")
    if frame.empty:
        return pd.DataFrame(index=pd.DatetimeIndex([], tz="UTC", name="ts"))
    f = frame
    if "labels" in f:
        if labels:
            f = f.assign(metric=np.where(f["labels"] == "", f["metric"],
                                         f["metric"] + "{" + f["labels"] + "}"))
        else:
            f = f[f["labels"] == ""]
    wide = f.pivot_table(index="ts", columns="metric", values="value", aggfunc=cast(Any, agg))
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
