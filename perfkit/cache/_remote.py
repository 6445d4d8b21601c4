"""The Redis side of a Cache: the optional memory tier, the counters and fault handling.

Faults: a connection error or a timeout counts in ``errors`` and opens a breaker
for ``retry_interval`` seconds (:data:`perfkit.cache.RETRY_INTERVAL`), during which
calls fail at once (and count as errors too) instead of each waiting for the socket
timeout; then Redis is tried again. A get that fails is a miss, a set is dropped;
``strict=True`` raises the redis-py exception instead. An entry we cannot read
(foreign bytes, a pickle without ``allow_pickle``, a non-string Redis type) is a
miss counted in ``corrupt``.

The memory tier keeps each entry at most ``tier_ttl`` seconds
(:data:`perfkit.cache.TIER_TTL`), so an update made by another process is seen
within that time. redis-py is imported only when a Redis cache is created.
"""

from __future__ import annotations

import threading
from time import monotonic
from typing import Any

try:
    import redis
except ModuleNotFoundError as exc:  # pragma: no cover - depends on the install
    from perfkit.errors import extra_error

    raise extra_error(exc, "redis", "A Redis-backed perfkit.Cache") from exc

from perfkit.cache._compress import Codec
from perfkit.cache._memory import MemoryStore
from perfkit.cache._redis import RedisStore
from perfkit.cache._serialize import ForeignEntry

_COUNTERS = ("hits", "misses", "sets", "deletes", "errors", "corrupt", "rejected", "tier_hits",
             "raw_bytes", "stored_bytes")


def _px(ttl: float | None) -> int | None:
    """A TTL in seconds as Redis ``PX`` milliseconds (at least 1)."""
    return None if ttl is None else max(1, int(ttl * 1000))


class RemoteCache:
    """Encoded entries in Redis (through :class:`RedisStore`) with exact counters."""

    def __init__(self, url: str, namespace: str, timeout: float, codec: Codec, strict: bool,
                 memory_tier: int, max_bytes: int, *, retry_interval: float,
                 tier_ttl: float) -> None:
        self.retry_interval = retry_interval
        self.tier_ttl = tier_ttl
        self.store = RedisStore(url, namespace, timeout)
        self.tier = MemoryStore(memory_tier, max_bytes) if memory_tier else None
        self.memory_tier = memory_tier
        self.codec = codec
        self.strict = strict
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(_COUNTERS, 0)
        self._down_until = 0.0
        self.last_error: str | None = None
        self.closed = False
        try:
            self.store.server_counters()  # baseline for the INFO deltas
        except Exception as exc:  # noqa: BLE001 - the cache must start with Redis down
            self.last_error = f"{type(exc).__name__}: {exc}"

    # -- bookkeeping ----------------------------------------------------------------
    def _count(self, **deltas: int) -> None:
        with self._lock:
            for name, d in deltas.items():
                self._counts[name] += d

    def counters(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def reset_counters(self) -> None:
        with self._lock:
            self._counts = dict.fromkeys(_COUNTERS, 0)
        if self.tier is not None:
            self.tier.reset_counters()

    def _available(self) -> bool:
        if self.closed:
            raise RuntimeError("the cache is closed; create a new Cache to use Redis again")
        return not self._down_until or monotonic() >= self._down_until

    def _fail(self, exc: BaseException | None, op: str, misses: int = 0) -> None:
        """Count a failure (``exc`` None: the breaker is open); open the breaker on
        connection trouble; raise if strict."""
        with self._lock:
            self._counts["errors"] += 1
            self._counts["misses"] += misses
            if exc is not None:
                self.last_error = f"{op}: {type(exc).__name__}: {exc}"
        if exc is None:
            if self.strict:
                raise redis.ConnectionError(
                    f"Redis unavailable (last failure: {self.last_error}); "
                    f"retrying after {self.retry_interval}s")
            return
        if isinstance(exc, (redis.ConnectionError, redis.TimeoutError)):
            self._down_until = monotonic() + self.retry_interval
        if self.strict:
            raise exc

    def _tier_ttl(self, ttl: float | None) -> float:
        return self.tier_ttl if ttl is None else min(ttl, self.tier_ttl)

    # -- operations -----------------------------------------------------------------
    def get(self, key: str, default: Any, default_ttl: float | None) -> Any:
        tier = self.tier
        if tier is not None:
            entry = tier.peek(key)
            if entry is not None:
                self._count(hits=1, tier_hits=1)
                return self.codec.decode(entry)
        if not self._available():
            self._fail(None, "get", misses=1)
            return default
        try:
            entry = self.store.get(key)
        except redis.ResponseError as exc:
            if "WRONGTYPE" in str(exc):  # a hash, list... under our namespace: foreign
                self._count(misses=1, corrupt=1)
                return default
            self._fail(exc, "get", misses=1)
            return default
        except redis.RedisError as exc:
            self._fail(exc, "get", misses=1)
            return default
        if entry is None:
            self._count(misses=1)
            return default
        try:
            value = self.codec.decode(entry)
        except ForeignEntry:
            self._count(misses=1, corrupt=1)
            return default
        self._count(hits=1)
        if tier is not None:
            tier.set(key, entry, self._tier_ttl(default_ttl))
        return value

    def get_many(self, keys: list[str], default_ttl: float | None) -> dict[str, Any]:
        out: dict[str, Any] = {}
        todo = keys
        tier = self.tier
        if tier is not None:
            todo = []
            for k in keys:
                entry = tier.peek(k)
                if entry is None:
                    todo.append(k)
                else:
                    out[k] = self.codec.decode(entry)
            if out:
                self._count(hits=len(out), tier_hits=len(out))
            if not todo:
                return out
        if not self._available():
            self._fail(None, "get_many", misses=len(todo))
            return out
        try:
            entries = self.store.get_many(todo)
        except redis.RedisError as exc:
            self._fail(exc, "get_many", misses=len(todo))
            return out
        hits = misses = corrupt = 0
        tier_ttl = self._tier_ttl(default_ttl)
        decode = self.codec.decode
        for k, entry in zip(todo, entries):
            if entry is not None:
                try:
                    out[k] = decode(entry)
                except ForeignEntry:
                    corrupt += 1
                else:
                    hits += 1
                    if tier is not None:
                        tier.set(k, entry, tier_ttl)
                    continue
            misses += 1
        self._count(hits=hits, misses=misses, corrupt=corrupt)
        return out

    def refuse(self, n: int) -> None:
        """Count ``n`` values not stored because they exceed the cache's largest entry."""
        self._count(rejected=n)

    def put(self, items: list[tuple[str, bytes]], raw: int, ttl: float | None) -> int:
        """Store encoded ``items`` (one SET, or one pipeline for several); how many were
        stored (0 when dropped). ``raw``: their serialised size before compression."""
        self._count(raw_bytes=raw, stored_bytes=sum(len(e) for _, e in items))
        tier = self.tier
        if tier is not None:  # never serve the old value from the tier
            for k, _ in items:
                tier.discard(k)
        if not self._available():
            self._fail(None, "set_many")
            return 0
        try:
            if len(items) == 1:
                self.store.set(items[0][0], items[0][1], _px(ttl))
            else:
                self.store.set_many(items, _px(ttl))
        except redis.RedisError as exc:
            self._fail(exc, "set_many" if len(items) > 1 else "set")
            return 0
        self._count(sets=len(items))
        if tier is not None:
            tier.set_many(items, self._tier_ttl(ttl))
        return len(items)

    def delete(self, key: str) -> bool:
        if self.tier is not None:
            self.tier.discard(key)
        if not self._available():
            self._fail(None, "delete")
            return False
        try:
            n = self.store.delete(key)
        except redis.RedisError as exc:
            self._fail(exc, "delete")
            return False
        if n:
            self._count(deletes=n)
        return bool(n)

    def clear(self) -> int:
        if self.tier is not None:
            self.tier.clear()
        if not self._available():
            self._fail(None, "clear")
            return 0
        try:
            return self.store.clear()
        except redis.RedisError as exc:
            self._fail(exc, "clear")
            return 0

    # -- statistics and life cycle --------------------------------------------------
    def stats(self) -> dict[str, Any]:
        """Sizes and eviction/expiry figures from the server (None while it is down)."""
        out: dict[str, Any] = {"entry_count": None, "memory_bytes": None,
                               "evictions": None, "expirations": None,
                               "sizes_truncated": False, "bounded": False,
                               "counters_scope": "server"}
        tier = self.tier
        if tier is not None:
            tier.purge_expired()
            t = tier.snapshot()
            out.update({"tier_hits": self.counters()["tier_hits"],
                        "tier_entry_count": t["entry_count"],
                        "tier_memory_bytes": t["memory_bytes"], "tier_evictions": t["evictions"],
                        "memory_tier": self.memory_tier})
        if self.closed:
            return out
        try:
            count, total, truncated = self.store.sizes()
            counters = self.store.server_counters()
        except Exception as exc:  # noqa: BLE001 - stats must not raise when Redis is down
            with self._lock:
                self.last_error = f"stats: {type(exc).__name__}: {exc}"
            return out
        out.update({"entry_count": count, "memory_bytes": total, "sizes_truncated": truncated,
                    "evictions": counters["evicted_keys"],
                    "expirations": counters["expired_keys"]})
        return out

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.store.close()

