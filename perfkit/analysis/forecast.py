"""Forecasts with prediction intervals: ``forecast(frame, horizon="30min")``."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._core import METHODS, MIN_POINTS, forecast_array
from ._input import NS_PER_HOUR, Series, as_timedelta, bounds_of, split_series
from ._linear import ols_batch, ols_predict
from .shift import last_shift

__all__ = ["FORECAST_COLUMNS", "forecast"]

FORECAST_COLUMNS = ["metric", "labels", "ts", "step", "mean", "lower", "upper", "model", "level",
                    "n", "r2", "aic", "sigma", "fit_start"]


def forecast(frame, horizon="30min", level: float = 0.8, method: str = "auto", *,
             window=None, shift: bool = True, labels: bool | None = None) -> pd.DataFrame:
    """Forecast every series in ``frame`` over ``horizon`` with a ``level`` prediction interval.

    ``frame`` is a samples frame or one named Series with a DatetimeIndex.
    ``horizon`` and ``window`` are pandas offsets (``"30min"``) or Timedeltas;
    ``window`` keeps only that much trailing history (default: all of it).

    Output, one row per series and future step: ``metric, labels, ts, step,
    mean, lower, upper, model, level, n, r2, aic, sigma, fit_start``. The grid
    follows each series' own median sampling step: ``ts = last + k * step`` for
    ``k = 1 .. ceil(horizon / step)``. ``lower``/``upper`` bound the ``level``
    prediction interval for a new observation, clipped to the catalogue's
    physical bounds (0–100 for percentages). ``n`` counts the points the model
    was fitted on (after the last level shift), ``fit_start`` is the first of
    them; ``r2`` is the in-sample (one-step for ETS) R²; ``aic`` is the OLS AIC
    for ``linear`` and the AICc for the ETS models.

    Methods:

    ``linear``
        OLS of value on elapsed hours with the OLS prediction interval (what
        Prometheus' ``predict_linear`` would do, with intervals). Numbers are
        statsmodels' ``OLS(...).get_prediction().summary_frame()``; computed in
        one vectorised numpy pass for all series.
    ``theil_sen``
        Robust line (median of pairwise slopes) with a MAD-based interval.
    ``ses`` / ``damped`` / ``ets``
        Exponential smoothing ETS(A,N,N) / ETS(A,Ad,N) (damped Holt), closed-form
        with the ETS prediction-interval variances; ``ets`` picks the lower AICc.
    ``seasonal``
        a robust classical decomposition (daily season) + SES on the seasonally
        adjusted series; needs two
        full seasons (48 h) of history.
    ``naive``
        Last value, interval ``z * s * sqrt(h)`` from the one-step differences.
    ``auto`` (default)
        A fixed rule, not a per-file tuning: (1) with >= 48 h of history and a
        daily seasonal strength >= 0.6, ``seasonal`` (on the whole history, no
        shift detection); (2) else if the :func:`trends` test calls the segment
        increasing/decreasing (OLS slope p < 0.05 and a change >= 5 % over the
        fitted span), damped Holt — the trend is followed but damped, so a burst
        cannot project a line to a false crossing; (3) else the average of the
        SES forecast and the segment median (``model="ses+median"``). The
        interval is the root mean square of the ETS model's half-width and the
        RMS of the chosen forecast's in-sample h-step errors (see
        ``perfkit.analysis._core.INTERVAL``).
        Why a hypothesis test and not a rolling backtest or an information
        criterion: on the NAB development set (6 h windows, 30 min ahead) a
        3-origin in-window backtest over {ses+median, damped, linear} forecast
        no better (median MASE 0.666 vs 0.665) at three times the cost — a
        72-point window leaves too few origins to choose reliably — and AICc
        between SES and damped Holt picked SES almost always and forecast worse
        (0.699); the test is cheap and keeps forecasts consistent with the
        trend labels. See ``benchmarks/analysis.md`` for the accuracy table.

    Level shifts: with ``shift=True`` each series is fitted on the segment after
    its last level shift (``perfkit.analysis.shift.last_shift``; ruptures PELT,
    l2 cost, kept only where the series jumps rather than ramps), so a disk
    cleanup or a deploy does not bend the forecast. ``theil_sen`` is the robust
    option against bursts.

    Minimum data: 3 finite points (``naive`` 2, ``theil_sen`` 5; ``damped`` and
    auto's trend branch fall back to SES below 8 points); a series with fewer is left out and
    named in ``result.attrs["skipped"]`` (a single Series raises ``ValueError``).
    A constant series gives a constant forecast with a zero-width interval
    (``model="constant"``). NaN / inf samples are dropped; gaps are allowed
    (ETS treats the remaining samples as consecutive).
    """
    if method not in METHODS:
        raise ValueError(f"unknown forecast method {method!r}; choose one of {METHODS}")
    if not 0 < float(level) < 1:
        raise ValueError(f"level must be between 0 and 1 (e.g. 0.8), got {level!r}")
    hz = as_timedelta(horizon, "horizon")
    series = split_series(frame, labels)
    if window is not None:
        w = as_timedelta(window, "window").value
        series = [s.since(s.ts[-1] - w) for s in series]
    skipped: dict[str, str] = {}
    usable = []
    for s in series:
        key = s.metric if not s.labels else f"{s.metric}{{{s.labels}}}"
        need = MIN_POINTS[method]
        if s.n < max(need, 2) or s.step_ns() <= 0:
            skipped[key] = f"{s.n} point(s); {method!r} needs at least {max(need, 3)}"
        else:
            usable.append(s)
    if isinstance(frame, pd.Series) and skipped:
        raise ValueError(f"cannot forecast {next(iter(skipped))}: {next(iter(skipped.values()))}")
    if method == "linear":
        parts = _linear_batch(usable, hz, float(level), shift)
    else:
        parts = [_one(s, hz, float(level), method, shift) for s in usable]
    out = _assemble(parts) if parts else _empty()
    out.attrs["skipped"] = skipped
    return out


def _empty() -> pd.DataFrame:
    df = pd.DataFrame({c: pd.Series(dtype=float) for c in FORECAST_COLUMNS})
    for c in ("metric", "labels", "model"):
        df[c] = df[c].astype(object)
    df["ts"] = pd.Series(dtype="datetime64[ns, UTC]")
    df["fit_start"] = pd.Series(dtype="datetime64[ns, UTC]")
    df["step"] = df["step"].astype(int)
    df["n"] = df["n"].astype(int)
    return df


def _grid(s: Series, hz: pd.Timedelta) -> tuple[float, int]:
    step = s.step_ns()
    steps = max(1, int(np.ceil(hz.value / step - 1e-9)))
    return step, steps


def _rows(s: Series, step_ns: float, fc_mean, lo, hi, model, level, stats, start) -> dict:
    k = len(fc_mean)
    return {"metric": s.metric, "labels": s.labels, "k": k,
            "ts": s.ts[-1] + (step_ns * np.arange(1, k + 1)).astype(np.int64),
            "mean": np.asarray(fc_mean, float), "lower": np.asarray(lo, float),
            "upper": np.asarray(hi, float), "model": model, "level": level,
            "n": int(stats.get("n", s.n - start)), "r2": float(stats.get("r2", np.nan)),
            "aic": float(stats.get("aic", np.nan)), "sigma": float(stats.get("sigma", np.nan)),
            "fit_start": int(s.ts[start])}


def _assemble(parts: list[dict]) -> pd.DataFrame:
    ks = np.array([p["k"] for p in parts])
    rep = lambda key: np.repeat(np.array([p[key] for p in parts], dtype=object if key in (
        "metric", "labels", "model") else None), ks)
    return pd.DataFrame({
        "metric": rep("metric"), "labels": rep("labels"),
        "ts": pd.to_datetime(np.concatenate([p["ts"] for p in parts]), utc=True),
        "step": np.concatenate([np.arange(1, k + 1) for k in ks]),
        "mean": np.concatenate([p["mean"] for p in parts]),
        "lower": np.concatenate([p["lower"] for p in parts]),
        "upper": np.concatenate([p["upper"] for p in parts]),
        "model": rep("model"), "level": rep("level").astype(float), "n": rep("n").astype(int),
        "r2": rep("r2").astype(float), "aic": rep("aic").astype(float),
        "sigma": rep("sigma").astype(float),
        "fit_start": pd.to_datetime(rep("fit_start").astype(np.int64), utc=True),
    })


def _one(s: Series, hz, level, method, shift) -> dict:
    step, steps = _grid(s, hz)
    x = s.hours(s.ts[-1])
    fc = forecast_array(x, s.values, step / NS_PER_HOUR, steps, level, method, shift=shift,
                        bounds=bounds_of(s.metric))
    return _rows(s, step, fc.mean, fc.lower, fc.upper, fc.model, level, fc.stats,
                 fc.stats.get("fit_start", 0))


def _linear_batch(series: list[Series], hz, level, shift) -> list[dict]:
    """All linear forecasts in one padded numpy pass (shift detection is per series)."""
    if not series:
        return []
    starts, xs, ys, xnew, steps_l, step_l = [], [], [], [], [], []
    for s in series:
        st = last_shift(s.values) if shift and s.n >= 10 else 0
        if s.n - st < MIN_POINTS["linear"]:
            st = 0
        step, steps = _grid(s, hz)
        starts.append(st)
        xs.append(s.hours(s.ts[-1])[st:])
        ys.append(s.values[st:])
        step_l.append(step)
        steps_l.append(steps)
        xnew.append(step / NS_PER_HOUR * np.arange(1, steps + 1))
    m = max(len(v) for v in ys)
    H = max(steps_l)
    X = np.full((len(series), m), np.nan)
    Y = np.full((len(series), m), np.nan)
    XN = np.full((len(series), H), np.nan)
    for i, (x, y, xn) in enumerate(zip(xs, ys, xnew)):
        X[i, :len(x)] = x
        Y[i, :len(y)] = y
        XN[i, :len(xn)] = xn
    fit = ols_batch(X, Y)
    pred = ols_predict(fit, XN, level)
    out = []
    r2, aic, sig = fit.r2, fit.aic, np.sqrt(fit.sigma2)
    for i, s in enumerate(series):
        k = steps_l[i]
        mean, lo, hi = pred["mean"][i, :k], pred["obs_ci_lower"][i, :k], pred["obs_ci_upper"][i, :k]
        model = "linear"
        if np.ptp(ys[i]) == 0:                      # constant segment: zero-width interval
            mean = lo = hi = np.full(k, ys[i][-1])
            model = "constant"
        lb, ub = bounds_of(s.metric)
        if lb is not None or ub is not None:
            mean, lo, hi = (np.clip(a, lb, ub) for a in (mean, lo, hi))
        out.append(_rows(s, step_l[i], mean, lo, hi, model, level,
                         {"n": len(ys[i]), "r2": r2[i], "aic": aic[i], "sigma": sig[i]}, starts[i]))
    return out
