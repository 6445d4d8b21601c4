"""Exponential smoothing ETS(A,N,N) and ETS(A,Ad,N) with statsmodels' estimates.

The additive-error ETS models with their textbook prediction-interval variances
(Hyndman, Koehler, Ord & Snyder 2008, "class 1" models, section 6.3)::

    SES      (A,N,N):   y_t = l_{t-1} + e_t,              l_t = l_{t-1} + a e_t
    damped   (A,Ad,N):  y_t = l_{t-1} + phi b_{t-1} + e_t, l_t = l_{t-1} + phi b_{t-1} + a e_t,
                        b_t = phi b_{t-1} + b e_t
    forecast            l_n + (phi + ... + phi^h) b_n
    variance            s^2 * (1 + sum_{j=1}^{h-1} c_j^2),  c_j = a + b phi (1 - phi^j) / (1 - phi)

Damped Holt's parameters are statsmodels' own maximum-likelihood estimates:
``ETSModel(y, error="add", trend="add", damped_trend=True, initialization_method="known",
initial_level=y[0], initial_trend=0)`` with phi in [0.8, 1] (statsmodels stops at 0.98,
set with ``ETSModel.set_bounds``). Why phi may reach 1: the damping is per sampling
step, and at 5 s samples phi = 0.98 stops any trend within about four minutes, so a
disk filling steadily would never be forecast to fill. A hand-written fit was only
1.4-5x faster than statsmodels' (``benchmarks/analysis.md``), below the 10x that would
justify keeping it.

SES keeps a hand-written fit of the same estimates (alpha in [1e-4, 0.9999], the
initial level estimated, as ``ETSModel(y, error="add")``): its one-step errors are a
first-order linear filter of the data, so each SSE is one ``scipy.signal.lfilter`` call
in C and the initial level's optimum is closed-form; the fit is ~20x faster than
``ETSModel.fit``. For both models the states, forecasts and interval variances given
the parameters are the closed forms above (one filter call, far cheaper than
statsmodels' results object). ``tests/unit/test_analysis_forecast_engine.py`` checks
estimates, forecasts and intervals against ``ETSModel``.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["EtsFit", "ets_filter", "fit_ets"]

_LO, _HI = 1e-4, 0.9999                 # statsmodels' bounds on alpha (and beta <= alpha)
_PHI_LO, _PHI_HI = 0.8, 1.0             # phi = 1 allowed (see the module docstring)
_ALPHAS = np.linspace(0.05, 0.95, 10)   # SES seeds (its SSE can have two basins)


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


def fit_ets(y: np.ndarray, kind: str = "ses") -> EtsFit:
    """Fit SES (``kind="ses"``) or damped Holt (``kind="damped"``) with statsmodels' estimates.

    Needs at least 3 observations (SES) or 5 (damped). SES estimates its initial
    level with alpha (statsmodels' ``initialization_method="estimated"``); damped
    Holt starts at the first observation with slope 0, so a burst at the start of
    the window cannot seed a trend (``"known"``). SES is least squares (statsmodels'
    maximum likelihood for additive errors); damped Holt is ``ETSModel.fit`` itself.
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
    a, b, p = _fit_damped(y)
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


@functools.cache
def _blas_controller() -> Any:
    """The BLAS libraries loaded once statsmodels is (found once per process: ~1 ms).

    The fit runs on one BLAS thread: its vectors are tiny, and OpenBLAS' extra threads
    only add wake-ups, which on a busy machine made one fit of 2,000 points 5x slower
    and a pool of workers (each with its own BLAS threads) 5x slower again.
    """
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def _fit_damped(y: np.ndarray) -> tuple[float, float, float]:
    """(alpha, beta, phi): statsmodels' maximum-likelihood estimates of ETS(A,Ad,N) from
    the first value with slope 0, phi in [0.8, 1]."""
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel  # type: ignore[import-untyped]

    with warnings.catch_warnings(), _blas_controller().limit(limits=1, user_api="blas"):
        # a fit that stops at its iteration limit still returns its best estimate
        warnings.simplefilter("ignore")
        mod = ETSModel(y, error="add", trend="add", damped_trend=True,
                       initialization_method="known", initial_level=float(y[0]),
                       initial_trend=0.0)
        mod.set_bounds({"damping_trend": (_PHI_LO, _PHI_HI)})
        params = mod.fit(disp=False, return_params=True)
    a, b, p = (float(v) for v in np.asarray(params)[:3])
    return a, b, p


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
