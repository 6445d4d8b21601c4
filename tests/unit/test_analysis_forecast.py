"""Forecasts: intervals, coverage, shifts and bursts, edge cases."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from perfkit.analysis import change_points, forecast, predicted_alerts, time_to_threshold
from perfkit.analysis._core import forecast_array
from perfkit.analysis._ets import ets_filter, fit_ets

IDX = pd.date_range("2026-01-01", periods=240, freq="1min", tz="UTC")


def _ar1(phi, n, rng, burn=100):
    e = rng.normal(0, 1, n + burn)
    y = np.zeros(n + burn)
    for t in range(1, n + burn):
        y[t] = phi * y[t - 1] + e[t]
    return y[burn:]


@pytest.mark.parametrize("phi", [0.3, 0.5, 0.7, 0.9])
def test_auto_80pct_interval_covers_75_to_85pct_on_ar1(phi):
    """Rolling origins over one long AR(1) series, 150-point window, 10 steps ahead."""
    rng = np.random.default_rng(7)
    win, h, origins = 150, 10, 400
    y = 20 + _ar1(phi, win + origins * h + h, rng)
    x = np.arange(len(y)) / 60
    cov = []
    for o in range(origins):
        i = win + o * h
        f = forecast_array(x[i - win:i], y[i - win:i], 1 / 60, h, 0.8, "auto")
        cov.append(((y[i:i + h] >= f.lower) & (y[i:i + h] <= f.upper)).mean())
    assert 0.75 <= np.mean(cov) <= 0.85


@pytest.mark.parametrize("damped", [False, True])
def test_ets_filter_and_interval_match_statsmodels(damped):
    """Same parameters and initial state: errors, forecasts and 80 % interval equal ETSModel's."""
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel

    rng = np.random.default_rng(5)
    y = 50 + np.cumsum(rng.normal(0.1, 1, 200))
    a, b, p = (0.4, 0.1, 0.9) if damped else (0.4, 0.0, 1.0)
    kw = {"trend": "add", "damped_trend": True, "initial_trend": 0.0} if damped else {}
    mod = ETSModel(pd.Series(y), error="add", initialization_method="known",
                   initial_level=y[0], **kw)
    res = mod.smooth([a, b, p] if damped else [a])
    # our filter takes l_0 from its first observation: feed the known initial level first
    _, lev, slo, E, _, _ = ets_filter(np.r_[y[0], y], a, b, p, y[0], 0.0, history=True)
    np.testing.assert_allclose(E[1:, 0], res.resid, rtol=1e-9, atol=1e-9)
    f = fit_ets(y, "damped" if damped else "ses")
    f.alpha, f.beta, f.phi, f.level, f.slope, f.sigma2 = a, b, p, lev[0], slo[0], res.mse
    sf = res.get_prediction(start=200, end=205).summary_frame(alpha=0.2)
    h = np.arange(1, 7)
    np.testing.assert_allclose(f.point(h), sf["mean"], rtol=1e-9)
    z = 1.2815515655446004
    np.testing.assert_allclose(f.point(h) - z * np.sqrt(f.variance(h)), sf["pi_lower"], rtol=1e-9)


def test_constant_short_nan_gaps():
    s = pd.Series(5.0, IDX[:30], name="system.cpu_usage")
    f = forecast(s, "10min")
    assert (f["model"] == "constant").all() and (f["lower"] == 5).all() and (f["upper"] == 5).all()
    with pytest.raises(ValueError, match="at least 3"):
        forecast(pd.Series([1.0, 2.0], IDX[:2], name="orders.custom"))
    y = pd.Series(np.linspace(10, 20, 60), IDX[:60], name="orders.custom")
    y.iloc[[5, 17, 40]] = np.nan
    y = y.drop(y.index[20:35])                              # a gap
    f = forecast(y, "10min")
    assert f[["mean", "lower", "upper"]].notna().all().all()
    assert (f["lower"] <= f["mean"]).all() and (f["mean"] <= f["upper"]).all()
    # a frame with one usable and one too-short series: the short one is reported, not fatal
    frame = pd.DataFrame({"ts": list(IDX[:30]) + list(IDX[:2]),
                          "metric": ["system.cpu_usage"] * 30 + ["orders.custom"] * 2,
                          "value": [*np.random.default_rng(0).normal(40, 1, 30), 1.0, 2.0]})
    f = forecast(frame, "5min")
    assert set(f["metric"]) == {"system.cpu_usage"}
    assert "orders.custom" in f.attrs["skipped"]


@pytest.mark.parametrize("method", ["auto", "linear", "theil_sen", "ets", "ses", "damped", "naive"])
def test_every_method_gives_finite_ordered_intervals(method):
    rng = np.random.default_rng(8)
    s = pd.Series(50 + np.cumsum(rng.normal(0, 1, 240)), IDX, name="orders.custom")
    f = forecast(s, "30min", method=method)
    assert len(f) == 30 and f[["mean", "lower", "upper"]].notna().all().all()
    assert (f["lower"] <= f["mean"] + 1e-12).all() and (f["mean"] <= f["upper"] + 1e-12).all()


def test_percentage_interval_clipped_to_bounds():
    s = pd.Series(np.linspace(80, 99.5, 120), IDX[:120], name="system.disk_usage")
    f = forecast(s, "2h", method="linear")
    assert f["upper"].max() <= 100 and f["mean"].max() <= 100


def test_level_shift_fit_after_last_shift():
    rng = np.random.default_rng(9)
    y = 85 + rng.normal(0, 0.5, 240)
    y[180:] -= 40                                          # cleanup at sample 180
    s = pd.Series(y, IDX, name="system.disk_usage")
    assert change_points(y) == [180]
    f = forecast(s, "6h", method="linear")
    assert f["fit_start"].iloc[0] == IDX[180]
    assert f["upper"].max() < 80                            # no crossing from the old level
    t = time_to_threshold(s, "6h")
    assert t["eta_earliest"].isna().all(), t["message"].tolist()


def test_shift_up_then_flat_does_not_extrapolate_the_step():
    """A deploy raised the baseline: a line through both levels would predict a crossing."""
    rng = np.random.default_rng(10)
    y = 40 + rng.normal(0, 1, 240)
    y[150:] += 25                                           # 40 -> 65, warning is 70
    s = pd.Series(y, IDX, name="system.cpu_usage")
    naive_line = forecast(s, "2h", method="linear", shift=False)
    assert naive_line["mean"].iloc[-1] > 70                 # what predict_linear would say
    for method in ("auto", "linear", "theil_sen"):
        f = forecast(s, "2h", method=method)
        assert f["mean"].max() < 70, method
    assert time_to_threshold(s, "2h")["eta_expected"].isna().all()
    assert predicted_alerts(s, "2h").empty


def test_burst_produces_no_false_crossing():
    rng = np.random.default_rng(11)
    y = 50 + rng.normal(0, 1, 240)
    y[200:206] = 97                                         # 6-minute burst, 34 min ago
    s = pd.Series(y, IDX, name="system.cpu_usage")
    for method in ("auto", "theil_sen"):
        f = forecast(s, "1h", method=method)
        assert f["mean"].max() < 70, method
    t = time_to_threshold(s, "1h")
    assert t["eta_expected"].isna().all(), t["message"].tolist()


def test_time_to_threshold_linear_disk():
    ts = pd.date_range("2026-01-01", periods=120, freq="1min", tz="UTC")
    rng = np.random.default_rng(12)
    y = 60 + 10 * np.arange(120) / 60 + rng.normal(0, 0.2, 120)   # 10 %/h, now ~ 79.8
    s = pd.Series(y, ts, name="system.disk_usage")
    t = time_to_threshold(s, "6h").set_index("severity")
    crit = t.loc["critical"]
    assert pd.Timedelta("45min") < crit.eta_expected < pd.Timedelta("1h30min")
    assert crit.eta_earliest <= crit.eta_expected
    assert pd.isna(crit.eta_latest) or crit.eta_latest >= crit.eta_expected
    assert crit.message.startswith("system.disk_usage reaches 90 % in ")
    assert " between " in crit.message
    lin = time_to_threshold(s, "6h", forecasts=forecast(s, "6h", method="linear"))
    c = lin.set_index("severity").loc["critical"]
    assert abs(c.eta_expected - pd.Timedelta("1h1min")) < pd.Timedelta("5min")
    assert c.eta_earliest < c.eta_expected < c.eta_latest


def test_falling_hit_rate_predicted_to_cross():
    ts = pd.date_range("2026-01-01", periods=120, freq="1min", tz="UTC")
    y = 85 - 8 * np.arange(120) / 60 + np.random.default_rng(13).normal(0, 0.3, 120)
    s = pd.Series(y, ts, name="cache.hit_rate")
    p = predicted_alerts(s, "2h")       # now ~69 %: critical (60 %) in about 1 h 10 min
    assert list(p["severity"]) == ["critical"] and p["message"].iloc[0].startswith(
        "cache.hit_rate falls to 60 % in")


def test_seasonal_chosen_with_two_days_and_tracks_the_cycle():
    rng = np.random.default_rng(14)
    ts = pd.date_range("2026-01-01", periods=3 * 288, freq="5min", tz="UTC")
    phase = 2 * np.pi * np.arange(len(ts)) / 288
    s = pd.Series(50 + 20 * np.sin(phase) + rng.normal(0, 1, len(ts)), ts,
                  name="system.cpu_usage")
    f = forecast(s, "6h")
    assert (f["model"] == "seasonal").all()
    truth = 50 + 20 * np.sin(2 * np.pi * np.arange(len(ts), len(ts) + 72) / 288)
    assert np.abs(f["mean"].to_numpy() - truth).max() < 3
    assert ((truth >= f["lower"]) & (truth <= f["upper"])).mean() > 0.9
    with pytest.raises(ValueError, match="two seasons"):
        forecast(s.iloc[:300], method="seasonal")


def test_persistent_noise_is_not_cut_into_level_shifts_but_a_jump_still_is():
    """AR(1) with phi = 0.9 wanders; scaled by its long-run noise it is one segment."""
    from perfkit.analysis import last_shift
    from perfkit.analysis._shift import persistence_factor

    rng = np.random.default_rng(12)
    white = rng.normal(0, 1, 2000)
    assert persistence_factor(white) < 1.2
    ar = _ar1(0.9, 2000, rng)
    assert 6.7 < persistence_factor(ar) < 28          # rho estimated within 0.8..0.95
    step = white + np.where(np.arange(2000) >= 1500, 4.0, 0.0)
    assert persistence_factor(step) < 1.2             # one outlying difference barely counts
    assert abs(last_shift(step) - 1500) <= 8
    cut = [last_shift(_ar1(0.9, 150, rng)) > 0 for _ in range(100)]
    assert np.mean(cut) < 0.25                        # was 0.83 on the one-step noise alone
    # a jump of 4 long-run standard deviations (sigma_e / (1 - phi) = 10) is still found
    jumped = [_ar1(0.9, 150, rng) + np.where(np.arange(150) >= 100, 40.0, 0.0) for _ in range(20)]
    assert np.mean([abs(last_shift(y) - 100) <= 3 for y in jumped]) >= 0.9


def test_shift_found_in_a_long_series():
    rng = np.random.default_rng(15)
    y = rng.normal(0, 1, 6000)
    y[4500:] += 4
    from perfkit.analysis import last_shift
    assert abs(last_shift(y) - 4500) <= 6                 # found on block means, then refined
    ramp = np.arange(6000) * 0.01 + rng.normal(0, 1, 6000)
    assert last_shift(ramp) == 0                           # a ramp is not a shift


def test_time_to_threshold_already_past_and_no_thresholds():
    ts = pd.date_range("2026-01-01", periods=30, freq="1min", tz="UTC")
    s = pd.Series(95 + np.random.default_rng(16).normal(0, 0.1, 30), ts, name="system.cpu_usage")
    t = time_to_threshold(s, "1h").set_index("severity")
    assert t.loc["critical", "eta_expected"] == pd.Timedelta(0)
    assert "already at or above 90 %" in t.loc["critical", "message"]
    assert time_to_threshold(s.rename("orders.custom"), "1h").empty


@pytest.mark.parametrize("jobs", [0, -2, 1.5, "2", True, None])
def test_jobs_must_be_a_positive_whole_number(jobs):
    from perfkit.errors import InvalidInputError

    ts = pd.date_range("2024-01-01", periods=30, freq="1min", tz="UTC")
    s = pd.Series(np.linspace(1.0, 2.0, 30), index=ts, name="system.cpu_usage")
    with pytest.raises(InvalidInputError, match=r"jobs must be a whole number >= 1 .*got "
                                                + re.escape(repr(jobs))):
        forecast(s, "5min", jobs=jobs)
    assert len(forecast(s, "5min", jobs=np.int64(2))) == 5  # a numpy integer is a whole number
