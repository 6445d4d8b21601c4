"""Array-level forecasting used by :func:`perfkit.analysis.forecast` and the benchmarks.

``x`` is elapsed hours, ``y`` the values; the functions here know nothing of
frames, so the benchmark and the public API run exactly the same code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

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

DAMPED_MIN = 8
"""Below this many points ``damped`` (and auto's trend branch) falls back to SES."""

METHODS = ("auto", "linear", "theil_sen", "ets", "ses", "damped", "seasonal", "naive")

MAX_HISTORY_POINTS = 50_000
"""Newest points per series a model is fitted on (older ones are ignored): enough for
two days of 5 s samples (the seasonal model's minimum), and a bound on the cost."""

MAX_HORIZON_STEPS = 20_000
"""Most forecast steps per series (a 24 h horizon at 5 s is 17,280); more raise ``ValueError``."""

SEASON_HOURS = 24.0
SEASONAL_STRENGTH = 0.6


@dataclass
class ArrayForecast:
    mean: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    model: str
    stats: dict = field(default_factory=dict)


def _z(level: float) -> float:
    return float(stats.norm.ppf(0.5 + level / 2))


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
    q = stats.t.ppf(0.5 + level / 2, max(n - 2, 1))
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


def trend_gate(x: np.ndarray, y: np.ndarray, alpha: float = 0.05,
               min_change_pct: float = 5.0) -> tuple[str, float, float]:
    """The :func:`perfkit.analysis.trends` test on one series: (label, p-value, change %)."""
    fit = ols_batch(x, y)
    p = float(fit.p_value[0])
    change = float(fit.slope[0] * (x[-1] - x[0]))
    base = abs(float(np.mean(y)))
    pct = (100.0 * change / base if base > 0
           else (0.0 if change == 0 else np.copysign(np.inf, change)))
    label = "stable"
    if np.isfinite(p) and p < alpha and abs(pct) >= min_change_pct:
        label = "increasing" if change > 0 else "decreasing"
    return label, p, pct


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


def _hstep_interval(y: np.ndarray, path: Callable[[int], np.ndarray], mean: np.ndarray,
                    level: float, fallback_half: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Interval bounds from the RMS of in-sample h-step errors, in O(n + H) memory.

    ``path(h)[t]`` is the forecast made at ``t`` for ``t + h``. The RMS is taken at
    every step up to 8 and at 16 geometrically spaced steps beyond (the curve is
    smooth in h), made non-decreasing and interpolated in between; a step needs 10
    such errors, beyond that the model's own half-width (``fallback_half``) is kept
    if it is wider. Cost O(24 n) however long the horizon.
    """
    n, H = len(y), len(mean)
    hmax = min(H, n - 10)
    if hmax < 1:
        return mean - fallback_half, mean + fallback_half
    hs = np.unique(np.concatenate([np.arange(1, min(8, hmax) + 1),
                                   np.geomspace(min(8, hmax), hmax, 16).round().astype(int)]))
    rms = np.empty(len(hs))
    for i, h in enumerate(hs):
        e = y[h:] - path(int(h))[:n - h]
        rms[i] = np.sqrt(np.einsum("i,i->", e, e) / len(e))
    rms = np.maximum.accumulate(rms)
    half = _z(level) * np.interp(np.arange(1, H + 1), hs, rms)
    half[hmax:] = np.maximum(half[hmax:], fallback_half[hmax:])
    return mean - half, mean + half


AUTO_RULE = "gate"
"""The ``auto`` rule, chosen by leave-series-out cross-validation on the NAB
development set (``benchmarks/forecast_cv.py``) among the :data:`AUTO_RULES` that
follow a significant trend (``time_to_threshold`` must see a filling disk fill);
``benchmarks/analysis.md`` has the scores of all of them."""

AUTO_RULES = ("comb", "comb+median", "gate", "gate+comb", "ses", "ses+median")
"""Candidates for :data:`AUTO_RULE`. ``comb``: the mean of SES, damped Holt and Theta
(the M3 "comb" forecast); ``+median`` adds the segment median as a member (a robust
level); ``gate``: damped Holt when :func:`trend_gate` calls a trend, else the mean of
SES and the median; ``gate+comb``: damped Holt on a trend, else ``comb``."""

Member = tuple[str, np.ndarray, Callable[[int], np.ndarray]]
"""One member of a combination: name, point forecast, in-sample h-step path."""


def _theta(y: np.ndarray, ses: EtsFit, steps: int) -> Member:
    """Theta method as SES with drift (Hyndman & Billah 2003): half the OLS slope per step."""
    t = np.arange(len(y), dtype=float)
    tc = t - t.mean()
    b0 = float(tc @ (y - y.mean()) / (tc @ tc))
    a, n = ses.alpha, len(y)
    h = np.arange(1, steps + 1)
    mean = ses.level + b0 / 2 * (h - 1 + (1 - (1 - a) ** n) / a)
    # origin t has seen t + 1 points: the same drift term with n = t + 1 (bounded as a -> 0)
    seen = (1 - (1 - a) ** np.arange(1, n + 1)) / a
    return "theta", mean, lambda k: ses.levels + b0 / 2 * (k - 1 + seen)


def _auto(x: np.ndarray, y: np.ndarray, steps: int, level: float,
          rule: str = "") -> ArrayForecast:
    """The ``auto`` rule (see :func:`perfkit.analysis.forecast`); seasonality is checked
    earlier, in :func:`forecast_array`, on the whole series."""
    rule = rule or AUTO_RULE
    if rule not in AUTO_RULES:
        raise ValueError(f"unknown auto rule {rule!r}; choose one of {AUTO_RULES}")
    label, p, pct = trend_gate(x, y)
    ses_out, fs = _ets_fit(y, steps, level, "ses")
    ses: Member = ("ses", ses_out.mean, fs.path)
    base, _, extra = rule.partition("+")
    trend = label != "stable"
    if len(y) < DAMPED_MIN:
        members, reason = [ses], f"{len(y)} points: too few for a trend model"
    elif base == "gate" and trend:
        members = [_damped_member(y, steps, level)]
        reason = f"trend test: {label} (p={p:.2g}, change {pct:+.0f}%): damped Holt"
    else:
        if base == "gate":
            extra, why = extra or "median", f"no significant trend (p={p:.2g}): "
        else:
            extra, why = ("median" if base == "ses+median" else extra), ""
        members = [ses]
        if base == "comb" or extra.startswith("comb"):
            members += [_damped_member(y, steps, level), _theta(y, fs, steps)]
        if extra.endswith("median") or rule.endswith("median"):
            members.append(_median_member(y, steps))
        reason = why + ("mean of " + ", ".join(m[0] for m in members) if len(members) > 1
                        else "SES")
    k = len(members)
    mean = np.sum([m[1] for m in members], axis=0) / k

    def path(hh: int) -> np.ndarray:
        return np.sum([m[2](hh) for m in members], axis=0) / k

    lo, hi = _hstep_interval(y, path, mean, level, ses_out.mean - ses_out.lower)
    stats = dict(ses_out.stats, trend_p=p, trend_change_pct=pct, reason=reason)
    return ArrayForecast(mean, lo, hi, "+".join(m[0] for m in members), stats)


def _damped_member(y: np.ndarray, steps: int, level: float) -> Member:
    out, f = _ets_fit(y, steps, level, "damped")
    return ("damped", out.mean, f.path)


def _median_member(y: np.ndarray, steps: int) -> Member:
    med = float(np.median(y))
    return ("median", np.full(steps, med), lambda _h: np.full(len(y), med))


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
    if shift and n_all >= 10:
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
