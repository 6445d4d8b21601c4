"""Exponential smoothing ETS(A,N,N) and ETS(A,Ad,N), fitted the way statsmodels fits them.

The additive-error ETS models with their textbook prediction-interval variances
(Hyndman, Koehler, Ord & Snyder 2008, "class 1" models, section 6.3)::

    SES      (A,N,N):   y_t = l_{t-1} + e_t,              l_t = l_{t-1} + a e_t
    damped   (A,Ad,N):  y_t = l_{t-1} + phi b_{t-1} + e_t, l_t = l_{t-1} + phi b_{t-1} + a e_t,
                        b_t = phi b_{t-1} + b e_t
    forecast            l_n + (phi + ... + phi^h) b_n
    variance            s^2 * (1 + sum_{j=1}^{h-1} c_j^2),  c_j = a + b phi (1 - phi^j) / (1 - phi)

The parameters are the maximum-likelihood estimates of statsmodels'
``ETSModel(y, error="add", trend=..., damped_trend=..., initialization_method="known",
initial_level=y[0], initial_trend=0)`` within its bounds (alpha in [1e-4, 0.9999],
beta / alpha in [1e-4, 0.9999]) and phi in [0.8, 1] (statsmodels stops at 0.98, set with
``ETSModel.set_bounds``): for additive errors and known initial states that is least
squares. Why phi may reach 1: the damping is per sampling step, and at 5 s samples
phi = 0.98 stops any trend within about four minutes, so a disk filling steadily
would never be forecast to fill. Why not call ``ETSModel.fit``: it takes 120 ms (SES)
and 260 ms (damped) for 2,000 points; the one-step errors of either model are a
rational linear filter of the data, so each SSE is one ``scipy.signal.lfilter``
call in C and the whole fit takes ~1-4 ms. ``tests/unit/test_analysis_forecast_engine.py``
checks the estimates, the forecasts and the intervals against ``ETSModel``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["EtsFit", "ets_filter", "fit_ets"]

_LO, _HI = 1e-4, 0.9999                 # statsmodels' bounds on alpha (and beta <= alpha)
_PHI_LO, _PHI_HI = 0.8, 1.0             # phi = 1 allowed (see the module docstring)
_ALPHAS = np.linspace(0.05, 0.95, 10)   # seeds for the optimiser (SSE can have two basins)


@dataclass
class EtsFit:
    """A fitted ETS model: parameters, final states and the one-step errors."""

    kind: str            # "ses" or "damped"
    alpha: float
    beta: float
    phi: float
    level: float         # final level l_n
    slope: float         # final slope b_n (0 for SES)
    sigma2: float        # residual variance (SSE / (n - k))
    sse: float
    n: int
    k: int               # number of estimated parameters (incl. the initial level)
    resid: np.ndarray    # one-step errors e_1..e_{n-1} (e_0 == 0 by the initialisation)
    levels: np.ndarray   # l_t for t = 0..n-1
    slopes: np.ndarray   # b_t for t = 0..n-1

    @property
    def aicc(self) -> float:
        n, k = max(self.n - 1, 1), self.k + 1
        ll = n * np.log(max(self.sse / n, 1e-300))
        return float(ll + 2 * k + (2 * k * (k + 1)) / max(n - k - 1, 1))

    def point(self, h: np.ndarray) -> np.ndarray:
        """Mean forecast for steps ``h`` (1-based)."""
        h = np.asarray(h, dtype=float)
        return self.level + phi_sum(self.phi, h) * self.slope

    def path(self, h: int) -> np.ndarray:
        """In-sample ``h``-step forecasts: element ``t`` is the forecast made at ``t``
        for ``t + h``."""
        return self.levels + float(phi_sum(self.phi, np.array([h]))[0]) * self.slopes

    def variance(self, h: np.ndarray) -> np.ndarray:
        """Forecast-error variance for steps ``h`` (1-based)."""
        h = np.asarray(h, dtype=int)
        hmax = int(h.max()) if h.size else 1
        j = np.arange(1, hmax)
        c = self.alpha + self.beta * phi_sum(self.phi, j)
        cum = np.concatenate([[0.0], np.cumsum(c * c)])
        return self.sigma2 * (1.0 + cum[h - 1])


def phi_sum(phi: float, h: np.ndarray) -> np.ndarray:
    """phi + phi^2 + ... + phi^h."""
    h = np.asarray(h, dtype=float)
    if phi == 1.0:
        return h
    return phi * (1 - phi ** h) / (1 - phi)


def ets_filter(y: np.ndarray, alpha: ArrayLike, beta: ArrayLike, phi: ArrayLike, l0: float,
               b0: float = 0.0, history: bool = False) -> tuple[np.ndarray, ...]:
    """Run the (A,Ad,N) recursion for one or many parameter sets at once (reference code).

    ``alpha``, ``beta`` and ``phi`` broadcast to a common shape ``(k,)``. Returns
    ``(sse, level, slope)`` arrays of that shape, plus the one-step errors and
    the level / slope paths ``(n, k)`` when ``history`` is true.
    """
    a, b, p = np.broadcast_arrays(np.atleast_1d(np.asarray(alpha, float)),
                                  np.atleast_1d(np.asarray(beta, float)),
                                  np.atleast_1d(np.asarray(phi, float)))
    k = a.shape[0]
    lev = np.full(k, float(l0))
    slo = np.full(k, float(b0))
    sse = np.zeros(k)
    n = len(y)
    m = n if history else 1                # the paths are kept only when asked for
    E = np.zeros((m, k))
    L = np.empty((m, k))
    B = np.empty((m, k))
    L[0] = lev
    B[0] = slo
    for t in range(1, n):
        pb = p * slo
        e = y[t] - lev - pb
        sse += e * e
        lev = lev + pb + a * e
        slo = pb + b * e
        if history:
            E[t], L[t], B[t] = e, lev, slo
    if history:
        return sse, lev, slo, E, L, B
    return sse, lev, slo


def _lfilter(b: list[float], a: list[float], x: np.ndarray) -> np.ndarray:
    """``scipy.signal.lfilter``, imported on first use: scipy.signal loads scipy.stats,
    over a second of ``import perfkit`` on a busy machine for a process that may never fit."""
    from scipy.signal import lfilter as scipy_lfilter

    return np.asarray(scipy_lfilter(b, a, x))


def _errors(z: np.ndarray, a: float, b: float, p: float) -> np.ndarray:
    """One-step errors of (A,Ad,N) for ``z = y[1:] - y[0]`` (initial level y[0], slope 0).

    With the states started at zero the errors are ``z`` through the filter
    ``(1 - q)(1 - p q) / (1 - (1 - a + p - b p) q + p (1 - a) q^2)`` (``q`` the lag);
    SES is the case ``b = 0, p = 1`` with the common factor ``(1 - q)`` cancelled.
    """
    if b == 0.0 and p == 1.0:
        return _lfilter([1.0, -1.0], [1.0, a - 1.0], z)
    return _lfilter([1.0, -(1.0 + p), p], [1.0, -(1.0 - a + p - b * p), p * (1.0 - a)], z)


def _sse(z: np.ndarray, a: float, b: float, p: float) -> float:
    e = _errors(z, a, b, p)
    # not ``e @ e``: a BLAS dot on a busy machine can wait ~10 ms for its threads
    return float(np.einsum("i,i->", e, e))


def fit_ets(y: np.ndarray, kind: str = "ses") -> EtsFit:
    """Fit SES (``kind="ses"``) or damped Holt (``kind="damped"``) by least squares.

    Needs at least 3 observations (SES) or 5 (damped). SES estimates its initial
    level with alpha (statsmodels' ``initialization_method="estimated"``); damped
    Holt starts at the first observation with slope 0, so a burst at the start of
    the window cannot seed a trend (``"known"``). The estimates are statsmodels'.
    """
    y = np.asarray(y, dtype=float)
    n = len(y)
    z = y[1:] - y[0]
    if kind == "ses":
        if n < 3:
            raise ValueError(f"SES needs at least 3 observations, got {n}")
        a = _fit_ses(z)
        e0 = _errors(z, a, 0.0, 1.0)
        g = _decay(a, n - 1)
        d = float(e0[:len(g)] @ g) / (1.0 + float(g @ g))   # best initial level - y[0]
        E = e0.copy()
        E[:len(g)] -= g * d
        L = np.concatenate(([y[0] + (1.0 - a) * d], y[1:] - (1.0 - a) * E))
        fit = EtsFit(kind, a, 0.0, 1.0, float(L[-1]), 0.0, 0.0, 0.0, n, 2, E, L, np.zeros(n))
        fit.sse = float(np.einsum("i,i->", E, E)) + d * d
        fit.sigma2 = fit.sse / max(n - 2, 1)
        return fit
    if kind != "damped":
        raise ValueError(f"unknown ETS kind {kind!r}; choose 'ses' or 'damped'")
    if n < 5:
        raise ValueError(f"damped Holt needs at least 5 observations, got {n}")
    a, b, p = _fit_damped(z)
    kpar = 4
    E, L, B = _history(y, a, b, p)
    sse_i = float(np.einsum("i,i->", E, E))
    dof = max(n - 1 - (kpar - 1), 1)
    return EtsFit(kind, a, b, p, float(L[-1]), float(B[-1]), sse_i / dof, sse_i, n, kpar,
                  E, L, B)


def _decay(a: float, m: int) -> np.ndarray:
    """(1 - a)^t for t = 1.. while above 1e-20 (at most ``m`` terms; no subnormals)."""
    if a >= 1.0:
        return np.zeros(0)
    t = min(m, int(np.ceil(-46.0 / np.log(1.0 - a))) if a > 0 else m)
    return (1.0 - a) ** np.arange(1, t + 1)


def _ses_profile(z: np.ndarray, a: float) -> float:
    """SES SSE at ``alpha = a`` with the initial level at its least-squares optimum.

    The initial level enters the errors linearly (``e_t - (1 - a)^t d``, plus ``-d``
    for the first observation), so its optimum is closed-form for each alpha.
    """
    e = _errors(z, a, 0.0, 1.0)
    g = _decay(a, len(e))
    eg = float(e[:len(g)] @ g) if len(g) else 0.0
    return float(np.einsum("i,i->", e, e)) - eg * eg / (1.0 + float(g @ g))


def _fit_ses(z: np.ndarray) -> float:
    """Alpha of SES with an estimated initial level (statsmodels' ``"estimated"``)."""
    from scipy.optimize import minimize_scalar

    grid = [_ses_profile(z, a) for a in _ALPHAS]
    i = int(np.argmin(grid))
    lo = _ALPHAS[i - 1] if i > 0 else _LO
    hi = _ALPHAS[i + 1] if i + 1 < len(_ALPHAS) else _HI
    r = minimize_scalar(lambda a: _ses_profile(z, a), bounds=(lo, hi), method="bounded",
                        options={"xatol": 1e-7})
    cands = [(float(r.fun), float(r.x)), (grid[i], float(_ALPHAS[i])),
             (_ses_profile(z, _LO), _LO), (_ses_profile(z, _HI), _HI)]
    return min(cands)[1]


def _fit_damped(z: np.ndarray) -> tuple[float, float, float]:
    """(alpha, beta, phi) minimising the SSE; beta = r * alpha with r in [1e-4, 0.9999] as
    in statsmodels, started from the best of 24 seeds (the SSE surface has several basins:
    12 seeds missed statsmodels' optimum by 0.4 % on one test series).

    Nelder-Mead runs over (alpha, log r, phi) from a simplex of fixed steps: with r itself
    and scipy's default simplex (5 % of each coordinate) the first step in r from a seed of
    0.01 is 0.0005, and reaching an optimum near 0.09 with phi on its bound took up to
    300 SSE evaluations; on log r the same fits take 100-150. The tolerances stop within
    ~1e-7 of the optimal SSE, far inside statsmodels' own convergence.
    """
    from scipy.optimize import minimize

    seeds = [(a, r, p) for a in (0.1, 0.3, 0.6, 0.9) for r in (0.01, 0.3)
             for p in (0.81, 0.95, 0.995)]

    def f(v: np.ndarray) -> float:
        return _sse(z, v[0], v[0] * np.exp(v[1]), v[2])

    x0 = np.array(min(((a, np.log(r), p) for a, r, p in seeds), key=lambda s: f(np.array(s))))
    f0 = f(x0)
    steps = np.array([0.05, 1.0, 0.03])
    hi = np.array([_HI, np.log(_HI), _PHI_HI])
    simplex = np.vstack([x0] + [x0 + np.where(np.arange(3) == k, np.where(x0 + steps <= hi,
                                                                          steps, -steps), 0.0)
                                for k in range(3)])
    # Nelder-Mead, not L-BFGS-B: the latter calls BLAS, whose threads can stall for
    # milliseconds per iteration on a busy machine; this surface is smooth and 3-D
    r = minimize(f, x0, method="Nelder-Mead",
                 bounds=[(_LO, _HI), (np.log(_LO), np.log(_HI)), (_PHI_LO, _PHI_HI)],
                 options={"xatol": 3e-3, "fatol": 1e-8 * max(f0, 1e-300), "maxfev": 600,
                          "initial_simplex": simplex})
    a, logr, p = (float(v) for v in (r.x if r.fun <= f0 else x0))
    return a, a * float(np.exp(logr)), p


def _history(y: np.ndarray, a: float, b: float,
             p: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One-step errors e_1..e_{n-1} and level / slope paths for one parameter set."""
    z = y[1:] - y[0]
    e = _errors(z, a, b, p)
    if b == 0.0 and p == 1.0:
        L = np.concatenate(([y[0]], y[1:] - (1.0 - a) * e))   # l_t = y_t - (1 - a) e_t
        return e, L, np.zeros(len(y))
    # b_t = p b_{t-1} + b e_t and l_t = y_t - (1 - a) e_t: both linear in e
    B = np.concatenate(([0.0], _lfilter([b], [1.0, -p], e)))
    L = np.concatenate(([y[0]], y[1:] - (1.0 - a) * e))
    return e, L, B
