"""Optimisation layer: registry and schemas, recommend(), the verdict rule, the runner
(timeouts, failures, dry runs, cooldown, priority), and store requests claimed exactly once
by two Monitors in two threads and in two processes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time

import pandas as pd
import pytest
from _procs import wait_until

import perfkit
from perfkit import actions
from perfkit.actions import ActionResult, recommend, verdict
from perfkit.actions._schema import validate_params
from perfkit.collectors import Reading
from perfkit.monitor import Monitor

BUILTINS = {"cache_optimization", "memory_optimization", "connection_optimization",
            "query_optimization", "database_optimization"}


@pytest.fixture
def custom():
    """Register throw-away actions; unregister them after the test."""
    made: list[str] = []

    def add(name, func, schema=None, **kw):
        actions.register(name, func, schema, f"test action {name}", replace=True, **kw)
        made.append(name)

    yield add
    for n in made:
        actions.unregister(n)


def frame_of(rows, host="test-host", minutes=5):
    """A samples frame: each (metric, value) repeated over the last ``minutes``."""
    now = pd.Timestamp.now(tz="UTC").floor("s")
    out = []
    for metric, value in rows:
        for k in range(minutes):
            out.append({"ts": now - pd.Timedelta(minutes=minutes - 1 - k), "host": host,
                        "metric": metric, "value": float(value), "labels": ""})
    return perfkit.as_samples(pd.DataFrame(out))


# -- registry and schema ------------------------------------------------------------------
def test_builtins_are_registered_and_described():
    assert set(actions.names()) >= BUILTINS
    frame = actions.actions_frame()
    row = frame.set_index("name").loc["query_optimization"]
    assert "apply" in row["params"] and "CREATE INDEX" in row["description"]


def test_register_validates_names_functions_and_duplicates(custom):
    custom("noop_action", lambda monitor, dry_run: {"ok": True})
    assert actions.get("noop_action").name == "noop_action"
    with pytest.raises(ValueError, match=r"already registered"):
        actions.register("noop_action", lambda monitor, dry_run: None)
    with pytest.raises(ValueError, match=r"lower case"):
        actions.register("Bad-Name", lambda monitor, dry_run: None)
    with pytest.raises(TypeError, match=r"callable"):
        actions.register("not_callable", 42)
    with pytest.raises(ValueError, match=r"type must be one of"):
        actions.register("bad_schema", lambda m, dry_run: None, {"x": {"type": "list"}})
    with pytest.raises(ValueError, match=r"unknown action 'nope'.*memory_optimization"):
        actions.get("nope")


def test_params_are_checked_against_the_schema():
    schema = {"n": {"type": "int", "default": 3, "min": 1, "max": 5},
              "mode": {"type": "str", "choices": ["a", "b"]},
              "ratio": {"type": "float", "default": 0.5}}
    assert validate_params("x", schema, {"mode": "a"}) == {"n": 3, "mode": "a", "ratio": 0.5}
    assert validate_params("x", schema, {"mode": "b", "ratio": 2})["ratio"] == 2.0
    with pytest.raises(ValueError, match=r"needs parameter 'mode'"):
        validate_params("x", schema, {})
    with pytest.raises(ValueError,
                       match=r"no parameter\(s\) \['bogus'\]; accepted: mode, n, ratio"):
        validate_params("x", schema, {"mode": "a", "bogus": 1})
    with pytest.raises(ValueError, match=r"'n' must be <= 5"):
        validate_params("x", schema, {"mode": "a", "n": 9})
    with pytest.raises(ValueError, match=r"'n' must be a int, got bool"):
        validate_params("x", schema, {"mode": "a", "n": True})
    with pytest.raises(ValueError, match=r"must be one of"):
        validate_params("x", schema, {"mode": "__import__('os')"})


def test_unknown_action_or_bad_params_rejected_at_request_time(mon):
    with pytest.raises(ValueError,
                       match=r"unknown action 'memory_optimisation'.*memory_optimization"):
        mon.request_action("memory_optimisation")
    with pytest.raises(ValueError, match=r"must be <= 2"):
        mon.request_action("memory_optimization", generation=7)
    with pytest.raises(ValueError, match=r"unknown action"):
        mon.run_action("rm_rf")
    assert mon.store.actions().empty  # nothing was queued or recorded


def test_a_bad_request_already_queued_is_rejected_with_the_reason(mon):
    # Queued straight through the store (e.g. by an older client): rejected when claimed.
    rid = mon.store.request_action("no_such_action", {}, host=mon.host)
    rid2 = mon.store.request_action("memory_optimization", {"generation": "2; DROP"},
                                    host=mon.host)
    results = mon.optimizer.process_requests()
    assert [r.status for r in results] == ["rejected", "rejected"]
    log = mon.store.actions().set_index("id")
    assert log.loc[rid, "status"] == "rejected" and "unknown action" in log.loc[rid, "error"]
    assert "must be a int" in log.loc[rid2, "error"]


# -- verdict ------------------------------------------------------------------------------
def test_verdict_rule():
    watch = {"process.rss": "higher", "cache.hit_rate": "lower"}
    assert verdict({"process.rss": 100}, {"process.rss": 90}, watch)[0] == "improved"
    assert verdict({"process.rss": 100}, {"process.rss": 110}, watch)[0] == "worse"
    assert verdict({"process.rss": 100}, {"process.rss": 103}, watch)[0] == "no change"
    assert verdict({"cache.hit_rate": 50}, {"cache.hit_rate": 70}, watch)[0] == "improved"
    # the first watched metric measured on both sides decides
    v, why = verdict({"process.rss": 100, "cache.hit_rate": 50},
                     {"process.rss": 100, "cache.hit_rate": 90}, watch)
    assert v == "no change" and why.startswith("process.rss")
    assert verdict({}, {"process.rss": 1}, watch)[0] == "inconclusive"


# -- recommend ----------------------------------------------------------------------------
def test_recommend_orders_by_severity_and_explains_impact():
    frame = frame_of([("system.memory_usage", 97.0), ("database.query_time", 150.0),
                      ("cache.hit_rate", 95.0), ("system.cpu_usage", 10.0)])
    recs = recommend(frame)
    assert list(recs.columns) == ["action", "target", "params", "priority", "severity",
                                  "estimated_impact", "reason", "evidence"]
    assert recs.iloc[0]["action"] == "memory_optimization"
    assert recs.iloc[0]["severity"] == "critical" and recs.iloc[0]["priority"] == 1
    assert list(recs["priority"]) == list(range(1, len(recs) + 1))
    assert {"query_optimization", "database_optimization"} <= set(recs["action"])
    assert "cache_optimization" not in set(recs["action"])  # hit rate is fine
    mem = recs.iloc[0]
    assert mem["estimated_impact"] == pytest.approx((97 - 80) / 80)
    assert "97" in mem["reason"] and "relative excess" in mem["reason"]
    q = recs.set_index("action").loc["query_optimization"]
    d = recs.set_index("action").loc["database_optimization"]
    assert q["priority"] < d["priority"]


def test_recommend_uses_only_firing_alerts_given():
    frame = frame_of([("system.memory_usage", 50.0)])
    given = pd.DataFrame({"metric": ["system.memory_usage", "cache.hit_rate"], "labels": ["", ""],
                          "severity": ["critical", "critical"], "state": ["firing", "resolved"],
                          "value": [96.0, 10.0], "threshold": [95.0, 60.0]})
    recs = recommend(frame, given)
    assert list(recs["action"]) == ["memory_optimization"]
    assert recs.iloc[0]["evidence"][0]["value"] == 96.0


def test_recommend_collapses_duplicates_for_one_target():
    frame = frame_of([("system.memory_usage", 97.0), ("system.memory_available", 0.1)])
    recs = recommend(frame)
    assert list(recs["action"]) == ["memory_optimization"]
    assert len(recs.iloc[0]["evidence"]) == 2 and " | " in recs.iloc[0]["reason"]


def test_recommend_cache_by_cause_and_statement_target():
    frame = frame_of([("cache.hit_rate", 40.0)])
    cold = {"hits": 40, "misses": 60, "evictions": 0, "expirations": 0}
    assert recommend(frame, cache_stats=cold).empty  # nothing a knob could fix
    evicting = {"hits": 40, "misses": 60, "evictions": 45, "expirations": 0}
    rec = recommend(frame, cache_stats=evicting).iloc[0]
    assert rec["action"] == "cache_optimization"
    assert rec["estimated_impact"] == pytest.approx(0.75) and "evictions" in rec["reason"]
    stmts = pd.DataFrame({"engine": ["e", "e"], "sql": ["SELECT * FROM a WHERE x = ?",
                                                        "SELECT 1"],
                          "count": [10, 90], "total_ms": [3000.0, 1000.0],
                          "mean_ms": [300.0, 11.1], "max_ms": [400.0, 20.0],
                          "last_params": [(1,), ()]})
    recs = recommend(frame_of([("system.cpu_usage", 5.0)]), statements=stmts)
    q = recs.iloc[0]
    assert q["action"] == "query_optimization" and q["target"].endswith("WHERE x = ?")
    assert q["estimated_impact"] == pytest.approx(0.75) and q["severity"] == "warning"


def test_recommend_pool_overflow_and_healthy_frame():
    assert recommend(frame_of([("system.cpu_usage", 5.0)])).empty
    recs = recommend(frame_of([("database.overflow", 3.0), ("database.checked_out", 8.0)]))
    assert recs.iloc[0]["action"] == "connection_optimization"
    with pytest.raises(ValueError, match=r"lacks column"):
        recommend(pd.DataFrame({"x": [1]}))


# -- the runner ---------------------------------------------------------------------------
def test_every_run_writes_an_audit_row(mon, custom):
    seen = []

    def act(monitor, *, dry_run, level):
        seen.append((dry_run, level))
        return perfkit.actions.Outcome({"level": level}, before={"custom.thing": 10.0},
                                       after={"custom.thing": 5.0}, changed=not dry_run)

    custom("tune_thing", act, {"level": {"type": "int", "default": 1}},
           watch={"custom.thing": "higher"})
    r = mon.run_action("tune_thing", level=4)
    dry = mon.run_action("tune_thing", dry_run=True)
    assert seen == [(False, 4), (True, 1)]
    assert r.status == "done" and r.verdict == "improved" and r.after == {"custom.thing": 5.0}
    assert dry.verdict is None and dry.dry_run
    log = mon.store.actions().set_index("id")
    row = log.loc[r.id]
    assert row["status"] == "done" and row["requested_by"] == "user"
    assert row["params"] == {"level": 4} and row["verdict"] == "improved"
    assert row["before"]["custom.thing"] == 10.0 and row["duration_s"] >= 0
    assert "verdict_reason" in row["detail"]
    assert bool(log.loc[dry.id, "dry_run"]) is True


def test_failures_and_timeouts_are_recorded_and_do_not_propagate(mon, custom):
    release, finished = threading.Event(), threading.Event()

    def boom(monitor, *, dry_run):
        raise RuntimeError("disk on fire")

    def slow(monitor, *, dry_run):
        release.wait(120)  # until the test lets it go (the bound only ends a hang)
        finished.set()

    custom("boom_action", boom)
    custom("slow_action", slow)
    mon.optimizer.configure(timeout_s=0.2)
    try:
        r = mon.run_action("boom_action")
        assert r.status == "failed" and r.error == "RuntimeError: disk on fire"
        t = mon.run_action("slow_action")
        assert not finished.is_set()  # it returned on its timeout, not when the action ended
        assert t.status == "failed" and "timed out after 0.2 s" in t.error
        again = mon.run_action("slow_action")  # the first one is still running
        assert again.status == "failed" and "still running" in again.error
    finally:
        release.set()
    log = mon.store.actions().set_index("id")
    assert log.loc[r.id, "status"] == "failed" and "disk on fire" in log.loc[r.id, "error"]
    assert log.loc[t.id, "status"] == "failed"


def test_automatic_cycle_runs_critical_first_with_cooldown_and_limit(mon, custom):
    frame = frame_of([("database.query_time", 150.0), ("system.memory_usage", 97.0)])
    opt = mon.optimizer.configure(max_per_cycle=2, cooldown_s=3600)
    first = opt.cycle(frame)
    assert [r.action for r in first] == ["memory_optimization", "query_optimization"]
    assert first[0].requested_by == "auto" and first[0].status == "done"
    # no engine instrumented: the query action fails, is recorded, and the cycle went on
    assert first[1].status == "failed" and "no SELECT statements" in first[1].error
    assert any("max_per_cycle" in s["why"] for s in opt.last_skipped)
    second = opt.cycle(frame)
    assert [r.action for r in second] == ["database_optimization"]
    cooled = {s["action"] for s in opt.last_skipped if s["why"].startswith("cooldown")}
    assert cooled == {"memory_optimization", "query_optimization"}
    log = mon.store.actions()
    assert list(log["action"]) == ["memory_optimization", "query_optimization",
                                   "database_optimization"]
    assert set(log["requested_by"]) == {"auto"}


class _MemoryPressure:
    """Stands in for the system collector: the host stays at 97 % memory, so the alert
    keeps firing while the loop runs (the real collector would report this machine)."""

    name = "system"

    def collect(self):
        return [Reading("system.memory_usage", 97.0)]


def test_background_loop_acts_on_stored_alerts(mon):
    mon.add_collector(_MemoryPressure())
    mon.store.write(frame_of([("system.memory_usage", 97.0)], host=mon.host))
    mon.start_optimization(cooldown_s=3600, settle_s=0.0)
    assert mon.optimization_active
    wait_until(lambda: not mon.store.actions(status="done").empty, 60, "the loop's first action")
    opt = mon.optimizer
    wait_until(lambda: any(s["why"].startswith("cooldown") for s in opt.last_skipped), 60,
               "the next cycle to skip the action for its cooldown")
    mon.stop_optimization()
    assert {s["action"] for s in opt.last_skipped} == {"memory_optimization"}
    assert not mon.optimization_active
    log = mon.store.actions()
    assert list(log["action"]) == ["memory_optimization"]
    assert log.iloc[0]["requested_by"] == "auto"
    assert log.iloc[0]["detail"]["collected_total"] >= 0


def test_async_twins(mon):
    import asyncio

    async def go():
        await mon.start_optimization_async(cooldown_s=3600)
        active = mon.optimization_active
        await mon.stop_optimization_async()
        return active

    assert asyncio.run(go()) is True
    assert not mon.optimization_active


def test_action_result_frame_and_html():
    r = ActionResult("memory_optimization", "done", {}, "process", before={"process.rss": 10.0},
                     after={"process.rss": 8.0}, verdict="improved", verdict_reason="rss down")
    f = r.to_frame()
    assert f.loc[0, "change"] == -2.0 and f.loc[0, "verdict"] == "improved"
    html = r._repr_html_()
    assert "memory_optimization" in html and "improved" in html and "<table>" in html


# -- requests claimed exactly once --------------------------------------------------------
def _queue(store, host, n):
    return [store.request_action("count_me", {"n": i}, host=host) for i in range(n)]


def _serve_until_empty(monitor):
    while True:
        if not monitor.optimizer.process_requests(limit=2) and \
                monitor.store.actions(status=["pending"]).empty:
            return


def _two_thread_monitors(url, custom):
    ran: list[int] = []
    lock = threading.Lock()

    def count_me(monitor, *, dry_run, n):
        time.sleep(0.002)
        with lock:
            ran.append(n)
        return {"n": n, "by": monitor.optimizer.claimer}

    custom("count_me", count_me, {"n": {"type": "int"}})
    mons = [Monitor(url, interval=1.0, host="shared-host") for _ in range(2)]
    ids = _queue(mons[0].store, "shared-host", 40)
    threads = [threading.Thread(target=_serve_until_empty, args=(m,)) for m in mons]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    log = mons[0].store.actions().set_index("id")
    for m in mons:
        m.store.close()
    return ids, ran, log


def test_two_monitors_in_two_threads_run_each_request_once(sqlite_url, custom):
    ids, ran, log = _two_thread_monitors(sqlite_url, custom)
    assert sorted(ran) == list(range(40))
    assert (log.loc[ids, "status"] == "done").all()


@pytest.mark.postgres
def test_two_monitors_in_two_threads_run_each_request_once_postgres(pg_url, custom):
    ids, ran, log = _two_thread_monitors(pg_url, custom)
    assert sorted(ran) == list(range(40))
    assert (log.loc[ids, "status"] == "done").all()


_CHILD = textwrap.dedent("""
    import os, sys, time
    import perfkit.actions
    from perfkit.monitor import Monitor
    url, out, go = sys.argv[1:4]

    def count_me(monitor, *, dry_run, n):
        with open(out, "a") as f:
            f.write(f"{n} {os.getpid()}\\n")
        time.sleep(0.005)
        return {"n": n}

    perfkit.actions.register("count_me", count_me, {"n": {"type": "int"}}, "count")
    mon = Monitor(url, interval=1.0, host="shared-host")
    open(go + f".ready{os.getpid()}", "w").close()
    while not os.path.exists(go):
        time.sleep(0.01)
    while True:
        if not mon.optimizer.process_requests(limit=1) and \\
                mon.store.actions(status="pending").empty:
            break
    mon.store.close()
""")


def test_two_monitors_in_two_processes_run_each_request_once(sqlite_url, tmp_path):
    store = perfkit.Store(sqlite_url)
    ids = _queue(store, "shared-host", 30)
    out, go = tmp_path / "ran.txt", tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", _CHILD, sqlite_url, str(out), str(go)])
             for _ in range(2)]
    wait_until(lambda: len(list(tmp_path.glob("go.ready*"))) == 2, 120,
               "both child monitors to be ready", every=0.02)
    go.touch()
    assert [p.wait(60) for p in procs] == [0, 0]
    lines = [ln.split() for ln in out.read_text().splitlines()]
    assert sorted(int(n) for n, _ in lines) == list(range(30))  # each exactly once
    log = store.actions().set_index("id")
    assert (log.loc[ids, "status"] == "done").all()
    assert set(log["claimed_by"].str.split("/").str[0]) == {"shared-host"}
    store.close()


def test_running_monitors_claim_requests_through_their_hook(sqlite_url, custom):
    ran: list[int] = []
    lock = threading.Lock()

    def count_me(monitor, *, dry_run, n):
        with lock:
            ran.append(n)

    custom("count_me", count_me, {"n": {"type": "int"}})
    mons = [Monitor(sqlite_url, interval=0.2, host="shared-host") for _ in range(2)]
    for m in mons:
        m.optimizer.configure(settle_s=0.0)  # creating the optimizer registers its hook
        m.start()
    try:
        ids = [mons[0].request_action("count_me", n=i) for i in range(20)]
        wait_until(lambda: len(mons[0].store.actions(status="done")) == len(ids), 120,
                   "every request to be done")
    finally:
        for m in mons:
            m.stop()
            m.stop_optimization()  # joins the worker before the store closes
    assert sorted(ran) == list(range(20))
    log = mons[0].store.actions().set_index("id")
    assert (log.loc[ids, "requested_by"] == "api").all()
    for m in mons:
        m.store.close()


# -- plan reading (pure) ------------------------------------------------------------------
def test_plans_find_scans_filters_and_join_columns():
    from perfkit.actions._plans import pg_scans, sqlite_scans

    rows = [(3, 0, 0, "SCAN x"), (7, 0, 0, "SEARCH u USING AUTOMATIC COVERING INDEX (t_id=?)"),
            (9, 0, 0, "SEARCH v USING INDEX ix_v (k=?)"),
            (11, 0, 0, "SCAN w USING COVERING INDEX ix_w")]
    sql = ("SELECT * FROM t AS x JOIN u ON u.t_id = x.a JOIN v ON v.k = x.id JOIN w ON w.z = x.id "
           "WHERE x.b = ? AND u.n > ?")
    scans = {s.alias: s for s in sqlite_scans(rows, sql)}
    assert set(scans) == {"x", "u"}  # index searches and covering-index scans are fine
    assert scans["x"].table == "t" and scans["x"].filter_columns == {"b": "equality"}
    assert scans["u"].automatic_index == ["t_id"] and scans["u"].filter_columns == {"n": "range"}
    plan = [{"Plan": {"Node Type": "Hash Join", "Hash Cond": "(u.t_id = x.a)", "Plans": [
        {"Node Type": "Seq Scan", "Relation Name": "u", "Alias": "u",
         "Filter": "(x = '1'::smallint)", "Plan Rows": 10},
        {"Node Type": "Hash", "Plans": [
            {"Node Type": "Seq Scan", "Relation Name": "t", "Alias": "x",
             "Filter": "((b)::text = '7'::text)"}]}]}}]
    pg = {s.alias: s for s in pg_scans(plan)}
    assert pg["u"].filter_columns == {"x": "equality"} and pg["u"].join_columns == ["t_id"]
    assert pg["x"].table == "t" and pg["x"].filter_columns == {"b": "equality"}
    assert pg["x"].join_columns == ["a"]


def test_an_indexed_statement_is_no_longer_recommended():
    """Lifetime totals stay high after a fix; the recommendation follows the recent runs."""
    import pandas as pd

    from perfkit import recommend
    from perfkit.frames import empty_samples

    row = {"engine": "e", "sql": "SELECT * FROM orders WHERE user_id = ?", "count": 40,
           "total_ms": 40 * 150.0, "mean_ms": 150.0, "max_ms": 160.0, "last_sql": "",
           "last_params": None}
    slow = pd.DataFrame([{**row, "recent_ms": 150.0}])
    fixed = pd.DataFrame([{**row, "recent_ms": 0.2}])
    assert recommend(empty_samples(), statements=slow)["action"].tolist() == ["query_optimization"]
    actions = recommend(empty_samples(), statements=fixed)["action"].tolist()
    assert "query_optimization" not in actions
