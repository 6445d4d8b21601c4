"""auto's pieces: combinations, causal in-sample paths, calibrated intervals, reasons."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from perfkit.analysis import forecast
from perfkit.analysis._auto import (
    AUTO_RULES,
    CALIBRATION,
    RECENT_ERRORS,
    VOLATILITY_POWER,
    _median,
    _ses,
    auto_parts,
    calibrated_half,
    combine,
    hstep_rms,
    interval_half,
    robust_clip,
    volatility_ratio,
)
from perfkit.analysis._core import forecast_array
from perfkit.analysis._ets import fit_ets


def _noise(n: int = 300, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return np.arange(n) / 60.0, 40 + rng.normal(0, 2, n)


def test_combination_is_the_mean_or_median_of_its_members_forecasts_and_paths():
    y = np.arange(20.0)
    a = ("a", np.array([1.0, 2.0]), lambda h: y + h)
    b = ("b", np.array([3.0, 6.0]), lambda h: 2 * y)
    c = ("c", np.array([5.0, 1.0]), lambda h: y * 0)
    name, mean, path = combine([a, b, c])
    assert name == "a+b+c"
    np.testing.assert_array_equal(mean, [3.0, 3.0])
    np.testing.assert_allclose(path(2), (y + 2 + 2 * y) / 3)
    name, mean, path = combine([a, b, c], "median")
    assert name == "median(a,b,c)"
    np.testing.assert_array_equal(mean, [3.0, 2.0])
    np.testing.assert_array_equal(path(1), np.median(np.stack([y + 1, 2 * y, 0 * y]), axis=0))


def test_auto_comb_mean_equals_the_mean_of_ses_damped_and_theta():
    x, y = _noise()
    memo: dict = {}
    p = auto_parts(x, y, 6, "gate+comb", memo)
    assert p.model == "ses+damped+theta"
    want = (memo["ses"][1] + memo["damped"][1] + memo["theta"][1]) / 3
    np.testing.assert_allclose(p.mean, want, rtol=1e-12)
    assert p.reason.startswith("no significant trend") and "mean of ses, damped, theta" in p.reason


def test_in_sample_paths_are_causal():
    """The h-step path at origin t uses data up to t only (the median member is a running
    median), so the interval is built from errors out of sample."""
    _, y = _noise()
    y2 = y.copy()
    y2[200:] += 50
    for make in (lambda v: _median(v, 3), lambda v: _ses(fit_ets(v, "ses"), 3)):
        p1, p2 = make(y)[2](2), make(y2)[2](2)
        assert not np.allclose(p1[200:], p2[200:])
    np.testing.assert_allclose(_median(y2, 3)[2](1)[:200], _median(y, 3)[2](1)[:200])
    np.testing.assert_allclose(_median(y, 3)[2](1), pd.Series(y).expanding().median())


@pytest.mark.parametrize("cal", [CALIBRATION, (1.0, np.inf), (1.3, 3.0), (0.8, 10.0)])
def test_calibrated_half_width_grows_with_the_level_and_with_the_rms(cal):
    rms = np.array([1.0, 1.5, 2.0])
    widths = [calibrated_half(rms, lv, cal) for lv in (0.5, 0.8, 0.9, 0.95, 0.99)]
    for lo, hi in itertools.pairwise(widths):
        assert np.all(hi > lo)
    np.testing.assert_allclose(widths[1] / rms, widths[1][0])      # proportional to the RMS


def test_hstep_rms_is_non_decreasing_and_needs_ten_errors():
    _, y = _noise(200)
    rms, hmax = hstep_rms(y, lambda h: np.full(len(y), y.mean()), 12)
    assert hmax == 12 and np.all(np.diff(rms) >= 0) and rms[0] > 0
    _, hmax = hstep_rms(y[:15], lambda h: np.full(15, 0.0), 12)
    assert hmax == 5
    rms, hmax = hstep_rms(y[:9], lambda h: np.full(9, 0.0), 3)
    assert hmax == 0 and np.isnan(rms).all()


def test_auto_interval_widens_with_the_level_and_short_windows_fall_back_to_ses():
    x, y = _noise()
    w = {lv: forecast_array(x, y, 1 / 60, 6, lv, "auto") for lv in (0.5, 0.8, 0.95)}
    assert np.all(w[0.5].upper - w[0.5].lower < w[0.8].upper - w[0.8].lower)
    assert np.all(w[0.8].upper - w[0.8].lower < w[0.95].upper - w[0.95].lower)
    f = forecast_array(x[:6], y[:6], 1 / 60, 3, 0.8, "auto")
    # the SES model's own interval, fitted on the same (clipped) values
    ses = forecast_array(x[:6], robust_clip(y[:6]), 1 / 60, 3, 0.8, "ses", shift=False)
    assert f.model == "ses" and "too few for a trend model" in f.stats["reason"]
    np.testing.assert_allclose(f.upper - f.mean, ses.upper - ses.mean)


def test_a_significant_trend_is_followed_by_every_rule():
    x = np.arange(120) / 12.0                       # 10 h at 5 min
    y = 20 + 6 * x + np.random.default_rng(1).normal(0, 0.5, 120)
    for rule in AUTO_RULES:
        p = auto_parts(x, y, 12, rule)
        assert p.model == "damped" and "trend test: increasing" in p.reason
        assert p.mean[-1] > y[-1] + 3                # an hour on, about 6 higher


def test_every_forecast_row_says_model_level_and_why():
    _, y = _noise()
    s = pd.Series(y, index=pd.date_range("2026-01-01", periods=len(y), freq="1min", tz="UTC"),
                  name="cpu.percent")
    f = forecast(s, "10min", level=0.95)
    assert set(f["level"]) == {0.95}
    assert f["model"].nunique() == 1 and f["model"].iloc[0]
    assert f["reason"].iloc[0].startswith("no significant trend")


def test_robust_clip_bounds_a_burst_and_keeps_ordinary_values():
    y = np.r_[np.full(20, 10.0) + np.tile([-1.0, 1.0], 10), 500.0]
    c = robust_clip(y)
    np.testing.assert_array_equal(c[:20], y[:20])
    assert c[-1] == pytest.approx(11.0 + 3 * 1.4826 * 2)   # median 11 + 3 robust SDs (MAD 2)
    spikes = np.r_[np.zeros(30), 80.0, 0.0]           # MAD = 0: the mean absolute deviation
    assert 0 < robust_clip(spikes)[30] < 80


def test_unknown_rule_is_a_valueerror_naming_the_choices():
    x, y = _noise()
    with pytest.raises(ValueError, match="unknown auto rule 'best'; choose one of"):
        auto_parts(x, y, 3, "best")


def test_interval_widens_with_the_volatility_at_the_end_of_the_window():
    """A burst in the last points widens the next points' interval by the ratio of the
    recent one-step RMS to the window's, to VOLATILITY_POWER; a quiet end narrows it."""
    x, y = _noise()
    burst = y.copy()
    burst[-RECENT_ERRORS:] += np.array([9.0, -8.0, 10.0, -9.0, 8.0, -10.0])
    quiet = y.copy()
    quiet[-RECENT_ERRORS:] = 40.0
    ratios = {}
    for name, v in (("noise", y), ("burst", burst), ("quiet", quiet)):
        p = auto_parts(x, v, 6)
        ratios[name] = volatility_ratio(p)
        np.testing.assert_allclose(interval_half(p, 0.8),
                                   interval_half(p, 0.8, CALIBRATION, 0.0)
                                   * ratios[name] ** VOLATILITY_POWER)
    assert ratios["quiet"] < 0.9 < ratios["noise"] < 1.5 < 2.0 < ratios["burst"] <= 3.0
    f = {n: forecast_array(x, v, 1 / 60, 6, 0.8, "auto") for n, v in (("noise", y),
                                                                      ("burst", burst))}
    assert VOLATILITY_POWER > 0
    assert np.all(f["burst"].upper - f["burst"].lower > f["noise"].upper - f["noise"].lower)
