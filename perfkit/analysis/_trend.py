"""Statistical trend labels: ``trends(frame, window="30min")``."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from perfkit._time import Duration, as_timedelta
from perfkit.analysis._input import (
    NS_PER_HOUR,
    SamplesLike,
    Series,
    WhenLike,
    latest_ns,
    split_series,
    to_ns,
)
from perfkit.analysis._linear import ols_batch

__all__ = ["TREND_COLUMNS", "trends"]

TREND_COLUMNS = ["metric", "labels", "slope_per_hour", "slope_ci_lower", "slope_ci_upper",
                 "p_value", "change_pct", "trend", "n", "start", "end"]


def trends(frame: SamplesLike, window: Duration = "30min", *, alpha: float = 0.05,
           min_change_pct: float = 5.0, now: WhenLike | None = None,
           labels: bool | None = None) -> pd.DataFrame:
    """Trend of every series over the trailing ``window``, one row per series.

    Fits OLS of value on elapsed **hours** (so ``slope_per_hour`` is in the
    metric's unit per hour; irregular timestamps and gaps are fine) to the
    samples in ``(now - window, now]``; ``now`` defaults to the latest timestamp
    in the frame. ``change_pct`` is the fitted change over the covered span
    relative to the mean level (``100 * slope * span / |mean|``). The label is
    ``increasing`` / ``decreasing`` only when the slope is significant
    (two-sided t-test ``p_value < alpha``) **and** material
    (``|change_pct| >= min_change_pct``); otherwise ``stable``. With fewer than
    3 points in the window the statistics are NaN and the label is ``stable``.
    ``slope_ci_lower/upper`` is the 95 % confidence interval of the slope.

    All series are fitted in one vectorised numpy pass.
    """
    w = as_timedelta(window, "window").value
    series = split_series(frame, labels)
    end = to_ns(now) if now is not None else latest_ns(series)
    if not series or end is None:
        return pd.DataFrame({c: [] for c in TREND_COLUMNS})
    win = [s.until(end).since(end - w) for s in series]
    m = max(max(s.n for s in win), 1)
    X = np.full((len(win), m), np.nan)
    Y = np.full((len(win), m), np.nan)
    for i, s in enumerate(win):
        if s.n:
            X[i, :s.n] = s.hours()
            Y[i, :s.n] = s.values
    n = np.array([s.n for s in win])
    with np.errstate(all="ignore"):
        fit = ols_batch(X, Y)
        slope = np.where(n >= 3, fit.slope, np.nan)
        p = np.where(n >= 3, fit.p_value, np.nan)
        lo, hi = fit.slope_ci(0.95)
        span = np.array([(s.ts[-1] - s.ts[0]) / NS_PER_HOUR if s.n else 0.0 for s in win])
        base = np.abs(fit.ybar)
        change = slope * span
        pct = np.where(base > 0, 100 * change / base,
                       np.where(change == 0, 0.0, np.sign(change) * np.inf))
    sig = (p < alpha) & (np.abs(pct) >= min_change_pct)
    label = np.where(sig & (slope > 0), "increasing", np.where(sig & (slope < 0), "decreasing",
                                                                "stable"))
    return pd.DataFrame({
        "metric": [s.metric for s in win], "labels": [s.labels for s in win],
        "slope_per_hour": slope,
        "slope_ci_lower": np.where(n >= 3, lo, np.nan),
        "slope_ci_upper": np.where(n >= 3, hi, np.nan),
        "p_value": p, "change_pct": np.where(n >= 3, pct, np.nan), "trend": label, "n": n,
        "start": pd.to_datetime(_ends(win, 0), utc=True),
        "end": pd.to_datetime(_ends(win, -1), utc=True),
    })


def _ends(win: list[Series], i: int) -> list[Any]:
    """Each window's first (``i=0``) or last (``i=-1``) timestamp in ns, NaT when empty."""
    return [s.ts[i] if s.n else pd.NaT for s in win]
