"""Collectors report real, checked values; a source without data yields nothing."""

from __future__ import annotations

import time

import psutil
import pytest
import sqlalchemy as sa

from perfkit.collectors import CacheCollector, DatabaseCollector, RedisCollector, SystemCollector
from perfkit.collectors._database import normalize_sql


def _values(readings, labels=""):
    return {r.metric: r.value for r in readings if r.labels == labels}


def test_system_collector_is_non_blocking_and_sane(tmp_path, monkeypatch):
    # CPU percentages compare with the previous call's counters: no call may block for an
    # interval to measure one (asked of psutil, not timed, so a busy machine cannot fail it)
    intervals = []
    system_cpu, process_cpu = psutil.cpu_percent, psutil.Process.cpu_percent

    def cpu_percent(interval=None, percpu=False):
        intervals.append(interval)
        return system_cpu(interval=interval, percpu=percpu)

    def proc_cpu_percent(self, interval=None):
        intervals.append(interval)
        return process_cpu(self, interval=interval)

    monkeypatch.setattr(psutil, "cpu_percent", cpu_percent)
    monkeypatch.setattr(psutil.Process, "cpu_percent", proc_cpu_percent)
    c = SystemCollector(str(tmp_path))
    first = _values(c.collect())
    assert "system.cpu_usage" not in first  # the first call only primes the CPU counters
    second = _values(c.collect())
    assert 0.0 <= second["system.cpu_usage"] <= 100.0
    assert second["system.memory_usage"] == pytest.approx(psutil.virtual_memory().percent, abs=5)
    expected = psutil.disk_usage(str(tmp_path)).percent
    assert second["system.disk_usage"] == pytest.approx(expected, abs=1)
    assert second["system.memory_available"] > 0
    assert len(intervals) >= 4 and set(intervals) == {None}


def test_rss_grows_when_the_process_allocates():
    c = SystemCollector("/")
    before = _values(c.collect())["process.rss"]
    block = bytearray(300 * 2**20)
    block[:: 4096] = b"x" * len(block[:: 4096])  # touch every page so it is resident
    after = _values(c.collect())["process.rss"]
    del block
    assert after - before > 250


def test_system_collector_rejects_missing_path():
    with pytest.raises(ValueError, match="disk_path"):
        SystemCollector("/no/such/path")


def test_normalize_sql_folds_literals_and_in_lists():
    a = normalize_sql("SELECT * FROM t WHERE a = 5 AND b = 'x''y'  AND c IN (?, ?, ?)")
    b = normalize_sql("SELECT *  FROM t WHERE a = 17 AND b = 'z' AND c IN (?, ?)")
    assert a == b == "SELECT * FROM t WHERE a = ? AND b = ? AND c IN (?)"


def test_database_collector_times_sqlite_statements_and_reads_queuepool(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path}/app.db")
    coll = DatabaseCollector()
    coll.instrument(engine)
    coll.instrument(engine)  # idempotent: statements are not counted twice
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"))
        for i in range(20):
            conn.execute(sa.text("INSERT INTO t (v) VALUES (:v)"), {"v": str(i)})
    with engine.connect() as held:
        held.execute(sa.text("SELECT 1"))
        out = _values(coll.collect())
        assert out["database.checked_out"] == 1
        assert out["database.overflow"] == 0  # SQLAlchemy says -4 while the pool fills
    assert out["database.pool_size"] == engine.pool.size()
    assert out["database.query_time"] > 0
    assert out["database.query_time.p50"] <= out["database.query_time.p99"]
    stmts = coll.statements()
    insert = stmts[stmts["sql"].str.startswith("INSERT")]
    assert int(insert["count"].iloc[0]) == 20


def test_pool_without_counters_yields_no_pool_sample():
    engine = sa.create_engine("sqlite://")  # SingletonThreadPool: no size/overflow
    coll = DatabaseCollector()
    coll.instrument(engine)
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT 1"))
    out = _values(coll.collect())
    assert "database.pool_size" not in out and "database.overflow" not in out
    assert out["database.queries_per_second"] > 0


@pytest.mark.postgres
def test_pg_sleep_50ms_shows_up_at_about_50ms(pg_url):
    engine = sa.create_engine(pg_url)
    coll = DatabaseCollector()
    coll.instrument(engine)
    outside = []
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT 1"))
        coll.collect()
        for _ in range(5):
            t0 = time.perf_counter()
            conn.execute(sa.text("SELECT pg_sleep(0.05)"))
            outside.append((time.perf_counter() - t0) * 1000)
    out = _values(coll.collect())
    engine.dispose()
    # the server sleeps at least 50 ms; the collector times inside what the test timed
    # around each call (bounds, not a tolerance, so a busy machine cannot fail it)
    assert 50 <= out["database.query_time"] <= sum(outside) / 5 + 1
    assert 50 <= out["database.query_time.p95"] <= max(outside) * 1.1 + 1


class _DictCache:
    """A minimal cache of a user's own with a stats() mapping."""

    def __init__(self):
        self.d, self.hits, self.misses = {}, 0, 0

    def get(self, k):
        if k in self.d:
            self.hits += 1
            return self.d[k]
        self.misses += 1
        return None

    def stats(self):
        return {"hits": self.hits, "misses": self.misses, "entry_count": len(self.d),
                "memory_bytes": 3 * 2**20}


def test_cache_collector_reports_interval_hit_rate():
    cache = _DictCache()
    coll = CacheCollector(cache)
    first = _values(coll.collect())
    assert "cache.hit_rate" not in first  # no interval yet
    cache.d.update(a=1, b=2)
    for k in "aaab":
        cache.get(k)
    cache.get("zzz")
    out = _values(coll.collect())
    assert out["cache.hit_rate"] == pytest.approx(80.0)
    assert out["cache.entry_count"] == 2
    assert out["cache.memory_usage"] == pytest.approx(3.0)
    for _ in range(4):
        cache.get("nope")
    assert _values(coll.collect())["cache.hit_rate"] == 0.0


def test_cache_collector_rejects_objects_without_stats():
    with pytest.raises(TypeError, match="stats"):
        CacheCollector(object())


@pytest.mark.redis
def test_redis_collector_reads_info(own_redis):
    import redis

    # A private server: INFO's hit and miss counters are server-wide, and other tests use
    # the shared one at the same time.
    client = redis.Redis(port=own_redis.port, socket_connect_timeout=1, socket_timeout=5)
    coll = RedisCollector(client)
    client.set("perfkit:test:a", "x" * 100)
    coll.collect()
    for _ in range(300):
        client.get("perfkit:test:a")
        client.get("perfkit:test:missing")
    for _ in range(100):
        client.get("perfkit:test:missing")
    out = _values(coll.collect())
    assert out["cache.hit_rate"] == pytest.approx(300 / 700 * 100)
    assert out["cache.entry_count"] == 1
    assert out["cache.memory_usage"] > 0
    client.close()


class StepClock:
    """The collector's ``perf_counter``: each reading is ``step`` seconds after the previous,
    so a statement (one reading before, one after) lasts exactly ``step``."""

    def __init__(self) -> None:
        self.now, self.step = 100.0, 0.001

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def test_statement_recent_mean_follows_the_latest_runs(tmp_path, monkeypatch):
    # durations are set by the test, not by how busy the machine is while the queries run
    clock = StepClock()
    monkeypatch.setattr("perfkit.collectors._database.perf_counter", clock)
    engine = sa.create_engine(f"sqlite:///{tmp_path}/app.db")
    coll = DatabaseCollector()
    coll.instrument(engine)
    with engine.connect() as conn:
        conn.execute(sa.text("CREATE TABLE t (v INTEGER)"))
        conn.execute(sa.text("INSERT INTO t VALUES (1)"))
        # A slow shape first, then the same shape made fast.
        q = sa.text("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < :n) "
                    "SELECT count(*) FROM c")
        clock.step = 0.2
        for _ in range(5):
            conn.execute(q, {"n": 3})
        clock.step = 0.0002
        for _ in range(30):
            conn.execute(q, {"n": 1})
    st = coll.statements()
    row = st[st["sql"].str.startswith("WITH RECURSIVE")].iloc[0]
    assert row["count"] == 35
    assert row["mean_ms"] == pytest.approx((5 * 200 + 30 * 0.2) / 35)
    # the weighted mean forgets the slow runs: 200 ms x 0.8**30 is about 0.25 ms
    assert row["recent_ms"] < row["mean_ms"] / 10
    assert row["recent_ms"] == pytest.approx(0.2 + 199.8 * 0.8 ** 30, rel=1e-6)


def test_perfkit_internal_statements_stay_out_of_the_metrics(tmp_path):
    from perfkit.collectors import INTERNAL

    engine = sa.create_engine(f"sqlite:///{tmp_path}/app.db")
    coll = DatabaseCollector()
    coll.instrument(engine)
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT 1"))
    with engine.execution_options(**INTERNAL).begin() as conn:
        conn.execute(sa.text("CREATE TABLE probe (x INTEGER)"))
        conn.execute(sa.text("SELECT 2"))
    assert coll.statements()["sql"].tolist() == ["SELECT ?"]
    out = _values(coll.collect())
    assert out["database.queries_per_second"] > 0  # the application's one statement
