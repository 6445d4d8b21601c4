"""Redis faults: a private redis-server is killed mid-run and restarted on the same port."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from _procs import RedisProcess, wait_until

from perfkit.cache import RETRY_INTERVAL, Cache

pytestmark = [pytest.mark.redis, pytest.mark.slow]

def count_redis_calls(c: Cache) -> list[int]:
    """Count the calls that reach redis-py (the breaker lets one through per interval).

    The wrapped methods still talk to the real server; only the count is added.
    """
    assert c._remote is not None
    store, calls = c._remote.store, [0]

    def counting(real: Callable[..., Any]) -> Callable[..., Any]:
        def counted(*args: Any, **kwargs: Any) -> Any:
            calls[0] += 1
            return real(*args, **kwargs)
        return counted

    for name in ("get", "get_many", "set", "set_many", "delete"):
        setattr(store, name, counting(getattr(store, name)))
    return calls


def test_kill_and_restart_redis(own_redis: RedisProcess) -> None:
    # the server is down or up, never hung, so the timeout only bounds a slow answer from a
    # busy machine (an answer after it would count as one more error)
    c = Cache(f"redis://127.0.0.1:{own_redis.port}/0", namespace="fault", timeout=5)
    c.set("a", {"v": 1})
    assert c.get("a") == {"v": 1}
    assert c.stats()["errors"] == 0

    own_redis.kill()
    # The app keeps working: gets are misses, sets are dropped, nothing raises.
    calls = count_redis_calls(c)
    t0 = time.monotonic()
    results = [c.get("a", "fallback") for _ in range(50)]
    dropped = [c.set(f"k{i}", i) for i in range(50)]
    elapsed, attempts = time.monotonic() - t0, calls[0]
    assert results == ["fallback"] * 50
    assert dropped == [False] * 50
    assert c.get_many(["a", "b"]) == {}
    assert c.get_or_set("computed", lambda: 42) == 42
    s = c.stats()
    assert s["errors"] == 50 + 50 + 1 + 2  # + get_many + get_or_set's get and set
    assert s["misses"] == 50 + 2 + 1
    assert s["entry_count"] is None and s["last_error"]
    # the breaker: after a failure, nothing reaches Redis for RETRY_INTERVAL seconds
    assert 1 <= attempts <= 1 + elapsed / RETRY_INTERVAL, (attempts, elapsed)

    # A worker thread keeps using the cache across the restart without exceptions.
    stop = threading.Event()
    worker_errors: list[BaseException] = []

    def worker() -> None:
        i = 0
        while not stop.is_set():
            try:
                c.set(f"w{i % 10}", i)
                c.get(f"w{i % 10}")
            except BaseException as exc:  # noqa: BLE001
                worker_errors.append(exc)
            i += 1
            time.sleep(0.005)

    th = threading.Thread(target=worker)
    th.start()
    try:
        time.sleep(0.2)
        own_redis.start()  # same port, empty data (no persistence)
        wait_until(lambda: c.set("b", "back") and c.get("b") == "back", RETRY_INTERVAL + 60,
                   "the cache to reconnect after Redis came back")
    finally:
        stop.set()
        th.join()
    assert not worker_errors
    errors_after = c.stats()["errors"]
    assert c.get("a") is None  # the restarted server has no data: a plain miss
    c.set("c", [1, 2])
    assert c.get("c") == [1, 2]
    s = c.stats()
    assert s["errors"] == errors_after  # no new errors once recovered
    assert s["entry_count"] >= 2
    c.close()


def test_strict_mode_raises_while_down_and_recovers(own_redis: RedisProcess) -> None:
    import redis

    c = Cache(f"redis://127.0.0.1:{own_redis.port}/0", namespace="strict", strict=True,
              timeout=5)
    c.set("a", 1)
    own_redis.kill()
    with pytest.raises(redis.ConnectionError):
        c.get("a")
    with pytest.raises(redis.ConnectionError):  # breaker open: fails fast, still raises
        c.set("a", 2)
    assert c.stats()["errors"] == 2
    own_redis.start()
    # the breaker lets a call through again after its retry interval
    wait_until(lambda: c.set("a", 3), RETRY_INTERVAL + 60, "a set after the restart",
               retry_on=(redis.ConnectionError,))
    assert c.get("a") == 3
    c.close()


def test_hung_redis_times_out_and_breaker_limits_the_cost(own_redis: RedisProcess) -> None:
    """A server that stops answering (SIGSTOP) costs one timeout per retry interval."""
    import os
    import signal

    c = Cache(f"redis://127.0.0.1:{own_redis.port}/0", namespace="hung", timeout=0.2)
    c.set("a", 1)
    assert own_redis.proc is not None
    os.kill(own_redis.proc.pid, signal.SIGSTOP)
    calls = count_redis_calls(c)
    try:
        t0 = time.monotonic()
        got = [c.get("a", "d") for _ in range(200)]
        elapsed, attempts = time.monotonic() - t0, calls[0]
        assert got == ["d"] * 200
        # each call that reached the hung server waited for the timeout; the breaker
        # let at most one through per RETRY_INTERVAL, however slow this machine is
        assert 1 <= attempts <= 1 + elapsed / RETRY_INTERVAL, (attempts, elapsed)
        assert c.stats()["errors"] == 200
    finally:
        os.kill(own_redis.proc.pid, signal.SIGCONT)
    wait_until(lambda: c.get("a") == 1, RETRY_INTERVAL + 60, "the resumed server's value")
    c.close()
