"""Array-level forecasting used by :func:`perfkit.analysis.forecast` and the benchmarks.

``x`` is elapsed hours, ``y`` the values; the functions here know nothing of
frames, so the benchmark and the public API run exactly the same code.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import special

from perfkit.analysis._auto import (
    AUTO_RULE,
    AUTO_RULES,
    DAMPED_MIN,
    auto_parts,
    interval_half,
    trend_gate,
    uses_shift,
)
from perfkit.analysis._ets import EtsFit, fit_ets
from perfkit.analysis._linear import ols_batch, ols_predict, theil_sen
from perfkit.analysis._seasonal import Decomposition, decompose, needs
from perfkit.analysis._shift import last_shift
from perfkit.errors import UnknownNameError

__all__ = ["AUTO_RULE", "AUTO_RULES", "MAX_HISTORY_POINTS", "MAX_HORIZON_STEPS", "METHODS",
           "MIN_POINTS", "ArrayForecast", "check_steps", "forecast_array", "trend_gate"]

MIN_POINTS = {"naive": 2, "linear": 3, "theil_sen": 5, "ets": 3, "ses": 3, "damped": 3,
              "auto": 3, "seasonal": 3}
"""Minimum finite observations each method needs (``seasonal`` also needs two seasons)."""

METHODS = ("auto", "linear", "theil_sen", "ets", "ses", "damped", "seasonal", "naive")

MAX_HISTORY_POINTS = 50_000
"""Newest points per series a model is fitted on (older ones are ignored): enough for
two days of 5 s samples (the seasonal model's minimum), and a bound on the cost."""

MAX_HORIZON_STEPS = 20_000
"""Most forecast steps per series (a 24 h horizon at 5 s is 17,280); more raise ``ValueError``."""

SEASON_HOURS = 24.0
SEASONAL_STRENGTH = 0.79
"""Daily seasonal strength from which ``auto`` uses the seasonal model: the lowest value
that random walks, AR(1) and noise over 3-7 days of 5-minute samples reach in at most
5 % of seeds (``benchmarks/seasonal_threshold.py``); STL reads a random walk's daily
wiggles as season up to ~0.8, so a cycle must have about 3 noise sds of amplitude."""


@dataclass
class ArrayForecast:
    mean: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    model: str
    stats: dict = field(default_factory=dict)


def _z(level: float) -> float:
    return float(special.ndtri(0.5 + level / 2))


def _r2(y: np.ndarray, resid: np.ndarray) -> float:
    sst = float(((y - y.mean()) ** 2).sum())
    return float(1 - (resid @ resid) / sst) if sst > 0 else float("nan")


def _const(y: np.ndarray, steps: int) -> ArrayForecast:
    v = np.full(steps, float(y[-1]))
    return ArrayForecast(v, v.copy(), v.copy(), "constant",
                         {"n": len(y), "r2": float("nan"), "sigma": 0.0,
                          "reason": "constant series: last value, zero-width interval"})


def _naive(y: np.ndarray, steps: int, level: float) -> ArrayForecast:
    d = np.diff(y)
    s = float(np.sqrt(np.mean(d * d))) if d.size else 0.0
    h = np.arange(1, steps + 1)
    m = np.full(steps, float(y[-1]))
    half = _z(level) * s * np.sqrt(h)
    return ArrayForecast(m, m - half, m + half, "naive",
                         {"n": len(y), "sigma": s, "r2": _r2(y[1:], d) if d.size else np.nan})


def _linear(x: np.ndarray, y: np.ndarray, x_new: np.ndarray, level: float) -> ArrayForecast:
    fit = ols_batch(x, y)
    p = ols_predict(fit, x_new, level)
    return ArrayForecast(p["mean"][0], p["obs_ci_lower"][0], p["obs_ci_upper"][0], "linear",
                         {"n": len(y), "r2": float(fit.r2[0]), "aic": float(fit.aic[0]),
                          "slope_per_hour": float(fit.slope[0]),
                          "sigma": float(np.sqrt(fit.sigma2[0]))})


def _theil_sen(x: np.ndarray, y: np.ndarray, x_new: np.ndarray,
               level: float) -> ArrayForecast:
    b, a = theil_sen(x, y)
    r = y - (a + b * x)
    s = 1.4826 * float(np.median(np.abs(r - np.median(r))))
    if s == 0:
        s = float(np.sqrt(np.mean(r * r)))
    n = len(y)
    xbar = x.mean()
    sxx = float(((x - xbar) ** 2).sum())
    lev = 1 / n + (x_new - xbar) ** 2 / sxx
    q = special.stdtrit(max(n - 2, 1), 0.5 + level / 2)
    m = a + b * x_new
    half = q * s * np.sqrt(1 + lev)
    return ArrayForecast(m, m - half, m + half, "theil_sen",
                         {"n": n, "slope_per_hour": b, "sigma": s, "r2": _r2(y, r)})


def _ets(y: np.ndarray, steps: int, level: float, kind: str) -> ArrayForecast:
    return _ets_fit(y, steps, level, kind)[0]


def _ets_fit(y: np.ndarray, steps: int, level: float, kind: str) -> tuple[ArrayForecast, EtsFit]:
    if kind == "damped" and len(y) < DAMPED_MIN:
        kind = "ses"
    f = fit_ets(y, kind)
    h = np.arange(1, steps + 1)
    m = f.point(h)
    half = _z(level) * np.sqrt(f.variance(h))
    out = ArrayForecast(m, m - half, m + half, kind,
                        {"n": len(y), "aic": f.aicc, "alpha": f.alpha, "beta": f.beta,
                         "phi": f.phi, "sigma": float(np.sqrt(f.sigma2)),
                         "r2": _r2(y[1:], f.resid)})
    return out, f


def _seasonal(x: np.ndarray, y: np.ndarray, step: float, steps: int, level: float,
              dec: Decomposition | None = None) -> ArrayForecast:
    """STL's seasonal component (:mod:`perfkit.analysis._seasonal`) + SES on the seasonally
    adjusted series, on a regular grid of ``step`` over the decomposed span."""
    dec = dec or decompose(x, y, step, SEASON_HOURS)
    if dec is None:
        raise _too_short(x, step)
    k = min(int(np.floor((x[-1] - dec.grid[0]) / step + 1e-9)), MAX_HISTORY_POINTS - 1)
    g = x[-1] - step * np.arange(k, -1, -1)
    base = _ets(np.interp(g, x, y) - dec.seasonal_at(g), steps, level, "ses")
    s_next = dec.seasonal_at(x[-1] + step * np.arange(1, steps + 1))
    return ArrayForecast(base.mean + s_next, base.lower + s_next, base.upper + s_next, "seasonal",
                         dict(base.stats, season_strength=dec.strength, period=dec.period,
                              period_hours=dec.season_hours / dec.period))


def _too_short(x: np.ndarray, step: float) -> ValueError:
    return ValueError(f"the seasonal model needs at least {needs(SEASON_HOURS)}; this series "
                      f"spans {x[-1] - x[0]:.1f} h at a {step * 60:g} min step: give it a "
                      "longer history, or use method='auto' or 'ses'")


def _auto(x: np.ndarray, y: np.ndarray, steps: int, level: float,
          rule: str = "") -> ArrayForecast:
    """The ``auto`` rule (see :func:`perfkit.analysis.forecast`); seasonality is checked
    earlier, in :func:`forecast_array`, on the whole series."""
    parts = auto_parts(x, y, steps, rule)
    f = parts.fit
    half = interval_half(parts, level)
    stats = {"n": len(y), "aic": f.aicc, "alpha": f.alpha, "sigma": float(np.sqrt(f.sigma2)),
             "r2": _r2(y[1:], f.resid), "trend_p": parts.trend_p,
             "trend_change_pct": parts.trend_change_pct, "reason": parts.reason}
    return ArrayForecast(parts.mean, parts.mean - half, parts.mean + half, parts.model, stats)


def forecast_array(x: np.ndarray, y: np.ndarray, step: float, steps: int, level: float = 0.8,
                   method: str = "auto", *, shift: bool = True,
                   bounds: tuple[float | None, float | None] = (None, None),
                   rule: str = "") -> ArrayForecast:
    """Forecast ``steps`` points spaced ``step`` hours after ``x[-1]`` (``x`` in hours).

    Non-finite points are dropped and only the newest :data:`MAX_HISTORY_POINTS`
    are used. Raises ``ValueError`` when fewer than ``MIN_POINTS[method]`` remain,
    when ``x`` is not increasing, or when ``steps`` exceeds :data:`MAX_HORIZON_STEPS`.
    With ``shift`` the model is fitted on the segment after the last level shift
    (:func:`perfkit.analysis._shift.last_shift`), as long as that segment still has
    enough points. ``rule`` overrides :data:`AUTO_RULE` (for cross-validation).
    ``stats["reason"]`` says why the model was used.
    """
    if method not in METHODS:
        raise UnknownNameError(f"unknown forecast method {method!r}; choose one of {METHODS}")
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, got {level}")
    check_steps(steps)
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok][-MAX_HISTORY_POINTS:], y[ok][-MAX_HISTORY_POINTS:]
    if len(x) > 1 and not np.all(np.diff(x) > 0):
        raise ValueError("timestamps must be strictly increasing; sort the series and drop "
                         "duplicate timestamps (or use perfkit.forecast on a frame, which does)")
    n_all = len(y)
    need = MIN_POINTS[method]
    if n_all < need:
        raise ValueError(f"forecast method {method!r} needs at least {need} finite points, "
                         f"got {n_all}")
    start = 0
    if method in ("auto", "seasonal") and n_all >= 20 and np.ptp(y) > 0:
        dec = decompose(x, y, step, SEASON_HOURS)
        if dec is not None and (method == "seasonal" or dec.strength >= SEASONAL_STRENGTH):
            out = _seasonal(x, y, step, steps, level, dec)
            first = int(np.searchsorted(x, dec.grid[0] - step / 2))
            out.stats.update(fit_start=first, n_total=n_all, reason=(
                f"daily seasonal strength {dec.strength:.2f}" + (
                    f" >= {SEASONAL_STRENGTH}: " if method == "auto" else ": ")
                + "STL decomposition + SES"))
            return _clip(out, bounds)
        if dec is None and method == "seasonal":
            raise _too_short(x, step)
    if shift and n_all >= 10 and (method != "auto" or uses_shift(rule)):
        start = last_shift(y)
        if n_all - start < need:
            start = 0
    xs, ys = x[start:], y[start:]
    if np.ptp(ys) == 0:
        out = _const(ys, steps)
    else:
        x_new = x[-1] + step * np.arange(1, steps + 1)
        out = _dispatch(xs, ys, x_new, steps, level, method, step, rule)
    out.stats.setdefault("reason", f"method={method!r}")
    if start:
        out.stats["reason"] += f"; fitted after the level shift at point {start} of {n_all}"
    out.stats["fit_start"] = start
    out.stats["n_total"] = n_all
    return _clip(out, bounds)


def check_steps(steps: int) -> None:
    """Raise ``ValueError`` when a horizon has more than :data:`MAX_HORIZON_STEPS` steps."""
    if steps > MAX_HORIZON_STEPS:
        raise ValueError(f"the horizon spans {steps:,} steps of the series' sampling interval; "
                         f"at most MAX_HORIZON_STEPS={MAX_HORIZON_STEPS:,} are allowed: "
                         "shorten the horizon or resample the series to a coarser step")


def _clip(out: ArrayForecast, bounds: tuple[float | None, float | None]) -> ArrayForecast:
    lo, hi = bounds
    if lo is not None or hi is not None:
        out.mean = np.clip(out.mean, lo, hi)
        out.lower = np.clip(out.lower, lo, hi)
        out.upper = np.clip(out.upper, lo, hi)
    return out


def _dispatch(x: np.ndarray, y: np.ndarray, x_new: np.ndarray, steps: int, level: float,
              method: str, step: float, rule: str = "") -> ArrayForecast:
    if method == "naive":
        return _naive(y, steps, level)
    if method == "linear":
        return _linear(x, y, x_new, level)
    if method == "theil_sen":
        return _theil_sen(x, y, x_new, level)
    if method in ("ses", "damped"):
        return _ets(y, steps, level, method)
    if method == "ets":
        a = _ets(y, steps, level, "ses")
        if len(y) < DAMPED_MIN:
            return a
        b = _ets(y, steps, level, "damped")
        return a if a.stats["aic"] <= b.stats["aic"] else b
    if method == "seasonal":
        return _seasonal(x, y, step, steps, level)
    return _auto(x, y, steps, level, rule)
