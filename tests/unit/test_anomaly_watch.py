"""The Monitor's anomaly scoring: incremental states, episode events, the Monitor's store."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import perfkit
from perfkit._anomaly_watch import AnomalyWatch
from perfkit.collectors import Reading
from perfkit.errors import InvalidInputError


def values_with_spike(n=200, at=150, seed=0):
    v = np.random.default_rng(seed).normal(10, 1, n)
    v[at] += 40
    return v


def _feed(metric, values):
    """A collector that reads the next of ``values`` as ``metric`` at each collection."""
    it = iter(list(values))

    class Feed:
        name = "feed"

        def collect(self):
            return [Reading(metric, next(it))]

    return Feed()


def _spike_feed(metric, n=152, at=150):
    return _feed(metric, values_with_spike(n=n, at=at))


def test_watch_step_by_step_equals_batch_scores_and_emits_start_then_end():
    v = values_with_spike()
    ts = pd.date_range("2024-01-01", periods=len(v), freq="s", tz="UTC")
    frame = pd.DataFrame({"ts": ts, "host": "h", "metric": "custom.value", "value": v,
                          "labels": ""})
    watch = AnomalyWatch()
    events = pd.concat([watch.update(frame.iloc[i:i + 1]) for i in range(len(v))])
    assert events["state"].tolist() == ["firing", "resolved"]
    first, last = events.iloc[0], events.iloc[1]
    assert first["ts"] == ts[150] and first["message"] == "spike" and first["value"] >= 0.5
    assert last["ts"] > first["ts"] and last["severity"] == "anomaly-episode"
    batch = perfkit.anomaly_scores(frame)
    assert first["value"] == batch["score"].iloc[150]
    assert watch.now().empty


def test_watch_lists_an_open_episode_now():
    v = values_with_spike(n=152, at=150)
    ts = pd.date_range("2024-01-01", periods=len(v), freq="s", tz="UTC")
    watch = AnomalyWatch()
    watch.update(pd.DataFrame({"ts": ts, "metric": "a.b", "value": v, "labels": ""}))
    now = watch.now("host-1")
    assert now[["metric", "host", "pattern"]].values.tolist() == [["a.b", "host-1", "spike"]]
    assert now["since"].iloc[0] == ts[150]


def test_watch_rejects_a_bad_min_score():
    with pytest.raises(InvalidInputError, match="min_score"):
        AnomalyWatch(min_score=0)


def test_monitor_writes_anomaly_events_to_the_store(sqlite_url):
    feed = _feed("custom.value", values_with_spike(n=190, at=150).tolist())

    mon = perfkit.Monitor(sqlite_url, host="h", anomaly_min_score=0.5)
    mon.add_collector(feed)
    for _ in range(151):
        mon.collect()
    now = mon.anomalies()
    assert now.loc[now["metric"] == "custom.value", "pattern"].tolist() == ["spike"]
    for _ in range(39):
        mon.collect()
    mon.store.flush()
    ev = mon.store.alert_events(host="h", metric="custom.value")
    ev = ev[ev["severity"] == "anomaly-episode"]
    assert ev["state"].tolist() == ["firing", "resolved"]
    assert ev["message"].tolist() == ["spike", "spike"]
    assert (ev["threshold"] == 0.5).all() and ev["value"].iloc[0] >= 0.5
    assert "custom.value" not in set(mon.anomalies()["metric"])


def test_watch_runs_anomaly_rules_online_with_the_batch_transitions():
    v = values_with_spike(n=260, at=150, seed=3)
    ts = pd.date_range("2024-01-01", periods=len(v), freq="10s", tz="UTC")
    frame = pd.DataFrame({"ts": ts, "host": "", "metric": "system.cpu_usage", "value": v,
                          "labels": ""})
    rule = perfkit.AlertRule("system.cpu_usage", kind="anomaly", min_score=0.6, for_="20s")
    watch = AnomalyWatch(min_score=0.5)
    rules = {("system.cpu_usage", ""): rule}
    events = pd.concat([watch.update(frame.iloc[i:i + 1], rules) for i in range(len(v))])
    online = events[events["severity"] == "anomaly"].reset_index(drop=True)
    batch = perfkit.alert_transitions(frame, [rule])
    assert online["state"].tolist()[:2] == ["pending", "firing"]
    cols = ["ts", "metric", "labels", "severity", "state", "value", "threshold", "message"]
    pd.testing.assert_frame_equal(online[cols], batch[cols], check_dtype=False)
    st = watch.states[("system.cpu_usage", "")]
    assert len(st.followers) == 2
    watch.update(frame.iloc[-1:].assign(ts=ts[-1] + pd.Timedelta("10s")), {})
    assert st.followers == (st.episode,) and not watch.runs  # the removed rule stops


def test_monitor_writes_anomaly_rule_events_from_its_online_state(sqlite_url):
    feed = _feed("cache.hit_rate", values_with_spike(n=190, at=150).tolist())

    rule = perfkit.AlertRule("cache.hit_rate", kind="anomaly", min_score=0.5)
    mon = perfkit.Monitor(sqlite_url, host="h", alert_rules=[rule])
    mon.add_collector(feed)
    for _ in range(190):
        mon.collect()
    mon.store.flush()
    ev = mon.store.alert_events(host="h", metric="cache.hit_rate")
    ev = ev[ev["severity"] == "anomaly"]
    assert ev["state"].tolist() == ["firing", "resolved"]
    assert "spike" in ev["message"].iloc[0] and ev["threshold"].iloc[0] == 0.5


def test_monitor_alerts_reads_anomaly_rules_from_its_online_state(sqlite_url):
    values = values_with_spike(n=155, at=150).tolist()
    feed = _feed("cache.hit_rate", values)

    rule = perfkit.AlertRule("cache.hit_rate", kind="anomaly", min_score=0.5)
    # a window far shorter than the warm-up: a replay of it could never score the spike
    mon = perfkit.Monitor(sqlite_url, host="h", alert_rules=[rule], window="1ms")
    mon.add_collector(feed)
    for _ in range(155):
        mon.collect()
    mon.store.flush()
    stored = mon.store.alert_events(host="h", metric="cache.hit_rate")
    stored = stored[stored["severity"] == "anomaly"]
    assert stored["state"].tolist() == ["firing"]
    now = mon.alerts()
    row = now[now["severity"] == "anomaly"]
    assert row[["metric", "state"]].values.tolist() == [["cache.hit_rate", "firing"]]
    assert row["since"].iloc[0] == stored["ts"].iloc[0]
    assert row["message"].iloc[0] == stored["message"].iloc[0]
    assert row["threshold"].iloc[0] == 0.5 and row["value"].iloc[0] == values[-1]
    mon.stop()
    after = mon.alerts()
    assert after.loc[after["severity"] == "anomaly", "state"].tolist() == ["resolved"]


def test_monitors_with_their_own_hosts_keep_their_episodes_apart(sqlite_url):
    a = perfkit.Monitor(sqlite_url, host="a")
    a.add_collector(_spike_feed("custom.value"))
    for _ in range(152):
        a.collect()
    # the feed's series only: the system collector reads this process, whose RSS other
    # tests of the worker move
    now = a.anomalies()
    assert now.loc[now["metric"].str.startswith("custom."), "metric"].tolist() == ["custom.value"]
    b = perfkit.Monitor(sqlite_url, host="b")  # its first collection ends host b's stale ones
    b.add_collector(_spike_feed("custom.value", n=5, at=2))
    b.collect()
    b.store.flush()
    ev = b.store.alert_events(metric="custom.value")
    ev = ev[ev["severity"] == "anomaly-episode"]
    assert ev[["host", "state"]].values.tolist() == [["a", "firing"]]
    a.stop()
    b.stop()
    ev = b.store.alert_events(metric="custom.value")
    ev = ev[ev["severity"] == "anomaly-episode"]
    assert ev[["host", "state", "message"]].values.tolist() == [
        ["a", "firing", "spike"], ["a", "resolved", "monitor stopped"]]


def test_a_second_monitor_of_one_store_and_host_is_warned_about(sqlite_url, caplog):
    caplog.set_level("WARNING", logger="perfkit.monitor")
    first = perfkit.Monitor(sqlite_url, host="same")
    other = perfkit.Monitor(sqlite_url, host="other")
    assert "second Monitor" not in caplog.text
    second = perfkit.Monitor(sqlite_url, host="same")
    assert "second Monitor writes host 'same'" in caplog.text
    caplog.clear()
    first.stop()
    second.stop()
    again = perfkit.Monitor(sqlite_url, host="same")  # a restart after stop() is no second source
    assert "second Monitor" not in caplog.text
    other.stop()
    again.stop()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_level_shift_to_a_constant_is_one_episode_though_small_scores_follow(seed):
    rng = np.random.default_rng(seed)
    v = np.concatenate([10 + rng.normal(0, 1, 600), np.full(600, 30.0)])
    ts = pd.date_range("2024-01-01", periods=len(v), freq="min", tz="UTC")
    frame = pd.DataFrame({"ts": ts, "metric": "custom.value", "value": v, "labels": ""})
    events = AnomalyWatch().update(frame)
    after = events[events["ts"] >= ts[600]]
    assert after["state"].tolist() == ["firing", "resolved"]
    assert after["ts"].iloc[0] == ts[600]
    # later samples may still score a little (the flat stretch sets variance records),
    # but below min_score, so no further episode opens
    assert perfkit.anomaly_scores(frame)["score"].to_numpy()[650:].max() < 0.5
