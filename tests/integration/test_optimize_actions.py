"""The built-in actions against real objects: the garbage collector, perfkit.Cache, SQLite
and the real PostgreSQL (100k-row tables, real plans, real indexes)."""

from __future__ import annotations

import gc
import threading
import time

import pandas as pd
import pytest
import sqlalchemy as sa
from _procs import wait_until

import perfkit
from perfkit.actions.builtin._cache import diagnose_cache, plan_cache_change
from perfkit.actions.builtin._connection import pool_recommendation
from perfkit.monitor import Monitor

ROWS = 100_000


# -- memory -------------------------------------------------------------------------------
class _Node:
    def __init__(self) -> None:
        self.me = self
        self.payload = list(range(20))


def test_memory_optimization_collects_cyclic_garbage(mon):
    was = gc.isenabled()
    gc.disable()  # keep the automatic collector from freeing our cycles first
    try:
        junk = [_Node() for _ in range(20_000)]
        del junk
        r = mon.run_action("memory_optimization")
    finally:
        if was:
            gc.enable()
    assert r.status == "done"
    assert r.detail["collected_total"] >= 20_000
    assert set(r.detail["collected"]) == {"gen0", "gen1", "gen2"}
    assert r.before["process.rss"] > 0 and r.after["process.rss"] > 0
    assert r.verdict in ("improved", "no change", "worse")
    row = mon.store.actions().iloc[-1]
    assert row["detail"]["collected_total"] == r.detail["collected_total"]


def test_memory_optimization_dry_run_changes_nothing(mon):
    r = mon.run_action("memory_optimization", dry_run=True, generation=0)
    assert r.status == "done" and r.verdict is None
    assert "collected" not in r.detail and r.detail["would_collect_generations"] == [0]


# -- cache --------------------------------------------------------------------------------
def test_cache_evictions_grow_the_binding_bound_not_the_ttl(mon):
    cache = perfkit.Cache(max_entries=100, default_ttl=300)
    mon.attach_cache(cache)
    for _ in range(3):  # a working set of 150 keys cycling through 100 slots
        for i in range(150):
            if cache.get(f"k{i}") is None:
                cache.set(f"k{i}", i)
    r = mon.run_action("cache_optimization")
    assert r.status == "done", r.error
    assert r.detail["diagnosis"]["cause"] == "evictions"
    change = r.detail["change"]
    assert change["knob"] == "max_entries" and change["old"] == 100
    assert 125 <= change["new"] <= 200
    assert cache.max_entries == change["new"] and cache.default_ttl == 300


def test_cache_expiry_raises_ttl_and_cold_cache_changes_nothing(mon, monkeypatch):
    now = [1000.0]  # the cache's clock, advanced past the TTL instead of slept through
    monkeypatch.setattr("perfkit.cache._memory.monotonic", lambda: now[0])
    cache = perfkit.Cache(max_entries=10_000, default_ttl=0.05)
    mon.attach_cache(cache)
    for i in range(100):
        cache.set(f"k{i}", i)
    now[0] += 0.1
    for i in range(100):
        cache.get(f"k{i}")
    r = mon.run_action("cache_optimization")
    assert r.detail["diagnosis"]["cause"] == "expiry"
    assert r.detail["change"]["knob"] == "default_ttl"
    assert cache.default_ttl > 0.05 and cache.max_entries == 10_000

    cold = perfkit.Cache(max_entries=10_000, default_ttl=300)
    mon.attach_cache(cold)
    for i in range(100):
        cold.get(f"never-set-{i}")
    before = cold.settings()
    r = mon.run_action("cache_optimization")
    assert r.detail["diagnosis"]["cause"] == "cold" and r.detail["change"] is None
    assert "warm" in r.detail["advice"] and cold.settings() == before


def test_cache_rules_are_pure_and_bounded():
    d = diagnose_cache({"hits": 10, "misses": 90, "evictions": 80, "expirations": 5})
    assert d["cause"] == "evictions" and d["shares"]["evictions"] == pytest.approx(80 / 90)
    stats = {"entry_count": 1000, "max_entries": 100_000, "memory_bytes": 1000,
             "max_bytes": 1000, "compression_level": 3, "compression_ratio": 2.0}
    # bytes bind, memory cannot grow → compress harder instead
    plan = plan_cache_change(d, stats, max_bytes_cap=1000)
    assert plan["knob"] == "compression_level" and plan["new"] == 6
    assert diagnose_cache({"hits": 1, "misses": 2}, min_lookups=50)["cause"] == \
        "insufficient_traffic"
    assert diagnose_cache({"hits": 95, "misses": 5, "evictions": 5})["cause"] == "healthy"


def test_cache_optimization_without_a_cache_fails_clearly(mon):
    r = mon.run_action("cache_optimization")
    assert r.status == "failed" and "attach_cache" in r.error


# -- query --------------------------------------------------------------------------------
def _orders(engine):
    md = sa.MetaData()
    t = sa.Table("orders", md, sa.Column("id", sa.Integer, primary_key=True),
                 sa.Column("customer", sa.Integer), sa.Column("amount", sa.Float),
                 sa.Column("note", sa.String(20)))
    md.create_all(engine)
    # the rows are made inside the database (the size keeps index and scan far apart;
    # sending 100,000 parameter sets from Python only costs time)
    if engine.dialect.name == "postgresql":  # (no "%": psycopg reads it as a placeholder)
        sql = (f"INSERT INTO orders SELECT i, mod(i, 5000), i * 0.5, 'x' "
               f"FROM generate_series(0, {ROWS - 1}) AS g(i)")
    else:
        sql = (f"WITH RECURSIVE g(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM g "
               f"WHERE i < {ROWS - 1}) INSERT INTO orders SELECT i, i % 5000, i * 0.5, 'x' FROM g")
    with engine.begin() as conn:
        conn.exec_driver_sql(sql)
        assert conn.execute(sa.select(sa.func.count()).select_from(t)).scalar() == ROWS
    return t


def _index_cycle(mon, engine, scan_word, index_words):
    t = _orders(engine)
    mon.instrument_engine(engine)
    with engine.connect() as conn:
        for k in range(5):
            assert len(conn.execute(sa.select(t).where(t.c.customer == k)).all()) == 20
    proposal = mon.run_action("query_optimization")
    assert proposal.status == "done", proposal.error
    stmt = proposal.detail["statements"][0]
    assert any(scan_word in line for line in stmt["plan_before"])
    assert len(stmt["proposals"]) == 1 and "CREATE INDEX" in stmt["proposals"][0]
    assert "customer" in stmt["proposals"][0]
    assert sa.inspect(engine).get_indexes("orders") == []  # proposing changed nothing

    applied = mon.run_action("query_optimization", apply=True)
    assert applied.status == "done", applied.error
    stmt = applied.detail["statements"][0]
    assert stmt["index_used"] is True
    assert any(any(w in line for w in index_words) for line in stmt["plan_after"])
    assert not any(scan_word in line for line in stmt["plan_after"])
    assert stmt["ms_after"] < stmt["ms_before"]
    assert applied.verdict == "improved"
    names = [ix["column_names"] for ix in sa.inspect(engine).get_indexes("orders")]
    assert names == [["customer"]]
    row = mon.store.actions().set_index("id").loc[applied.id]
    assert row["after"]["statement_ms"] < row["before"]["statement_ms"]


def test_query_optimization_indexes_a_scanned_column_sqlite(mon, tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path}/app.db")
    _index_cycle(mon, engine, "SCAN orders", ["SEARCH orders USING INDEX"])


@pytest.mark.postgres
def test_query_optimization_indexes_a_scanned_column_postgres(mon, pg_url):
    engine = sa.create_engine(pg_url)
    _index_cycle(mon, engine, "Seq Scan on orders", ["Index Scan", "Bitmap Index Scan",
                                                     "Index Only Scan"])


def test_query_optimization_quotes_odd_identifiers_and_skips_unselective_columns(mon, tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path}/odd.db")
    md = sa.MetaData()
    a = sa.Table("order lines", md, sa.Column("id", sa.Integer, primary_key=True),
                 sa.Column("Order Id", sa.Integer), sa.Column("qty", sa.Integer))
    b = sa.Table("orders", md, sa.Column("id", sa.Integer, primary_key=True),
                 sa.Column("region", sa.String(10)))
    md.create_all(engine)
    with engine.begin() as conn:
        conn.execute(b.insert(), [{"id": i, "region": f"r{i % 50}"} for i in range(5000)])
        conn.execute(a.insert(), [{"id": i, "Order Id": i % 5000, "qty": 1}
                                  for i in range(20_000)])
    mon.instrument_engine(engine)
    q = sa.select(a.c.qty).select_from(a.join(b, a.c["Order Id"] == b.c.id)) \
        .where(a.c.qty == 1, a.c["Order Id"] == 7)
    with engine.connect() as conn:
        conn.execute(q).all()
    r = mon.run_action("query_optimization", apply=True, repeat=1)
    assert r.status == "done", r.error
    created = [ix["column_names"] for ix in sa.inspect(engine).get_indexes("order lines")]
    # qty holds one value only: not worth an index; "Order Id" is selective
    assert created == [["Order Id"]], r.detail
    assert r.detail["proposals"][0]["sql"] == \
        'CREATE INDEX ix_order_lines_order_id ON "order lines" ("Order Id")'
    assert r.detail["statements"][0]["index_used"] is True


def test_request_params_never_reach_sql(mon, tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path}/safe.db")
    _orders(engine)
    mon.instrument_engine(engine)
    rid = mon.request_action("query_optimization", engine="'; DROP TABLE orders; --")
    (r,) = mon.optimizer.process_requests()
    assert r.id == rid and r.status == "failed"
    assert "no SELECT statements" in r.error
    assert "orders" in sa.inspect(engine).get_table_names()


# -- database -----------------------------------------------------------------------------
def test_database_optimization_sqlite_analyzes_missing_statistics(mon, tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path}/db.db")
    _orders(engine)
    mon.instrument_engine(engine)
    dry = mon.run_action("database_optimization", dry_run=True)
    (eng,) = dry.detail["engines"].values()
    assert eng["executed"] == [] and eng["findings"][0]["finding"] == "missing statistics"
    r = mon.run_action("database_optimization")
    (eng,) = r.detail["engines"].values()
    assert "PRAGMA optimize" in eng["executed"]
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM sqlite_stat1 WHERE tbl = 'orders'"
                                    ).scalar() >= 1


@pytest.mark.postgres
def test_database_optimization_postgres_analyze_and_bloat(mon, pg_url):
    engine = sa.create_engine(pg_url)
    _orders(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM orders WHERE id % 2 = 0"))
    mon.instrument_engine(engine)
    r = mon.run_action("database_optimization")
    assert r.status == "done", r.error
    (eng,) = r.detail["engines"].values()
    assert any(x.endswith(('."orders"', ".orders")) for x in eng["executed"])
    with engine.connect() as conn:
        tuples = conn.exec_driver_sql(
            "SELECT reltuples FROM pg_class WHERE oid = 'orders'::regclass").scalar()
    assert tuples == pytest.approx(ROWS / 2, rel=0.1)  # ANALYZE really ran


# -- connections --------------------------------------------------------------------------
def test_pool_recommendation_from_peaks():
    now = pd.Timestamp.now(tz="UTC")
    checked = [2, 3, 4, 12, 3, 2, 5, 4, 3, 2]
    rows = [{"ts": now + pd.Timedelta(seconds=i), "metric": "database.checked_out", "value": v}
            for i, v in enumerate(checked)]
    rows += [{"ts": now + pd.Timedelta(seconds=i), "metric": "database.overflow",
              "value": v - 5} for i, v in enumerate(checked)]
    rec = pool_recommendation(perfkit.as_samples(pd.DataFrame(rows)), headroom=1.25)
    p95 = pd.Series(checked).quantile(0.95)
    assert rec["pool_size"] == int(-(-p95 * 1.25 // 1))
    assert rec["pool_size"] + rec["max_overflow"] == 15  # ceil(12 × 1.25)
    assert rec["evidence"]["samples_in_overflow"] == 1 and rec["evidence"]["checked_out_peak"] == 12
    assert pool_recommendation(perfkit.empty_samples()) is None


def test_connection_optimization_recycles_the_pool(mon, tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path}/pool.db")
    mon.instrument_engine(engine)
    conns = [engine.connect() for _ in range(3)]
    for c in conns:
        c.exec_driver_sql("SELECT 1")
        c.close()
    mon.collect()
    r = mon.run_action("connection_optimization")
    assert r.status == "done", r.error
    (eng,) = r.detail["engines"].values()
    assert eng["before"]["checkedin"] == 3 and eng["after"]["checkedin"] == 0
    assert r.detail["connections_closed"] == 3
    assert r.detail["recommendation"]["evidence"]["samples"] >= 1


def test_cache_optimization_reports_hit_rate_in_following_intervals(sqlite_url):
    mon = Monitor(sqlite_url, interval=0.2, host="cache-host")
    cache = perfkit.Cache(max_entries=100, default_ttl=300)
    mon.attach_cache(cache)
    stop = threading.Event()

    def traffic():  # 150 hot keys cycling through an LRU of 100: every lookup misses
        while not stop.is_set():
            for i in range(150):
                if cache.get(f"k{i}") is None:
                    cache.set(f"k{i}", i)
            time.sleep(0.005)

    t = threading.Thread(target=traffic, daemon=True)
    t.start()
    mon.start()
    try:
        wait_until(lambda: len(mon.store.samples(metric="cache.hit_rate",
                                                 host="cache-host")) >= 3, 120,
                   "three hit-rate samples")
        mon.optimizer.configure(settle_s=1.0)
        r = mon.run_action("cache_optimization")
    finally:
        stop.set()
        mon.stop()
        t.join(5)
    assert r.status == "done", r.error
    assert r.detail["change"]["knob"] == "max_entries" and cache.max_entries >= 150
    assert r.before["cache.hit_rate"] < 10
    assert len(r.detail["after_intervals"]["cache.hit_rate"]) >= 2
    assert r.after["cache.hit_rate"] > r.before["cache.hit_rate"]
    assert r.verdict == "improved"
    mon.store.close()
