"""perfkit.store against real SQLite files and the real PostgreSQL server."""

from __future__ import annotations

import datetime as dt
import functools
import multiprocessing as mp
import sqlite3
import sys
import time
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from perfkit.frames import as_samples, empty_samples
from perfkit.store import InvalidSamplesError, Store

NOW = pd.Timestamp.now(tz="UTC").floor("s")


@pytest.fixture(autouse=True)
def _fresh_now() -> None:
    # Relative reads (since="15min") are measured from the clock, so each test's
    # data must be stamped from when that test runs, not when the module loaded.
    global NOW
    NOW = pd.Timestamp.now(tz="UTC").floor("s")


def frame(n: int = 10, *, metric: str = "system.cpu_usage", host: str = "h1", labels: str = "",
          start: pd.Timestamp | None = None, step: str = "1s", value0: float = 0.0) -> pd.DataFrame:
    start = NOW - pd.Timedelta(minutes=5) if start is None else start
    return pd.DataFrame({
        "ts": pd.date_range(start, periods=n, freq=step, tz="UTC").as_unit("ns"),
        "host": host, "metric": metric, "value": value0 + np.arange(n) * 1.5, "labels": labels,
    })


def canon(f: pd.DataFrame) -> pd.DataFrame:
    return f.sort_values(["ts", "host", "metric", "labels"], kind="stable").reset_index(drop=True)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: object) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/perfkit.db"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def store(url: str):
    s = Store(url, host="tester:1")
    yield s
    s.close()


# -- round trip and reads ---------------------------------------------------------------

def test_round_trip_exact_dtypes_and_values(store: Store) -> None:
    a = frame(20, labels="")
    a.loc[3, "ts"] += pd.Timedelta(nanoseconds=123)  # nanoseconds survive
    b = frame(20, metric="application.api_response_time", labels="endpoint=GET /markets",
              value0=0.1)
    c = frame(5, metric="orders.placed", host="h2")
    c["value"] = [1e-300, -2.5, 0.0, 1e300, 3.141592653589793]
    written = pd.concat([a, b, c], ignore_index=True)
    assert store.write(written) == 45
    got = store.samples()
    assert list(got.columns) == ["ts", "host", "metric", "value", "labels"]
    assert got.dtypes.equals(empty_samples().dtypes)
    assert got["ts"].is_monotonic_increasing
    pd.testing.assert_frame_equal(canon(got), canon(as_samples(written)), check_exact=True)
    assert (got["ts"].astype("int64") % 1000 == 123).sum() == 1
    assert store.metric_names() == ["application.api_response_time", "orders.placed",
                                    "system.cpu_usage"]
    assert store.hosts() == ["h1", "h2"]
    h = store.health()
    assert h["reachable"] and h["written"] == 45 and h["buffered"] == 0 and h["dropped"] == 0


def test_filters_metric_host_time_labels(store: Store) -> None:
    old = frame(10, start=NOW - pd.Timedelta(hours=2), step="1min")          # 2h..1h50 ago
    new = frame(10, start=NOW - pd.Timedelta(minutes=10), step="1s")         # 10 min ago
    ep1 = frame(4, metric="application.api_response_time", labels="endpoint=GET /a,status=200")
    ep2 = frame(4, metric="application.api_response_time", labels="endpoint=GET /b,status=200")
    total = frame(4, metric="application.api_response_time", labels="")
    other_host = frame(3, host="h2")
    store.write(pd.concat([old, new, ep1, ep2, total, other_host], ignore_index=True))

    assert len(store.samples(since="15min")) == 10 + 4 + 4 + 4 + 3
    assert len(store.samples(since="3h")) == 35
    assert len(store.samples(since=pd.Timedelta(hours=3))) == 35
    assert len(store.samples(until=NOW - pd.Timedelta(hours=1))) == 10
    mid = old["ts"].iloc[4]
    got = store.samples(metric="system.cpu_usage", host="h1", since=mid,
                        until=old["ts"].iloc[6].to_pydatetime())
    assert got["ts"].tolist() == old["ts"].iloc[4:7].tolist()   # both ends inclusive
    assert set(store.samples(host="h2")["host"]) == {"h2"}
    assert len(store.samples(host=["h1", "h2"], metric=["system.cpu_usage"])) == 23
    assert len(store.samples(metric="application.api_response_time", labels="")) == 4
    assert set(store.samples(labels="endpoint=GET /a")["labels"]) == {"endpoint=GET /a,status=200"}
    assert len(store.samples(labels="status=200")) == 8
    assert len(store.samples(labels={"endpoint": "GET /b"})) == 4
    assert store.samples(labels="endpoint=nowhere").dtypes.equals(empty_samples().dtypes)
    # a catalogued metric with no samples yet: empty, with the contract's dtypes
    empty = store.samples(metric="cache.hit_rate")
    assert empty.empty and empty.dtypes.equals(empty_samples().dtypes)


def test_unknown_metric_and_bad_since(store: Store) -> None:
    store.write(frame(3, metric="orders.placed"))
    with pytest.raises(ValueError, match=r"system.cpu_usage"):
        store.samples(metric="system.cpu_usag")
    with pytest.raises(ValueError, match=r"orders.placed"):
        store.samples(metric="orders.place")
    assert len(store.samples(metric="orders.placed")) == 3
    for bad in ("banana", "-5min", 15):
        with pytest.raises(ValueError, match=r"15min"):
            store.samples(since=bad)
    with pytest.raises(ValueError, match=r"until"):
        store.samples(until="yesterday-ish")


def test_time_arguments_and_url_forms() -> None:
    from perfkit.store._engine import normalise_url
    from perfkit.store._when import to_ns

    before = time.time_ns()
    assert before - 15 * 60 * 10**9 - 10**9 <= to_ns("15min") <= time.time_ns() - 15 * 60 * 10**9
    utc = pd.Timestamp("2026-01-01 23:00", tz="UTC").value
    assert to_ns(pd.Timestamp("2026-01-02", tz="Europe/Paris")) == utc
    assert to_ns("2026-01-01T23:00") == utc == to_ns(np.datetime64("2026-01-01T23:00"))
    assert to_ns(dt.datetime(2026, 1, 1, 23)) == utc
    assert to_ns(dt.date(2026, 1, 2)) == pd.Timestamp("2026-01-02", tz="UTC").value
    assert to_ns(None) is None
    assert normalise_url("postgresql://u:p@db:5432/perf").drivername == "postgresql+psycopg"
    assert normalise_url("postgres://u@db/perf").drivername == "postgresql+psycopg"
    assert normalise_url("sqlite:///x.db").database == "x.db"


def test_duplicate_samples_overwrite(store: Store) -> None:
    f = frame(5)
    store.write(f)
    g = f.assign(value=f["value"] + 100)
    store.write(pd.concat([g.iloc[:2], g.iloc[:2].assign(value=-1.0)], ignore_index=True))
    got = store.samples()
    assert got["value"].tolist() == [-1.0, -1.0, *f["value"].iloc[2:].tolist()]


def test_latest_per_series(store: Store) -> None:
    store.write(pd.concat([frame(5), frame(3, host="h2", value0=7), frame(
        2, metric="application.api_response_time", labels="endpoint=GET /a")], ignore_index=True))
    last = store.latest()
    assert last.dtypes.equals(empty_samples().dtypes)
    assert list(zip(last["host"], last["metric"], last["value"])) == [
        ("h1", "application.api_response_time", 1.5), ("h1", "system.cpu_usage", 6.0),
        ("h2", "system.cpu_usage", 10.0)]
    assert len(store.latest(host="h2")) == 1


# -- bad input --------------------------------------------------------------------------

def test_bad_rows_rejected_good_rows_kept(store: Store) -> None:
    f = frame(6)
    f["value"] = [1.0, np.nan, 3.0, np.inf, 5.0, -np.inf]
    with pytest.raises(InvalidSamplesError, match=r"system.cpu_usage") as info:
        store.write(f)
    assert info.value.accepted == 3 and info.value.rejected == 3
    assert "value" in str(info.value) and "NaN" in str(info.value)
    assert store.samples()["value"].tolist() == [1.0, 3.0, 5.0]

    g = frame(4, metric="orders.placed").astype({"value": object, "ts": object})
    g.loc[0, "value"] = "twelve"
    g.loc[1, "ts"] = "not a time"
    g.loc[2, "metric"] = None
    with pytest.raises(ValueError) as info:
        store.write(g)
    msg = str(info.value)
    assert "'value'" in msg and "'ts'" in msg and "'metric'" in msg and "orders.placed" in msg
    assert len(store.samples(metric="orders.placed")) == 1

    h = frame(3, metric="orders.dropped")
    h.loc[0, "value"] = np.nan
    assert store.write(h, on_invalid="drop") == 2
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['value'\]"):
        store.write(frame(2).drop(columns="value"))
    with pytest.raises(TypeError, match=r"DataFrame"):
        store.write([1, 2, 3])  # type: ignore[arg-type]
    assert store.write(empty_samples()) == 0
    assert store.health()["written"] == 3 + 1 + 2
    # no host column: the store's host; naive times are UTC; labels may be a dict
    naive = pd.DataFrame({"ts": [pd.Timestamp("2026-01-02 03:04:05")], "metric": ["orders.paid"],
                          "value": [7], "labels": [{"currency": "EUR"}]})
    assert store.write(naive) == 1
    row = store.samples(metric="orders.paid").iloc[0]
    assert (row["host"], row["labels"], row["value"]) == ("tester:1", "currency=EUR", 7.0)
    assert row["ts"] == pd.Timestamp("2026-01-02 03:04:05", tz="UTC")


def test_invalid_urls() -> None:
    for bad in ("mysql://u:secret@db/x", "not a url", "postgresql+psycopg2://u@h/db",
                "sqlite://host/file.db", ""):
        with pytest.raises(ValueError) as info:
            Store(bad)
        msg = str(info.value)
        assert "sqlite:///" in msg and "postgresql://" in msg, msg
        assert "secret" not in msg
    with pytest.raises(ValueError, match=r"buffer_limit"):
        Store("sqlite://", buffer_limit=-1)


def test_default_url_env_and_wal(tmp_path, monkeypatch: pytest.MonkeyPatch,
                                 run_threads: Callable[..., None]) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PERFKIT_STORE_URL", raising=False)
    with Store() as s:
        assert s.url == "sqlite:///.perfkit/perfkit.db" and s.dialect == "sqlite"
        s.write(frame(2))
    assert (tmp_path / ".perfkit" / "perfkit.db").exists()
    con = sqlite3.connect(tmp_path / ".perfkit" / "perfkit.db")
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert con.execute("SELECT sql FROM sqlite_master WHERE name='perfkit_samples'"
                       ).fetchone()[0].rstrip().endswith("WITHOUT ROWID")
    con.close()
    monkeypatch.setenv("PERFKIT_STORE_URL", f"sqlite:///{tmp_path}/env.db")
    with Store() as s:
        assert s.url.endswith("env.db")
    assert (tmp_path / "env.db").exists()
    with Store("sqlite://") as mem:  # in memory, shared across threads
        mem.write(frame(3))
        run_threads([lambda: mem.write(frame(3, host="h2"))])
        assert len(mem.samples()) == 6
    s.close()  # idempotent
    with pytest.raises(RuntimeError, match=r"closed"):
        s.write(frame(1))


# -- a store that is down ---------------------------------------------------------------


@pytest.mark.postgres
def test_postgres_down_buffers_then_delivers_everything(proxied_pg) -> None:
    proxy, url = proxied_pg
    store = Store(url, host="svc:1", buffer_limit=1000)
    assert store.write(frame(100, host="a")) == 100
    assert store.health()["written"] == 100

    proxy.close()                                              # the database goes away
    assert store.write(frame(300, host="b")) == 300            # collection goes on
    assert store.write(frame(200, host="c")) == 200
    h = store.health()
    assert (h["reachable"], h["buffered"], h["dropped"], h["written"]) == (False, 500, 0, 100)
    assert h["last_error"] and "OperationalError" in h["last_error"]
    assert store.flush() == 0                                  # still down: nothing written
    store.write_alert_events(pd.DataFrame({"ts": [NOW], "metric": ["system.cpu_usage"],
                                           "severity": ["critical"], "state": ["firing"]}))
    assert store.claim_actions("svc:1", "me") == []            # down: no claim, no crash
    # overflow: 600 more rows into a 1000-row buffer drops exactly the 100 oldest
    assert store.write(frame(600, host="d", start=NOW - pd.Timedelta(minutes=3))) == 600
    h = store.health()
    assert (h["buffered"], h["dropped"]) == (1000, 100)

    proxy.open()                                               # it comes back
    assert store.flush() == 1000
    h = store.health()
    assert (h["reachable"], h["buffered"], h["dropped"], h["written"]) == (True, 0, 100, 1100)
    got = store.samples()
    counts = got.groupby("host").size().to_dict()
    assert counts == {"a": 100, "b": 200, "c": 200, "d": 600}  # b lost its 100 oldest
    assert store.samples(host="b")["value"].tolist() == (np.arange(100, 300) * 1.5).tolist()
    assert len(store.alert_events()) == 1
    store.close()


@pytest.mark.postgres
def test_postgres_down_at_start(proxied_pg) -> None:
    proxy, url = proxied_pg
    proxy.close()
    store = Store(url)                                         # opening does not fail
    assert not store.health()["reachable"]
    assert store.write(frame(50)) == 50
    assert store.health()["buffered"] == 50
    with pytest.raises(sa.exc.OperationalError):
        store.samples()                                        # reading cannot pretend
    proxy.open()
    assert store.flush() == 50                                 # creates the tables, writes
    assert len(store.samples()) == 50
    store.close()


# -- several writers --------------------------------------------------------------------

def _write_many(url: str, host: str, batches: int, rows: int) -> int:
    with Store(url, host=host) as s:
        for k in range(batches):
            s.write(frame(rows, host=host, start=NOW - pd.Timedelta(hours=1) + pd.Timedelta(
                seconds=k * rows), value0=k))
        return s.health()["written"]


def test_threads_writing_lose_nothing(url: str, run_threads: Callable[..., None]) -> None:
    shared = Store(url)

    def own(i: int) -> None:
        _write_many(url, f"own-{i}", 20, 50)

    def via_shared(i: int) -> None:
        for k in range(20):
            shared.write(frame(50, host=f"shared-{i}", start=NOW - pd.Timedelta(
                hours=1) + pd.Timedelta(seconds=k * 50)))

    run_threads([functools.partial(f, i) for f in (own, via_shared) for i in range(4)],
                timeout=240)
    counts = shared.samples().groupby("host").size()
    assert len(counts) == 8 and (counts == 1000).all()
    assert shared.health()["dropped"] == 0
    shared.close()


def _in_process(fn, barrier, results, *args) -> None:
    """Child-process entry: wait until every child has imported, then race."""
    barrier.wait(timeout=120)
    results.put(fn(*args))


def _race(fn, arg_lists: list[tuple]) -> list:
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(len(arg_lists)), ctx.Queue()
    procs = [ctx.Process(target=_in_process, args=(fn, barrier, results, *a)) for a in arg_lists]
    for p in procs:
        p.start()
    out = [results.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    return out


def test_processes_writing_lose_nothing(tmp_path) -> None:
    url = f"sqlite:///{tmp_path}/procs.db"
    Store(url).close()
    written = _race(_write_many, [(url, f"proc-{i}", 25, 200) for i in range(3)])
    assert written == [5000] * 3
    with Store(url) as s:
        counts = s.samples().groupby("host").size().to_dict()
    assert counts == {"proc-0": 5000, "proc-1": 5000, "proc-2": 5000}


# -- actions ----------------------------------------------------------------------------

def _claim_all(url: str, claimer: str, start_at: float = 0.0) -> list[int]:
    with Store(url) as s:
        time.sleep(max(0.0, start_at - time.time()))
        got: list[int] = []
        while batch := s.claim_actions("svc:1", claimer, limit=3):
            got += [a["id"] for a in batch]
        return got


def _queue(url: str, n: int) -> list[int]:
    with Store(url) as s:
        return [s.request_action("gc", {"generation": 2}, host="svc:1") for _ in range(n)]


def test_claim_is_atomic_across_threads(url: str, run_threads: Callable[..., None]) -> None:
    ids = _queue(url, 120)
    results: dict[str, list[int]] = {}
    start = time.time() + 0.3
    def run(c: str) -> None:
        results[c] = _claim_all(url, c, start)

    run_threads([functools.partial(run, c) for c in ("t1", "t2", "t3", "t4")], timeout=240)
    claimed = [i for r in results.values() for i in r]
    assert sorted(claimed) == ids                              # each exactly once
    with Store(url) as s:
        acts = s.actions()
        assert (acts["status"] == "running").all()
        by = acts["claimed_by"].value_counts().to_dict()
        assert {c: len(r) for c, r in results.items() if r} == by


def test_claim_is_atomic_across_processes(url: str) -> None:
    ids = _queue(url, 60)
    got = _race(_claim_all, [(url, "p1"), (url, "p2")])
    assert sorted(got[0] + got[1]) == ids


def test_actions_audit_round_trip(store: Store) -> None:
    a = store.request_action("cache.tune_ttl", {"ttl": 30, "why": "hit rate 55 %"},
                             host="svc:1", requested_by="dashboard", dry_run=True)
    b = store.request_action("gc", host="svc:2")
    claimed = store.claim_actions("svc:1", "monitor-svc:1")
    assert [c["id"] for c in claimed] == [a]
    c0 = claimed[0]
    assert c0["status"] == "running" and c0["params"] == {"ttl": 30, "why": "hit rate 55 %"}
    assert c0["dry_run"] is True and c0["requested_by"] == "dashboard"
    assert isinstance(c0["claimed_at"], pd.Timestamp) and c0["claimed_at"].tz is not None
    assert store.claim_actions("svc:1", "other") == []
    store.finish_action(a, status="done", before={"cache.hit_rate": np.float64(55.0)},
                        after={"cache.hit_rate": 81.5}, verdict="improved",
                        detail={"ttl": [60, 30]}, duration_s=0.25)
    r = store.record_action("pool.recycle", None, host="svc:1", requested_by="monitor")
    store.finish_action(r, status="failed", error="pool has no recycle()",
                        detail="engine is NullPool")
    store.reject_action(b, "unknown action")
    with pytest.raises(ValueError, match=r"already 'done'"):
        store.finish_action(a, status="failed")
    with pytest.raises(ValueError, match=r"no action with id 9999"):
        store.finish_action(9999, status="done")
    with pytest.raises(ValueError, match=r"status"):
        store.finish_action(r, status="finished")
    with pytest.raises(TypeError, match=r"params"):
        store.request_action("gc", {"f": object()}, host="svc:1")

    log = store.actions()
    assert log["id"].tolist() == [a, b, r]
    assert str(log["requested_at"].dtype) == "datetime64[ns, UTC]"
    assert str(log["duration_s"].dtype) == "float64" and log["dry_run"].dtype == bool
    done = log.iloc[0]
    assert done["status"] == "done" and done["before"] == {"cache.hit_rate": 55.0}
    assert done["after"] == {"cache.hit_rate": 81.5} and done["detail"] == {"ttl": [60, 30]}
    assert done["verdict"] == "improved" and done["duration_s"] == 0.25
    assert done["requested_at"] <= done["claimed_at"] <= done["finished_at"]
    assert log.iloc[1]["status"] == "rejected" and log.iloc[1]["error"] == "unknown action"
    assert log.iloc[2]["detail"] == "engine is NullPool" and log.iloc[2]["claimed_by"] == "monitor"
    assert store.actions(status="failed")["id"].tolist() == [r]
    assert store.actions(host="svc:2", action="gc")["id"].tolist() == [b]
    assert len(store.actions(since="1h")) == 3 and len(store.actions(status=["pending"])) == 0
    with pytest.raises(ValueError, match=r"status"):
        store.actions(status="finished")


def test_alert_events_round_trip(store: Store) -> None:
    ev = pd.DataFrame({
        "ts": [NOW - pd.Timedelta(minutes=2), NOW - pd.Timedelta(minutes=1), NOW],
        "host": ["svc:1", "svc:1", "svc:2"],
        "metric": ["system.cpu_usage", "system.cpu_usage", "cache.hit_rate"],
        "labels": ["", "", ""], "severity": ["warning", "critical", "warning"],
        "state": ["pending", "firing", "resolved"], "value": [75.0, 93.5, 85.0],
        "threshold": [70.0, 90.0, None], "message": ["cpu high", "cpu very high", ""],
    })
    assert store.write_alert_events(ev) == 3
    got = store.alert_events()
    assert list(got.columns) == list(ev.columns)
    assert str(got["ts"].dtype) == "datetime64[ns, UTC]"
    assert got["state"].tolist() == ["pending", "firing", "resolved"]
    assert got["threshold"].iloc[:2].tolist() == [70.0, 90.0] and np.isnan(got["threshold"].iloc[2])
    assert len(store.alert_events(since="90s")) == 2
    assert store.alert_events(host="svc:2")["metric"].tolist() == ["cache.hit_rate"]
    assert len(store.alert_events(metric="system.cpu_usage")) == 2
    with pytest.raises(ValueError, match=r"state"):
        store.write_alert_events(ev.assign(state="burning"))
    with pytest.raises(ValueError, match=r"severity"):
        store.write_alert_events(ev.drop(columns="severity"))


def test_prune_deletes_exactly_the_old_rows(store: Store) -> None:
    day = pd.Timedelta(days=1)
    old_cpu = frame(6, start=NOW - 10 * day, step="1h")                  # all older than 7 d
    new_cpu = frame(4, start=NOW - pd.Timedelta(hours=1), step="1min", value0=100)
    old_h2 = frame(3, host="h2", start=NOW - 9 * day)
    new_orders = frame(2, host="h2", metric="orders.placed", start=NOW - 2 * day, value0=50)
    store.write(pd.concat([old_cpu, new_cpu, old_h2, new_orders], ignore_index=True))
    ages = [30 * day, 9 * day, 8 * day, 6 * day, pd.Timedelta(minutes=1)]
    store.write_alert_events(pd.DataFrame({
        "ts": [NOW - a for a in ages], "metric": "system.cpu_usage", "severity": "warning",
        "state": "firing", "message": [f"age {a}" for a in ages]}))

    assert store.prune() == {"samples": 9, "alert_events": 3}            # default: "7d"
    kept = store.samples()
    expected = canon(as_samples(pd.concat([new_cpu, new_orders], ignore_index=True)))
    pd.testing.assert_frame_equal(canon(kept), expected, check_exact=True)
    assert store.alert_events()["message"].tolist() == [f"age {a}" for a in ages[3:]]
    assert store.prune("7d") == {"samples": 0, "alert_events": 0}       # nothing left to delete
    assert store.hosts() == ["h1", "h2"]                                 # series names stay

    # a Timestamp is an absolute cut-off; a row exactly at it is not older, so it stays
    edge = new_cpu["ts"].iloc[1]
    assert store.prune(edge, what="samples") == {"samples": 1 + 2}      # + both orders rows
    assert store.samples()["ts"].tolist() == new_cpu["ts"].iloc[1:].tolist()

    pending = store.request_action("gc", host="svc:1")
    running = store.record_action("gc", None, host="svc:1", requested_by="monitor")
    done = store.record_action("gc", None, host="svc:1", requested_by="monitor")
    store.finish_action(done, status="done")
    rejected = store.request_action("nope", host="svc:1")
    store.reject_action(rejected, "unknown action")
    everything = ("samples", "alert_events", "actions")
    assert store.prune("7d", what=everything) == {"samples": 0, "alert_events": 0, "actions": 0}
    # a cut-off after every finish: finished actions go, pending and running ones never do
    future = pd.Timestamp.now(tz="UTC") + pd.Timedelta(minutes=1)
    assert store.prune(future, what=("actions",)) == {"actions": 2}
    log = store.actions()
    assert log["id"].tolist() == [pending, running]
    assert log["status"].tolist() == ["pending", "running"]
    assert len(store.samples()) == 3 and len(store.alert_events()) == 2  # untouched

    with pytest.raises(ValueError, match=r"alert_events"):
        store.prune(what=("samples", "logs"))
    with pytest.raises(ValueError, match=r"15min"):
        store.prune("-5min")
    with pytest.raises(ValueError, match=r"older_than"):
        store.prune(None)  # type: ignore[arg-type]


def test_benchmarks_reads_the_pytest_plugin_history(store: Store) -> None:
    from perfkit.pytest_plugin._storage import write_benchmark

    for test, median in (("t.py::test_a", 0.5), ("t.py::test_b", 2.0), ("t.py::test_a", 0.75)):
        write_benchmark(store.engine, {
            "run_id": "r1", "test": test, "rounds": 3, "iterations": 10, "median_s": median,
            "p95_s": median, "mean_s": median, "stdev_s": 0.0, "samples": [median] * 3})
    assert store.benchmarks()["test"].tolist() == ["t.py::test_a", "t.py::test_b",
                                                   "t.py::test_a"]
    mine = store.benchmarks("t.py::test_a")
    assert mine["median_s"].tolist() == [0.5, 0.75]
    assert mine["samples"].tolist() == [[0.5] * 3, [0.75] * 3]
    assert store.benchmarks("t.py::nothing").empty


def test_health_masks_password() -> None:
    s = Store("postgresql://perfkit:hunter2@127.0.0.1:1/nothere?connect_timeout=1")
    h = s.health()
    assert "hunter2" not in h["url"] and "***" in h["url"] and not h["reachable"]
    assert h["last_error"]
    assert "hunter2" not in repr(s)
    s.close()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
