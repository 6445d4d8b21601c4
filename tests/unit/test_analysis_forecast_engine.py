"""Forecast engine: estimates equal statsmodels', bounded cost, bad input, stated reasons."""

from __future__ import annotations

import tracemalloc
import warnings

import numpy as np
import pandas as pd
import pytest

from perfkit.analysis import MAX_HISTORY_POINTS, MAX_HORIZON_STEPS, forecast
from perfkit.analysis._core import forecast_array
from perfkit.analysis._ets import fit_ets

IDX = pd.date_range("2026-01-01", periods=3000, freq="1min", tz="UTC")


def _statsmodels_fit(y: np.ndarray, damped: bool):
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel

    if damped:      # known start (level y[0], slope 0), phi allowed up to 1
        mod = ETSModel(pd.Series(y), error="add", trend="add", damped_trend=True,
                       initialization_method="known", initial_level=y[0], initial_trend=0.0)
    else:           # statsmodels' default: the initial level is estimated with alpha
        mod = ETSModel(pd.Series(y), error="add")
    if damped:
        mod.set_bounds({"damping_trend": (0.8, 1.0)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mod.fit(disp=False, maxiter=2000)


@pytest.mark.parametrize("damped", [False, True])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_estimates_forecasts_and_intervals_equal_statsmodels_etsmodel(damped, seed):
    """SES: our least-squares fit reaches statsmodels' optimum; damped Holt: its estimates."""
    rng = np.random.default_rng(seed)
    n = 300
    y = 50 + np.cumsum(rng.normal(0.05, 0.4, n)) + rng.normal(0, 1, n)
    f = fit_ets(y, "damped" if damped else "ses")
    res = _statsmodels_fit(y, damped)
    sse_sm = float(res.resid @ res.resid)
    # ours is never worse than statsmodels' optimum, and not better by more than its tolerance
    assert f.sse <= sse_sm * (1 + 1e-5)
    assert f.sse >= sse_sm * (1 - 1e-3)
    sf = res.get_prediction(start=n, end=n + 9).summary_frame(alpha=0.2)
    h = np.arange(1, 11)
    scale = float(np.std(y))
    np.testing.assert_allclose(f.point(h), sf["mean"], atol=0.02 * scale)
    if damped:      # statsmodels' own estimates: the same numbers, the same point forecast
        np.testing.assert_allclose([f.alpha, f.beta, f.phi], res.params.iloc[:3], rtol=1e-12)
        np.testing.assert_allclose(f.point(h), sf["mean"], rtol=1e-9)
    if damped and res.params.iloc[2] > 1 - 1e-9:
        # statsmodels' damped variance divides by 1 - phi: at phi = 1 use its undamped model
        from statsmodels.tsa.exponential_smoothing.ets import ETSModel

        undamped = ETSModel(pd.Series(y), error="add", trend="add", initialization_method="known",
                            initial_level=y[0], initial_trend=0.0)
        sm = undamped.smooth(res.params.iloc[:2].to_numpy())
        sf = sm.get_prediction(start=n, end=n + 9).summary_frame(alpha=0.2)
    half = 1.2815515655446004 * np.sqrt(f.variance(h))
    np.testing.assert_allclose(f.point(h) + half, sf["pi_upper"], atol=0.05 * scale)


def test_horizon_over_the_step_limit_is_a_valueerror_naming_the_limit():
    s = pd.Series(np.random.default_rng(0).normal(10, 1, 100),
                  pd.date_range("2026-01-01", periods=100, freq="1s", tz="UTC"),
                  name="orders.custom")
    with pytest.raises(ValueError, match=f"MAX_HORIZON_STEPS={MAX_HORIZON_STEPS:,}"):
        forecast(s, "6h")                                   # 21,600 one-second steps
    assert len(forecast(s, "5h")) == 18_000                 # under the limit: every step
    # in a frame the over-limit series is left out with the reason; the others are forecast
    slow = pd.Series(np.arange(100.0), pd.date_range("2026-01-01", periods=100, freq="1min",
                                                     tz="UTC"), name="orders.slow")
    frame = pd.concat([pd.DataFrame({"ts": x.index, "host": "h", "metric": x.name,
                                     "value": x.to_numpy(), "labels": ""}) for x in (s, slow)])
    f = forecast(frame, "6h")
    assert set(f["metric"]) == {"orders.slow"}
    assert "MAX_HORIZON_STEPS" in f.attrs["skipped"]["orders.custom"]


def test_history_over_the_point_limit_fits_only_the_newest_points():
    n = MAX_HISTORY_POINTS + 5_000
    idx = pd.date_range("2026-01-01", periods=n, freq="5s", tz="UTC")
    y = np.r_[np.full(5_000, 1_000.0), np.random.default_rng(1).normal(10, 1, n - 5_000)]
    f = forecast(pd.Series(y, idx, name="orders.custom"), "1min", shift=False)
    assert f["fit_start"].iloc[0] == idx[5_000]             # the old 1,000s were not used
    assert (f["n"] == MAX_HISTORY_POINTS).all()
    assert f["mean"].between(8, 12).all()


def test_memory_grows_with_history_plus_horizon_not_their_product():
    """200k points and a 24 h horizon at 5 s (17,280 steps): an n x H matrix would be 27 GB."""
    n = 200_000
    rng = np.random.default_rng(2)
    s = pd.Series(20 + np.cumsum(rng.normal(0, 0.05, n)),
                  pd.date_range("2026-01-01", periods=n, freq="5s", tz="UTC"), name="orders.custom")
    tracemalloc.start()
    try:
        f = forecast(s, "24h")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(f) == 17_280 and f[["mean", "lower", "upper"]].notna().all().all()
    assert peak < 150 * 2 ** 20, f"peak {peak / 2 ** 20:.0f} MiB"


def test_each_row_carries_model_level_and_reason():
    rng = np.random.default_rng(3)
    s = pd.Series(10 + rng.normal(0, 1, 360), IDX[:360], name="orders.custom")
    f = forecast(s, "30min", level=0.95)
    assert (f["level"] == 0.95).all()
    assert f["model"].iloc[0] and f["model"].nunique() == 1
    assert f["reason"].iloc[0] and f["reason"].nunique() == 1


def test_constant_series_is_a_naive_forecast_with_the_reason():
    f = forecast(pd.Series(5.0, IDX[:30], name="orders.custom"), "10min")
    assert (f["mean"] == 5).all() and (f["upper"] - f["lower"] == 0).all()
    assert f["reason"].iloc[0].startswith("constant series")


def test_two_points_say_how_many_are_needed():
    with pytest.raises(ValueError, match="needs at least 3"):
        forecast(pd.Series([1.0, 2.0], IDX[:2], name="orders.custom"))
    f = forecast(pd.Series([1.0, 2.0], IDX[:2], name="orders.custom"), "2min", method="naive")
    assert list(f["mean"]) == [2.0, 2.0]


def test_nan_and_inf_in_history_are_dropped_not_propagated():
    y = pd.Series(np.linspace(10, 20, 120), IDX[:120], name="orders.custom")
    y.iloc[[3, 50, 90]] = [np.nan, np.inf, -np.inf]
    f = forecast(y, "10min")
    assert np.isfinite(f[["mean", "lower", "upper"]].to_numpy()).all()
    assert (f["n"] <= 117).all()
    with pytest.raises(ValueError, match="finite points"):
        forecast_array(np.arange(5.0), np.array([1, np.nan, np.inf, np.nan, 2.0]), 1.0, 3)


def test_gap_longer_than_the_window_leaves_the_series_out_with_a_reason():
    idx = IDX[:100].append(IDX[2000:2002])      # 100 points, a 31 h gap, then 2 points
    frame = pd.DataFrame({"ts": idx, "host": "h", "metric": "orders.custom", "labels": "",
                          "value": np.arange(102.0)})
    f = forecast(frame, "10min", window="30min")
    assert f.empty and "2 point(s)" in f.attrs["skipped"]["orders.custom"]
    with pytest.raises(ValueError, match="needs at least 3"):
        forecast(pd.Series(np.arange(102.0), idx, name="orders.custom"), "10min", window="30min")


def test_non_monotonic_index_is_sorted_by_forecast_and_refused_by_the_array_api():
    rng = np.random.default_rng(4)
    s = pd.Series(10 + rng.normal(0, 1, 200), IDX[:200], name="orders.custom")
    shuffled = s.sample(frac=1.0, random_state=0)
    pd.testing.assert_frame_equal(forecast(shuffled, "10min"), forecast(s, "10min"))
    x = np.array([0.0, 2.0, 1.0, 3.0, 4.0])
    with pytest.raises(ValueError, match="strictly increasing"):
        forecast_array(x, np.arange(5.0), 1.0, 3)


def test_seasonal_with_less_than_two_seasons_says_what_it_needs():
    s = pd.Series(np.sin(np.arange(1440) / 1440 * 2 * np.pi * 1.5), IDX[:1440].append(
        pd.date_range(IDX[1439] + pd.Timedelta("1min"), periods=0, freq="1min")),
        name="orders.custom")
    with pytest.raises(ValueError, match=r"two seasons \(48 h"):
        forecast(s, "30min", method="seasonal")
    # auto on the same day of data: not seasonal, and the reason says what it used
    f = forecast(s, "30min")
    assert f["model"].iloc[0] != "seasonal" and f["reason"].iloc[0]


def test_worker_processes_give_the_same_frame_in_the_same_order():
    rng = np.random.default_rng(5)
    idx = IDX[:300]
    frame = pd.concat([pd.DataFrame({"ts": idx, "host": "h", "metric": f"app.m{i}", "labels": "",
                                     "value": 50 + np.cumsum(rng.normal(0, 0.3, 300))})
                       for i in range(10)], ignore_index=True)
    one = forecast(frame, "10min", progress=False)
    pd.testing.assert_frame_equal(forecast(frame, "10min", jobs=2, progress=False), one)
    assert list(dict.fromkeys(one["metric"])) == [f"app.m{i}" for i in range(10)]


def _blas_threads(chunk: list[int]) -> list[int]:
    from threadpoolctl import threadpool_info

    return [max(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas")] * len(
        chunk)


def test_worker_processes_run_blas_on_one_thread():
    """The workers already fill the cores; BLAS threads on top of them oversubscribe."""
    from perfkit.analysis._parallel import map_chunks

    assert map_chunks(_blas_threads, list(range(8)), 2) == [1] * 8


def test_preloaded_modules_are_imported_before_the_workers_start():
    """Forked workers inherit what the parent imported, instead of each importing it."""
    import sys

    from perfkit.analysis._parallel import map_chunks

    sys.modules.pop("colorsys", None)
    assert map_chunks(_blas_threads, list(range(8)), 2, preload=("colorsys",)) == [1] * 8
    assert "colorsys" in sys.modules


def _bad_input(case: str) -> tuple[pd.Series | pd.DataFrame, dict]:
    rng = np.random.default_rng(6)
    noisy = pd.Series(10 + rng.normal(0, 1, 200), IDX[:200], name="orders.custom")
    if case == "constant":
        return pd.Series(7.0, IDX[:50], name="orders.custom"), {}
    if case == "two points":
        return noisy.iloc[:2], {}
    if case == "nan and inf":
        s = noisy.copy()
        s.iloc[[5, 60, 199]] = [np.nan, np.inf, -np.inf]
        return s, {}
    if case == "nan and inf in a frame":
        s, _ = _bad_input("nan and inf")
        return pd.DataFrame({"ts": s.index, "host": "h", "metric": s.name, "labels": "",
                             "value": s.to_numpy()}), {}
    if case == "gap longer than the window":
        idx = IDX[:100].append(IDX[2000:2002])
        return pd.Series(np.arange(102.0), idx, name="orders.custom"), {"window": "30min"}
    if case == "non-monotonic index":
        return noisy.sample(frac=1.0, random_state=1), {}
    assert case == "seasonal with one day"
    return pd.Series(np.sin(np.arange(1440) / 1440 * 2 * np.pi), IDX[:1440],
                     name="orders.custom"), {"method": "seasonal"}


@pytest.mark.parametrize(("case", "outcome", "says"), [
    ("constant", "forecast", r"^constant series"),
    ("two points", "error", r"2 point\(s\); 'auto' needs at least 3 finite points"),
    ("nan and inf", "forecast", r"3 NaN/inf sample\(s\) dropped$"),
    ("nan and inf in a frame", "forecast", r"3 NaN/inf sample\(s\) dropped$"),
    ("gap longer than the window", "error", r"2 point\(s\); 'auto' needs at least 3"),
    ("non-monotonic index", "forecast", r"."),
    ("seasonal with one day", "error", r"needs at least two seasons \(48 h\) of history; "
                                       r"this series spans 24\.0 h"),
])
def test_bad_input_is_a_forecast_with_its_reason_or_a_valueerror_saying_what_is_needed(
        case, outcome, says):
    data, kw = _bad_input(case)
    if outcome == "error":
        with pytest.raises(ValueError, match=says):
            forecast(data, "10min", **kw)
        return
    f = forecast(data, "10min", **kw)
    assert len(f) == 10 and np.isfinite(f[["mean", "lower", "upper"]].to_numpy()).all()
    assert (f["lower"] <= f["mean"]).all() and (f["mean"] <= f["upper"]).all()
    assert f["reason"].str.contains(says).all()
    if case == "constant":
        assert (f["mean"] == 7.0).all() and (f["upper"] == f["lower"]).all()
    if case == "non-monotonic index":       # sorted first: the same forecast as in order
        s = data.sort_index()
        pd.testing.assert_frame_equal(f, forecast(s, "10min"))
    if case.startswith("nan"):              # fitted on the 197 finite samples
        assert (f["n"] <= 197).all()
