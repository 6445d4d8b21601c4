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

__all__ = ["FIT_SUMMARY_COLUMNS", "TREND_COLUMNS", "fit_summary", "trends"]

TREND_COLUMNS = ["metric", "labels", "slope_per_hour", "slope_ci_lower", "slope_ci_upper",
                 "p_value", "change_pct", "trend", "n", "start", "end"]


FIT_SUMMARY_COLUMNS = ["metric", "labels", "n", "start", "end", "level_now", "slope_per_hour",
                       "slope_se", "slope_ci_lower", "slope_ci_upper", "t_value", "p_value", "r2",
                       "r2_adj", "sigma", "aic", "durbin_watson"]


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

    All series are fitted in one vectorised numpy pass (equal to statsmodels' OLS to
    1e-9; :func:`fit_summary` is the statsmodels fit itself, with R² and more).
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


def fit_summary(frame: SamplesLike, window: Duration = "30min", *, level: float = 0.95,
                now: WhenLike | None = None, labels: bool | None = None) -> pd.DataFrame:
    """The straight-line fit behind :func:`trends`, as statsmodels reports it, one row per series.

    Each series' samples in ``(now - window, now]`` are fitted by
    ``statsmodels.api.OLS(value, add_constant(hours))`` where ``hours`` is the time
    before the window's last sample (so the intercept, ``level_now``, is the fitted
    value now, in the metric's unit). Columns: ``metric, labels, n, start, end,
    level_now, slope_per_hour, slope_se, slope_ci_lower, slope_ci_upper`` (the
    ``level`` confidence interval of the slope), ``t_value, p_value`` (two-sided t
    test of the slope), ``r2, r2_adj, sigma`` (residual standard deviation), ``aic``
    and ``durbin_watson`` of the residuals. A Durbin–Watson statistic well below 2
    means autocorrelated residuals, which most metrics have at a short step: then
    the p-value and the interval are too optimistic, read them as a description of
    the window, not a test. Series with fewer than 3 samples in the window get NaN
    statistics. ``slope_per_hour`` / ``p_value`` equal :func:`trends`' (its fast
    vectorised path) to 1e-9.

    One statsmodels fit per series (~1 ms each): meant for the handful of series a
    notebook or the dashboard shows, not for thousands (use :func:`trends`).

    Example::

        fit_summary(frame, "1h").set_index("metric")[["slope_per_hour", "r2", "p_value"]]
    """
    import statsmodels.api as sm  # type: ignore[import-untyped]

    if not 0 < float(level) < 1:
        raise ValueError(f"level must be between 0 and 1 (e.g. 0.95), got {level!r}")
    w = as_timedelta(window, "window").value
    series = split_series(frame, labels)
    end = to_ns(now) if now is not None else latest_ns(series)
    if not series or end is None:
        return pd.DataFrame({c: [] for c in FIT_SUMMARY_COLUMNS})
    win = [s.until(end).since(end - w) for s in series]
    rows = [_fit_row(sm, s, float(level)) for s in win]
    out = pd.DataFrame(rows, columns=FIT_SUMMARY_COLUMNS[5:])
    out.insert(0, "end", pd.to_datetime(_ends(win, -1), utc=True))
    out.insert(0, "start", pd.to_datetime(_ends(win, 0), utc=True))
    out.insert(0, "n", [s.n for s in win])
    out.insert(0, "labels", [s.labels for s in win])
    out.insert(0, "metric", [s.metric for s in win])
    return out


def _fit_row(sm: Any, s: Series, level: float) -> list[float]:
    """statsmodels OLS statistics of one window, in ``FIT_SUMMARY_COLUMNS[5:]`` order."""
    if s.n < 3 or s.ts[0] == s.ts[-1]:
        return [np.nan] * (len(FIT_SUMMARY_COLUMNS) - 5)
    from statsmodels.stats.stattools import durbin_watson  # type: ignore[import-untyped]

    r = sm.OLS(s.values, sm.add_constant(s.hours(s.ts[-1]), has_constant="add")).fit()
    lo, hi = r.conf_int(alpha=1 - level)[1]
    with np.errstate(all="ignore"):
        return [float(r.params[0]), float(r.params[1]), float(r.bse[1]), float(lo), float(hi),
                float(r.tvalues[1]), float(r.pvalues[1]), float(r.rsquared),
                float(r.rsquared_adj), float(np.sqrt(r.scale)), float(r.aic),
                float(durbin_watson(r.resid))]
