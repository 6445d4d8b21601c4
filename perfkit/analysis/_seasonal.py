"""Daily seasonality by statsmodels' STL, on a grid coarse enough to stay cheap.

The decomposition is ``statsmodels.tsa.seasonal.STL`` (Cleveland et al. 1990) with
robust weights, run on a regular grid of at most :data:`MAX_PHASES` points per season
covering the newest :data:`MAX_SEASONS` seasons. Why the coarse grid: STL's cost grows
with the period (its trend and low-pass smoothers span about one season), so at
5-minute samples (period 288) one fit took ~1 s, and at 5 s samples (period 17,280)
minutes; a daily profile of server load has no structure finer than half an hour, and
at 30-minute bins a week is 336 points (a few ms). Where the series is sampled that
coarsely already, the grid is the series itself. The LOESS jumps (smoother evaluated
every ~10 % of its span, linear in between) are Cleveland's recommendation and what
makes STL affordable at all; ``tests/unit/test_analysis_seasonal.py`` checks the
output against ``STL`` called directly on the same grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["MAX_PHASES", "MAX_SEASONS", "Decomposition", "decompose", "grid_values",
           "stl_options"]

MAX_PHASES = 48
"""Most decomposition points per season (30-minute bins for a daily season)."""

MAX_SEASONS = 8
"""Newest seasons decomposed (older history does not change the next day's profile)."""

SEASONAL_WINDOW = 7
"""STL's seasonal smoother spans 7 seasons (its default and Cleveland's suggestion)."""

OUTER_ITER = 2
"""Robustness passes: one re-weighting already takes a burst out of the profile;
statsmodels' default of 15 costs 7x as much for changes below the noise."""


@dataclass
class Decomposition:
    """STL of a series on a regular grid ending at the series' last timestamp.

    ``grid`` holds the grid times (hours, same origin as the input), ``period`` the
    grid points per season; ``observed``, ``trend``, ``seasonal`` and ``resid`` are
    STL's components on that grid; ``strength`` is the seasonal strength
    ``max(0, 1 - var(resid) / var(seasonal + resid))`` (Wang, Smith & Hyndman 2006).
    """

    grid: np.ndarray
    period: int
    season_hours: float
    observed: np.ndarray
    trend: np.ndarray
    seasonal: np.ndarray
    resid: np.ndarray
    strength: float

    def seasonal_at(self, t: np.ndarray) -> np.ndarray:
        """The seasonal component at times ``t`` (hours): interpolated inside the grid,
        the last season's profile repeated beyond it."""
        t = np.asarray(t, float)
        last = self.grid[-1]
        inside = np.interp(t, self.grid, self.seasonal)
        ahead = np.interp(t - last, self.grid[-self.period:] - last, self.seasonal[-self.period:],
                          period=self.season_hours)
        return np.where(t > last, ahead, inside)


def needs(season_hours: float) -> str:
    """What the seasonal model needs, for error messages and reasons."""
    return f"two seasons ({2 * season_hours:g} h) of history"


def stl_options(period: int) -> dict[str, int]:
    """STL's window lengths (its defaults) and LOESS jumps of ~10 % of each window."""
    trend = int(np.ceil(1.5 * period / (1 - 1.5 / SEASONAL_WINDOW)))
    trend += trend % 2 == 0
    low_pass = period + 1 + (period % 2)
    return {"seasonal": SEASONAL_WINDOW, "trend": trend, "low_pass": low_pass,
            "seasonal_jump": int(np.ceil(SEASONAL_WINDOW / 10)),
            "trend_jump": int(np.ceil(trend / 10)), "low_pass_jump": int(np.ceil(low_pass / 10))}


def grid_values(x: np.ndarray, y: np.ndarray, step: float,
                season_hours: float) -> tuple[np.ndarray, np.ndarray, int] | None:
    """The regular grid the decomposition runs on: ``(times, values, period)``, or None
    when the history spans less than two seasons or a season has fewer than 2 samples.

    The grid step is the series' own ``step``, or ``season_hours / MAX_PHASES`` when that
    is coarser; a coarse grid point holds the mean of the samples within half a grid step
    of it (linear interpolation where there are none); a fine one, the interpolated value.
    """
    span = float(x[-1] - x[0])
    if season_hours / step < 2 or span < 2 * season_hours:
        return None
    period = min(round(season_hours / step), MAX_PHASES)
    d = season_hours / period
    k = int(np.floor(min(span, MAX_SEASONS * season_hours) / d + 1e-9))
    g = x[-1] - d * np.arange(k, -1, -1)
    if len(g) < 2 * period + 1:
        return None
    v = np.interp(g, x, y)
    if d > 1.5 * step:                        # bin means: less noise than one sample each
        c = np.concatenate([[0.0], np.cumsum(y)])
        lo = np.searchsorted(x, g - d / 2, "right")
        hi = np.searchsorted(x, g + d / 2, "right")
        cnt = hi - lo
        v = np.where(cnt > 0, (c[hi] - c[lo]) / np.maximum(cnt, 1), v)
    return g, v, period


def decompose(x: np.ndarray, y: np.ndarray, step: float,
              season_hours: float = 24.0) -> Decomposition | None:
    """STL decomposition of ``y`` at times ``x`` (hours, increasing) sampled every
    ``step`` hours, with a season of ``season_hours``; None with less than two seasons."""
    from statsmodels.tsa.seasonal import STL  # type: ignore[import-untyped]

    grid = grid_values(x, y, step, season_hours)
    if grid is None:
        return None
    g, v, period = grid
    if np.ptp(v) == 0:
        zero = np.zeros(len(v))
        return Decomposition(g, period, season_hours, v, v.copy(), zero, zero.copy(), 0.0)
    r = STL(v, period=period, robust=True, **stl_options(period)).fit(outer_iter=OUTER_ITER)
    seas, trend = np.asarray(r.seasonal), np.asarray(r.trend)
    # strength on the samples themselves, not on the bin means (averaging 6 samples per
    # bin shrinks the remainder, so noise would read as season): ``sr`` is the detrended
    # series, ``sr - seasonal`` the remainder, both at the sampled times of the grid's span
    inside = x >= g[0] - d_of(g) / 2
    xi = x[inside]
    sr = y[inside] - np.interp(xi, g, trend)
    rem = sr - np.interp(xi, g, seas)
    var_sr = float(np.var(sr))
    strength = max(0.0, 1.0 - float(np.var(rem)) / var_sr) if var_sr > 0 else 0.0
    return Decomposition(g, period, season_hours, v, trend, seas, np.asarray(r.resid), strength)


def d_of(g: np.ndarray) -> float:
    """The grid step (hours)."""
    return float(g[1] - g[0])
