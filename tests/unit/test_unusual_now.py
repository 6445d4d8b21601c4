""""Unusual now" from the store: episodes older than the window, their peak so far, and
the ends a stopped (or died) Monitor writes."""

from __future__ import annotations

import numpy as np
import pandas as pd

import perfkit
from perfkit._anomaly_watch import STOPPED, AnomalyWatch
from perfkit.collectors import Reading
from perfkit.dashboard import build_page
from perfkit.dashboard._unusual import unusual_now


def _spiky(n: int, at: int) -> np.ndarray:
    v = np.random.default_rng(0).normal(10, 1, n)
    v[at] += 8
    v[at + 1] += 40  # the second anomalous sample scores higher than the first
    return v


class Feed:
    name = "feed"

    def __init__(self, values: np.ndarray) -> None:
        self.values = iter(values.tolist())

    def collect(self) -> list[Reading]:
        return [Reading("custom.value", next(self.values))]


def _episode_events(store: perfkit.Store) -> pd.DataFrame:
    store.flush()
    ev = store.alert_events(metric="custom.value")
    return ev[ev["severity"] == "anomaly-episode"].reset_index(drop=True)


def test_an_episode_opened_before_the_window_is_unusual_now(sqlite_url: str) -> None:
    store = perfkit.Store(sqlite_url)
    now = pd.Timestamp.now(tz="UTC").floor("s")
    store.write_alert_events(pd.DataFrame({
        "ts": [now - pd.Timedelta("40min"), now - pd.Timedelta("40min"),
               now - pd.Timedelta("50min"), now - pd.Timedelta("45min")],
        "host": "h", "metric": ["system.cpu_usage", "system.cpu_usage", "cache.hit_rate",
                                "cache.hit_rate"],
        "severity": "anomaly-episode", "state": ["firing", "firing", "firing", "resolved"],
        "value": [0.6, 0.9, 0.7, 0.8], "threshold": 0.5,
        "message": ["level", "variance", "spike", "spike"]}))
    store.write(pd.DataFrame({"ts": pd.date_range(end=now, periods=30, freq="5s"), "host": "h",
                              "metric": "system.cpu_usage", "value": 20.0, "labels": ""}))
    store.flush()
    page = build_page(store, window="15min", horizon="5min", now=now)
    got = unusual_now(page.anomalies)
    # the open one, with its real start and the peak its repeated start carries; the
    # episode that ended before the window is not unusual now
    assert got[["metric", "since", "score", "pattern"]].values.tolist() == [
        ["system.cpu_usage", now - pd.Timedelta("40min"), 0.9, "variance"]]
    latest = store.latest_alert_events("anomaly-episode", host="h")
    assert latest[["metric", "state"]].values.tolist() == [
        ["cache.hit_rate", "resolved"], ["system.cpu_usage", "firing"]]
    assert store.latest_alert_events("anomaly-episode", host="other").empty


def test_the_peak_so_far_is_written_and_shown_while_the_episode_is_open(sqlite_url: str
                                                                       ) -> None:
    mon = perfkit.Monitor(sqlite_url, host="h")
    mon.add_collector(Feed(_spiky(160, 150)))
    for _ in range(152):
        mon.collect()
    ev = _episode_events(mon.store)
    assert ev["state"].tolist() == ["firing", "firing"]
    assert ev["ts"].nunique() == 1 and ev["value"].iloc[1] > ev["value"].iloc[0]
    live = mon.anomalies()
    page = build_page(mon.store, window="15min", horizon="5min")
    row = unusual_now(page.anomalies).query("metric == 'custom.value'").iloc[0]
    assert row["score"] == live.query("metric == 'custom.value'")["score"].iloc[0] \
        == ev["value"].iloc[1]
    assert row["since"] == ev["ts"].iloc[0]
    assert len(page.anomalies.query("metric == 'custom.value'")) == 1  # one episode
    from perfkit.api._ops import anomaly_events

    api = anomaly_events(mon, "1h").query("metric == 'custom.value'")
    assert api[["state", "score"]].values.tolist() == [["firing", ev["value"].iloc[1]]]


def test_stop_ends_the_open_episodes_so_none_stays_unusual(sqlite_url: str) -> None:
    mon = perfkit.Monitor(sqlite_url, host="h")
    mon.add_collector(Feed(_spiky(160, 150)))
    for _ in range(152):
        mon.collect()
    assert "custom.value" in set(mon.anomalies()["metric"])
    mon.stop()
    ev = _episode_events(mon.store)
    assert ev["state"].tolist()[-1] == "resolved" and ev["message"].iloc[-1] == STOPPED
    assert mon.anomalies().empty
    page = build_page(mon.store, window="15min", horizon="5min")
    assert "custom.value" not in set(unusual_now(page.anomalies)["metric"])
    ended = page.anomalies.query("metric == 'custom.value'")
    assert ended["open"].tolist() == [False] and ended["score"].iloc[0] == ev["value"].max()


def test_a_monitor_restarted_on_the_same_host_ends_what_the_last_run_left_open(
        sqlite_url: str) -> None:
    store = perfkit.Store(sqlite_url)
    opened = pd.Timestamp.now(tz="UTC") - pd.Timedelta("1h")
    store.write_alert_events(pd.DataFrame({
        "ts": [opened], "host": "h", "metric": "custom.value", "severity": "anomaly-episode",
        "state": "firing", "value": 0.7, "threshold": 0.5, "message": "level"}))
    mon = perfkit.Monitor(store, host="h")
    mon.add_collector(Feed(np.full(3, 10.0)))
    first = mon.collect()
    mon.collect()
    ev = _episode_events(store)
    assert ev["state"].tolist() == ["firing", "resolved"]
    assert ev["message"].iloc[1] == STOPPED and ev["ts"].iloc[1] < first["ts"].min()
    assert ev["value"].iloc[1] == 0.7


def test_a_monitor_that_died_leaves_nothing_unusual_once_its_series_fall_silent(
        sqlite_url: str) -> None:
    mon = perfkit.Monitor(sqlite_url, host="h")
    mon.add_collector(Feed(_spiky(160, 150)))
    for _ in range(152):
        mon.collect()
    mon.store.flush()  # and no stop(): the process died with the episode open
    last = mon.store.samples(metric="custom.value")["ts"].max()
    live = build_page(mon.store, window="15min", horizon="5min", now=last)
    assert "custom.value" in set(unusual_now(live.anomalies)["metric"])
    later = build_page(mon.store, window="15min", horizon="5min",
                       now=last + pd.Timedelta("5min"))
    assert "custom.value" not in set(unusual_now(later.anomalies)["metric"])
    ep = later.anomalies.query("metric == 'custom.value'")
    assert ep["end"].tolist() == [last] and not ep["open"].any()  # ended at its last sample
    gone = build_page(mon.store, window="15min", horizon="5min",
                      now=last + pd.Timedelta("1h"))
    assert gone.anomalies.query("metric == 'custom.value'").empty


def test_close_resolves_firing_anomaly_rules_and_forgets_the_states() -> None:
    v = _spiky(153, 150)
    ts = pd.date_range("2024-01-01", periods=len(v), freq="s", tz="UTC")
    frame = pd.DataFrame({"ts": ts, "host": "", "metric": "cache.hit_rate", "value": v,
                          "labels": ""})
    rule = perfkit.AlertRule("cache.hit_rate", kind="anomaly", min_score=0.5)
    watch = AnomalyWatch()
    watch.update(frame, {("cache.hit_rate", ""): rule})
    ended = watch.close(ts[-1])
    assert sorted(ended["severity"]) == ["anomaly", "anomaly-episode"]
    assert set(ended["state"]) == {"resolved"} and set(ended["message"]) == {STOPPED}
    assert not watch.states and not watch.runs and watch.close(ts[-1]).empty


def test_demo_phases_and_episodes_are_not_counted_or_drawn_as_alerts(sqlite_url: str) -> None:
    from perfkit import plots
    from perfkit.demo._load import PHASE_METRIC, PHASE_SEVERITY

    store = perfkit.Store(sqlite_url)
    now = pd.Timestamp.now(tz="UTC").floor("s")
    ts = pd.date_range(end=now, periods=60, freq="5s")
    store.write(pd.DataFrame({"ts": ts, "host": "h", "metric": "system.cpu_usage",
                              "value": 20.0, "labels": ""}))
    store.write_alert_events(pd.DataFrame({
        "ts": [now - pd.Timedelta("4min"), now - pd.Timedelta("3min")], "host": "h",
        "metric": [PHASE_METRIC, "system.cpu_usage"],
        "severity": [PHASE_SEVERITY, "anomaly-episode"], "state": "firing",
        "value": [np.nan, 0.8], "threshold": [np.nan, 0.5], "message": ["cpu_heavy", "level"]}))
    store.flush()
    page = build_page(store, window="15min", horizon="5min", now=now)
    assert page.active_alerts.empty and page.score is not None
    assert page.score.overall == 100.0
    fig = plots.alert_timeline_figure(page.alert_events, until=now)
    assert not fig.data
    assert any("no alert events" in str(a.text) for a in fig.layout.annotations)


def test_an_anomaly_rule_reaches_the_store_alerts_timeline_band_and_api(sqlite_url: str
                                                                       ) -> None:
    from fastapi.testclient import TestClient

    from perfkit import api, plots

    rule = perfkit.AlertRule("cache.hit_rate", kind="anomaly", min_score=0.5, for_="20s")
    mon = perfkit.Monitor(sqlite_url, host="h", alert_rules=[rule])
    v = _spiky(160, 150)
    end = pd.Timestamp.now(tz="UTC").floor("s")
    ts = pd.date_range(end=end, periods=len(v), freq="10s")
    # the frame a collection would hand the Monitor's hooks, samples stored as collected
    frame = pd.DataFrame({"ts": ts, "host": "h", "metric": "cache.hit_rate", "value": v,
                          "labels": ""})
    mon.store.write(frame)
    mon._score_anomalies(frame)
    mon.store.flush()
    ev = mon.store.alert_events(host="h", metric="cache.hit_rate")
    rule_ev = ev[ev["severity"] == "anomaly"]
    assert rule_ev["state"].tolist() == ["pending", "firing"]
    assert rule_ev["ts"].tolist() == [ts[150], ts[152]]  # fires once 20 s have passed
    assert rule_ev["threshold"].tolist() == [0.5, 0.5]
    episode = ev[ev["severity"] == "anomaly-episode"]
    assert (episode["ts"] == ts[150]).all() and episode["value"].max() >= 0.5
    pattern = episode["message"].iloc[-1]  # the peak's, repeated as the peak rose
    assert f"unusual ({pattern}, score" in rule_ev["message"].iloc[1]
    now = mon.alerts()
    assert now.loc[now["severity"] == "anomaly", ["state", "since"]].values.tolist() == [
        ["firing", ts[152]]]
    page = build_page(mon.store, window="1h", horizon="5min", host="h", now=end)
    timeline = plots.alert_timeline_figure(page.alert_events, until=end)
    assert [t.name for t in timeline.data] == ["anomaly"]
    assert list(timeline.data[0].y) == ["cache.hit_rate"]
    band = page.anomalies.query("metric == 'cache.hit_rate'")
    assert band[["start", "open", "pattern"]].values.tolist() == [[ts[150], True, pattern]]
    assert unusual_now(page.anomalies)["metric"].tolist() == ["cache.hit_rate"]
    chart = plots.metric_figure(page.frame, "cache.hit_rate", anomalies=page.anomalies)
    assert any(f"unusual: {pattern}" in str(a.text) for a in chart.layout.annotations)
    with TestClient(api.app(mon, token="")) as client:
        body = client.get(f"{api.PREFIX}/anomalies").json()
    assert [r["metric"] for r in body["now"]] == ["cache.hit_rate"]
    assert [e["state"] for e in body["events"] if e["metric"] == "cache.hit_rate"] == [
        "firing"]
    mon.stop()
