"""The Monitor: real collection into a real store, failures isolated, idempotent start/stop."""

from __future__ import annotations

import asyncio
import threading

import pandas as pd
import pytest
import sqlalchemy as sa
from _procs import wait_until

import perfkit
from perfkit.collectors import Reading


def test_collect_writes_real_samples_that_read_back(sqlite_url, tmp_path):
    mon = perfkit.Monitor(sqlite_url, interval=1.0, host="test-host", disk_path=str(tmp_path))
    engine = sa.create_engine(f"sqlite:///{tmp_path}/app.db")
    mon.instrument_engine(engine)
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT 1"))
    for _i in range(10):
        with mon.track("GET /markets"):
            pass
    mon.collect()
    frame = mon.collect()
    metrics = set(frame["metric"])
    assert {"system.cpu_usage", "system.memory_usage", "system.disk_usage",
            "system.memory_available", "database.pool_size", "database.checked_out",
            "database.overflow"} <= metrics
    mon.store.flush()
    back = perfkit.Store(sqlite_url).samples(host="test-host")
    assert len(back) >= len(frame)
    rps = back[(back["metric"] == "application.requests_per_second") & (back["labels"] == "")]
    assert rps["value"].iloc[0] > 0  # 10 requests in the first interval
    mon.stop()


def test_failing_collector_is_counted_and_others_go_on(sqlite_url):
    mon = perfkit.Monitor(sqlite_url, host="h")

    class Broken:
        name = "broken"

        def collect(self):
            raise RuntimeError("source is gone")

    class Fine:
        name = "fine"

        def collect(self):
            return [Reading("custom.value", 42.0)]

    mon.add_collector(Broken())
    mon.add_collector(Fine())
    frame = mon.collect()
    assert frame.loc[frame["metric"] == "custom.value", "value"].tolist() == [42.0]
    health = mon.health()
    assert health["collectors"]["broken"]["errors"] == 1
    assert "source is gone" in health["collectors"]["broken"]["last_error"]
    assert health["collectors"]["broken"]["ok"] is False
    assert health["collectors"]["fine"]["ok"] is True
    mon.stop()


def test_start_stop_idempotent_and_thread_safe(sqlite_url, run_threads):
    mon = perfkit.Monitor(sqlite_url, interval=0.05, host="h")
    run_threads([mon.start] * 8)
    monitor_threads = [t for t in threading.enumerate() if t.name.startswith("perfkit-monitor-h")]
    assert len(monitor_threads) == 1 and mon.running
    wait_until(lambda: mon.collections >= 2, 60, "two collections by the one thread",
               every=0.01)
    mon.stop()
    mon.stop()
    assert not mon.running
    n = len(perfkit.Store(sqlite_url).samples(metric="system.memory_usage", host="h"))
    assert n >= 2


def test_async_start_and_stop(sqlite_url):
    mon = perfkit.Monitor(sqlite_url, interval=0.05, host="h")

    async def main():
        await mon.start_monitoring()
        assert mon.running
        await asyncio.sleep(0.2)
        await mon.stop_monitoring()

    asyncio.run(main())
    assert not mon.running


def test_record_validates_and_keeps_what_was_recorded(sqlite_url):
    mon = perfkit.Monitor(sqlite_url, host="h")
    mon.record("orders.placed", 2.0)
    mon.record("orders.placed", 4.0)
    with pytest.raises(ValueError, match=r"orders.placed"):
        mon.record("orders.placed", float("nan"))
    with pytest.raises(ValueError, match=r"group.name"):
        mon.record("no dots", 1.0)
    frame = mon.collect()
    assert frame.loc[frame["metric"] == "orders.placed", "value"].tolist() == [3.0]


@pytest.mark.parametrize("interval", [0, -1, float("inf"), "5"])
def test_invalid_interval_is_named(sqlite_url, interval):
    with pytest.raises(ValueError, match=r"interval"):
        perfkit.Monitor(sqlite_url, interval=interval)


def test_collect_timestamps_are_utc_and_host_is_set(sqlite_url):
    mon = perfkit.Monitor(sqlite_url)
    frame = mon.collect()
    assert str(frame["ts"].dt.tz) == "UTC"
    assert set(frame["host"]) == {mon.host} and ":" in mon.host
    assert (pd.Timestamp.now(tz="UTC") - frame["ts"].max()) < pd.Timedelta("10s")


def test_alert_events_are_written_once_per_transition(sqlite_url):
    import perfkit.frames as frames

    mon = perfkit.Monitor(sqlite_url, host="h")
    now = pd.Timestamp.now(tz="UTC").floor("s")
    ts = [now - pd.Timedelta(seconds=30 - 5 * i) for i in range(6)]
    values = [50, 95, 96, 97, 40, 41]  # CPU goes critical, then recovers
    mon.store.write(frames.as_samples(pd.DataFrame(
        {"ts": ts, "host": "h", "metric": "system.cpu_usage", "value": values})))
    mon._evaluate_alerts()
    mon._evaluate_alerts()  # a second pass over the same history writes nothing new
    events = mon.store.alert_events(host="h", metric="system.cpu_usage")
    crit = events[events["severity"] == "critical"]
    assert crit["state"].tolist() == ["firing", "resolved"]
    assert crit["ts"].tolist() == [ts[1], ts[4]]
    active = mon.alerts()
    assert active.loc[active["severity"] == "critical", "state"].tolist() == ["resolved"]


def test_summary_fields_come_from_samples(sqlite_url):
    import perfkit.frames as frames

    mon = perfkit.Monitor(sqlite_url, host="h")
    now = pd.Timestamp.now(tz="UTC").floor("s")
    ts = [now - pd.Timedelta(seconds=5 * (40 - i)) for i in range(40)]
    mon.store.write(frames.as_samples(pd.DataFrame(
        {"ts": ts, "host": "h", "metric": "system.memory_usage",
         "value": [40.0 + i * 0.5 for i in range(40)]})))
    s = mon.summary(horizon="5min")
    mem = s["metrics"]["system.memory_usage"]
    assert mem["current"] == 59.5 and mem["average"] == pytest.approx(49.75)
    assert mem["trend"] == "increasing"
    assert s["monitoring_active"] is False
    assert s["predictions"]["system.memory_usage"]["predicted_value"] > 59.5


def test_incident_sliding_out_of_the_window_is_not_fired_twice(sqlite_url):
    import perfkit.frames as frames

    now = pd.Timestamp.now(tz="UTC").floor("s")
    ts = [now - pd.Timedelta(minutes=10) + pd.Timedelta(seconds=30 * i) for i in range(20)]
    values = [50.0, 50.0] + [95.0] * 18  # goes critical and stays there
    store = perfkit.Store(sqlite_url)
    store.write(frames.as_samples(pd.DataFrame(
        {"ts": ts, "host": "h", "metric": "system.cpu_usage", "value": values})))
    mon = perfkit.Monitor(store, host="h", window="10min")
    mon._evaluate_alerts()
    mon.window = "5min"  # the incident's start slides out of the replayed window
    mon._evaluate_alerts()
    again = perfkit.Monitor(store, host="h", window="3min")  # a restarted service
    again._evaluate_alerts()
    crit = store.alert_events(host="h", metric="system.cpu_usage")
    crit = crit[crit["severity"] == "critical"]
    assert crit["state"].tolist() == ["firing"] and crit["ts"].tolist() == [ts[2]]


def test_invalid_window_is_named(sqlite_url):
    with pytest.raises(ValueError, match=r"window"):
        perfkit.Monitor(sqlite_url, window="banana")
    assert perfkit.Monitor(sqlite_url).cache is None
