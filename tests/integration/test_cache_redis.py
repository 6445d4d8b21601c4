"""perfkit.Cache on the real Redis (db 11 via the conftest fixtures)."""

from __future__ import annotations

import asyncio
import functools
import math
import random
import threading

import numpy as np
import pandas as pd
import pytest
from _procs import wait_until

from perfkit.cache import Cache
from perfkit.cache._compress import Codec

pytestmark = pytest.mark.redis


@pytest.fixture
def cache(redis_url):
    c = Cache(redis_url, namespace="t")
    yield c
    c.close()


def test_namespaced_keys_and_server_ttl(cache, redis_client) -> None:
    cache.set("a", "x", ttl=30)
    assert redis_client.exists("t:a") == 1
    assert 29_000 < redis_client.pttl("t:a") <= 30_000
    cache.default_ttl = None
    cache.set("forever", 1)
    assert redis_client.pttl("t:forever") == -1  # no expiry


def test_round_trips_through_redis(cache) -> None:
    values = ["s", b"b", "ü" * 3000, 2**80, -1, 1.25, math.inf, True, None,
              {"a": [1, {"b": None}]}, (1, "a"), {1: b"x"},
              np.arange(6, dtype=np.uint8).reshape(2, 3),
              pd.DataFrame({"ts": pd.date_range("2024", periods=3, tz="UTC"),
                            "v": [1.0, 2.0, math.nan], "s": ["a", None, "c"]})]
    for i, v in enumerate(values):
        cache.set(f"k{i}", v)
    got = cache.get_many([f"k{i}" for i in range(len(values))])
    assert len(got) == len(values)
    for i, v in enumerate(values):
        g = got[f"k{i}"]
        assert type(g) is type(v)
        if isinstance(v, pd.DataFrame):
            pd.testing.assert_frame_equal(g, v, check_exact=True)
        elif isinstance(v, np.ndarray):
            assert g.dtype == v.dtype and g.shape == v.shape and (g == v).all()
        else:
            assert g == v
    assert cache.get("k0") == "s" and cache.get("k1") == b"b"


def test_ttl_expiry_on_server(own_redis) -> None:
    import redis

    # A private server: the expirations figure is a server-wide INFO delta, which other
    # workers' keys would move on the shared one.
    client = redis.Redis(port=own_redis.port, socket_connect_timeout=1, socket_timeout=5)
    cache = Cache(f"redis://127.0.0.1:{own_redis.port}/0", namespace="t")
    cache.set("short", "v", ttl=20.0)
    cache.set_many({"m1": 1, "m2": 2}, ttl=20.0)
    cache.set("long", "v", ttl=30)
    assert cache.get("short") == "v"
    assert 0 < client.pttl("t:m1") <= 20_000
    # the server's clock is not the test's to move: the short TTLs run out now instead
    for key in ("t:short", "t:m1", "t:m2"):
        assert client.pexpire(key, 1, xx=True)
    wait_until(lambda: not client.exists("t:short", "t:m1", "t:m2"), 30,
               "Redis to expire the keys", every=0.01)
    assert cache.get("short") is None
    assert cache.get_many(["m1", "m2", "long"]) == {"long": "v"}
    s = cache.stats()
    assert s["misses"] == 3
    assert s["expirations"] == 3  # EXISTS found them expired: Redis counted each then
    cache.close()
    client.close()


def test_clear_only_touches_our_namespace(redis_url, redis_client) -> None:
    a = Cache(redis_url, namespace="ns-a")
    b = Cache(redis_url, namespace="ns-a*")  # glob characters are escaped
    redis_client.set("ns-abc", b"other")
    a.set_many({f"k{i}": i for i in range(2500)})
    b.set("k", 1)
    assert a.clear() == 2500
    assert b.get("k") == 1 and redis_client.get("ns-abc") == b"other"
    assert a.stats()["entry_count"] == 0
    a.close(), b.close()


def test_stats_sizes(cache, redis_client) -> None:
    cache.set_many({f"k{i}": "x" * 99 for i in range(50)})  # 100 bytes stored each
    cache.set("big", "y" * 10_000)  # compressed
    s = cache.stats()
    assert s["entry_count"] == 51
    stored_big = redis_client.strlen("t:big")
    assert stored_big < 200
    assert s["memory_bytes"] == 50 * 100 + stored_big
    assert s["backend"] == "redis" and s["sets"] == 51 and s["compression_ratio"] > 1
    assert s["bounded"] is False


def test_foreign_value_is_a_counted_miss(cache, redis_client) -> None:
    redis_client.set("t:plain", b"hello")
    redis_client.set("t:json", b'{"a": 1}')
    redis_client.set("t:pickle", b"\x80\x04K\x01.")
    redis_client.set("t:badzstd", b"\xb3\x28\xb5\x2f\xfd\x00\x01")
    redis_client.hset("t:hash", "f", "v")
    redis_client.set("t:ok", Codec(3, 1024, False).encode("fine")[0])
    assert cache.get("plain") is None
    assert cache.get("json", "dflt") == "dflt"
    assert cache.get("pickle") is None
    assert cache.get("badzstd") is None
    assert cache.get("hash") is None  # WRONGTYPE
    assert cache.get_many(["plain", "json", "ok"]) == {"ok": "fine"}
    s = cache.stats()
    assert s["misses"] == 7 and s["corrupt"] == 7 and s["hits"] == 1 and s["errors"] == 0


def test_pickle_entries_need_opt_in_on_read(redis_url) -> None:
    writer = Cache(redis_url, namespace="p", allow_pickle=True)
    reader = Cache(redis_url, namespace="p")
    writer.set("k", complex(1, 2))
    assert writer.get("k") == complex(1, 2)
    assert reader.get("k") is None and reader.stats()["corrupt"] == 1
    writer.close(), reader.close()


def test_async_inside_running_loop(cache) -> None:
    async def main() -> None:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0)

        t = asyncio.create_task(ticker())
        # the call runs in a worker thread: awaiting it hands the loop to the ticker
        assert await cache.aset("k", {"a": [1, 2]}) is True
        assert ticks > 0
        assert await cache.aget("k") == {"a": [1, 2]}
        assert await cache.aset_many({"x": 1, "y": 2}) == 2
        assert await cache.aget_many(["x", "y", "z"]) == {"x": 1, "y": 2}
        got = await asyncio.gather(*(cache.aget("x") for _ in range(20)))
        assert got == [1] * 20
        assert await cache.adelete("k") is True
        t.cancel()

    asyncio.run(main())
    s = cache.stats()
    assert s["hits"] == 23 and s["misses"] == 1 and s["deletes"] == 1


def test_cached_decorator_shared_across_instances(redis_url) -> None:
    calls = []
    c1 = Cache(redis_url, namespace="dec")
    c2 = Cache(redis_url, namespace="dec")

    def price(market: int, fields=("bid", "ask")):
        calls.append(market)
        return {"market": market, "fields": list(fields)}

    f1 = c1.cached(ttl=30)(price)
    f2 = c2.cached(ttl=30)(price)
    assert f1(3) == f2(3) == {"market": 3, "fields": ["bid", "ask"]}
    assert calls == [3]  # the second process-like instance hit the shared entry
    c1.close(), c2.close()


def test_two_tier(redis_url, redis_client) -> None:
    c = Cache(redis_url, namespace="tier", memory_tier=2)
    c.set("a", 1)
    assert c.get("a") == 1  # from the memory tier, no round trip
    assert c.stats()["tier_hits"] == 1
    redis_client.delete("tier:a")  # another process removes it: tier serves it for <= TIER_TTL
    assert c.get("a") == 1
    c.delete("a")
    assert c.get("a") is None
    c.set_many({"x": 1, "y": 2, "z": 3})
    s = c.stats()
    assert s["tier_entry_count"] == 2 and s["entry_count"] == 3
    assert c.get_many(["x", "y", "z"]) == {"x": 1, "y": 2, "z": 3}
    s = c.stats()
    assert s["hits"] == 5 and s["misses"] == 1
    c.close()


def test_concurrent_exact_counts_redis(redis_url, run_threads) -> None:
    c = Cache(redis_url, namespace="conc")
    present = [f"p{i}" for i in range(50)]
    c.set_many({k: k for k in present})
    expected = {"hits": 0, "misses": 0}
    lock = threading.Lock()

    def work(t: int) -> None:
        rng = random.Random(t)
        h = m = 0
        for i in range(300):
            if rng.random() < 0.6:
                assert c.get(rng.choice(present)) is not None
                h += 1
            else:
                assert c.get(f"none{t}:{i}") is None
                m += 1
        with lock:
            expected["hits"] += h
            expected["misses"] += m

    run_threads([functools.partial(work, t) for t in range(8)])
    s = c.stats()
    assert (s["hits"], s["misses"]) == (expected["hits"], expected["misses"])
    assert s["errors"] == 0
    c.close()


def test_unreachable_redis_counts_errors_and_strict_raises() -> None:
    import redis

    c = Cache("redis://127.0.0.1:1/0", timeout=0.2)
    assert c.get("k", "d") == "d"
    assert c.set("k", 1) is False
    assert c.get_many(["a", "b"]) == {}
    assert c.set_many({"a": 1}) == 0
    assert c.delete("k") is False
    s = c.stats()
    assert s["errors"] == 5 and s["misses"] == 3 and s["entry_count"] is None
    assert "Connection" in s["last_error"]
    strict = Cache("redis://127.0.0.1:1/0", timeout=0.2, strict=True)
    with pytest.raises(redis.ConnectionError):
        strict.get("k")
    with pytest.raises(redis.ConnectionError):
        strict.set("k", 1)
    assert strict.stats()["errors"] == 2
