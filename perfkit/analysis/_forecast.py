"""Forecasts with prediction intervals: ``forecast(frame, horizon="30min")``."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from perfkit._time import Duration, as_timedelta
from perfkit.analysis._core import (
    MAX_HISTORY_POINTS,
    MAX_HORIZON_STEPS,
    METHODS,
    MIN_POINTS,
    ArrayForecast,
    check_steps,
    forecast_array,
)
from perfkit.analysis._input import (
    NS_PER_HOUR,
    SamplesLike,
    Series,
    bounds_of,
    nonfinite_counts,
    split_series,
)
from perfkit.analysis._linear import LinearFit, ols_batch, ols_predict, ols_rows
from perfkit.analysis._parallel import check_jobs, map_chunks
from perfkit.analysis._shift import last_shift
from perfkit.errors import UnknownNameError

__all__ = ["FORECAST_COLUMNS", "MAX_HISTORY_POINTS", "MAX_HORIZON_STEPS", "forecast"]

FORECAST_COLUMNS = ["metric", "labels", "ts", "step", "mean", "lower", "upper", "model", "level",
                    "n", "r2", "aic", "sigma", "fit_start", "reason"]


def forecast(frame: SamplesLike, horizon: Duration = "30min", level: float = 0.8,
             method: str = "auto", *, window: Duration | None = None, shift: bool = True,
             labels: bool | None = None, jobs: int = 1,
             progress: bool = True) -> pd.DataFrame:
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
        Exponential smoothing ETS(A,N,N) / ETS(A,Ad,N) (damped Holt) with the
        estimates and prediction intervals of statsmodels' ``ETSModel`` (SES with
        an estimated initial level; damped Holt from the first value with slope 0,
        phi in [0.8, 1]); ``ets`` picks the lower AICc.
    ``seasonal``
        statsmodels' robust ``STL`` (daily season; on 30-minute bin means of the
        newest 8 days when sampled more finely, :mod:`perfkit.analysis._seasonal`)
        + SES on the seasonally adjusted series; needs two full seasons (48 h) of
        history, else ``ValueError`` saying so.
    ``naive``
        Last value, interval ``z * s * sqrt(h)`` from the one-step differences.
    ``auto`` (default)
        (1) with >= 48 h of history and a daily seasonal strength >= 0.79,
        ``seasonal`` (on the whole history, no shift detection); (2) else if the
        :func:`trends` test calls the window increasing/decreasing (OLS slope
        p < 0.05 and a change >= 5 % over the fitted span), damped Holt, so a
        filling disk is forecast to fill; (3) else the mean of SES, damped Holt,
        Theta and the segment median (``model="ses+damped+theta+median"``, the M3
        "comb" with a robust level). Both fitted after the last level shift, on the
        segment clipped to its median +- 3 robust SDs (a burst does not drag the
        forecast). The interval at step h is ``c * t_nu(level) * RMS_h * v`` (``(c, nu) =
        perfkit.analysis._auto.CALIBRATION``), ``RMS_h`` the root mean square of the chosen
        forecast's own causal h-step errors on the segment (against the raw values; points
        that are an exact linear fill of a gap left out), ``v`` the RMS of the last 6
        one-step errors over the segment's, clipped to [0.5, 3] (wider during a burst),
        ``(c, nu)`` calibrated so that 80 % and 95 % intervals cover what they say. The
        ``reason`` column says which branch was taken and why. The rule and the constants
        were chosen by nested leave-series-out cross-validation on the NAB development set,
        among candidates fixed before each of two rounds was scored
        (``perfkit.analysis._auto.AUTO_RULES``, ``benchmarks/auto_cv.py``,
        ``benchmarks/analysis.md``).

    Level shifts: with ``shift=True`` each series is fitted on the segment after
    its last level shift (``perfkit.analysis._shift.last_shift``; ruptures PELT,
    l2 cost scaled by the series' long-run noise, kept only where the series
    jumps rather than ramps), so a disk cleanup or a deploy does not bend the
    forecast and an autocorrelated series is not cut at every excursion. ``theil_sen`` is the robust
    option against bursts.

    Cost: at most :data:`MAX_HISTORY_POINTS` (50,000) newest points per series are
    used (older ones are ignored) and at most :data:`MAX_HORIZON_STEPS` (20,000)
    steps are forecast (a series needing more is skipped with that reason, a
    single Series raises ``ValueError``); memory is O(points + steps) per series.
    ``jobs > 1`` fits the series in that many worker processes (worth it from a few
    hundred series); ``jobs`` must be a whole number >= 1 (``InvalidInputError``
    otherwise); a progress bar appears
    once the work takes a second (``progress=False`` hides it).

    Example::

        fc = forecast(frame, "30min", level=0.8)
        fc[["metric", "ts", "mean", "lower", "upper", "model", "reason"]]

    Minimum data: 3 finite points (``naive`` 2, ``theil_sen`` 5; ``damped`` and
    auto's trend branch fall back to SES below 8 points); a series with fewer is left out and
    named in ``result.attrs["skipped"]`` (a single Series raises ``ValueError``).
    A constant series gives a constant forecast with a zero-width interval
    (``model="constant"``, reason ``"constant series: ..."``). NaN / inf samples
    are dropped (the reason counts them); gaps are allowed (ETS treats the
    remaining samples as consecutive); a window that a long gap leaves with too few points skips the
    series with that reason. An unsorted index is sorted (repeated timestamps
    averaged).
    """
    if method not in METHODS:
        raise UnknownNameError(f"unknown forecast method {method!r}; choose one of {METHODS}")
    if not 0 < float(level) < 1:
        raise ValueError(f"level must be between 0 and 1 (e.g. 0.8), got {level!r}")
    jobs = check_jobs(jobs)
    hz = as_timedelta(horizon, "horizon")
    series = split_series(_newest(frame), labels)
    if window is not None:
        w = as_timedelta(window, "window").value
        series = [s.since(s.ts[-1] - w) for s in series]
    series = [s if s.n <= MAX_HISTORY_POINTS else
              Series(s.metric, s.labels, s.ts[-MAX_HISTORY_POINTS:], s.values[-MAX_HISTORY_POINTS:])
              for s in series]
    skipped: dict[str, str] = {}
    usable = []
    dropped = nonfinite_counts(frame)
    for s in series:
        key = s.metric if not s.labels else f"{s.metric}{{{s.labels}}}"
        need = MIN_POINTS[method]
        if s.n < max(need, 2) or s.step_ns() <= 0:
            note = _dropped_note(dropped.get((s.metric, s.labels), 0))
            skipped[key] = (f"{s.n} point(s){note}; {method!r} needs at least "
                            f"{max(need, 3)} finite points")
        else:
            try:
                check_steps(_grid(s, hz)[1])
            except ValueError as exc:
                skipped[key] = str(exc)
                continue
            usable.append(s)
    if isinstance(frame, pd.Series) and skipped:
        raise ValueError(f"cannot forecast {next(iter(skipped))}: {next(iter(skipped.values()))}")
    if not usable:
        out = _empty()
    elif method == "linear":
        out = _linear_batch(usable, hz, float(level), shift)
    else:
        out = _assemble(_each(usable, hz, float(level), method, shift, jobs, progress),
                        float(level))
    for (m, lab), k in dropped.items():
        rows = (out["metric"] == m) & (out["labels"] == lab)
        if rows.any():
            out.loc[rows, "reason"] = out.loc[rows, "reason"] + f"; {k} NaN/inf sample(s) dropped"
    out.attrs["skipped"] = skipped
    return out


def _dropped_note(k: int) -> str:
    return f" after dropping {k} NaN/inf" if k else ""


_STATSMODELS_ETS = ("statsmodels.tsa.exponential_smoothing.ets",)   # damped Holt's fit


def _each(usable: list[Series], hz: pd.Timedelta, level: float, method: str, shift: bool,
          jobs: int, progress: bool) -> list[tuple[Series, float, int, ArrayForecast]]:
    """``_one`` per series, in order, in ``jobs`` processes when asked and worth it; a
    tqdm bar appears once the work has taken a second (``tqdm.auto``: a widget in a notebook)."""
    from tqdm.auto import tqdm  # type: ignore[import-untyped]

    bar = tqdm(total=len(usable), desc="forecast", unit="series", delay=1.0, leave=False,
               disable=not progress or len(usable) < 2)
    try:
        if jobs > 1 and len(usable) >= 4 * jobs:
            preload = _STATSMODELS_ETS if method in ("auto", "damped", "ets") else ()
            return map_chunks(_chunk, usable, jobs, hz, level, method, shift, done=bar.update,
                              preload=preload)
        out = []
        for s in usable:
            out.append(_one(s, hz, level, method, shift))
            bar.update()
        return out
    finally:
        bar.close()


def _chunk(series: list[Series], hz: pd.Timedelta, level: float, method: str,
           shift: bool) -> list[tuple[Series, float, int, ArrayForecast]]:
    return [_one(s, hz, level, method, shift) for s in series]


def _newest(frame: SamplesLike) -> SamplesLike:
    """A long sorted Series cut to its newest :data:`MAX_HISTORY_POINTS` finite points
    before it is turned into a samples frame (a 1 M-row frame costs ~80 MB); anything
    else unchanged (frames are cut per series, after grouping)."""
    if (isinstance(frame, pd.Series) and len(frame) > MAX_HISTORY_POINTS
            and isinstance(frame.index, pd.DatetimeIndex)
            and frame.index.is_monotonic_increasing):
        v = pd.to_numeric(frame, errors="coerce").to_numpy(float)
        keep = np.flatnonzero(np.isfinite(v))[-MAX_HISTORY_POINTS:]
        return frame.iloc[keep]
    return frame


def _empty() -> pd.DataFrame:
    df = pd.DataFrame({c: pd.Series(dtype=float) for c in FORECAST_COLUMNS})
    for c in ("metric", "labels", "model", "reason"):
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


_STR: Any = pd.Series([], dtype=str).dtype
"""pandas' default string dtype (``str``, Arrow-backed on pandas 3; object before)."""


def _str_column(names: list[str],
                counts: np.ndarray) -> pd.api.extensions.ExtensionArray | np.ndarray:
    """``names[i]`` repeated ``counts[i]`` times as a column of the default string dtype,
    without a Python object per row where strings are Arrow-backed (and, where they are
    objects, as a plain array: pandas 2 checks a wrapped one for missing values)."""
    idx = np.repeat(np.arange(len(names)), counts)
    if isinstance(_STR, pd.StringDtype) and _STR.storage == "pyarrow":
        import pyarrow as pa

        return pd.array(pa.array(names, type=pa.large_string()).take(pa.array(idx)), dtype=_STR)
    return np.array(names, dtype=object)[idx]


def _utc(ns: np.ndarray) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(np.asarray(ns, np.int64).view("M8[ns]")).tz_localize("UTC")


def _build(series: list[Series], k: np.ndarray, step_ns: np.ndarray, mean: np.ndarray,
           lower: np.ndarray, upper: np.ndarray, model: list[str], level: float,
           n: ArrayLike, r2: ArrayLike, aic: ArrayLike, sigma: ArrayLike,
           fit_start: ArrayLike, reason: list[str]) -> pd.DataFrame:
    """The output frame in one go: per-series arrays (length ``len(series)``) are
    repeated ``k`` times; ``mean``/``lower``/``upper`` are the concatenated steps."""
    total = int(k.sum())
    first = np.repeat(np.cumsum(k) - k, k)
    step = np.arange(1, total + 1) - first
    last = np.array([s.ts[-1] for s in series], dtype=np.int64)
    ts = np.repeat(last, k) + (np.repeat(step_ns, k) * step).astype(np.int64)
    return pd.DataFrame({
        "metric": _str_column([s.metric for s in series], k),
        "labels": _str_column([s.labels for s in series], k),
        "ts": _utc(ts), "step": step, "mean": mean, "lower": lower, "upper": upper,
        "model": _str_column(model, k), "level": np.full(total, level),
        "n": np.repeat(np.asarray(n, np.int64), k),
        "r2": np.repeat(np.asarray(r2, np.float64), k),
        "aic": np.repeat(np.asarray(aic, np.float64), k),
        "sigma": np.repeat(np.asarray(sigma, np.float64), k),
        "fit_start": _utc(np.repeat(np.asarray(fit_start, np.int64), k)),
        "reason": _str_column(reason, k),
    }, copy=False)                                 # every column is a fresh array


def _assemble(parts: list[tuple[Series, float, int, ArrayForecast]], level: float) -> pd.DataFrame:
    """Frame of per-series forecasts ``(series, step ns, fit start index, ArrayForecast)``."""
    series = [p[0] for p in parts]
    fcs = [p[3] for p in parts]
    return _build(series, np.array([len(f.mean) for f in fcs]), np.array([p[1] for p in parts]),
                  np.concatenate([np.asarray(f.mean, np.float64) for f in fcs]),
                  np.concatenate([np.asarray(f.lower, np.float64) for f in fcs]),
                  np.concatenate([np.asarray(f.upper, np.float64) for f in fcs]),
                  [f.model for f in fcs], level,
                  [int(f.stats.get("n", s.n - st)) for s, _, st, f in parts],
                  [float(f.stats.get("r2", np.nan)) for f in fcs],
                  [float(f.stats.get("aic", np.nan)) for f in fcs],
                  [float(f.stats.get("sigma", np.nan)) for f in fcs],
                  [int(s.ts[st]) for s, _, st, _ in parts],
                  [str(f.stats.get("reason", "")) for f in fcs])


def _one(s: Series, hz: pd.Timedelta, level: float, method: str,
         shift: bool) -> tuple[Series, float, int, ArrayForecast]:
    step, steps = _grid(s, hz)
    x = s.hours(s.ts[-1])
    fc = forecast_array(x, s.values, step / NS_PER_HOUR, steps, level, method, shift=shift,
                        bounds=bounds_of(s.metric))
    return s, step, fc.stats.get("fit_start", 0), fc


def _linear_batch(series: list[Series], hz: pd.Timedelta, level: float,
                  shift: bool) -> pd.DataFrame:
    """All linear forecasts in one vectorised pass (shift detection is per series).

    Series sampled at the same instants (the Monitor stamps every metric of a
    collection with one timestamp) share a time axis: the largest such group is
    fitted with matrix-vector products (:func:`ols_rows`); the rest together as
    NaN-padded rows. The output frame is built from whole arrays in one go.
    """
    k = len(series)
    starts = np.zeros(k, dtype=np.intp)
    if shift:
        for i, s in enumerate(series):
            st = last_shift(s.values) if s.n >= 10 else 0
            starts[i] = st if s.n - st >= MIN_POINTS["linear"] else 0
    grid = [_grid(s, hz) for s in series]
    step_ns = np.array([g[0] for g in grid])
    steps = np.array([g[1] for g in grid])
    H = int(steps.max())
    XN = step_ns[:, None] / NS_PER_HOUR * np.arange(1, H + 1)
    seg_ts = [s.ts[st:] for s, st in zip(series, starts)]
    seg_y = [s.values[st:] for s, st in zip(series, starts)]
    shared = _largest_shared_axis(seg_ts)
    r2, aic, sigma = np.empty(k), np.empty(k), np.empty(k)
    mean, lo, hi = np.empty((k, H)), np.empty((k, H)), np.empty((k, H))
    for rows, one_clock in ((shared, True), (np.setdiff1d(np.arange(k), shared), False)):
        if len(rows):
            fit = _fit(rows, seg_ts, seg_y, one_clock)
            pred = ols_predict(fit, XN[rows], level)
            mean[rows] = pred["mean"]
            lo[rows], hi[rows] = pred["obs_ci_lower"], pred["obs_ci_upper"]
            r2[rows], aic[rows], sigma[rows] = fit.r2, fit.aic, np.sqrt(fit.sigma2)
    model = ["linear"] * k
    reason = ["method='linear': OLS on elapsed time" + (
        f"; fitted after the level shift at point {st} of {s.n}" if st else "")
        for s, st in zip(series, starts)]
    for i, y in enumerate(seg_y):
        if y.min() == y.max():                     # constant segment: zero-width interval
            mean[i] = lo[i] = hi[i] = y[-1]
            model[i] = "constant"
            reason[i] = "constant series: last value, zero-width interval"
    bounds = [bounds_of(s.metric) for s in series]
    lb = np.array([-np.inf if b[0] is None else b[0] for b in bounds])[:, None]
    ub = np.array([np.inf if b[1] is None else b[1] for b in bounds])[:, None]
    keep = np.arange(H) < steps[:, None]           # each series' own number of steps
    mean, lo, hi = (np.clip(a, lb, ub)[keep] for a in (mean, lo, hi))
    return _build(series, steps, step_ns, mean, lo, hi, model, level,
                  [len(y) for y in seg_y], r2, aic, sigma,
                  [int(t[0]) for t in seg_ts], reason)


def _fit(rows: np.ndarray, seg_ts: list[np.ndarray], seg_y: list[np.ndarray],
         one_clock: bool) -> LinearFit:
    """OLS of the ``rows`` segments on elapsed hours before their last sample:
    on one shared axis (matrix-vector products), or as NaN-padded rows."""
    if one_clock:
        t = seg_ts[rows[0]]
        return ols_rows((t - t[-1]) / NS_PER_HOUR, [seg_y[i] for i in rows])
    m = max(len(seg_y[i]) for i in rows)
    X = np.full((len(rows), m), np.nan)
    Y = np.full((len(rows), m), np.nan)
    for j, i in enumerate(rows):
        X[j, :len(seg_ts[i])] = (seg_ts[i] - seg_ts[i][-1]) / NS_PER_HOUR
        Y[j, :len(seg_y[i])] = seg_y[i]
    return ols_batch(X, Y)


def _largest_shared_axis(ts: list[np.ndarray]) -> np.ndarray:
    """Indices of the largest group (at least 2) of identical timestamp arrays."""
    groups: dict[tuple[int, int, int], list[list[int]]] = {}
    for i, t in enumerate(ts):
        cands = groups.setdefault((len(t), int(t[0]), int(t[-1])), [])
        for g in cands:
            if np.array_equal(ts[g[0]], t):
                g.append(i)
                break
        else:
            cands.append([i])
    best = max((g for gs in groups.values() for g in gs), key=len)
    return np.array(best if len(best) > 1 else [], dtype=np.intp)
