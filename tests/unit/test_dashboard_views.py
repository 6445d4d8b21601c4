"""The page logic in perfkit.dashboard and the figures in perfkit.plots, without Streamlit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
from _procs import wait_until

from perfkit import plots
from perfkit.catalog import CORE_METRICS
from perfkit.dashboard import (
    DEFAULT_REFRESH_S,
    PageCache,
    Runtime,
    WindowLoader,
    action_rows,
    alert_table,
    build_page,
    downsample,
    fit_window,
    metric_overview,
    probe_store,
)
from perfkit.dashboard._crossings import crossings
from perfkit.dashboard._page import crossing_reach, forecast_basis
from perfkit.store import Store


def _frame(n: int, metrics=("system.cpu_usage",), host: str = "h", end=None, step="1s",
           seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    end = end if end is not None else pd.Timestamp.now(tz="UTC").floor("s")
    ts = pd.date_range(end=end, periods=n, freq=step)
    return pd.concat([pd.DataFrame({"ts": ts, "host": host, "metric": m, "labels": "",
                                    "value": 50 + rng.normal(0, 5, n)}) for m in metrics],
                     ignore_index=True)


def test_downsample_keeps_every_extreme_and_cuts_each_series() -> None:
    f = _frame(20_000, metrics=("system.cpu_usage", "cache.hit_rate"))
    f.loc[1234, "value"] = 99.5          # a one-second spike in the first series
    f.loc[20_000 + 777, "value"] = 0.5   # a one-second dip in the second
    d = downsample(f, 500)
    sizes = d.groupby("metric").size()
    assert (sizes <= 502).all() and (sizes >= 400).all()
    assert d["value"].max() == 99.5 and d["value"].min() == 0.5
    for m, g in d.groupby("metric"):
        assert g["ts"].is_monotonic_increasing
        assert g["value"].max() == f[f.metric == m]["value"].max()
        assert g["value"].min() == f[f.metric == m]["value"].min()
    # rows are kept, never invented: every displayed row is a measured one
    assert len(d.merge(f, on=list(f.columns))) == len(d)
    short = _frame(100)
    pd.testing.assert_frame_equal(downsample(short, 500), short)
    with pytest.raises(ValueError, match="max_points"):
        downsample(f, 3)


def test_window_loader_fetches_only_new_rows_and_matches_a_full_read(sqlite_url: str) -> None:
    now = pd.Timestamp.now(tz="UTC").floor("s")
    store = Store(sqlite_url)
    store.write(_frame(600, metrics=CORE_METRICS[:3], end=now - pd.Timedelta("60s")))
    loader = WindowLoader(store, overlap="5s")
    first = loader.frame("5min", now=now)
    assert loader.last_fetch_rows == len(first) > 0
    store.write(_frame(30, metrics=CORE_METRICS[:3], end=now + pd.Timedelta("29s"), seed=1))
    later = now + pd.Timedelta("30s")
    second = loader.frame("5min", now=later)
    assert loader.last_fetch_rows < len(second) / 3  # only the tail was read
    full = store.samples(since=later - pd.Timedelta("5min"))
    key = ["metric", "ts"]
    plain = second.astype({"host": str, "metric": str, "labels": str})
    pd.testing.assert_frame_equal(plain.sort_values(key, ignore_index=True),
                                  full.sort_values(key, ignore_index=True))
    with pytest.raises(ValueError, match="not a duration"):
        loader.frame("fortnight")
    store.close()


def test_fit_window_is_bounded() -> None:
    assert fit_window("24h", "30min") == pd.Timedelta("2h")
    assert fit_window("15min", "6h") == pd.Timedelta("15min")
    assert fit_window("1h", "5min") == pd.Timedelta("30min")


def test_metric_overview_reads_direction_for_the_trend_arrow() -> None:
    f = _frame(60, metrics=("system.cpu_usage", "cache.hit_rate"))
    trends = pd.DataFrame({"metric": ["system.cpu_usage", "cache.hit_rate"], "labels": ["", ""],
                           "trend": ["increasing", "increasing"]})
    ov = metric_overview(f, trends).set_index("metric")
    assert ov.loc["system.cpu_usage", "arrow"] == "↑" and ov.loc["system.cpu_usage", "bad_trend"]
    assert not ov.loc["cache.hit_rate", "bad_trend"]  # a rising hit rate is good
    assert ov.loc["system.cpu_usage", "current"] == pytest.approx(
        f[f.metric == "system.cpu_usage"]["value"].iloc[-1])
    assert ov.loc["database.query_time", "missing"]
    assert set(ov.index) == set(CORE_METRICS)


def test_build_page_and_tick_cache(sqlite_url: str) -> None:
    store = Store(sqlite_url)
    f = _frame(900, metrics=CORE_METRICS, step="2s")
    f.loc[f.metric == "system.memory_usage", "value"] = 97.0
    store.write(f)
    page = build_page(store, window="30min", horizon="30min")
    assert not page.errors, page.errors
    assert page.score.overall is not None and page.score.overall < 100
    assert "system.memory_usage" in set(page.active_alerts["metric"])
    assert "memory_optimization" in set(page.recommendations["action"])
    assert set(page.forecasts["metric"]) == set(CORE_METRICS)
    cache = PageCache(store)
    a = cache.get(window="30min", horizon="30min", host=None, refresh_s=10, now=1000.0)
    b = cache.get(window="30min", horizon="30min", host=None, refresh_s=10, now=1009.0)
    c = cache.get(window="30min", horizon="30min", host=None, refresh_s=10, now=1010.0)
    assert a is b and c is not a
    store.close()


def test_actions_only_run_registered_names_with_valid_params(sqlite_url: str) -> None:
    rt = Runtime(sqlite_url, embedded=False)
    with pytest.raises(ValueError, match="unknown action"):
        rt.act("DROP TABLE samples; --", host="h")
    with pytest.raises(ValueError):
        rt.act("memory_optimization", {"generation": "2; import os"}, host="h")
    assert len(rt.store.actions()) == 0
    t = rt.act("memory_optimization", {"generation": 1}, host="h", dry_run=True)
    row = rt.store.actions().iloc[0]
    assert (row["id"], row["status"], row["params"]["generation"], bool(row["dry_run"])) == \
        (t.action_id, "pending", 1, True)
    with pytest.raises(RuntimeError, match="viewer"):
        rt.set_monitoring(True)
    rt.close()


def test_probe_reports_an_unreachable_store() -> None:
    store = Store("postgresql://postgres@127.0.0.1:1/nowhere")
    st = probe_store(store)
    assert not st.ok and "127.0.0.1:1" in st.url and st.error
    assert "127.0.0.1:1" in st.message and "recovers by itself" in st.message
    store.close()


def test_figures_draw_thresholds_forecast_band_and_states() -> None:
    f = _frame(5000, metrics=("system.cpu_usage",))
    fc = pd.DataFrame({"metric": "system.cpu_usage",
                       "ts": pd.date_range(f.ts.max(), periods=10, freq="1min"),
                       "mean": 50.0, "lower": 40.0, "upper": 60.0})
    fig = plots.metric_figure(f, "system.cpu_usage", forecast=fc, max_points=300)
    assert isinstance(fig, go.Figure)
    line = fig.data[0]
    assert len(line.y) <= 305
    assert {s.name for s in fig.data} >= {"h", "forecast", "forecast interval"}
    levels = sorted(s["y0"] for s in fig.layout.shapes)
    assert levels == [70, 90]  # the catalogue's warning and critical lines
    gauge = plots.health_gauge(72.5)
    assert gauge.data[0].value == 72.5
    svg = plots.health_gauge_svg(72.5, worst="critical")
    assert svg.startswith("<svg") and ">72 / 100</text>" in svg and ">Health score</text>" in svg
    assert f'stroke="{plots.COLORS["critical"]}"' in svg  # one critical metric: not amber
    assert f'stroke="{plots.COLORS["ok"]}"' in plots.health_gauge_svg(95.0)
    empty = plots.health_gauge_svg(None)
    assert "(no data yet)" in empty and ">0 / 100</text>" in empty
    groups = plots.group_scores_figure({"system": 90.0, "cache": None})
    assert list(groups.data[0].text) == ["90", "missing"]
    cost = pd.DataFrame({"group": ["system", "system", "cache"], "penalty": [4.9, 0.0, 1.0],
                         "metric": ["system.memory_usage", "system.cpu_usage", "cache.hit_rate"]})
    bars = plots.group_scores_svg({"system": 50.0, "cache": None}, cost)
    assert bars.index(">system</text>") < bars.index(">cache</text>")  # in the groups' order
    assert f'fill="{plots.COLORS["critical"]}"' in bars and ">missing</text>" in bars
    # hovering a bar names what cost it points, and only that
    assert "<title>system: 50&#10;system.memory_usage: −4.9</title>" in bars
    assert "<title>cache: missing&#10;cache.hit_rate: −1.0</title>" in bars
    ev = pd.DataFrame({"ts": pd.to_datetime(["2026-01-01 00:00", "2026-01-01 00:05"], utc=True),
                       "metric": "system.cpu_usage", "severity": "warning",
                       "state": ["firing", "resolved"]})
    tl = plots.alert_timeline_figure(ev)
    assert tl.data[0].x[0] == pytest.approx(300_000)  # five minutes, in ms
    rule = pd.DataFrame({
        "ts": pd.to_datetime(["2026-01-01 00:01", "2026-01-01 00:02", "2026-01-01 00:04",
                              "2026-01-01 00:03"], utc=True),
        "metric": "cache.hit_rate", "state": ["pending", "firing", "resolved", "firing"],
        "severity": ["anomaly", "anomaly", "anomaly", "anomaly-episode"]})
    tl = plots.alert_timeline_figure(pd.concat([ev, rule]))
    bars = {t.name: t for t in tl.data}
    assert set(bars) == {"warning", "anomaly"}  # the bare episode is not a rule's alert
    assert list(bars["anomaly"].y) == ["cache.hit_rate"]
    assert bars["anomaly"].x[0] == pytest.approx(120_000)  # firing 00:02 to resolved 00:04
    assert bars["anomaly"].marker.color == plots.COLORS["anomaly"]
    acts = pd.DataFrame({"id": [1, 2], "requested_at": pd.to_datetime(["2026-01-01"] * 2, utc=True),
                         "action": "memory_optimization", "status": ["done", "failed"],
                         "verdict": ["improved", None], "dry_run": [False, False],
                         "requested_by": "dashboard"})
    ah = plots.action_history_figure(acts)
    assert {t.name for t in ah.data} == {"improved", "failed"}


def test_action_rows_summarise_before_and_after() -> None:
    acts = pd.DataFrame({"id": [1, 2], "requested_at": pd.to_datetime(["2026-01-01"] * 2, utc=True),
                         "host": "h", "action": ["memory_optimization", "cache_optimization"],
                         "dry_run": [False, True], "requested_by": "dashboard",
                         "status": ["done", "pending"], "verdict": ["improved", None],
                         "before": [{"process.rss": 200.0}, None],
                         "after": [{"process.rss": 150.0}, None], "error": [None, None],
                         "duration_s": [0.5, np.nan]})
    rows = action_rows(acts)
    assert list(rows["id"]) == [2, 1]
    assert list(rows["outcome"]) == ["pending", "improved"]
    assert rows.loc[rows.id == 1, "change"].iloc[0] == "process.rss: 200 MB → 150 MB"


def test_all_in_one_fills_every_core_metric(sqlite_url: str) -> None:
    """The embedded Monitor + demo give all fourteen metrics data (waited for, with a
    deadline far above the seconds it takes, so a busy machine cannot fail it)."""
    rt = Runtime(sqlite_url, embedded=True, rate=20).open()
    try:
        shown: list[pd.DataFrame] = []

        def complete() -> bool:
            page = build_page(rt.store, window="5min", horizon="15min", host=rt.host)
            shown[:] = [page.overview[page.overview["metric"].isin(CORE_METRICS)]]
            missing = list(shown[0].loc[shown[0]["missing"], "metric"])
            assert not missing, f"missing: {missing}"
            return True

        wait_until(complete, 180, "every core metric on the page", every=0.5,
                   retry_on=(AssertionError,))
        ov = shown[0]
        assert rt.demo_running and rt.monitoring
        requests = ov.set_index("metric").loc["application.requests_per_second", "current"]
        assert requests > 0
    finally:
        rt.close()


def test_all_hosts_of_a_shared_store_are_drawn_and_scored(sqlite_url: str) -> None:
    store = Store(sqlite_url)
    store.write(pd.concat([_frame(300, CORE_METRICS, host="web-1:10", step="2s"),
                           _frame(300, CORE_METRICS, host="web-2:20", step="2s", seed=5)]))
    page = build_page(store, window="15min", horizon="15min", host=None)
    assert not page.errors, page.errors
    assert set(page.frame["host"].astype(str)) == {"web-1:10", "web-2:20"}
    fig = plots.metric_figure(page.display, "system.cpu_usage")
    assert [t.name for t in fig.data[:2]] == ["web-1:10", "web-2:20"]
    one = build_page(store, window="15min", horizon="15min", host="web-2:20")
    assert set(one.frame["host"].astype(str)) == {"web-2:20"}
    store.close()


def test_all_hosts_view_reads_the_worst_host_not_the_mean(sqlite_url: str) -> None:
    store = Store(sqlite_url)
    busy = _frame(120, ("system.cpu_usage", "cache.hit_rate"), host="busy", step="2s")
    idle = _frame(120, ("system.cpu_usage", "cache.hit_rate"), host="idle", step="2s", seed=3)
    busy.loc[busy["metric"] == "system.cpu_usage", "value"] = 97.0   # critical at 90
    idle.loc[idle["metric"] == "system.cpu_usage", "value"] = 10.0
    busy.loc[busy["metric"] == "cache.hit_rate", "value"] = 99.0
    idle.loc[idle["metric"] == "cache.hit_rate", "value"] = 50.0    # lower is worse
    store.write(pd.concat([busy, idle]))
    page = build_page(store, window="15min", horizon="15min", host=None)
    ov = page.overview.set_index("metric")
    assert ov.loc["system.cpu_usage", ["current", "status", "host"]].tolist() == \
        [97.0, "critical", "busy"]
    assert ov.loc["cache.hit_rate", ["current", "status", "host"]].tolist() == \
        [50.0, "critical", "idle"]
    alone = build_page(store, window="15min", horizon="15min", host="busy")
    assert page.score.groups["system"] == alone.score.groups["system"] < 100
    store.close()


def test_alert_table_shows_each_series_once_at_its_worst_and_recent_resolutions_first() -> None:
    t = pd.Timestamp("2026-01-01 00:00", tz="UTC")
    alerts = pd.DataFrame({
        "metric": ["system.cpu_usage", "system.cpu_usage", "cache.hit_rate", "cache.hit_rate",
                   "system.disk_usage", "system.disk_usage", "application.error_rate"],
        "labels": "", "severity": ["critical", "warning", "warning", "critical", "critical",
                                   "warning", "critical"],
        "state": ["firing", "firing", "firing", "pending", "resolved", "resolved", "resolved"],
        "since": [t, t, t, t] + [t + pd.Timedelta("1min")] * 2 + [t + pd.Timedelta("2min")],
        "value": [97.0, 97.0, 75.0, 75.0, 70.0, 70.0, 0.5],
        "threshold": [90, 70, 80, 60, 90, 80, 5],
        "message": ["a", "b", "c", "d", "disk below 90", "disk below 80", "errors resolved"]})
    active, recent = alert_table(alerts.sample(frac=1, random_state=3), recent=5)
    assert list(zip(active["metric"], active["severity"], active["state"])) == [
        ("system.cpu_usage", "critical", "firing"), ("cache.hit_rate", "warning", "firing")]
    assert list(active["text"]) == ["system.cpu_usage 97 %, above its critical threshold of 90 %",
                                    "cache.hit_rate 75 %, below its warning threshold of 80 %"]
    assert list(recent["message"]) == ["errors resolved", "disk below 80"]
    empty = pd.DataFrame()
    assert all(len(x) == 0 for x in alert_table(empty))


def test_a_young_window_is_charted_from_its_first_sample_with_a_short_forecast(
        sqlite_url: str) -> None:
    store = Store(sqlite_url)
    now = pd.Timestamp.now(tz="UTC").floor("s")
    f = _frame(30, metrics=CORE_METRICS, step="2s", end=now)  # one minute of data
    store.write(f)
    page = build_page(store, window="15min", horizon="30min", now=now)
    first = f["ts"].min()
    assert page.data_start == first and page.history == now - first
    assert page.history_range() == (first, now)
    # the forecast reaches half the history ahead at most: the past keeps 2/3 of the axis
    assert page.chart_range() == (first, now + (now - first) / 2)  # not now + 30 min
    # one minute of data: too little to draw a forecast, and the chart says so
    assert page.chart_range("system.cpu_usage") == (first, now)
    assert page.forecast_note("system.cpu_usage") == "forecast needs 2 min of data (has 58 s)"
    assert page.chart_range("database.queries_per_second") == (first, now)  # no forecast
    assert page.crossings_wait == pd.Timedelta("2min") - (now - first)
    assert page.crossing_reach == pd.Timedelta(0)
    assert page.forecast_basis == ("Forecasts start at 2 min of data (has 58 s); nothing is "
                                   "drawn or predicted before that.")
    assert len(page.crossings) == 0
    before = _frame(300, metrics=CORE_METRICS, step="2s", end=first - pd.Timedelta("2s"))
    store.write(before)
    older = build_page(store, window="15min", horizon="15min", now=now)  # 11 min of history
    assert older.history_range() == (before["ts"].min(), now)
    start, end = older.chart_range("system.cpu_usage")
    assert end == now + (now - before["ts"].min()) / 2
    assert older.forecast_note("system.cpu_usage") == ""
    assert (now - start) / (end - start) == pytest.approx(2 / 3)
    assert older.crossings_wait == pd.Timedelta(0)
    later = now + pd.Timedelta("1h")  # a window with no samples yet
    empty = build_page(store, window="15min", horizon="30min", now=later)
    assert empty.data_start is None and empty.history == pd.Timedelta(0)
    assert empty.history_range() == (later - pd.Timedelta("15min"), later)
    store.close()


def test_forecast_band_is_cut_to_the_data_range_and_to_the_time_axis() -> None:
    end = pd.Timestamp("2026-01-01 01:00", tz="UTC")
    f = _frame(100, metrics=("system.memory_available",), end=end, step="2s")
    f["value"] = np.r_[np.full(50, 20.0), np.full(50, 14.5)]  # a level shift: range 14.5–20
    fc = pd.DataFrame({"metric": "system.memory_available",
                       "ts": pd.date_range(end, periods=60, freq="1min"),
                       "mean": np.linspace(14.5, -80.0, 60),         # runs away downwards
                       "lower": -100.0, "upper": np.linspace(15, 240.0, 60)})
    fig = plots.metric_figure(f, "system.memory_available", forecast=fc,
                              x_range=(f.ts.min(), end + pd.Timedelta("10min")))
    band, mean = (next(t for t in fig.data if t.name == n)
                  for n in ("forecast interval", "forecast"))
    assert [t.name for t in fig.data].count("forecast interval") == 1  # one shape, no gaps
    n = len(mean.x)
    assert n == 12  # 0..10 min from the last sample, and the first point past the axis end
    assert pd.Timestamp(mean.x[0]) == f["ts"].max() and mean.y[0] == 14.5  # starts at the data
    assert band.fill == "toself" and len(band.x) == 2 * n and band.x[0] == band.x[-1]
    up, lo = np.array(band.y[:n]), np.array(band.y[n:])[::-1]
    m = np.array(mean.y)
    assert (lo <= m).all() and (m <= up).all()  # lower <= mean <= upper everywhere
    assert up.max() == pytest.approx(25.5) and m.min() == 0.0  # cut; mean clipped at 0 GB
    assert np.isfinite(band.y).all()
    later = fc.assign(ts=fc["ts"] + pd.Timedelta("30s"))  # a forecast stamped after the data
    m2 = next(t for t in plots.metric_figure(f, "system.memory_available", forecast=later).data
              if t.name == "forecast")
    assert pd.Timestamp(m2.x[0]) == f["ts"].max() and m2.y[0] == 14.5  # joined, no gap
    lo, hi = fig.layout.yaxis.range
    assert lo > -1 and hi < 22  # thresholds 0.25/1 and the data, not the runaway mean
    pct = plots.percentiles_figure(f, "database.query_time", x_range=(f.ts.min(), end))
    assert tuple(pd.Timestamp(x) for x in pct.layout.xaxis.range) == (f.ts.min(), end)


def test_opening_the_runtime_collects_once_not_twice_in_a_row(sqlite_url: str) -> None:
    # Two collections milliseconds apart would make the second CPU reading 0 or 100 %.
    rt = Runtime(sqlite_url, embedded=True, demo=False, interval=3600).open()
    try:
        wait_until(lambda: rt.monitor.health()["collectors"]["system"]["runs"] >= 1, 60,
                   "the Monitor thread's first collection")
    finally:
        rt.close()  # joins the thread: no collection can follow
    assert rt.monitor.health()["collectors"]["system"]["runs"] == 1
    with Store(sqlite_url) as store:
        assert len(store.samples(metric="process.rss")) == 1


def test_an_empty_or_young_chart_stays_readable() -> None:
    end = pd.Timestamp("2026-01-01 01:00", tz="UTC")
    x_range = (end - pd.Timedelta("15min"), end)
    empty = _frame(0)
    for fig in (plots.metric_figure(empty, "system.cpu_usage", x_range=x_range),
                plots.percentiles_figure(empty, "database.query_time", x_range=x_range),
                plots.alert_timeline_figure(pd.DataFrame(), x_range=x_range),
                plots.action_history_figure(pd.DataFrame(), x_range=x_range)):
        assert fig.layout.xaxis.type == "date"
        assert tuple(pd.Timestamp(x) for x in fig.layout.xaxis.range) == x_range
    one = _frame(1)  # a fresh window's first sample: a dot, since a line needs two points
    assert plots.metric_figure(one, "system.cpu_usage").data[0].mode == "lines+markers"
    assert plots.metric_figure(_frame(50), "system.cpu_usage").data[0].mode == "lines"


def test_anomaly_episodes_pair_starts_and_ends_and_shade_their_metric_only() -> None:
    from perfkit.dashboard._unusual import anomaly_episodes, unusual_now

    t = pd.Timestamp("2026-01-01 00:00", tz="UTC")
    m = pd.Timedelta("1min")
    ev = pd.DataFrame({
        "ts": [t + m, t + 2 * m, t + 3 * m, t + 4 * m, t + 5 * m],
        "host": ["h", "h", "h", "h", "g"], "labels": "",
        "metric": ["cache.hit_rate", "system.cpu_usage", "cache.hit_rate", "system.cpu_usage",
                   "system.cpu_usage"],
        "severity": ["anomaly-episode"] * 4 + ["critical"],
        "state": ["resolved", "firing", "firing", "resolved", "firing"],
        "value": [0.9, 0.7, 0.6, 0.95, 97.0], "threshold": 0.5,
        "message": ["level", "spike", "flat line", "spike", "cpu high"]})
    ep = anomaly_episodes(ev, start=t, end=t + 10 * m)
    # an end whose start is older than the events read starts at the window's start;
    # an episode still open runs to now; the threshold alert is not an episode
    assert ep[["metric", "start", "end", "score", "pattern", "open"]].values.tolist() == [
        ["cache.hit_rate", t, t + m, 0.9, "level", False],
        ["system.cpu_usage", t + 2 * m, t + 4 * m, 0.95, "spike", False],
        ["cache.hit_rate", t + 3 * m, t + 10 * m, 0.6, "flat line", True]]
    now = unusual_now(ep)
    assert now[["metric", "host", "since", "pattern"]].values.tolist() == [
        ["cache.hit_rate", "h", t + 3 * m, "flat line"]]
    assert anomaly_episodes(pd.DataFrame(), start=t, end=t).empty
    frame = _frame(600, ("system.cpu_usage",), end=t + 10 * m)
    fig = plots.metric_figure(frame, "system.cpu_usage", anomalies=ep,
                              x_range=(t, t + 10 * m))
    bands = [s for s in fig.layout.shapes if s.fillcolor == plots.COLORS["anomaly"]]
    assert [(pd.Timestamp(b.x0), pd.Timestamp(b.x1)) for b in bands] == [(t + 2 * m, t + 4 * m)]
    assert [a.text for a in fig.layout.annotations if "unusual" in str(a.text)] == \
        ["unusual: spike"]


def test_crossings_look_four_histories_ahead_from_two_minutes_up_to_the_horizon() -> None:
    hz = pd.Timedelta("30min")
    assert crossing_reach(pd.Timedelta("119s"), hz) == pd.Timedelta(0)
    assert crossing_reach(pd.Timedelta("2min"), hz) == pd.Timedelta("8min")
    assert crossing_reach(pd.Timedelta("5min"), hz) == pd.Timedelta("20min")
    assert crossing_reach(pd.Timedelta("7.5min"), hz) == hz      # the old wait: now the whole
    assert crossing_reach(pd.Timedelta("3h"), hz) == hz
    assert crossing_reach(pd.Timedelta("3h"), pd.Timedelta("6h")) == pd.Timedelta("6h")
    assert forecast_basis(pd.Timedelta("2min"), hz) == (
        "Forecast from 2 min of data: a short history, so crossings are looked for only 8 min "
        "ahead (4× the history), the whole 30 min from 7 min 30 s of data.")
    assert forecast_basis(pd.Timedelta("7.5min"), hz) == ""


def test_crossings_beyond_a_young_metrics_reach_are_dropped_or_only_possible() -> None:
    now = pd.Timestamp("2026-01-01 12:00", tz="UTC")
    ts = pd.date_range(end=now, periods=61, freq="2s")             # 2 min of cpu, 1 min of mem
    frame = pd.concat([pd.DataFrame({"metric": "system.cpu_usage", "ts": ts}),
                       pd.DataFrame({"metric": "system.memory_usage", "ts": ts[30:]})])
    m = pd.Timedelta
    ttt = pd.DataFrame({
        "metric": ["system.cpu_usage"] * 3 + ["system.memory_usage"],
        "severity": ["warning", "critical", "critical", "warning"],
        "threshold": [70.0, 90.0, 90.0, 80.0], "direction": "higher",
        "eta_expected": [m("5min"), m("20min"), pd.NaT, m("1min")],
        "eta_earliest": [m("3min"), m("6min"), m("12min"), m("30s")],
        "eta_latest": [m("9min"), pd.NaT, pd.NaT, m("2min")]})
    out = crossings(ttt, frame, pd.Timedelta("30min"))              # cpu's reach: 8 min
    assert list(zip(out["severity"], out["expected"])) == [("warning", True), ("critical", False)]
    assert out["text"].iloc[0].startswith("system.cpu_usage is expected to rise above its "
                                          "warning threshold (70 %) in about 5 min")
    assert out["text"].iloc[1] == ("system.cpu_usage could rise above its critical threshold "
                                   "(90 %) in 6 min (pessimistic edge)")


def test_a_rise_is_predicted_from_three_minutes_of_data(sqlite_url: str) -> None:
    store = Store(sqlite_url)
    now = pd.Timestamp.now(tz="UTC").floor("s")
    ts = pd.date_range(end=now, periods=91, freq="2s")              # 3 min, 40 % → 62 %
    rise = 40 + np.linspace(0, 22, len(ts)) + np.random.default_rng(3).normal(0, 0.5, len(ts))
    store.write(pd.DataFrame({"ts": ts, "host": "h", "metric": "system.cpu_usage",
                              "labels": "", "value": rise}))
    page = build_page(store, window="15min", horizon="30min", now=now)
    store.close()
    assert page.crossing_reach == pd.Timedelta("12min")
    assert page.forecast_basis.startswith("Forecast from 3 min of data: a short history, so "
                                          "crossings are looked for only 12 min ahead")
    cpu = page.crossings[page.crossings["metric"] == "system.cpu_usage"]
    warning = cpu[cpu["severity"] == "warning"]
    assert len(warning) == 1 and bool(warning["expected"].iloc[0])
    # 22 points in 3 min: 70 % about 1 min 20 s after the last sample
    assert pd.Timedelta("40s") < warning["eta_expected"].iloc[0] < pd.Timedelta("3min")


def test_warming_builds_the_first_page_a_visitor_would_wait_for(sqlite_url: str) -> None:
    from perfkit.dashboard._warm import warm

    with Store(sqlite_url) as store:
        f = _frame(120, metrics=CORE_METRICS, step="2s")
        f.loc[f.metric == "system.memory_usage", "value"] = 97.0
        store.write(f)
    rt = Runtime(sqlite_url, embedded=False).open()   # a viewer: nothing to wait for
    try:
        page = warm(rt, window="15min", horizon="30min")
        assert page is not None and not page.errors, page and page.errors
        assert page.score.overall is not None and page.score.overall < 100
        assert "system.memory_usage" in set(page.active_alerts["metric"])
        # the first visitor's request (the default host, window, horizon and refresh)
        # finds that very page in the cache
        first, _ = rt.page(window="15min", horizon="30min", host=rt.hosts()[0],
                           refresh_s=DEFAULT_REFRESH_S, recent_s=3600.0)
        assert first is page
        # with its first screen's figures, which a visit reuses instead of building them
        from perfkit.dashboard import _sections as sections

        cpu = page.figure("fig_system.cpu_usage", lambda: pytest.fail("built again"))
        assert cpu is sections.metric_figure(page, "system.cpu_usage")
        assert len(cpu.data[0].y) > 0 and cpu.layout.title.text == "system.cpu_usage"
        assert sections.timeline_figure(page) is sections.timeline_figure(first)
    finally:
        rt.close()
