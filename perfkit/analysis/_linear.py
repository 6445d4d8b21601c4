"""Ordinary least squares of value on elapsed time, for one or many series at once.

Every quantity is the textbook closed form for a straight line ``y = a + b x``
(centred sums, so it is numerically stable), evaluated for a whole batch of
series in one numpy pass. The numbers match ``statsmodels``
``OLS(y, add_constant(x)).fit()`` and ``get_prediction(...).summary_frame(alpha)``
to 1e-9 (tested in ``tests/unit/test_analysis_linear.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special

__all__ = ["LinearFit", "ols_batch", "ols_predict", "ols_rows", "theil_sen"]


def _t_ppf(p: float, df: np.ndarray) -> np.ndarray:
    """Student-t quantile per row (at least 1 degree of freedom)."""
    return np.asarray(special.stdtrit(np.maximum(np.asarray(df, float), 1), p))


@dataclass
class LinearFit:
    """Per-series OLS results, each an array of shape ``(n_series,)``."""

    n: np.ndarray
    xbar: np.ndarray
    ybar: np.ndarray
    sxx: np.ndarray
    slope: np.ndarray
    intercept: np.ndarray
    sse: np.ndarray
    sst: np.ndarray

    @property
    def df(self) -> np.ndarray:
        return self.n - 2

    @property
    def sigma2(self) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(self.df > 0, self.sse / self.df, np.nan)

    @property
    def slope_se(self) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.sqrt(self.sigma2 / self.sxx)

    @property
    def t_value(self) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.slope / self.slope_se

    @property
    def p_value(self) -> np.ndarray:
        """Two-sided p-value of the slope (t test, n - 2 degrees of freedom)."""
        t = np.abs(self.t_value)
        df = np.maximum(self.df, 1)
        p = 2.0 * special.stdtr(df, -t)
        # A perfect fit (sse == 0) with a non-zero slope is certain; a flat one is not.
        p = np.where(np.isnan(t) & (self.sse == 0) & (self.slope == 0), 1.0, p)
        p = np.where((self.sse == 0) & (self.slope != 0), 0.0, p)
        return np.where(self.df > 0, p, np.nan)

    @property
    def r2(self) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(self.sst > 0, 1.0 - self.sse / self.sst, np.nan)

    @property
    def aic(self) -> np.ndarray:
        """Gaussian AIC as statsmodels reports it: ``-2 llf + 2 * 2``."""
        n = self.n.astype(float)
        with np.errstate(divide="ignore", invalid="ignore"):
            llf = -n / 2 * (np.log(2 * np.pi) + np.log(self.sse / n) + 1)
        return -2 * llf + 4

    def slope_ci(self, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
        q = _t_ppf(0.5 + level / 2, self.df)
        half = q * self.slope_se
        return self.slope - half, self.slope + half


def ols_batch(x: np.ndarray, y: np.ndarray) -> LinearFit:
    """Fit ``y = a + b x`` for every row of ``y``.

    ``x`` is either one time axis shared by all rows, shape ``(m,)``, or one per
    row, shape ``(k, m)``. ``y`` is ``(k, m)`` (or ``(m,)`` for one series). NaN
    in ``y`` (or ``x``) marks a missing point, so ragged series can share one
    padded array. The shared-axis, no-NaN case is the fast path (matrix-vector
    products only).
    """
    y = np.atleast_2d(np.asarray(y, dtype=float))
    x = np.asarray(x, dtype=float)
    shared = x.ndim == 1
    if shared and not np.isnan(x).any() and not np.isnan(y).any():
        return _shared_axis(x, y)
    X = np.broadcast_to(x, y.shape) if shared else np.atleast_2d(x)
    w = np.isfinite(y) & np.isfinite(X)
    yz = np.where(w, y, 0.0)
    xz = np.where(w, X, 0.0)
    n = w.sum(axis=1).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        xbar = xz.sum(axis=1) / n
        ybar = yz.sum(axis=1) / n
        xc = np.where(w, X - xbar[:, None], 0.0)
        yc = np.where(w, y - ybar[:, None], 0.0)
        sxx = np.einsum("ij,ij->i", xc, xc)
        sxy = np.einsum("ij,ij->i", xc, yc)
        slope = np.where(sxx > 0, sxy / sxx, np.nan)
        intercept = ybar - slope * xbar
        sst = np.einsum("ij,ij->i", yc, yc)
        r = yc - slope[:, None] * xc
        sse = np.einsum("ij,ij->i", r, r)
    return LinearFit(n, xbar, ybar, sxx, slope, intercept, sse, sst)


_CHUNK = 2 ** 16
"""Elements per chunk of rows (512 kB of float64 temporaries): cache-sized, and small
enough that the allocator reuses the memory instead of faulting in fresh pages."""


def ols_rows(x: np.ndarray, rows: list[np.ndarray]) -> LinearFit:
    """:func:`ols_batch` for finite series that share the time axis ``x``, given as a
    list of 1-D arrays of ``len(x)`` points: the same numbers, without first copying
    them into one 2-D array (each chunk of rows is stacked as it is fitted)."""
    return _shared_axis(np.asarray(x, dtype=float), rows)


def _shared_axis(x: np.ndarray, y: np.ndarray | list[np.ndarray]) -> LinearFit:
    """Fast path: one time axis, no missing values; rows in cache-sized chunks."""
    k, m = len(y), len(x)
    rows = max(1, _CHUNK // max(m, 1))
    xbar = x.mean()
    xc = x - xbar
    sxx = float(xc @ xc)
    ybar = np.empty(k)
    slope = np.empty(k)
    sst = np.empty(k)
    sse = np.empty(k)
    for a in range(0, k, rows):              # one trip through memory, the rest in cache
        b = min(a + rows, k)
        yy = y[a:b] if isinstance(y, np.ndarray) else np.stack(y[a:b]).astype(float, copy=False)
        yb = yy.mean(axis=1)
        r = yy - yb[:, None]
        sxy = r @ xc
        with np.errstate(divide="ignore", invalid="ignore"):
            sl = sxy / sxx if sxx > 0 else np.full(b - a, np.nan)
        st = np.einsum("ij,ij->i", r, r)
        se = st - sl * sxy                    # = sum((r - sl * xc) ** 2), exact algebra
        # near-perfect lines lose digits to cancellation: recompute those from residuals
        tight = ~(se > 1e-8 * st)
        if tight.any():
            rr = r[tight] - sl[tight, None] * xc
            se[tight] = np.einsum("ij,ij->i", rr, rr)
        ybar[a:b], slope[a:b], sst[a:b], sse[a:b] = yb, sl, st, se
    n = np.full(k, float(m))
    return LinearFit(n, np.full(k, xbar), ybar, np.full(k, sxx), slope, ybar - slope * xbar,
                     sse, sst)


def ols_predict(fit: LinearFit, x_new: np.ndarray, level: float = 0.8) -> dict[str, np.ndarray]:
    """Predictions at ``x_new`` (``(h,)`` shared or ``(k, h)``), shape ``(k, h)``.

    Returns the columns of statsmodels' ``summary_frame(alpha=1 - level)``:
    ``mean, mean_se, mean_ci_lower, mean_ci_upper, obs_ci_lower, obs_ci_upper``
    (the ``obs`` bounds are the prediction interval for a new observation).
    """
    x_new = np.asarray(x_new, dtype=float)
    xn = x_new[None, :] if x_new.ndim == 1 else x_new
    mean = fit.intercept[:, None] + fit.slope[:, None] * xn
    s2 = fit.sigma2[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        lev = 1.0 / fit.n[:, None] + (xn - fit.xbar[:, None]) ** 2 / fit.sxx[:, None]
    mean_se = np.sqrt(s2 * lev)
    obs_se = np.sqrt(s2 * (1.0 + lev))
    q = _t_ppf(0.5 + level / 2, fit.df)[:, None]
    return {"mean": mean, "mean_se": mean_se,
            "mean_ci_lower": mean - q * mean_se, "mean_ci_upper": mean + q * mean_se,
            "obs_ci_lower": mean - q * obs_se, "obs_ci_upper": mean + q * obs_se}


def theil_sen(x: np.ndarray, y: np.ndarray, max_points: int = 400) -> tuple[float, float]:
    """Theil–Sen slope (median of pairwise slopes) and intercept (median of y - b x).

    Robust to up to ~29 % of outliers, so a burst does not tilt the line. Above
    ``max_points`` points the pairs are taken on an evenly thinned subset (the
    estimator stays unbiased; cost stays O(max_points^2)).
    """
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    if len(x) > max_points:
        idx = np.linspace(0, len(x) - 1, max_points).round().astype(int)
        xs, ys = x[idx], y[idx]
    else:
        xs, ys = x, y
    i, j = np.triu_indices(len(xs), k=1)
    dx = xs[j] - xs[i]
    ok = dx != 0
    if not ok.any():
        return 0.0, float(np.median(y))
    b = float(np.median((ys[j] - ys[i])[ok] / dx[ok]))
    a = float(np.median(y - b * x))
    return b, a
