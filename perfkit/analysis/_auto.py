"""The ``auto`` forecast: a trend gate, a forecast combination and calibrated intervals.

The rule and the interval constants were chosen by nested leave-series-out
cross-validation on the NAB development set (``benchmarks/auto_cv.py``,
``benchmarks/analysis.md``); the candidates of each of the two rounds were fixed
before that round was scored (the second after the first had missed its goal).
Every candidate forecasts a significant trend with damped Holt (so a filling
disk is forecast to fill); they differ in what they do otherwise.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from scipy import special

from perfkit.analysis._ets import EtsFit, fit_ets
from perfkit.analysis._linear import ols_batch

__all__ = ["AUTO_RULE", "AUTO_RULES", "CALIBRATION", "DAMPED_MIN", "RECENT_ERRORS",
           "VOLATILITY_POWER", "AutoParts", "auto_parts", "calibrated_half", "combine",
           "hstep_quantile", "interval_half", "robust_clip", "trend_gate", "uses_shift",
           "volatility_ratio"]

DAMPED_MIN = 8
"""Below this many points ``damped`` (and auto's trend branch) falls back to SES."""

AUTO_RULES = ("gate", "gate+ses", "gate+comb", "gate+comb+median", "gate+medcomb",
              "gate+select",
              "gate/noshift", "gate/clip", "gate+comb+median/clip", "gate/clip/noshift")
"""Candidates for :data:`AUTO_RULE`; on a significant trend (:func:`trend_gate`) all use
damped Holt, otherwise: ``gate`` the mean of SES and the segment median (a robust
level); ``gate+ses`` SES; ``gate+comb`` the mean of SES, damped Holt and Theta (the M3
"comb"); ``gate+comb+median`` that plus the median; ``gate+medcomb`` the point-wise
median of SES, damped Holt and Theta; ``gate+select`` whichever of SES, SES + median,
comb and the last value had the smallest in-sample h-step errors on the window.
A second round (after the first had missed the mean goal): ``/clip`` fits the members
on the window clipped to its median +- 3 robust SDs (:func:`robust_clip`; the errors
that size the interval are still against the raw values); ``/noshift`` fits on the whole
window, without level-shift detection."""

AUTO_RULE = "gate+comb+median/clip"
"""The rule ``auto`` uses: the nested cross-validation picked it on 16 of 17 folds among
the admissible rules (those keeping level-shift detection; ``/noshift`` fails
``test_level_shift_fit_after_last_shift``)."""

RECENT_ERRORS = 6
"""One-step errors at the end of the window that :func:`volatility_ratio` compares with
the whole window (set before the cross-validation, not tuned)."""

VOLATILITY_POWER = 1.0
"""The interval scales with :func:`volatility_ratio` to this power (0: not at all),
chosen from {0, 0.5, 1} by the nested cross-validation (``benchmarks/auto_cv.py``)."""

CALIBRATION = (0.91, 3.0)
"""Interval constants ``(c, nu)``: half-width ``c * t_nu(level) * RMS_h`` (times the
volatility ratio, :data:`VOLATILITY_POWER`), ``RMS_h`` the root mean square of the
forecast's own causal h-step errors on the window; fitted on all 17 development series
(0.907, rounded) so that the 80 % and 95 % intervals cover what they say on average over
series (t with 3 degrees of freedom: the errors are heavy-tailed)."""

Member = tuple[str, np.ndarray, Callable[[int], np.ndarray]]
"""One member of a combination: name, point forecast, in-sample h-step path
(``path(h)[t]`` is the forecast made at ``t`` for ``t + h``, from data up to ``t``)."""

_SELECT = ("ses", "ses+median", "comb", "naive")


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


def _ses(f: EtsFit, steps: int) -> Member:
    return "ses", f.point(np.arange(1, steps + 1)), f.path


def _damped(y: np.ndarray, steps: int) -> Member:
    f = fit_ets(y, "damped")
    return "damped", f.point(np.arange(1, steps + 1)), f.path


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


def _median(y: np.ndarray, steps: int) -> Member:
    # the in-sample path is the running median, so its errors are out of sample
    run = pd.Series(y).expanding().median().to_numpy()
    return "median", np.full(steps, float(np.median(y))), lambda _h: run


def _naive(y: np.ndarray, steps: int) -> Member:
    return "naive", np.full(steps, float(y[-1])), lambda _h: y


def combine(members: list[Member], how: str = "mean") -> Member:
    """The point-wise mean (or median) of ``members``' forecasts and in-sample paths."""
    agg = np.mean if how == "mean" else np.median
    name = "+".join(m[0] for m in members) if how == "mean" else \
        "median(" + ",".join(m[0] for m in members) + ")"
    if len(members) == 1:
        return members[0]
    mean = agg(np.stack([m[1] for m in members]), axis=0)
    return name, mean, lambda h: agg(np.stack([m[2](h) for m in members]), axis=0)


class AutoParts:
    """What :func:`auto_parts` decided: the combination, its h-step RMS and the reason."""

    def __init__(self, member: Member, rms: np.ndarray, hmax: int, reason: str,
                 trend_p: float, trend_change_pct: float, fit: EtsFit) -> None:
        self.model, self.mean, self.path = member
        self.rms = rms               # RMS of the causal h-step errors, h = 1..steps
        self.hmax = hmax             # steps beyond this had fewer than 10 errors (rms extrapolated)
        self.reason = reason
        self.trend_p = trend_p
        self.trend_change_pct = trend_change_pct
        self.fit = fit               # the SES fit (its model variance is the fallback width)
        self.y: np.ndarray = np.zeros(0)   # the values the h-step errors are measured on


def hstep_rms(y: np.ndarray, path: Callable[[int], np.ndarray],
              steps: int) -> tuple[np.ndarray, int]:
    """RMS of in-sample h-step errors for h = 1..steps, in O(n + steps) memory.

    Taken at every step up to 8 and at 16 geometrically spaced steps beyond (the
    curve is smooth in h), made non-decreasing and interpolated in between; a step
    needs 10 errors. Returns the curve and the last step that had them (0: none).
    Targets that lie exactly on the sloped line through their neighbours are left
    out (while 10 others remain): such points are a linear fill of a gap, and their
    tiny errors would make the interval too narrow for the real observations.
    """
    n = len(y)
    keep = _observed(y).astype(float)
    hmax = min(steps, n - 10)
    if hmax < 1:
        return np.full(steps, np.nan), 0
    hs = np.unique(np.concatenate([np.arange(1, min(8, hmax) + 1),
                                   np.geomspace(min(8, hmax), hmax, 16).round().astype(int)]))
    rms = np.empty(len(hs))
    # skip the first few origins: the states are still the initial guesses there
    burn = min(5, n // 10)
    for i, h in enumerate(hs):
        e = y[burn + h:] - path(int(h))[burn:n - h]
        w = keep[burn + h:]
        if w.sum() < 10:
            w = np.ones(len(e))
        rms[i] = np.sqrt(np.einsum("i,i,i->", w, e, e) / w.sum())
    rms = np.maximum.accumulate(rms)
    return np.interp(np.arange(1, steps + 1), hs, rms), hmax


def _observed(y: np.ndarray) -> np.ndarray:
    """False where a point lies exactly on the sloped line through its neighbours (a
    linear fill of a gap), True elsewhere."""
    keep = np.ones(len(y), bool)
    d2 = np.abs(np.diff(y, 2))
    keep[1:-1] = ~((d2 <= 1e-9 * (np.abs(y[1:-1]) + np.abs(y[2:]))) & (y[1:-1] != y[2:]))
    return keep


def volatility_ratio(parts: AutoParts) -> float:
    """RMS of the window's last :data:`RECENT_ERRORS` observed one-step errors over the
    one-step RMS of the whole window, clipped to [0.5, 3]: how much noisier the end of
    the window is than the window (a burst of a traffic sensor lasts about an hour, and
    the next half hour is like it rather than like the window's quiet hours)."""
    if not parts.hmax or parts.rms[0] <= 0:
        return 1.0
    e = (parts.y[1:] - parts.path(1)[:-1])[_observed(parts.y)[1:]]
    if len(e) < 2 * RECENT_ERRORS:
        return 1.0
    r = float(np.sqrt(np.mean(e[-RECENT_ERRORS:] ** 2))) / float(parts.rms[0])
    return float(np.clip(r, 0.5, 3.0))


def hstep_quantile(y: np.ndarray, path: Callable[[int], np.ndarray], rms: np.ndarray,
                   hmax: int, level: float) -> float:
    """The ``level`` quantile of ``|e_h| / RMS_h`` pooled over h = 1..min(hmax, 8): how
    heavy the tails of this window's own h-step errors are (1.28 at 80 % if Gaussian)."""
    n = len(y)
    burn = min(5, n // 10)
    u = [np.abs(y[burn + h:] - path(h)[burn:n - h]) / rms[h - 1]
         for h in range(1, min(hmax, 8) + 1) if rms[h - 1] > 0]
    if not u:
        return float(special.ndtri(0.5 + level / 2))
    return float(np.quantile(np.concatenate(u), level))


def calibrated_half(rms: np.ndarray, level: float,
                    calibration: tuple[float, float] = CALIBRATION,
                    quantile: float | np.ndarray = np.nan) -> np.ndarray:
    """Half-width ``c * q * rms`` with ``(c, nu) = calibration``: ``q`` is the Student-t
    ``level`` quantile with ``nu`` degrees of freedom (normal for ``nu = inf``), or for
    ``nu = 0`` the window's own ``quantile`` (:func:`hstep_quantile`). Increasing in
    ``level`` for any ``c > 0``."""
    c, nu = calibration
    if nu == 0:
        return c * quantile * rms
    q = special.ndtri(0.5 + level / 2) if not np.isfinite(nu) else \
        special.stdtrit(nu, 0.5 + level / 2)
    return c * float(q) * rms


def robust_clip(y: np.ndarray, k: float = 3.0) -> np.ndarray:
    """``y`` clipped to its median +- ``k`` robust SDs (1.4826 MAD; where over half the
    values are equal, 1.2533 x the mean absolute deviation), so a burst does not drag
    the level."""
    med = float(np.median(y))
    dev = np.abs(y - med)
    s = 1.4826 * float(np.median(dev)) or 1.2533 * float(np.mean(dev))
    return np.clip(y, med - k * s, med + k * s)


def uses_shift(rule: str = "") -> bool:
    """Whether ``rule`` (default :data:`AUTO_RULE`) fits after the last level shift."""
    return "/noshift" not in (rule or AUTO_RULE)


def interval_half(parts: AutoParts, level: float,
                  calibration: tuple[float, float] = CALIBRATION,
                  power: float = VOLATILITY_POWER) -> np.ndarray:
    """Half-width of ``auto``'s ``level`` interval at each step: :func:`calibrated_half`
    of the h-step RMS times :func:`volatility_ratio` to the ``power``; where the window
    was too short for 10 errors at a step, the SES model's own half-width if that is
    wider."""
    h = np.arange(1, len(parts.mean) + 1)
    model = float(special.ndtri(0.5 + level / 2)) * np.sqrt(parts.fit.variance(h))
    if not parts.hmax:
        return model
    q = hstep_quantile(parts.y, parts.path, parts.rms, parts.hmax, level) \
        if calibration[1] == 0 else np.nan
    half = calibrated_half(parts.rms, level, calibration, q)
    if power:
        half = half * volatility_ratio(parts) ** power
    half[parts.hmax:] = np.maximum(half[parts.hmax:], model[parts.hmax:])
    return half


def auto_parts(x: np.ndarray, y: np.ndarray, steps: int, rule: str = "",
               cache: dict | None = None) -> AutoParts:
    """The ``auto`` point forecast for one (shift-free, non-constant) segment.

    ``rule`` overrides :data:`AUTO_RULE`; ``cache`` (a dict, empty at first) shares the
    fitted members between calls on the same segment (both for cross-validation).
    """
    rule = rule or AUTO_RULE
    if rule not in AUTO_RULES:
        raise ValueError(f"unknown auto rule {rule!r}; choose one of {AUTO_RULES}")
    memo = cache if cache is not None else {}
    if "/clip" in rule:
        c = _Members(robust_clip(y), steps, memo.setdefault("clip", {}), raw=y)
    else:
        c = _Members(y, steps, memo)
    fit = c.fit()                              # SES: always there (the interval's fallback)
    label, p, pct = c.gate(x)
    if len(y) < DAMPED_MIN:
        m, reason = c.get("ses"), f"{len(y)} points: too few for a trend model: SES"
    elif label != "stable":
        m = c.get("damped")
        reason = f"trend test: {label} (p={p:.2g}, change {pct:+.0f}%): damped Holt"
    else:
        why = f"no significant trend (p={p:.2g}): "
        extra = rule.split("/")[0].partition("+")[2] or "ses+median"
        if extra == "select":
            m, rms, hmax = _select(c)
            reason = why + f"lowest in-sample error of {', '.join(_SELECT)}: " + _describe(m[0])
            out = AutoParts(m, rms, hmax, reason, p, pct, fit)
            out.y = y
            return out
        m = c.get(extra)
        reason = why + _describe(m[0])
    rms, hmax = c.rms(m)
    out = AutoParts(m, rms, hmax, reason, p, pct, fit)
    out.y = y
    return out


def _describe(model: str) -> str:
    if model.startswith("median("):
        return "median of " + model[7:-1].replace(",", ", ")
    if "+" in model:
        return "mean of " + model.replace("+", ", ")
    return {"ses": "SES", "naive": "last value"}.get(model, model)


class _Members:
    """Members and combinations of one segment, each fitted once (memoised in ``memo``)."""

    def __init__(self, y: np.ndarray, steps: int, memo: dict,
                 raw: np.ndarray | None = None) -> None:
        self.y, self.steps, self.memo = y, steps, memo
        self.raw = y if raw is None else raw       # what the h-step errors are measured on

    def gate(self, x: np.ndarray) -> tuple[str, float, float]:
        if "gate" not in self.memo:
            self.memo["gate"] = trend_gate(x, self.y)
        return self.memo["gate"]

    def fit(self) -> EtsFit:
        if "fit" not in self.memo:
            self.memo["fit"] = fit_ets(self.y, "ses")
        return self.memo["fit"]

    def get(self, what: str) -> Member:
        if what not in self.memo:
            self.memo[what] = self._make(what)
        return self.memo[what]

    def rms(self, m: Member) -> tuple[np.ndarray, int]:
        key = ("rms", m[0])
        if key not in self.memo:
            self.memo[key] = hstep_rms(self.raw, m[2], self.steps)
        return self.memo[key]

    def _make(self, what: str) -> Member:
        y, steps = self.y, self.steps
        if what == "ses":
            return _ses(self.fit(), steps)
        if what == "damped":
            return _damped(y, steps)
        if what == "theta":
            return _theta(y, self.fit(), steps)
        if what == "median":
            return _median(y, steps)
        if what == "naive":
            return _naive(y, steps)
        if what == "ses+median":
            return combine([self.get("ses"), self.get("median")])
        trio = [self.get("ses"), self.get("damped"), self.get("theta")]
        if what == "comb":
            return combine(trio)
        if what == "comb+median":
            return combine([*trio, self.get("median")])
        if what == "medcomb":
            return combine(trio, "median")
        raise ValueError(f"unknown member {what!r}")


def _select(c: _Members) -> tuple[Member, np.ndarray, int]:
    """The candidate of :data:`_SELECT` with the lowest mean h-step RMS on the window."""
    best: tuple[float, Member, np.ndarray, int] | None = None
    for what in _SELECT:
        m = c.get(what)
        rms, hmax = c.rms(m)
        score = float(np.mean(rms[:max(hmax, 1)]))
        if best is None or score < best[0]:
            best = (score, m, rms, hmax)
    assert best is not None
    return best[1], best[2], best[3]
