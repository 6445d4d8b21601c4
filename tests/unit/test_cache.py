"""perfkit.Cache with the memory backend: API, TTL, LRU bounds, stats, knobs, async, decorator."""

from __future__ import annotations

import asyncio
import functools
import random
import threading
import time
from collections.abc import Callable

import pytest

from perfkit.cache import Cache, stable_key
from perfkit.cache._serialize import ForeignEntry


def test_basic_api() -> None:
    c = Cache()
    assert c.get("k") is None
    assert c.get("k", "dflt") == "dflt"
    assert c.set("k", "v") is True
    assert c.get("k") == "v"
    assert c.delete("k") is True
    assert c.delete("k") is False
    c.set_many({"a": 1, "b": [1, 2]})
    assert c.get_many(["a", "b", "zz"]) == {"a": 1, "b": [1, 2]}
    calls = []
    assert c.get_or_set("g", lambda: calls.append(1) or 42) == 42
    assert c.get_or_set("g", lambda: calls.append(1) or 43) == 42
    assert calls == [1]
    c.set("none", None)
    assert c.get("none", "dflt") is None  # a stored None is a hit, not the default
    assert c.clear() >= 4
    assert c.stats()["entry_count"] == 0


def test_keys_must_be_str() -> None:
    c = Cache()
    for bad in (1, b"k", None, ("a",)):
        with pytest.raises(TypeError, match="keys must be str"):
            c.get(bad)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="keys must be str"):
            c.set(bad, 1)  # type: ignore[arg-type]


def test_returned_values_are_copies() -> None:
    c = Cache()
    v = {"a": [1, 2]}
    c.set("k", v)
    v["a"].append(3)
    got = c.get("k")
    assert got == {"a": [1, 2]}
    got["a"].append(4)
    assert c.get("k") == {"a": [1, 2]}


class FakeMonotonic:
    """The memory backend's clock: time passes only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_ttl_expiry_counts_expirations(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeMonotonic()
    monkeypatch.setattr("perfkit.cache._memory.monotonic", clock)
    c = Cache(default_ttl=1.0)
    c.set("a", 1)
    c.set("b", 2, ttl=60)
    c.set("c", 3)
    clock.now += 0.999
    assert c.get("a") == 1
    clock.now += 0.002  # 1.001 s after the writes: "a" and "c" are past their TTL
    assert c.get("a") is None  # expired: a miss and one expiration
    assert c.get("b") == 2
    s = c.stats()  # sweeps "c" too
    assert s["expirations"] == 2
    assert s["evictions"] == 0
    assert s["entry_count"] == 1
    assert s["hits"] == 2 and s["misses"] == 1


def test_no_default_ttl() -> None:
    c = Cache(default_ttl=None)
    c.set("a", 1)
    assert c.stats()["default_ttl"] is None
    assert c.get("a") == 1


def test_lru_eviction_by_entries() -> None:
    c = Cache(max_entries=3)
    for k in "abc":
        c.set(k, k)
    assert c.get("a") == "a"  # a becomes most recently used
    c.set("d", "d")  # evicts b, the least recently used
    assert c.get("b") is None
    assert c.get_many(["a", "c", "d"]) == {"a": "a", "c": "c", "d": "d"}
    s = c.stats()
    assert s["evictions"] == 1 and s["expirations"] == 0 and s["entry_count"] == 3


def test_lru_eviction_by_bytes() -> None:
    c = Cache(max_bytes=1000, compress_threshold=10**9)
    for i in range(5):
        c.set(f"k{i}", "x" * 299)  # 300 bytes stored each (header + payload)
    s = c.stats()
    assert s["entry_count"] == 3
    assert s["memory_bytes"] == 900
    assert s["evictions"] == 2
    assert c.get("k0") is None and c.get("k1") is None and c.get("k4") is not None
    # a value bigger than max_bytes on its own is rejected, not stored
    assert c.set("huge", "y" * 2000) is False
    assert c.stats()["rejected"] == 1 and c.get("huge") is None


def test_expired_entries_reached_by_eviction_count_as_expirations(
        monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeMonotonic()
    monkeypatch.setattr("perfkit.cache._memory.monotonic", clock)
    c = Cache(max_entries=2)
    c.set("old", 1, ttl=0.03)
    c.set("b", 2)
    clock.now += 0.06
    c.set("c", 3)  # pushes "old" out, but it had expired already
    s = c.stats()
    assert s["expirations"] == 1 and s["evictions"] == 0


def test_knobs_validated_and_live() -> None:
    c = Cache(max_entries=10)
    for i in range(10):
        c.set(f"k{i}", i)
    c.max_entries = 4  # shrinking evicts at once
    assert c.stats()["entry_count"] == 4 and c.stats()["evictions"] == 6
    c.max_bytes = 1000
    c.default_ttl = 60
    c.default_ttl = None
    c.compression_level = 9
    c.compress_threshold = 0
    assert c.settings() == {"default_ttl": None, "max_entries": 4, "max_bytes": 1000,
                            "compress_threshold": 0, "compression_level": 9}
    for name, bad, exc in [("max_entries", 0, ValueError), ("max_entries", 1.5, TypeError),
                           ("max_entries", True, TypeError), ("max_bytes", -1, ValueError),
                           ("compression_level", 23, ValueError),
                           ("compression_level", 0, ValueError),
                           ("compression_level", "3", TypeError),
                           ("compress_threshold", -1, ValueError),
                           ("default_ttl", 0, ValueError), ("default_ttl", -5, ValueError),
                           ("default_ttl", float("inf"), ValueError),
                           ("default_ttl", "60", TypeError)]:
        with pytest.raises(exc, match=name):
            setattr(c, name, bad)
        with pytest.raises(exc, match=name):
            Cache(**{name: bad})
    with pytest.raises(ValueError, match="ttl"):
        c.set("k", 1, ttl=0)
    with pytest.raises(ValueError, match="unsupported cache URL"):
        Cache("memcached://x")


def test_threshold_and_level_changes_keep_entries_readable() -> None:
    c = Cache(compress_threshold=100, compression_level=1)
    payload = {"rows": [{"id": i, "price": 0.5} for i in range(200)]}
    c.set("z", payload)  # compressed
    c.set("small", "abc")
    c.compress_threshold = 10**9
    c.compression_level = 19
    c.set("raw", payload)  # stored raw now
    assert c.get("z") == payload and c.get("raw") == payload and c.get("small") == "abc"
    assert c.stats()["compression_ratio"] > 1


def test_compression_contexts_are_thread_safe(run_threads: Callable[..., None]) -> None:
    c = Cache(compress_threshold=64)

    def work(tid: int) -> None:
        for i in range(300):
            v = {"t": tid, "i": i, "data": [tid * i] * 100}
            c.set(f"{tid}:{i}", v)
            assert c.get(f"{tid}:{i}") == v
            if i % 50 == 0:
                c.compression_level = 1 + (i // 50) % 5

    run_threads([functools.partial(work, t) for t in range(6)])


def test_stats_shape_and_hit_rate() -> None:
    c = Cache()
    s = c.stats()
    assert s["hit_rate"] is None and s["backend"] == "memory"
    for key in ("hits", "misses", "hit_rate", "entry_count", "memory_bytes", "evictions",
                "expirations", "sets", "deletes", "errors", "compression_ratio", "backend",
                "default_ttl", "max_entries", "max_bytes", "compress_threshold",
                "compression_level"):
        assert key in s
    c.set("a", 1)
    c.get("a"), c.get("a"), c.get("a"), c.get("b")
    s = c.stats()
    assert s["hit_rate"] == 75.0 and s["sets"] == 1 and s["errors"] == 0
    assert s["memory_bytes"] == 2  # header byte + b"1"


def test_concurrent_exact_counts(run_threads: Callable[..., None]) -> None:
    """8 threads x 10k mixed operations: hits, misses, sets and deletes are exact."""
    c = Cache(max_entries=100_000)
    present = [f"p{i}" for i in range(500)]
    c.set_many({k: i for i, k in enumerate(present)})
    n_threads, n_ops = 8, 10_000
    expected = {"hits": 0, "misses": 0, "sets": 0, "deletes": 0}
    plans = []
    for t in range(n_threads):
        rng = random.Random(t)
        plan = [rng.randrange(6) for _ in range(n_ops)]
        plans.append(plan)
    lock = threading.Lock()
    barrier = threading.Barrier(n_threads)
    failures: list[str] = []

    def work(t: int) -> None:
        mine = {"hits": 0, "misses": 0, "sets": 0, "deletes": 0}
        rng = random.Random(100 + t)
        barrier.wait()
        for i, op in enumerate(plans[t]):
            if op == 0:  # hit on a key that is always there
                if c.get(rng.choice(present)) is None:
                    failures.append("missing present key")
                mine["hits"] += 1
            elif op == 1:  # miss on a key nobody sets
                c.get(f"absent{t}:{i}")
                mine["misses"] += 1
            elif op == 2:  # overwrite a present key (stays present)
                k = rng.choice(present)
                c.set(k, int(k[1:]))
                mine["sets"] += 1
            elif op == 3:  # private key: set then read it back
                c.set(f"own{t}", i)
                if c.get(f"own{t}") != i:
                    failures.append("own key lost")
                mine["sets"] += 1
                mine["hits"] += 1
            elif op == 4:  # private key: delete (deterministic per thread)
                if c.delete(f"own{t}"):
                    mine["deletes"] += 1
            else:  # get_many: 3 present + 1 absent
                got = c.get_many([*rng.sample(present, 3), f"absent-m{t}:{i}"])
                if len(got) != 3:
                    failures.append("get_many")
                mine["hits"] += 3
                mine["misses"] += 1
        with lock:
            for k, v in mine.items():
                expected[k] += v

    run_threads([functools.partial(work, t) for t in range(n_threads)])
    assert not failures
    s = c.stats()
    assert s["hits"] == expected["hits"]
    assert s["misses"] == expected["misses"]
    assert s["sets"] == expected["sets"] + len(present)
    assert s["deletes"] == expected["deletes"]
    assert s["hits"] + s["misses"] > n_threads * n_ops
    assert s["evictions"] == 0


def test_async_inside_running_loop() -> None:
    c = Cache()

    async def main() -> None:
        assert await c.aset("k", {"a": 1}) is True
        assert await c.aget("k") == {"a": 1}
        assert await c.aset_many({"x": 1, "y": 2}) == 2
        assert await c.aget_many(["x", "y", "z"]) == {"x": 1, "y": 2}
        assert await c.adelete("k") is True
        assert await c.aget("k", 7) == 7
        results = await asyncio.gather(*(c.aget("x") for _ in range(50)))
        assert results == [1] * 50

    asyncio.run(main())
    assert c.stats()["hits"] == 53


def test_cached_decorator_sync() -> None:
    c = Cache()
    calls: list[tuple] = []

    @c.cached(ttl=60)
    def f(a, b=2, *, scale=1.0):
        calls.append((a, b, scale))
        return {"sum": (a + b) * scale}

    assert f(1) == {"sum": 3.0}
    assert f(1) == {"sum": 3.0}
    assert f(1, b=3) == {"sum": 4.0}
    assert f(1, scale=2.0) == {"sum": 6.0}
    assert len(calls) == 3
    assert f.cache_key(1) == f.cache_key(1)
    assert f.cache_key(1) != f.cache_key(1.0) != f.cache_key("1")
    assert f.cache_key((1, 2)) != f.cache_key([1, 2])

    none_calls = []

    @c.cached()
    def g(x):
        none_calls.append(x)

    g(1), g(1)
    assert none_calls == [1]  # None is cached too
    with pytest.raises(TypeError, match="cache key"):
        g(object())


def test_cached_decorator_async() -> None:
    c = Cache()
    calls = []

    @c.cached()
    async def fetch(market_id: int, fields: tuple[str, ...] = ("price",)):
        calls.append(market_id)
        await asyncio.sleep(0)
        return [market_id, list(fields)]

    async def main() -> None:
        assert await fetch(5) == [5, ["price"]]
        assert await fetch(5) == [5, ["price"]]
        assert await fetch(6, ("a", "b")) == [6, ["a", "b"]]

    asyncio.run(main())
    assert calls == [5, 6]


def test_stable_key_is_deterministic() -> None:
    k = stable_key((1, "a", {"b": [1.5, None], "a": {1, 2}}), {"x": b"\x00"})
    assert k == stable_key((1, "a", {"a": {2, 1}, "b": [1.5, None]}), {"x": b"\x00"})
    assert k != stable_key((1, "a", {"b": [1.5, None], "a": {1, 3}}), {"x": b"\x00"})
    assert stable_key((True,), {}) != stable_key((1,), {})


def test_foreign_bytes_are_detected() -> None:
    c = Cache()
    for junk in (b"", b"hello", b'{"a": 1}', b"\x80\x04K\x01.", b"\x93NUMPY",
                 b"\xb1\x28\xb5\x2f\xfdgarbage", b"\xa3{not json", b"\xaf"):
        with pytest.raises(ForeignEntry):
            c._codec.decode(junk)


def test_knobs_change_under_concurrent_traffic() -> None:
    c = Cache(max_entries=500, max_bytes=50_000, compress_threshold=64)
    stop = threading.Event()
    errors: list[BaseException] = []

    def traffic(t: int) -> None:
        rng = random.Random(t)
        try:
            while not stop.is_set():
                k = f"k{rng.randrange(2000)}"
                if c.get(k) is None:
                    c.set(k, {"t": t, "pad": "x" * rng.randrange(200)})
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=traffic, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    try:
        for i in range(200):
            c.max_entries = 100 + (i * 37) % 900
            c.max_bytes = 5_000 + (i * 1031) % 60_000
            c.compression_level = 1 + i % 10
            c.compress_threshold = (i * 13) % 300
            c.default_ttl = 1 + i % 5
            time.sleep(0.001)
    finally:
        stop.set()
        for th in threads:
            th.join()
    assert not errors
    store = c._mem
    assert store is not None
    assert store.bytes == sum(len(e) for e, _ in store._data.values())
    s = c.stats()
    assert s["entry_count"] <= s["max_entries"] and s["memory_bytes"] <= s["max_bytes"]
    assert s["evictions"] > 0
