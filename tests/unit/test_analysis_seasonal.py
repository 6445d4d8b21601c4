"""Daily seasonality: perfkit's decomposition is statsmodels' STL on the same grid."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from statsmodels.tsa.seasonal import STL

from perfkit.analysis import forecast
from perfkit.analysis._seasonal import (
    MAX_PHASES,
    MAX_SEASONS,
    OUTER_ITER,
    decompose,
    grid_values,
    stl_options,
)


def _daily(n: int, step_min: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = np.arange(n) * step_min / 60.0 - (n - 1) * step_min / 60.0      # hours, ending at 0
    y = 50 + 0.05 * x + 15 * np.sin(2 * np.pi * x / 24) + 5 * np.cos(4 * np.pi * x / 24)
    return x, y + rng.normal(0, 2, n)


def _stl(v: np.ndarray, period: int) -> np.ndarray:
    r = STL(v, period=period, robust=True, **stl_options(period)).fit(outer_iter=OUTER_ITER)
    return np.asarray(r.seasonal)


def test_hourly_series_is_decomposed_by_stl_on_its_own_samples():
    x, y = _daily(24 * 6, 60.0)                 # 6 days of hourly samples: the grid is the data
    dec = decompose(x, y, 1.0)
    assert dec is not None and dec.period == 24
    np.testing.assert_allclose(dec.grid, x, rtol=0, atol=1e-9)
    np.testing.assert_allclose(dec.seasonal, _stl(y, 24), rtol=0, atol=1e-9)
    # the LOESS jumps change the profile by far less than the noise (sd 2)
    plain = STL(y, period=24, robust=True).fit(outer_iter=OUTER_ITER).seasonal
    assert np.abs(dec.seasonal - plain).max() < 0.5
    assert dec.strength > 0.9


def test_five_minute_series_is_decomposed_on_half_hour_bin_means():
    x, y = _daily(288 * 10, 5.0, seed=1)        # 10 days at 5 min: 288 samples per day
    g, v, period = grid_values(x, y, 5 / 60, 24.0)
    assert period == MAX_PHASES and g[-1] == x[-1]
    assert g[-1] - g[0] == pytest.approx(MAX_SEASONS * 24.0)   # only the newest seasons
    inner = (x > g[5] - 0.25) & (x <= g[5] + 0.25)
    assert v[5] == pytest.approx(y[inner].mean())                  # a bin holds its mean
    dec = decompose(x, y, 5 / 60)
    assert dec is not None
    np.testing.assert_allclose(dec.seasonal, _stl(v, MAX_PHASES), rtol=0, atol=1e-9)
    truth = 15 * np.sin(2 * np.pi * g / 24) + 5 * np.cos(4 * np.pi * g / 24)
    err = dec.seasonal - truth                   # amplitude 20; bin-mean noise sd ~0.8
    assert np.sqrt(np.mean(err ** 2)) < 1.0 and np.abs(err).max() < 3.0


def test_seasonal_forecast_repeats_the_stl_profile_and_says_so():
    x, y = _daily(288 * 4, 5.0, seed=2)
    ts = pd.Timestamp("2026-01-10", tz="UTC") + pd.to_timedelta(x, unit="h")
    f = forecast(pd.Series(y, ts, name="system.cpu_usage"), "12h", method="seasonal")
    assert (f["model"] == "seasonal").all() and "STL" in f["reason"].iloc[0]
    h = (f["ts"] - ts[-1]).dt.total_seconds().to_numpy() / 3600
    truth = 50 + 0.05 * h + 15 * np.sin(2 * np.pi * h / 24) + 5 * np.cos(4 * np.pi * h / 24)
    assert np.abs(f["mean"].to_numpy() - truth).max() < 3
    assert ((truth >= f["lower"]) & (truth <= f["upper"])).mean() > 0.9


def test_a_burst_does_not_enter_the_daily_profile():
    x, y = _daily(24 * 8, 60.0, seed=3)
    clean = decompose(x, y, 1.0)
    y2 = y.copy()
    y2[100:103] += 200                           # a three-hour incident on day 5
    burst = decompose(x, y2, 1.0)
    assert clean is not None and burst is not None
    assert np.abs(burst.seasonal_at(np.arange(1, 25.0)) -
                  clean.seasonal_at(np.arange(1, 25.0))).max() < 3


@pytest.mark.parametrize("hours", [30.0, 47.0])
def test_less_than_two_seasons_is_none_and_a_valueerror_naming_the_need(hours):
    x, y = _daily(int(hours * 12), 5.0)
    assert decompose(x, y, 5 / 60) is None
    ts = pd.Timestamp("2026-01-10", tz="UTC") + pd.to_timedelta(x, unit="h")
    with pytest.raises(ValueError, match=r"two seasons \(48 h\) of history; this series spans"):
        forecast(pd.Series(y, ts, name="system.cpu_usage"), "1h", method="seasonal")


@pytest.mark.parametrize("kind", ["noise", "ar1"])
def test_non_seasonal_series_read_low_strength_and_auto_does_not_go_seasonal(kind):
    rng = np.random.default_rng(7)
    n = 288 * 4
    e = rng.normal(0, 1, n)
    y = e if kind == "noise" else np.array(
        [float(v) for v in pd.Series(e).ewm(alpha=0.5, adjust=False).mean()])
    x = (np.arange(n) - n + 1) * 5 / 60
    dec = decompose(x, 50 + y, 5 / 60)
    assert dec is not None and dec.strength < 0.3
    ts = pd.Timestamp("2026-01-10", tz="UTC") + pd.to_timedelta(x, unit="h")
    f = forecast(pd.Series(50 + y, ts, name="system.cpu_usage"), "1h")
    assert (f["model"] != "seasonal").all()


def _five_minute(y: np.ndarray) -> pd.Series:
    x = (np.arange(len(y)) - len(y) + 1) * 5 / 60
    ts = pd.Timestamp("2026-01-10", tz="UTC") + pd.to_timedelta(x, unit="h")
    return pd.Series(50 + y, ts, name="system.cpu_usage")


@pytest.mark.parametrize("seed", [0, 2, 5, 7])
def test_random_walk_over_four_days_is_not_seasonal_but_a_daily_cycle_is(seed):
    """STL reads a random walk's daily wiggles as season (strength up to ~0.8 over 4 days):
    ``auto`` must not forecast that as a daily profile; a real cycle of 4 noise sds must.
    These seeds' walks read 0.63-0.72, above the 0.6 a looser threshold would accept."""
    rng = np.random.default_rng(seed)
    n = 288 * 4
    walk = np.cumsum(rng.normal(0, 1, n))
    assert (forecast(_five_minute(walk), "1h")["model"] != "seasonal").all()
    h = np.arange(n) * 5 / 60
    cycle = 4 * np.sin(2 * np.pi * h / 24 + seed) + rng.normal(0, 1, n)
    f = forecast(_five_minute(cycle), "1h")
    assert (f["model"] == "seasonal").all()
