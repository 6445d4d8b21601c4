"""Turning a samples frame (or one Series) into the per-series arrays the analysis uses."""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import TypeAlias

import numpy as np
import pandas as pd

from perfkit.analysis._columns import FrameColumns, frame_columns
from perfkit.catalog import find_metric
from perfkit.frames import as_samples

NS_PER_HOUR = 3.6e12

SamplesLike: TypeAlias = "pd.DataFrame | pd.Series"
"""What the analysis functions read: a samples frame, or one named Series with a DatetimeIndex."""
WhenLike: TypeAlias = "str | _dt.datetime | np.datetime64 | int | float"
"""An instant: anything ``pd.Timestamp`` reads (naive values are UTC)."""


@dataclass
class Series:
    """One analysed series: ``metric`` + ``labels``, sorted unique UTC timestamps, finite values."""

    metric: str
    labels: str
    ts: np.ndarray       # int64 ns since epoch, UTC, strictly increasing
    values: np.ndarray   # float64
    _step: float | None = field(default=None, repr=False, compare=False)  # step_ns() cache

    @property
    def n(self) -> int:
        return len(self.values)

    def hours(self, origin: int | None = None) -> np.ndarray:
        """Elapsed hours since ``origin`` (ns; default: the first timestamp)."""
        o = self.ts[0] if origin is None else origin
        return (self.ts - o) / NS_PER_HOUR

    def step_ns(self) -> float:
        """The series' own median sampling step in ns (0 for fewer than 2 points)."""
        if self._step is None:
            self._step = _median_step(np.diff(self.ts))
        return self._step

    def since(self, start_ns: float) -> Series:
        i = int(np.searchsorted(self.ts, start_ns, side="right"))
        return Series(self.metric, self.labels, self.ts[i:], self.values[i:])

    def until(self, end_ns: float) -> Series:
        i = int(np.searchsorted(self.ts, end_ns, side="right"))
        return Series(self.metric, self.labels, self.ts[:i], self.values[:i])


def to_samples(data: SamplesLike) -> pd.DataFrame:
    """A samples frame from a samples frame or a named Series with a DatetimeIndex.

    Non-finite values (NaN, inf) are dropped: they mark missing samples.
    """
    if isinstance(data, pd.Series):
        if not isinstance(data.index, pd.DatetimeIndex):
            raise TypeError("a Series passed to perfkit.analysis needs a DatetimeIndex")
        if data.name is None or str(data.name) == "":
            raise ValueError("the Series has no name; name it after the metric, "
                             "e.g. s.rename('system.cpu_usage')")
        idx = (data.index.tz_localize("UTC") if data.index.tz is None
               else data.index.tz_convert("UTC"))
        frame = pd.DataFrame({"ts": idx, "host": "", "metric": str(data.name),
                              "value": pd.to_numeric(data, errors="coerce").to_numpy(float),
                              "labels": ""})
        return as_samples(frame, drop_invalid=True)
    if isinstance(data, pd.DataFrame):
        return as_samples(data, drop_invalid=True)
    raise TypeError(f"expected a samples DataFrame or a Series, got {type(data).__name__}")


def _frame_columns(data: SamplesLike) -> FrameColumns:
    """The coded columns of a samples frame or a named Series.

    A frame that already has the contract's columns is read without a full
    :func:`perfkit.frames.as_samples` copy (that costs ~100 ms per 200k rows).
    """
    if isinstance(data, pd.DataFrame) and {"ts", "metric", "value"} <= set(data.columns):
        return frame_columns(data)
    return frame_columns(to_samples(data))


def split_series(data: SamplesLike, labels: bool | None = None) -> list[Series]:
    """One :class:`Series` per (metric, labels), in first-seen order.

    ``labels=None`` (default): a metric's aggregate rows (``labels == ''``) when it
    has any, otherwise each of its label sets separately. ``True``: every label
    set as its own series as well. ``False``: aggregate rows only. Several hosts
    (or repeated timestamps) at one instant are averaged into one point.
    """
    cols = _frame_columns(data)
    mu, lu, nl = cols.metric.uniques, cols.labels.uniques, len(cols.labels.uniques)
    ts, val, m = cols.ts, cols.values, cols.metric
    if len(ts) == 0 or (nl == 1 and lu[0] != "" and labels is False):
        return []
    if cols.ok is None and nl == 1 and m.starts is not None and (np.diff(m.run_codes) > 0).all():
        # one label set, every row usable, each metric in one run: the runs are the series
        starts, codes = m.starts, m.run_codes
    else:
        grouped = _group(cols, labels)
        if grouped is None:
            return []
        starts, codes, ts, val = grouped
    ends = np.r_[starts[1:], len(ts)]
    out = []
    for i, (a, b) in enumerate(zip(starts, ends)):
        c = int(codes[i])
        s = Series(str(mu[c // nl]), str(lu[c % nl]), cols.ts_ns(ts[a:b]), val[a:b])
        if b - a > 1:
            _order_within(s)
        out.append(s)
    return out


def _group(cols: FrameColumns, labels: bool | None
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """Row-level split: ``(series starts, code per series, ts, values)`` with each
    series' rows contiguous, in first-seen order (``starts`` None when no row is kept)."""
    mc, lc = cols.metric.codes(), cols.labels.codes()
    ts, val = cols.ts, cols.values
    if cols.ok is not None:
        mc, lc, ts, val = mc[cols.ok], lc[cols.ok], ts[cols.ok], val[cols.ok]
    lu = cols.labels.uniques
    nl = len(lu)
    if nl == 1:                                # one label set for every row: no filtering
        codes = mc
    else:
        empty = np.flatnonzero(lu == "")
        is_agg = lc == empty[0] if empty.size else np.zeros(len(lc), bool)
        if labels is False:
            keep = is_agg
        elif labels is None:
            has_agg = np.zeros(len(cols.metric.uniques), bool)
            has_agg[mc[is_agg]] = True
            keep = is_agg | ~has_agg[mc]
        else:
            keep = np.ones(len(mc), bool)
        if not keep.all():
            mc, lc, ts, val = mc[keep], lc[keep], ts[keep], val[keep]
        codes = mc.astype(np.int64) * nl + lc
    if len(ts) == 0:
        return None
    starts = np.r_[0, np.flatnonzero(codes[1:] != codes[:-1]) + 1]
    if len(starts) > 1 and not (np.diff(codes[starts]) > 0).all():
        # not already grouped in first-seen order: group the rows
        if codes.max() < np.iinfo(np.int16).max:
            codes = codes.astype(np.int16)  # numpy's stable sort is a linear radix sort at 16 bits
        order = np.argsort(codes, kind="stable")
        codes, ts, val = codes[order], ts[order], val[order]
        starts = np.r_[0, np.flatnonzero(np.diff(codes)) + 1]
    return starts, codes[starts], ts, val


def _order_within(s: Series) -> None:
    """Sort ``s`` by time and average repeated timestamps, in place; cache its step.

    One diff of the (cache-sized) series answers all three questions: sorted?
    repeated instants? regular step?
    """
    d = np.diff(s.ts)
    lo = d.min()
    if lo < 0:
        o = np.argsort(s.ts, kind="stable")
        s.ts, s.values = s.ts[o], s.values[o]
        d = np.diff(s.ts)
        lo = d.min()
    if lo == 0:                                # several hosts / repeated timestamps: average
        u, inv = np.unique(s.ts, return_inverse=True)
        s.values = np.bincount(inv, weights=s.values) / np.bincount(inv)
        s.ts = u
    else:
        s._step = _median_step(d, lo)


def _median_step(d: np.ndarray, lo: float | None = None) -> float:
    """Median of one-step differences ``d`` (whose minimum may be passed as ``lo``);
    regular sampling needs no partition."""
    if d.size == 0:
        return 0.0
    lo = d.min() if lo is None else lo
    return float(lo) if lo == d.max() else float(np.median(d))


def latest_ns(series: list[Series]) -> int | None:
    return max((int(s.ts[-1]) for s in series if s.n), default=None)


def to_ns(when: WhenLike) -> int:
    t = pd.Timestamp(when)
    t = t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")
    return int(t.value)


def bounds_of(metric: str) -> tuple[float | None, float | None]:
    m = find_metric(metric)
    return (m.lower_bound, m.upper_bound) if m else (None, None)


def nonfinite_counts(frame: SamplesLike) -> dict[tuple[str, str], int]:
    """NaN / inf values per (metric, labels): they are dropped, and the reason says so.
    One finite-sum check when there are none."""
    if isinstance(frame, pd.Series):
        v = pd.to_numeric(frame, errors="coerce").to_numpy(float)
        bad = int(np.count_nonzero(~np.isfinite(v)))
        return {(str(frame.name), ""): bad} if bad else {}
    if not isinstance(frame, pd.DataFrame) or "value" not in frame or "metric" not in frame:
        return {}
    v = pd.to_numeric(frame["value"], errors="coerce").to_numpy(float)
    with np.errstate(invalid="ignore", over="ignore"):
        if np.isfinite(v.sum()):
            return {}
    sub = frame.loc[~np.isfinite(v)]
    lab = sub["labels"].astype(str) if "labels" in sub else pd.Series("", index=sub.index)
    counts = pd.DataFrame({"m": sub["metric"].astype(str), "l": lab}).value_counts()
    return {(str(k[0]), str(k[1])): int(c) for k, c in zip(counts.index, counts.to_numpy())}
