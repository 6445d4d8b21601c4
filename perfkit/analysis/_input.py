"""Turning a samples frame (or one Series) into the per-series arrays the analysis uses."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..catalog import find_metric
from ..frames import as_samples

NS_PER_HOUR = 3.6e12


@dataclass
class Series:
    """One analysed series: ``metric`` + ``labels``, sorted unique UTC timestamps, finite values."""

    metric: str
    labels: str
    ts: np.ndarray       # int64 ns since epoch, UTC, strictly increasing
    values: np.ndarray   # float64

    @property
    def n(self) -> int:
        return len(self.values)

    def hours(self, origin: int | None = None) -> np.ndarray:
        """Elapsed hours since ``origin`` (ns; default: the first timestamp)."""
        o = self.ts[0] if origin is None else origin
        return (self.ts - o) / NS_PER_HOUR

    def step_ns(self) -> float:
        """The series' own median sampling step in ns (0 for fewer than 2 points)."""
        if self.n < 2:
            return 0.0
        return float(np.median(np.diff(self.ts)))

    def since(self, start_ns: float) -> Series:
        i = int(np.searchsorted(self.ts, start_ns, side="right"))
        return Series(self.metric, self.labels, self.ts[i:], self.values[i:])

    def until(self, end_ns: float) -> Series:
        i = int(np.searchsorted(self.ts, end_ns, side="right"))
        return Series(self.metric, self.labels, self.ts[:i], self.values[:i])

    def last_ts(self) -> pd.Timestamp:
        return pd.Timestamp(int(self.ts[-1]), tz="UTC")


def to_samples(data) -> pd.DataFrame:
    """A samples frame from a samples frame or a named Series with a DatetimeIndex.

    Non-finite values (NaN, inf) are dropped: they mark missing samples.
    """
    if isinstance(data, pd.Series):
        if not isinstance(data.index, pd.DatetimeIndex):
            raise TypeError("a Series passed to perfkit.analysis needs a DatetimeIndex")
        if data.name is None or str(data.name) == "":
            raise ValueError("the Series has no name; name it after the metric, "
                             "e.g. s.rename('system.cpu_usage')")
        idx = data.index.tz_localize("UTC") if data.index.tz is None else data.index.tz_convert("UTC")
        frame = pd.DataFrame({"ts": idx, "host": "", "metric": str(data.name),
                              "value": pd.to_numeric(data, errors="coerce").to_numpy(float),
                              "labels": ""})
        return as_samples(frame, drop_invalid=True)
    if isinstance(data, pd.DataFrame):
        return as_samples(data, drop_invalid=True)
    raise TypeError(f"expected a samples DataFrame or a Series, got {type(data).__name__}")


def _frame_arrays(data):
    """(metric, labels, ts ns, values) arrays of a samples frame or Series, non-finite dropped.

    A frame that already has the contract's columns is read without a full
    :func:`perfkit.frames.as_samples` copy (that costs ~100 ms per 200k rows).
    """
    if isinstance(data, pd.DataFrame) and {"ts", "metric", "value"} <= set(data.columns):
        ts = data["ts"]
        if not (isinstance(ts.dtype, pd.DatetimeTZDtype)):
            ts = pd.to_datetime(ts, utc=True)
        t = pd.DatetimeIndex(ts).tz_convert("UTC").as_unit("ns").asi8
        v = pd.to_numeric(data["value"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        m = data["metric"]
        lab = data["labels"] if "labels" in data.columns else None
        ok = np.isfinite(v) & (t != np.iinfo(np.int64).min)
        if not ok.all():
            t, v, m = t[ok], v[ok], m[ok]
            lab = lab[ok] if lab is not None else None
        return m, lab, t, v
    f = to_samples(data)
    return f["metric"], f["labels"], pd.DatetimeIndex(f["ts"]).as_unit("ns").asi8, \
        f["value"].to_numpy(float)


def split_series(data, labels: bool | None = None) -> list[Series]:
    """One :class:`Series` per (metric, labels), in first-seen order.

    ``labels=None`` (default): a metric's aggregate rows (``labels == ''``) when it
    has any, otherwise each of its label sets separately. ``True``: every label
    set as its own series as well. ``False``: aggregate rows only. Several hosts
    (or repeated timestamps) at one instant are averaged into one point.
    """
    m, lab, ts, val = _frame_arrays(data)
    if len(ts) == 0:
        return []
    mc, mu = pd.factorize(m, sort=False)
    if lab is None or not lab.astype(bool).any() and not lab.isna().any():
        lc, lu = np.zeros(len(mc), dtype=np.intp), np.array([""], dtype=object)
    else:
        lc, lu = pd.factorize(pd.Series(lab).fillna("").astype(str), sort=False)
    lu = np.asarray(lu, dtype=object)
    empty = np.flatnonzero(lu == "")
    is_agg = lc == empty[0] if empty.size else np.zeros(len(lc), bool)
    if labels is False:
        keep = is_agg
    elif labels is None:
        has_agg = np.zeros(len(mu), bool)
        has_agg[mc[is_agg]] = True
        keep = is_agg | ~has_agg[mc]
    else:
        keep = np.ones(len(mc), bool)
    if not keep.all():
        mc, lc, ts, val = mc[keep], lc[keep], ts[keep], val[keep]
    if len(ts) == 0:
        return []
    codes = mc.astype(np.int64) * max(len(lu), 1) + lc
    if codes.size and codes.max() < np.iinfo(np.int16).max:
        codes = codes.astype(np.int16)  # numpy's stable sort is a linear radix sort at 16 bits
    order = np.argsort(codes, kind="stable")
    codes, ts, val = codes[order], ts[order], val[order]
    unsorted = (np.diff(ts) < 0) & (codes[1:] == codes[:-1])
    if unsorted.any():
        order = np.lexsort((ts, codes))
        codes, ts, val = codes[order], ts[order], val[order]
    bounds = np.flatnonzero(np.diff(codes)) + 1
    starts = np.r_[0, bounds]
    ends = np.r_[bounds, len(codes)]
    out = []
    for a, b in zip(starts, ends):
        c = int(codes[a])
        t, v = ts[a:b], val[a:b]
        if len(t) > 1 and (np.diff(t) == 0).any():
            u, inv = np.unique(t, return_inverse=True)
            v = np.bincount(inv, weights=v) / np.bincount(inv)
            t = u
        out.append(Series(str(mu[c // max(len(lu), 1)]), str(lu[c % max(len(lu), 1)]), t, v))
    return out


def latest_ns(series: list[Series]) -> int | None:
    return max((int(s.ts[-1]) for s in series if s.n), default=None)


def to_ns(when) -> int:
    t = pd.Timestamp(when)
    t = t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")
    return int(t.value)


def as_timedelta(value, what: str) -> pd.Timedelta:
    try:
        td = pd.Timedelta(value)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{what} must be a pandas offset string such as '30min' or a "
                         f"Timedelta, got {value!r}") from exc
    if pd.isna(td) or td <= pd.Timedelta(0):
        raise ValueError(f"{what} must be positive, got {value!r}")
    return td


def bounds_of(metric: str) -> tuple[float | None, float | None]:
    m = find_metric(metric)
    return (m.lower_bound, m.upper_bound) if m else (None, None)


def fmt_duration(td: pd.Timedelta) -> str:
    """``3 h 10 min``, ``45 min``, ``2 d 3 h``, ``30 s``."""
    secs = round(td.total_seconds())
    if secs < 60:
        return f"{secs} s"
    mins = round(secs / 60)
    d, rem = divmod(mins, 1440)
    h, m = divmod(rem, 60)
    parts = []
    if d:
        parts.append(f"{d} d")
    if h:
        parts.append(f"{h} h")
    if m and not d:
        parts.append(f"{m} min")
    return " ".join(parts) or "0 min"


def fmt_value(v: float, unit: str) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "n/a"
    s = f"{v:.4g}"
    if not unit:
        return s
    return f"{s} {unit}"
