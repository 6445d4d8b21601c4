"""The vectorised OLS path against statsmodels, and the trend labels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from perfkit.analysis import forecast, trends
from perfkit.analysis._linear import ols_batch, ols_predict, ols_rows, theil_sen


def _sm(x, y, x_new, level):
    res = sm.OLS(y, sm.add_constant(x)).fit()
    pred = res.get_prediction(sm.add_constant(x_new, has_constant="add"))
    sf = pred.summary_frame(alpha=1 - level)
    return res, sf


@pytest.mark.parametrize("level", [0.8, 0.95])
def test_batch_matches_statsmodels_shared_axis(level):
    rng = np.random.default_rng(0)
    x = np.sort(rng.uniform(0, 5, 200))            # irregular elapsed hours
    Y = 3.0 + rng.normal(0, 1, (25, 1)) * x + rng.normal(0, 2, (25, 200))
    x_new = x[-1] + np.arange(1, 13) / 12
    fit = ols_batch(x, Y)
    pred = ols_predict(fit, x_new, level)
    for i in range(Y.shape[0]):
        res, sf = _sm(x, Y[i], x_new, level)
        np.testing.assert_allclose(fit.slope[i], res.params[1], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(fit.intercept[i], res.params[0], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(fit.p_value[i], res.pvalues[1], rtol=1e-9, atol=1e-15)
        np.testing.assert_allclose(fit.r2[i], res.rsquared, rtol=1e-9)
        np.testing.assert_allclose(fit.aic[i], res.aic, rtol=1e-9)
        for col in ("mean", "mean_se", "mean_ci_lower", "mean_ci_upper", "obs_ci_lower",
                    "obs_ci_upper"):
            np.testing.assert_allclose(pred[col][i], sf[col].to_numpy(), rtol=1e-9, atol=1e-9)


def test_batch_matches_statsmodels_ragged_with_nan():
    rng = np.random.default_rng(1)
    k, m = 12, 80
    X = np.cumsum(rng.uniform(0.01, 0.2, (k, m)), axis=1)
    Y = 10 - 2 * X + rng.normal(0, 1, (k, m))
    lengths = rng.integers(5, m, k)
    for i, L in enumerate(lengths):
        Y[i, L:] = np.nan
        X[i, L:] = np.nan
    Y[0, 2] = np.nan                                   # a hole inside a series
    XN = X[np.arange(k), lengths - 1][:, None] + np.arange(1, 7)[None, :] * 0.1
    fit = ols_batch(X, Y)
    pred = ols_predict(fit, XN, 0.8)
    for i in range(k):
        ok = np.isfinite(Y[i])
        res, sf = _sm(X[i, ok], Y[i, ok], XN[i], 0.8)
        np.testing.assert_allclose(fit.slope[i], res.params[1], rtol=1e-9)
        for col in ("mean", "obs_ci_lower", "obs_ci_upper", "mean_ci_lower"):
            np.testing.assert_allclose(pred[col][i], sf[col].to_numpy(), rtol=1e-9, atol=1e-9)


def test_forecast_linear_frame_matches_statsmodels():
    rng = np.random.default_rng(2)
    ts = pd.date_range("2026-01-01", periods=120, freq="30s", tz="UTC")
    parts = []
    for j, name in enumerate(["system.cpu_usage", "database.query_time", "orders.custom"]):
        parts.append(pd.DataFrame({"ts": ts, "metric": name,
                                   "value": (20 + j + 0.05 * np.arange(120)
                                             + rng.normal(0, 1, 120))}))
    frame = pd.concat(parts, ignore_index=True)
    fc = forecast(frame, "5min", 0.8, "linear", shift=False)
    for name, g in fc.groupby("metric"):
        y = frame.loc[frame.metric == name, "value"].to_numpy()
        x = (ts - ts[-1]).total_seconds().to_numpy() / 3600
        x_new = np.arange(1, 11) * 30 / 3600
        _, sf = _sm(x, y, x_new, 0.8)
        assert len(g) == 10                                    # 5 min on the 30 s grid
        assert (g["ts"].diff().dropna() == pd.Timedelta("30s")).all()
        np.testing.assert_allclose(g["mean"], sf["mean"], rtol=1e-9)
        np.testing.assert_allclose(g["lower"], sf["obs_ci_lower"], rtol=1e-9)
        np.testing.assert_allclose(g["upper"], sf["obs_ci_upper"], rtol=1e-9)


def test_forecast_linear_shared_and_own_time_axes_match_statsmodels():
    """Series on one shared clock (fitted as one matrix), one on its own clock, one
    shorter, and one cut by a level shift: every forecast is statsmodels' OLS on the
    segment it reports (``fit_start``, ``n``)."""
    rng = np.random.default_rng(3)
    ts = pd.date_range("2026-01-01", periods=300, freq="10s", tz="UTC")
    own = ts[0] + pd.to_timedelta(np.cumsum(rng.uniform(5, 15, 200)), unit="s")
    parts = [pd.DataFrame({"ts": ts, "metric": f"custom.shared_{j}",
                           "value": 5 * j + 0.01 * np.arange(300) + rng.normal(0, 1, 300)})
             for j in range(4)]
    parts.append(pd.DataFrame({"ts": own, "metric": "custom.own_clock",
                               "value": 50 - 0.02 * np.arange(200) + rng.normal(0, 1, 200)}))
    parts.append(pd.DataFrame({"ts": ts[:120], "metric": "custom.shorter",
                               "value": rng.normal(3, 1, 120)}))
    parts.append(pd.DataFrame({"ts": ts, "metric": "custom.shifted",
                               "value": np.where(np.arange(300) < 200, 10.0, 40.0)
                               + rng.normal(0, 1, 300)}))
    frame = pd.concat(parts, ignore_index=True).sample(frac=1.0, random_state=0)
    fc = forecast(frame, "3min", 0.8, "linear")
    assert fc["metric"].nunique() == 7
    assert fc.loc[fc["metric"] == "custom.shifted", "n"].iloc[0] == 100   # fitted after the shift
    for name, g in fc.groupby("metric"):
        src_rows = frame[frame["metric"] == name].sort_values("ts")
        t = pd.DatetimeIndex(src_rows["ts"])
        keep = t >= g["fit_start"].iloc[0]
        assert keep.sum() == g["n"].iloc[0]
        x = (t[keep] - t[-1]).total_seconds().to_numpy() / 3600
        step = np.median(np.diff(t.asi8)) / 3.6e12
        _, sf = _sm(x, src_rows["value"].to_numpy()[keep], step * np.arange(1, len(g) + 1), 0.8)
        np.testing.assert_allclose(g["mean"], sf["mean"], rtol=1e-9, err_msg=name)
        np.testing.assert_allclose(g["lower"], sf["obs_ci_lower"], rtol=1e-9, err_msg=name)
        np.testing.assert_allclose(g["upper"], sf["obs_ci_upper"], rtol=1e-9, err_msg=name)


def test_rows_fit_equals_the_batch_fit():
    rng = np.random.default_rng(6)
    x = np.sort(rng.uniform(0, 3, 5000))
    Y = 1.0 + rng.normal(0, 1, (30, 1)) * x + rng.normal(0, 1, (30, 5000))
    a, b = ols_rows(x, list(Y)), ols_batch(x, Y)
    for f in ("slope", "intercept", "sse", "sst", "ybar"):
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f))


def test_slope_recovered_within_its_confidence_interval():
    rng = np.random.default_rng(3)
    hits = 0
    for _ in range(200):
        ts = pd.date_range("2026-01-01", periods=60, freq="30s", tz="UTC")
        s = pd.Series(50 + 12.0 * np.arange(60) / 120 + rng.normal(0, 2, 60), ts,
                      name="system.cpu_usage")          # 12 units per hour
        t = trends(s, "30min").iloc[0]
        hits += t.slope_ci_lower <= 12.0 <= t.slope_ci_upper
    assert 0.90 <= hits / 200 <= 0.99                     # a 95 % interval


def test_trend_labels():
    rng = np.random.default_rng(4)
    ts = pd.date_range("2026-01-01", periods=120, freq="15s", tz="UTC")
    flat = pd.Series(50 + rng.normal(0, 5, 120), ts, name="system.cpu_usage")
    up = pd.Series(50 + np.arange(120) * 0.2 + rng.normal(0, 1, 120), ts, name="system.disk_usage")
    tiny = pd.Series(50 + np.arange(120) * 0.005 + rng.normal(0, 0.01, 120), ts,
                     name="system.memory_usage")          # significant but < 5 % change
    frame = pd.concat([pd.DataFrame({"ts": s.index, "metric": s.name, "value": s.values})
                       for s in (flat, up, tiny)])
    t = trends(frame, "30min").set_index("metric")
    assert t.loc["system.cpu_usage", "trend"] == "stable"
    assert t.loc["system.disk_usage", "trend"] == "increasing"
    assert t.loc["system.memory_usage", "p_value"] < 0.05
    assert t.loc["system.memory_usage", "trend"] == "stable"
    assert trends(-up.rename("system.disk_usage") + 200, "30min").iloc[0].trend == "decreasing"


def test_trends_irregular_gaps_and_short():
    ts = pd.DatetimeIndex(["2026-01-01 00:00", "2026-01-01 00:01", "2026-01-01 00:07",
                           "2026-01-01 00:08", "2026-01-01 00:20"], tz="UTC")
    s = pd.Series([1.0, 2.0, 8.0, 9.0, 21.0], ts, name="orders.custom")
    r = trends(s, "1h").iloc[0]
    assert r.slope_per_hour == pytest.approx(60.0)
    short = trends(s.iloc[:2], "1h").iloc[0]
    assert short.trend == "stable" and np.isnan(short.p_value) and short.n == 2


def test_theil_sen_ignores_a_burst():
    x = np.arange(100) / 60
    y = 10 + 3 * x
    y[40:48] += 50
    b, _ = theil_sen(x, y)
    assert b == pytest.approx(3.0, rel=1e-6)


def test_window_and_now():
    ts = pd.date_range("2026-01-01", periods=120, freq="1min", tz="UTC")
    y = np.r_[np.full(60, 50.0), 50 + np.arange(60) * 0.5]       # flat, then rising
    s = pd.Series(y + np.random.default_rng(6).normal(0, 0.1, 120), ts, name="orders.custom")
    assert trends(s, "30min").iloc[0].trend == "increasing"
    assert trends(s, "30min", now=ts[59]).iloc[0].trend == "stable"
    f = forecast(s, "5min", method="linear", window="20min", shift=False)
    assert f["n"].iloc[0] == 20 and f["fit_start"].iloc[0] == ts[100]


def test_fit_summary_is_statsmodels_ols_and_agrees_with_the_fast_trends_path():
    from perfkit.analysis import fit_summary

    rng = np.random.default_rng(11)
    idx = pd.date_range("2026-01-01", periods=240, freq="15s", tz="UTC")
    frame = pd.concat([pd.DataFrame({"ts": idx, "host": "h", "metric": f"app.m{i}", "labels": "",
                                     "value": 20 + i * np.arange(240) / 100
                                     + np.cumsum(rng.normal(0, 0.3, 240))}) for i in range(3)])
    fs = fit_summary(frame, "30min", level=0.9)
    tr = trends(frame, "30min")
    assert list(fs["metric"]) == ["app.m0", "app.m1", "app.m2"]
    for (_, row), (_, t) in zip(fs.iterrows(), tr.iterrows()):
        y = frame.loc[frame["metric"] == row["metric"], "value"].to_numpy()[-120:]
        hrs = (idx[-120:] - idx[-1]).total_seconds().to_numpy() / 3600
        r = sm.OLS(y, sm.add_constant(hrs)).fit()
        assert row["n"] == 120 and row["level_now"] == pytest.approx(r.params[0], rel=1e-9)
        assert row["r2"] == pytest.approx(r.rsquared, rel=1e-9)
        assert (row["slope_ci_lower"], row["slope_ci_upper"]) == pytest.approx(
            tuple(r.conf_int(alpha=0.1)[1]), rel=1e-9)
        assert row["durbin_watson"] < 1.0            # a random walk: residuals autocorrelated
        # the vectorised path of trends() gives the same slope and p-value
        assert t["slope_per_hour"] == pytest.approx(row["slope_per_hour"], rel=1e-9)
        assert t["p_value"] == pytest.approx(row["p_value"], rel=1e-9, abs=1e-300)


def test_fit_summary_short_window_is_nan_and_a_bad_level_says_the_range():
    from perfkit.analysis import fit_summary

    s = pd.Series([1.0, 2.0], pd.date_range("2026-01-01", periods=2, freq="1min", tz="UTC"),
                  name="orders.custom")
    row = fit_summary(s).iloc[0]
    assert row["n"] == 2 and np.isnan(row["slope_per_hour"]) and np.isnan(row["r2"])
    with pytest.raises(ValueError, match="between 0 and 1"):
        fit_summary(s, level=95)
