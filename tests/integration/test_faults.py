"""The reliability suite: each way perfkit is promised to survive, on the real services.

docs/reliability.md lists every promise and the test here (or elsewhere) that proves it.
Poison rows, hung databases and hostile input are produced for real: a series key
over PostgreSQL's btree limit, a constraint the database enforces, a TCP proxy that
stops answering, a lock held by another connection.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from _procs import wait_until

import perfkit
from perfkit.errors import InvalidInputError
from perfkit.frames import LABELS_FORM, MAX_LABELS_CHARS
from perfkit.integrations import PerfkitASGIMiddleware
from perfkit.recorder import MAX_SERIES_PER_METRIC, OVERFLOW_LABELS, Recorder
from perfkit.store import InvalidSamplesError, Store


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: object) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/perfkit.db"
    return request.getfixturevalue("pg_url")


def rows(n: int, *, metric: str = "orders.placed", labels: str | None = None,
         host: str = "h1") -> pd.DataFrame:
    now = pd.Timestamp.now(tz="UTC").floor("s")
    return pd.DataFrame({"ts": [now - pd.Timedelta(seconds=i) for i in range(n)], "host": host,
                         "metric": metric, "value": np.arange(n, dtype=float),
                         "labels": [f"k=v{i}" if labels is None else labels for i in range(n)]})


def _random_cjk(n: int) -> str:
    # random 3-byte characters do not compress: the index entry really is that big
    return "".join(chr(0x4E00 + secrets.randbelow(20_000)) for _ in range(n))


# -- poison rows ------------------------------------------------------------------------

@pytest.mark.postgres
def test_series_key_over_the_btree_limit_is_rejected_and_the_rest_written(pg_url: str) -> None:
    # 990 characters pass validation, but 3 kB of UTF-8 exceed PostgreSQL's index limit
    poison = rows(1, labels="k=" + _random_cjk(990))
    with Store(pg_url) as store:
        store.write(pd.concat([rows(100), poison], ignore_index=True))
        store.flush()
        h = store.health()
        assert (h["written"], h["rejected"], h["buffered"], h["dropped"]) == (100, 1, 0, 0)
        assert "54000" in h["last_rejection"] and h["reachable"]
        assert len(store.samples(metric="orders.placed")) == 100
        store.write(rows(5, metric="orders.cancelled"))  # later writes are not held up
        store.flush()
        assert len(store.samples(metric="orders.cancelled")) == 5


def _add_constraint(store: Store) -> None:
    """A rule the database enforces on series: labels starting 'k=poison' are refused."""
    with store.engine.begin() as conn:
        if store.dialect == "sqlite":
            conn.exec_driver_sql(
                "CREATE TRIGGER no_poison BEFORE INSERT ON perfkit_series "
                "WHEN NEW.labels LIKE 'k=poison%' BEGIN SELECT RAISE(ABORT, 'poison'); END")
        else:
            conn.exec_driver_sql("ALTER TABLE perfkit_series ADD CONSTRAINT no_poison "
                                 "CHECK (position('k=poison' in labels) <> 1)")


def test_constraint_violation_rejects_only_the_offending_series(url: str) -> None:
    with Store(url) as store:
        _add_constraint(store)
        batch = pd.concat([rows(40), rows(3, labels="k=poison1"), rows(20, metric="orders.paid"),
                           rows(2, labels="k=poison2")], ignore_index=True)
        assert store.write(batch) == 65
        store.flush()
        h = store.health()
        assert (h["written"], h["rejected"], h["buffered"], h["dropped"]) == (60, 5, 0, 0)
        got = store.samples()
        assert sorted(got["metric"].unique()) == ["orders.paid", "orders.placed"]
        assert not got["labels"].str.startswith("k=poison").any()
        assert len(got) == 60


def test_a_poison_row_does_not_stop_a_monitor(url: str) -> None:
    mon = perfkit.Monitor(store=Store(url), interval=60, host="svc")
    _add_constraint(mon.store)
    mon.record("orders.placed", 1.0, {"k": "poison"})
    mon.record("orders.placed", 2.0, {"k": "fine"})
    mon.collect()
    mon.record("orders.placed", 3.0, {"k": "fine"})
    mon.collect()
    mon.store.flush()
    fine = mon.store.samples(metric="orders.placed", labels="k=fine")
    assert fine["value"].tolist() == [2.0, 3.0]
    assert mon.store.health()["rejected"] == 1
    mon.store.close()


# -- limits at validation ---------------------------------------------------------------

def test_length_and_label_limits_reject_rows_and_keep_the_rest(url: str) -> None:
    many = ",".join(f"k{i}=v" for i in range(21))
    bad = pd.concat([rows(1, host="h" * 201), rows(1, metric="orders." + "x" * 200),
                     rows(1, labels="k=" + "v" * MAX_LABELS_CHARS), rows(1, labels=many),
                     rows(1, labels="a=1,b"), rows(1, labels="k=a\x00b"),
                     rows(1, host="bad\nhost")], ignore_index=True)
    with Store(url) as store:
        with pytest.raises(InvalidSamplesError) as err:
            store.write(pd.concat([rows(10), bad], ignore_index=True))
        assert (err.value.accepted, err.value.rejected) == (10, 7)
        msg = str(err.value)
        assert "longer than 200" in msg and LABELS_FORM in msg
        assert len(msg) < 3000  # the 1,000-character label is not echoed whole
        store.flush()
        assert len(store.samples()) == 10 and store.health()["rejected"] == 0


def test_malformed_labels_are_rejected_where_they_enter(url: str) -> None:
    mon = perfkit.Monitor(store=Store(url), interval=60, host="svc")
    with pytest.raises(InvalidInputError, match="accepted form: '' \\(no labels\\) or"):
        mon.record("orders.placed", 1.0, "a=1,b")
    with pytest.raises(InvalidInputError, match="more than 20 labels"):
        mon.record("orders.placed", 1.0, {f"k{i}": "v" for i in range(21)})
    with pytest.raises(InvalidInputError, match="longer than 1000"):
        mon.record("orders.placed", 1.0, {"k": "x" * 3000})
    mon.record("orders.placed", 1.0, "a=1,b=2")
    assert mon.collect()["labels"].tolist().count("a=1,b=2") == 1
    mon.store.close()


def _asgi_get(app: object, path: str) -> None:
    async def receive() -> dict:
        return {"type": "http.request", "body": b""}

    async def send(_msg: dict) -> None:
        return None

    asyncio.run(app({"type": "http", "method": "GET", "path": path}, receive, send))  # type: ignore[operator]


def test_random_paths_fold_into_one_endpoint_and_writes_go_on(url: str) -> None:
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def market(request: object) -> PlainTextResponse:
        return PlainTextResponse("ok")

    mon = perfkit.Monitor(store=Store(url), interval=60, host="svc")
    app = PerfkitASGIMiddleware(Starlette(routes=[Route("/markets/{id}", market)]), mon)
    _asgi_get(app, "/" + secrets.token_urlsafe(3000))
    for i in range(30):
        _asgi_get(app, f"/scan/{i}")
    _asgi_get(app, "/markets/17")
    _asgi_get(app, "/markets/18")
    frame = mon.collect()
    mon.store.flush()
    endpoints = set(frame.loc[frame["metric"] == "application.requests_per_second", "labels"])
    assert endpoints == {"", "endpoint=GET (unmatched)", "endpoint=GET /markets/{id}"}
    h = mon.store.health()
    assert h["rejected"] == 0 and h["buffered"] == 0 and h["written"] == len(frame)
    mon.store.close()


def test_label_cardinality_is_capped_per_metric() -> None:
    rec = Recorder()
    for i in range(20_000):
        rec.add_value("orders.placed", 1.0, f"user=u{i}")
        rec.observe(f"GET /u/{i}", 0.001)
    iv = rec.drain()
    assert len(iv.values) == MAX_SERIES_PER_METRIC + 1
    assert len(iv.values[("orders.placed", OVERFLOW_LABELS)]) == 20_000 - MAX_SERIES_PER_METRIC
    assert len(iv.endpoints) == MAX_SERIES_PER_METRIC + 1
    assert sum(h.count for h in iv.endpoints.values()) == 20_000
    assert rec.folded == 2 * (20_000 - MAX_SERIES_PER_METRIC)


def test_to_wide_names_the_missing_column() -> None:
    frame = rows(3).drop(columns="value")
    with pytest.raises(InvalidInputError, match=r"lacks \['value'\]"):
        perfkit.frames.to_wide(frame)


# -- a database that hangs ----------------------------------------------------------------

def answers_promptly(call) -> object:
    """``call()`` from a thread; it must answer while the database is still hung.

    A call that touched the database would wait for the whole hang (the store's watchdog
    is set to 120 s in these tests), so the bound tells the two apart without depending on
    how busy the machine is.
    """
    import threading

    out: list[object] = []
    t = threading.Thread(target=lambda: out.append(call()), daemon=True)
    t.start()
    t.join(HANG_BOUND_S)
    assert not t.is_alive(), f"{call} waited on the hung database ({HANG_BOUND_S} s)"
    return out[0]


HANG_BOUND_S = 15.0  # far below the 120 s hang, far above a busy machine's scheduling delay


class Ticks:
    """A collector whose n-th run reports the value n: a lost interval shows as a gap."""

    name = "ticks"

    def __init__(self) -> None:
        self.n = 0

    def collect(self) -> list:
        from perfkit.collectors import Reading

        self.n += 1
        return [Reading("test.ticks", float(self.n))]


def assert_every_tick_stored(mon: perfkit.Monitor, ticks: Ticks) -> None:
    got = mon.store.samples(metric="test.ticks", host=mon.host)["value"].tolist()
    assert got == [float(i) for i in range(1, ticks.n + 1)]


@pytest.mark.postgres
def test_hung_postgres_does_not_stop_collection_or_health(proxied_pg) -> None:
    proxy, url = proxied_pg
    mon = perfkit.Monitor(store=Store(url, timeout=120), interval=0.05, host="svc")
    ticks = Ticks()
    mon.add_collector(ticks)
    mon.start()
    try:
        wait_until(lambda: mon.store.health()["written"] > 0, 60, "a first write")
        proxy.pause()  # PostgreSQL now accepts and reads, and never answers
        wait_until(lambda: mon.store.health()["state"] == "hung", 60, "health to report hung")
        hung_at = mon.collections
        # collection goes on while the store is stuck (in the writer's write or the alert
        # hook's read, whichever reached the database first): 20 more intervals, rows buffered
        wait_until(lambda: mon.collections >= hung_at + 20, 60, "collections during the hang")
        h = answers_promptly(mon.health)
        store_health = h["store"]
        assert store_health["state"] == "hung" and not store_health["reachable"]  # type: ignore[index]
        assert store_health["buffered"] > 0  # type: ignore[index]
        assert store_health["stalled_in"] in ("write", "read")  # type: ignore[index]
        proxy.resume()
        wait_until(lambda: mon.store.health()["state"] == "ok", 60, "recovery")
    finally:
        mon.stop()
    h = mon.store.health()
    assert (h["buffered"], h["dropped"], h["rejected"]) == (0, 0, 0)
    assert_every_tick_stored(mon, ticks)  # every interval collected, none lost
    mon.store.close()


@pytest.mark.postgres
def test_watchdog_ends_a_hung_call_and_keeps_the_rows(proxied_pg) -> None:
    proxy, url = proxied_pg
    store = Store(url, timeout=0.5)
    store.write(rows(3, metric="orders.placed"))
    # on a busy machine the schema set-up itself can outlast 0.5 s and be cut: those 3 rows
    # are delivered before the hang starts, and only cuts from now on count
    wait_until(lambda: store.flush() >= 0 and store.health()["buffered"] == 0, 60,
               "the first rows")
    cut_before = store.health()["timeouts"]
    proxy.pause()
    assert store.write(rows(7, metric="orders.paid"), wait=False) == 7
    wait_until(lambda: store.health()["timeouts"] > cut_before, 60,
               "the watchdog to cut the call")
    h = answers_promptly(store.health)
    assert h["buffered"] == 7 and h["dropped"] == 0  # type: ignore[index]
    proxy.resume()
    wait_until(lambda: store.flush() >= 0 and store.health()["buffered"] == 0, 60, "delivery")
    assert len(store.samples(metric="orders.paid")) == 7
    store.close()


@pytest.mark.postgres
def test_lock_timeout_is_transient_and_the_rows_arrive(pg_url: str) -> None:
    url = pg_url + "%20-clock_timeout%3D300"
    with Store(url) as store:
        assert store.write(rows(2)) == 2
        holder = sa.create_engine(pg_url)
        with holder.connect() as conn:
            tx = conn.begin()
            conn.exec_driver_sql("LOCK TABLE perfkit_samples IN ACCESS EXCLUSIVE MODE")
            store.write(rows(5, metric="orders.paid"))  # waits 0.3 s for the lock, then buffers
            h = store.health()
            assert h["buffered"] == 5 and h["rejected"] == 0 and "55P03" in h["last_error"]
            tx.rollback()
        holder.dispose()
        store.flush()
        assert len(store.samples(metric="orders.paid")) == 5
        assert store.health()["buffered"] == 0


@pytest.mark.postgres
def test_ddl_lock_is_per_schema(pg_url: str) -> None:
    """Stores in two schemas of one database create their tables without waiting for each
    other; two in the same schema still take turns."""
    from perfkit.store._schema import ddl_lock

    other = f"{pg_url.rsplit('search_path%3D', 1)[1]}_b"
    admin = sa.create_engine(pg_url.split("?")[0], isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE SCHEMA "{other}"'))
    holder = sa.create_engine(pg_url)
    try:
        with holder.connect() as conn, conn.begin():
            ddl_lock(conn)  # another process of this schema is creating its tables
            with Store(pg_url.replace(pg_url.rsplit("%3D", 1)[1], other)) as b:
                assert b.write(rows(3)) == 3 and b.health()["buffered"] == 0
            short = pg_url + "%20-clock_timeout%3D300"
            with Store(short) as a:
                a.write(rows(2))  # waits 0.3 s for this schema's lock, then buffers
                assert a.health()["buffered"] == 2 and "55P03" in a.health()["last_error"]
    finally:
        holder.dispose()
        with admin.connect() as c:
            c.execute(sa.text(f'DROP SCHEMA "{other}" CASCADE'))
        admin.dispose()


@pytest.mark.postgres
def test_postgres_sessions_carry_timeouts_and_the_url_wins(pg_url: str) -> None:
    from perfkit.store._engine import pg_connect_args

    def settings(url: str) -> list[str]:
        with Store(url) as store, store.engine.connect() as conn:
            return [conn.exec_driver_sql(f"SHOW {n}").scalar_one()
                    for n in ("statement_timeout", "lock_timeout", "search_path")]

    assert settings(pg_url)[:2] == ["20s", "5s"]
    mine = settings(pg_url + "%20-cstatement_timeout%3D1234")
    assert mine[0] == "1234ms" and mine[1] == "5s" and mine[2].startswith("perfkit_test_")
    args = pg_connect_args(sa.engine.make_url(pg_url))
    assert args["connect_timeout"] == 5 and args["keepalives"] == 1
    assert args["tcp_user_timeout"] == 20_000
    assert "connect_timeout" not in pg_connect_args(sa.engine.make_url(
        pg_url + "&connect_timeout=2"))  # the URL's own value is what SQLAlchemy passes


def test_sqlite_write_lock_held_elsewhere_does_not_stall_collection(tmp_path) -> None:
    import sqlite3

    path = tmp_path / "perfkit.db"
    mon = perfkit.Monitor(store=Store(f"sqlite:///{path}", timeout=0.2), interval=0.05,
                          host="svc")
    ticks = Ticks()
    mon.add_collector(ticks)
    mon.collect()
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    mon.start()
    try:
        start = mon.collections
        wait_until(lambda: mon.collections >= start + 20, 60, "collections while locked")
        wait_until(lambda: mon.store.health()["buffered"] > 0, 60, "rows buffered")
        assert "locked" in (mon.store.health()["last_error"] or "")
        other.execute("ROLLBACK")
        other.close()
        wait_until(lambda: mon.store.health()["buffered"] == 0, 60, "delivery after the lock")
    finally:
        mon.stop()
    assert mon.store.health()["dropped"] == 0
    assert_every_tick_stored(mon, ticks)
    mon.store.close()


# -- cache limits --------------------------------------------------------------------------

def _bomb(claimed: int = 1 << 30) -> bytes:
    """A real zstd frame of ``claimed`` zero bytes (about 32 KB), built in 1 MiB pieces."""
    import zstandard

    from perfkit.cache._serialize import BYTES, ZSTD_HEADERS

    z = zstandard.ZstdCompressor(write_content_size=True).compressobj(size=claimed)
    chunk = bytes(1 << 20)
    parts = [z.compress(chunk) for _ in range(claimed // len(chunk))]
    return ZSTD_HEADERS[BYTES] + b"".join(parts) + z.flush()


def test_a_frame_claiming_more_than_the_largest_entry_is_refused_from_its_header() -> None:
    from perfkit.cache._compress import Codec
    from perfkit.cache._serialize import ForeignEntry

    codec = Codec(3, 1024, allow_pickle=False, max_size=1 << 20)
    bomb = _bomb(64 << 20)
    with pytest.raises(ForeignEntry, match="claims 67108864 bytes"):
        codec.decode(bomb)
    with pytest.raises(ForeignEntry, match="claims 67108864 bytes"):
        codec.decode(bomb[:64])  # the header alone decides: nothing is decompressed
    entry, _ = codec.encode("x" * 500_000)  # what the cache writes itself still reads back
    assert codec.decode(entry) == "x" * 500_000


@pytest.mark.redis
def test_decompression_bomb_in_shared_redis_is_a_counted_miss(redis_url, redis_client) -> None:
    from perfkit.cache import Cache

    # this worker's database: the others are flushed by other workers' fixtures
    ns = f"faults-{secrets.token_hex(4)}"
    cache = Cache(redis_url, namespace=ns, max_entry_bytes=16 << 20)
    try:
        redis_client.set(f"{ns}:bomb", _bomb())
        assert cache.get("bomb", "default") == "default"
        assert cache.set("big", "y" * (17 << 20)) is False  # it would not write one either
        assert cache.set("ok", "z" * 100) is True and cache.get("ok") == "z" * 100
        s = cache.stats()
        assert (s["corrupt"], s["rejected"], s["hits"]) == (1, 1, 1)
    finally:
        cache.close()


# -- /metrics and the HTTP API at the boundary ------------------------------------------------

def test_metrics_skips_and_counts_a_series_it_cannot_render(tmp_path) -> None:
    from perfkit.prometheus import exposition

    store = Store(f"sqlite:///{tmp_path}/p.db", host="svc")
    store.write(rows(1, labels="k=ok"))
    with store.engine.begin() as conn:  # a row written before labels were validated
        conn.exec_driver_sql("INSERT INTO perfkit_series (host, metric, labels) "
                             "VALUES ('svc', 'orders.placed', 'a=1,b')")
        sid = conn.exec_driver_sql("SELECT id FROM perfkit_series WHERE labels='a=1,b'").scalar()
        conn.exec_driver_sql(f"INSERT INTO perfkit_samples VALUES ({sid}, 1, 2.0)")
    text = exposition(store)
    assert 'perfkit_orders_placed{host="h1",k="ok"} 0' in text
    assert "perfkit_exposition_skipped_series 1" in text
    store.close()


@pytest.fixture
def api_client(tmp_path):
    from fastapi.testclient import TestClient

    from perfkit.api import app

    mon = perfkit.Monitor(store=f"sqlite:///{tmp_path}/api.db", interval=60, host="svc")
    with TestClient(app(mon, token="s3cret")) as client:
        yield client
    mon.store.close()


def test_router_keeps_the_body_limit_in_a_host_application(tmp_path) -> None:
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from perfkit.api import PREFIX, router

    mon = perfkit.Monitor(store=f"sqlite:///{tmp_path}/api.db", interval=60, host="svc")
    host_app = FastAPI()
    host_app.include_router(router(mon, token=""), prefix=PREFIX)
    url = f"{PREFIX}/trigger-optimization"
    with TestClient(host_app) as client:
        big = b'{"optimization_type": "' + b"x" * (2 << 20) + b'"}'
        r = client.post(url, content=big, headers={"Content-Type": "application/json"})
        assert r.status_code == 413 and r.json()["detail"]["limit_bytes"] == 1 << 20
        r = client.post(url, content=(b"x" * 65536 for _ in range(40)))
        assert r.status_code == 413
        r = client.post(url, json={"optimization_type": "no_such_action", "dry_run": True})
        assert r.status_code in (400, 404, 422) and "no_such_action" in r.text
    mon.store.close()


def test_api_body_limit_short_errors_and_strict_booleans(api_client) -> None:
    url = "/api/v1/advanced-performance/trigger-optimization"
    auth = {"Authorization": "Bearer s3cret"}
    big = b'{"optimization_type": "' + b"x" * (2 << 20) + b'"}'
    r = api_client.post(url, content=big, headers={**auth, "Content-Type": "application/json"})
    assert r.status_code == 413 and r.json()["detail"]["limit_bytes"] == 1 << 20
    r = api_client.post(url, content=big, headers={"Content-Type": "application/json"})
    assert r.status_code == 413  # refused before it is read, token or not

    def chunks():
        for _ in range(40):
            yield b"x" * 65536

    r = api_client.post(url, content=chunks(), headers=auth)  # no Content-Length
    assert r.status_code == 413

    long_name = "y" * 50_000
    r = api_client.post(url, json={"optimization_type": long_name}, headers=auth)
    assert r.status_code == 422 and len(r.text) < 2000

    r = api_client.post(url, json={"optimization_type": "memory_optimization",
                                   "dry_run": "yes"}, headers=auth)
    assert r.status_code == 422 and "dry_run" in r.text
    r = api_client.post(url, json={"optimization_type": "memory_optimization",
                                   "dry_run": True}, headers=auth)
    assert r.status_code == 200, r.text


@pytest.mark.postgres
def test_health_endpoint_answers_while_the_store_hangs(proxied_pg) -> None:
    from fastapi.testclient import TestClient

    from perfkit.api import app

    proxy, url = proxied_pg
    mon = perfkit.Monitor(store=Store(url, timeout=120), interval=60, host="svc")
    with TestClient(app(mon)) as client:
        proxy.pause()
        mon.store.write(rows(3), wait=False)  # the background writer now hangs
        wait_until(lambda: mon.store.health()["state"] == "hung", 60, "the write to hang")
        r = answers_promptly(lambda: client.get("/api/v1/advanced-performance/health"))
        assert r.status_code == 200  # type: ignore[attr-defined]
        body = r.json()  # type: ignore[attr-defined]
        assert body["status"] == "degraded" and body["store"]["state"] == "hung"
        proxy.resume()
        wait_until(lambda: mon.store.health()["buffered"] == 0, 60, "delivery after the hang")
    mon.store.close()


# -- actions cannot get stuck; crash durability ----------------------------------------------

def _run_child(code: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONPATH": os.getcwd()})


_CLAIM_AND_DIE = """
import os, signal, sys
from perfkit.store import Store
s = Store(sys.argv[1])
got = s.claim_actions("worker:1", "worker:1")
print(len(got), flush=True)
os.kill(os.getpid(), signal.SIGKILL)  # dies mid-run, before finish_action
"""


def test_an_action_whose_monitor_died_is_abandoned_after_its_lease(url: str) -> None:
    store = Store(url, action_lease=0.3, pending_ttl=3600)
    aid = store.request_action("memory_optimization", {}, host="worker:1", dry_run=True)
    child = _run_child(_CLAIM_AND_DIE, url)
    assert child.stdout is not None and child.stdout.readline().strip() == "1"
    assert child.wait() == -9
    assert store.actions()["status"].tolist() == ["running"]
    wait_until(lambda: store.expire_actions()["abandoned"] == 1, 60, "the lease to run out")
    row = store.actions().iloc[0]
    assert (row["id"], row["status"]) == (aid, "abandoned") and "lease" in row["error"]
    store.close()


def test_requests_for_a_host_that_is_gone_expire(url: str) -> None:
    store = Store(url, pending_ttl=0.2)
    store.request_action("memory_optimization", {}, host="vanished:4242")
    fresh = Store(url)  # default TTL: a request just made stays pending
    assert fresh.expire_actions() == {"abandoned": 0, "expired": 0}
    fresh.close()
    wait_until(lambda: store.claim_actions("other:1", "other:1") == []
               and store.actions()["status"].tolist() == ["expired"], 60, "the request to expire")
    assert "claimed it within 0.2 s" in store.actions()["error"].iloc[0]
    store.close()


def test_requests_addressed_to_a_service_name_are_served(url: str) -> None:
    mon = perfkit.Monitor(store=Store(url), interval=60, host="box:1", service="orders-api")
    assert mon.addresses == ["box:1", "orders-api"]
    aid = mon.store.request_action("memory_optimization", {}, host="orders-api", dry_run=True)
    assert len(mon.optimizer.process_requests()) == 1
    row = mon.store.actions().set_index("id").loc[aid]
    assert row["status"] == "done" and row["claimed_by"]
    mon.store.close()


_WRITE_UNTIL_KILLED = """
import sys
import pandas as pd
from perfkit.store import Store
s = Store(sys.argv[1], host="crash")
base = pd.Timestamp("2026-01-01", tz="UTC")
for i in range(100_000):
    s.write(pd.DataFrame({"ts": [base + pd.Timedelta(seconds=i)], "metric": ["orders.placed"],
                          "value": [float(i)]}))
    print(i, flush=True)  # acknowledged: write() returned
"""


def test_no_acknowledged_sample_is_lost_on_kill_9(url: str) -> None:
    child = _run_child(_WRITE_UNTIL_KILLED, url)
    assert child.stdout is not None
    acked = -1
    for line in child.stdout:
        acked = int(line)
        if acked >= 100:  # the kill lands while write 101 or later is in flight
            break
    child.kill()  # SIGKILL: no flush, no close
    child.wait()
    with Store(url) as store:
        got = store.samples(metric="orders.placed", host="crash")["value"].astype(int).tolist()
    assert got[: acked + 1] == list(range(acked + 1))


# -- dry runs are read-only ------------------------------------------------------------------

@pytest.mark.postgres
def test_query_optimization_dry_run_leaves_sequences_and_volatile_functions_alone(
        pg_url: str, tmp_path) -> None:
    app = sa.create_engine(pg_url)
    with app.begin() as conn:
        conn.exec_driver_sql("CREATE SEQUENCE seq")
        conn.exec_driver_sql("CREATE TABLE calls (n int)")
        conn.exec_driver_sql("INSERT INTO calls VALUES (0)")
        conn.exec_driver_sql("CREATE FUNCTION bump() RETURNS int LANGUAGE sql VOLATILE AS "
                             "$$ UPDATE calls SET n = n + 1 RETURNING n $$")
        conn.exec_driver_sql("CREATE TABLE orders (id int PRIMARY KEY, customer int)")
        conn.exec_driver_sql("INSERT INTO orders SELECT i, mod(i, 500) "
                             "FROM generate_series(1, 20000) i")
    mon = perfkit.Monitor(store=f"sqlite:///{tmp_path}/m.db", interval=60, host="svc")
    mon.instrument_engine(app)
    with app.connect() as conn:
        for k in range(3):  # the application's own statement: nextval and bump() run per row
            conn.execute(sa.text("SELECT nextval('seq'), bump(), id FROM orders "
                                 "WHERE customer = :c"), {"c": k}).all()
        conn.commit()

    def state() -> tuple[int, int]:
        with app.connect() as conn:
            return (conn.exec_driver_sql("SELECT last_value FROM seq").scalar_one(),
                    conn.exec_driver_sql("SELECT n FROM calls").scalar_one())

    before = state()
    assert before == (120, 120)  # 40 matching rows, 3 times
    def ours(result: object) -> dict:
        return next(s for s in result.detail["statements"]  # type: ignore[attr-defined]
                    if "nextval" in s["sql"])

    dry = mon.run_action("query_optimization", dry_run=True, top=10)
    assert dry.status == "done", dry.error
    stmt = ours(dry)
    assert stmt["plan_before"] and "ms_before" not in stmt  # planned, never executed
    assert any("orders" in p for p in stmt["proposals"])
    assert state() == before
    measured = mon.run_action("query_optimization", top=10)  # not a dry run: timed read-only
    assert "not measured: the statement writes" in ours(measured)["skipped"]
    assert state() == before
    mon.store.close()
    app.dispose()


# -- logs --------------------------------------------------------------------------------------

@pytest.mark.postgres
def test_an_outage_is_logged_once_with_a_count_not_per_attempt(proxied_pg, caplog) -> None:
    import logging

    proxy, url = proxied_pg
    store = Store(url)
    proxy.close()
    with caplog.at_level(logging.WARNING, logger="perfkit.store"):
        for i in range(20):
            store.write(rows(1, metric="orders.placed", labels=f"k=v{i}"))
            store.flush()  # an attempt each time, ignoring the back-off
    lines = [r for r in caplog.records if "unreachable" in r.getMessage()]
    assert len(lines) == 1 and lines[0].exc_info is None
    assert store.health()["buffered"] == 20
    caplog.clear()
    proxy.open()
    store.flush()
    assert store.health()["buffered"] == 0
    proxy.close()
    with caplog.at_level(logging.WARNING, logger="perfkit.store"):
        store.write(rows(1))
        store.flush()
    assert len([r for r in caplog.records if "unreachable" in r.getMessage()]) == 1
    proxy.open()
    store.close()


def test_repeat_log_counts_what_it_suppressed(caplog) -> None:
    import logging

    from perfkit._ratelog import RepeatLog

    rl = RepeatLog(logging.getLogger("perfkit.test"), every=3600)
    with caplog.at_level(logging.WARNING, logger="perfkit.test"):
        assert [rl.log(logging.WARNING, "a", "boom %d", i) for i in range(5)] == \
            [True, False, False, False, False]
        assert rl.log(logging.WARNING, "b", "other")  # a different failure logs at once
        rl.every = 0
        assert rl.log(logging.WARNING, "a", "boom %d", 5)
    assert [r.getMessage() for r in caplog.records] == [
        "boom 0", "other", "boom 5 (repeated 4 more time(s) in the last 0 s)"]
