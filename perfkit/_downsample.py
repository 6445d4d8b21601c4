"""Display downsampling: few enough points for a browser, every peak and trough kept.

A chart is at most a couple of thousand pixels wide, so drawing 86,400 points
per series only costs time (serialising, sending, rendering) without showing
more. MinMaxLTTB (``tsdownsample``) picks the points that keep the visual
shape; the series' own minimum and maximum are always added, so a one-second
spike is never downsampled away. This is for display only: analysis runs on
the full-resolution frame.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

try:
    from tsdownsample import MinMaxLTTBDownsampler
except ModuleNotFoundError as exc:  # pragma: no cover - depends on the install
    from perfkit.errors import extra_error

    raise extra_error(exc, "dashboard", "Downsampling for plots") from exc

__all__ = ["DEFAULT_POINTS", "downsample", "downsample_series"]

DEFAULT_POINTS = 1_000
"""Points per series kept for display (about one per pixel of a wide chart)."""

_KEYS = ["host", "metric", "labels"]


def downsample_series(ts: np.ndarray, values: np.ndarray, max_points: int = DEFAULT_POINTS
                      ) -> np.ndarray:
    """Sorted positions to keep from one series (``ts`` ascending, int64 or datetime64).

    Series with at most ``max_points`` points are kept whole.
    """
    if not isinstance(max_points, int) or max_points < 10:
        raise ValueError(f"max_points must be an int >= 10, got {max_points!r}")
    n = len(values)
    if n <= max_points:
        return np.arange(n)
    x = np.asarray(ts)
    x = x.view("int64") if x.dtype.kind == "M" else x
    y = np.ascontiguousarray(values, dtype=np.float64)
    idx = MinMaxLTTBDownsampler().downsample(np.ascontiguousarray(x, dtype=np.int64), y,
                                             n_out=max_points).astype(np.int64)
    # MinMaxLTTB keeps the shape, not necessarily the extremes: add them explicitly.
    return np.union1d(idx, [int(np.argmin(y)), int(np.argmax(y))])


def downsample(frame: pd.DataFrame, max_points: int = DEFAULT_POINTS) -> pd.DataFrame:
    """A samples frame with each (host, metric, labels) series cut to about ``max_points``.

    Rows are kept, not averaged, so every value shown was really measured.
    The result is sorted by series, then time.
    """
    if len(frame) == 0:
        return frame
    # Integer series codes and a stable argsort: far cheaper than sorting on three
    # string columns, and the store already returns each series in time order.
    codes = _series_codes(frame)
    ts = _ns(frame["ts"])
    order = np.lexsort((ts, codes))
    codes = codes[order]
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
    ends = np.r_[starts[1:], len(codes)]
    if (ends - starts).max() <= max_points:
        return frame.iloc[order].reset_index(drop=True)
    ts = ts[order]
    values = frame["value"].to_numpy()[order]
    keep = [s + downsample_series(ts[s:e], values[s:e], max_points) for s, e in zip(starts, ends)]
    return frame.iloc[order[np.concatenate(keep)]].reset_index(drop=True)


def _ns(ts: pd.Series) -> np.ndarray:
    """Epoch nanoseconds of a tz-aware timestamp column, whatever its stored unit."""
    naive = ts.dt.tz_convert("UTC").dt.tz_localize(None)
    return naive.to_numpy(dtype="datetime64[ns]").view("int64")


def _series_codes(frame: pd.DataFrame) -> np.ndarray:
    """One integer per (host, metric, labels) series; straight from categorical codes."""
    cols = [frame[k] for k in _KEYS]
    if all(isinstance(c.dtype, pd.CategoricalDtype) for c in cols):
        code = np.zeros(len(frame), dtype=np.int64)
        for c in cols:
            code = code * (len(c.cat.categories) + 1) + c.cat.codes.to_numpy().astype(np.int64)
        return code
    return frame.groupby(_KEYS, sort=False, observed=True).ngroup().to_numpy()
