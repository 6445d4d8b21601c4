"""Closed-form exponential smoothing (ETS(A,N,N) and ETS(A,Ad,N)) in numpy.

The additive-error ETS models with their textbook prediction-interval variances
(Hyndman, Koehler, Ord & Snyder 2008, "class 1" models, section 6.3)::

    SES      (A,N,N):   y_t = l_{t-1} + e_t,              l_t = l_{t-1} + a e_t
    damped   (A,Ad,N):  y_t = l_{t-1} + phi b_{t-1} + e_t, l_t = l_{t-1} + phi b_{t-1} + a e_t,
                        b_t = phi b_{t-1} + b e_t
    forecast            l_n + (phi + ... + phi^h) b_n
    variance            s^2 * (1 + sum_{j=1}^{h-1} c_j^2),  c_j = a + b phi (1 - phi^j) / (1 - phi)

The smoothing parameters are chosen by least squares (equivalently Gaussian
maximum likelihood for fixed initial states) over a grid, evaluated for the
whole grid in one vectorised pass over time. This is the "closed-form" route the
analysis layer uses instead of ``statsmodels`` ``ETSModel.fit`` (which takes
~14 ms per 1,000 points); ``tests/test_analysis_forecast.py`` checks the filter
and the variance formula against ``ETSModel`` with the same fixed parameters.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["EtsFit", "ets_filter", "fit_ets"]

_ALPHAS = np.round(np.arange(0.05, 1.0001, 0.05), 4)
_BETAS_REL = np.array([0.02, 0.05, 0.1, 0.2, 0.4])    # beta = rel * alpha
_PHIS = np.array([0.8, 0.9, 0.95, 0.98, 1.0])


@dataclass
class EtsFit:
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
        return self.level + _phi_sum(self.phi, h) * self.slope

    def variance(self, h: np.ndarray) -> np.ndarray:
        """Forecast-error variance for steps ``h`` (1-based)."""
        h = np.asarray(h, dtype=int)
        hmax = int(h.max()) if h.size else 1
        j = np.arange(1, hmax)
        c = self.alpha + self.beta * _phi_sum(self.phi, j)
        cum = np.concatenate([[0.0], np.cumsum(c * c)])
        return self.sigma2 * (1.0 + cum[h - 1])


def _phi_sum(phi: float, h: np.ndarray) -> np.ndarray:
    """phi + phi^2 + ... + phi^h."""
    h = np.asarray(h, dtype=float)
    if phi == 1.0:
        return h
    return phi * (1 - phi ** h) / (1 - phi)


def ets_filter(y: np.ndarray, alpha: ArrayLike, beta: ArrayLike, phi: ArrayLike, l0: float,
               b0: float = 0.0, history: bool = False) -> tuple[np.ndarray, ...]:
    """Run the (A,Ad,N) filter for one or many parameter sets at once.

    ``alpha``, ``beta`` and ``phi`` broadcast to a common shape ``(k,)``. Returns
    ``(sse, level, slope)`` arrays of that shape, plus the one-step errors and
    the level / slope paths ``(n, k)`` when ``history`` is true. The first
    observation sets the level, so its error is zero and it adds nothing to SSE.
    """
    a, b, p = np.broadcast_arrays(np.atleast_1d(np.asarray(alpha, float)),
                                  np.atleast_1d(np.asarray(beta, float)),
                                  np.atleast_1d(np.asarray(phi, float)))
    k = a.shape[0]
    lev = np.full(k, float(l0))
    slo = np.full(k, float(b0))
    sse = np.zeros(k)
    n = len(y)
    if history:
        E = np.zeros((n, k))
        L = np.empty((n, k))
        B = np.empty((n, k))
        L[0] = lev
        B[0] = slo
    for t in range(1, n):
        pb = p * slo
        e = y[t] - lev - pb
        sse += e * e
        lev = lev + pb + a * e
        slo = pb + b * e
        if history:
            E[t] = e
            L[t] = lev
            B[t] = slo
    if history:
        return sse, lev, slo, E, L, B
    return sse, lev, slo


def _ses_sse(y: np.ndarray, alphas: np.ndarray) -> np.ndarray:
    """SSE of SES for each alpha, by a first-order IIR filter per alpha (scipy ``lfilter``)."""
    from scipy.signal import lfilter

    out = np.empty(len(alphas))
    y0, rest = y[0], y[1:]
    for j, a in enumerate(alphas):
        lev = lfilter([a], [1.0, a - 1.0], rest, zi=[(1.0 - a) * y0])[0]   # l_1 .. l_{n-1}
        e = rest - np.concatenate(([y0], lev[:-1]))
        out[j] = e @ e
    return out


def fit_ets(y: np.ndarray, kind: str = "ses") -> EtsFit:
    """Fit SES (``kind="ses"``) or damped Holt (``kind="damped"``) by grid least squares.

    Needs at least 3 observations (SES) or 5 (damped). Initial level = first
    observation, initial slope = 0 (a burst at the start of the window cannot
    seed a trend).
    """
    y = np.asarray(y, dtype=float)
    n = len(y)
    if kind == "ses":
        if n < 3:
            raise ValueError(f"SES needs at least 3 observations, got {n}")
        a = _ALPHAS
        b = np.zeros_like(a)
        p = np.ones_like(a)
        kpar = 2
    elif kind == "damped":
        if n < 5:
            raise ValueError(f"damped Holt needs at least 5 observations, got {n}")
        A, R, P = np.meshgrid(_ALPHAS, _BETAS_REL, _PHIS, indexing="ij")
        a, b, p = A.ravel(), (A * R).ravel(), P.ravel()
        kpar = 4
    else:
        raise ValueError(f"unknown ETS kind {kind!r}")
    if kind == "ses":
        sse = _ses_sse(y, a)
    else:
        sse, _, _ = ets_filter(y, a, b, p, y[0], 0.0)
    i = int(np.argmin(sse))
    E, L, B = _history(y, float(a[i]), float(b[i]), float(p[i]))
    sse_i = float(E @ E)
    dof = max(n - 1 - (kpar - 1), 1)
    return EtsFit(kind, float(a[i]), float(b[i]), float(p[i]), float(L[-1]), float(B[-1]),
                  sse_i / dof, sse_i, n, kpar, E, L, B)


def _history(y: np.ndarray, a: float, b: float, p: float
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One-step errors e_1..e_{n-1} and level / slope paths for one parameter set."""
    if b == 0.0 and p == 1.0:                        # SES: a first-order linear filter
        from scipy.signal import lfilter

        lev = lfilter([a], [1.0, a - 1.0], y[1:], zi=[(1.0 - a) * y[0]])[0]
        L = np.concatenate(([y[0]], lev))
        return y[1:] - L[:-1], L, np.zeros(len(y))
    n = len(y)
    E = np.empty(n - 1)
    L = np.empty(n)
    B = np.empty(n)
    lev, slo = float(y[0]), 0.0
    L[0], B[0] = lev, slo
    yl = y.tolist()
    for t in range(1, n):                            # plain floats: ~10x faster than numpy
        pb = p * slo
        e = yl[t] - lev - pb
        lev = lev + pb + a * e
        slo = pb + b * e
        E[t - 1] = e
        L[t] = lev
        B[t] = slo
    return E, L, B
