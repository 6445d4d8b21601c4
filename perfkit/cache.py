"""perfkit's enhanced cache: memory or Redis backend, zstd compression, safe serialisation,
exact live statistics and run-time tuning knobs.

>>> cache = Cache()                                   # in-memory LRU + TTL
>>> cache = Cache("redis://127.0.0.1:6379/0", namespace="markets", default_ttl=300)
>>> cache.set("k", {"a": 1}, ttl=60); cache.get("k")
{'a': 1}

Backends
    ``url=None``: an in-process LRU bounded by ``max_entries`` and ``max_bytes`` with a
    per-entry TTL (:mod:`perfkit._cache.memory`). ``redis://host:port/db``: Redis, keys
    ``<namespace>:<key>``, TTL on the server, MGET / pipelines for the bulk calls, one
    connection pool, socket timeouts (:mod:`perfkit._cache.redis_backend`). With Redis,
    ``max_entries`` and ``max_bytes`` are not enforced on the server (that is Redis'
    ``maxmemory`` and eviction policy; ``stats()["bounded"]`` is False). The optional
    memory tier (``memory_tier`` entries, bounded by ``max_bytes`` too) sits in front of
    Redis; each of its entries is kept at most :data:`TIER_TTL` seconds, so an update made
    by another process is seen within that time.

Entries
    Values are serialised safely (str, bytes, int, float, bool, None, JSON containers,
    numpy arrays and scalars, pandas DataFrame/Series/Index; pickle only with
    ``allow_pickle=True``) and compressed with zstandard when the serialised size is at
    least ``compress_threshold`` bytes and compression helps. A one-byte header tells
    the format and whether the payload is compressed, so changing the threshold or the
    level never breaks stored entries (:mod:`perfkit._cache.serialize`). Both backends
    store the encoded bytes, so callers never share mutable objects with the cache.

Faults (Redis)
    A connection error or timeout makes ``get`` a miss and drops a ``set``; both count in
    ``stats()["errors"]`` and the application keeps running (``strict=True`` raises the
    redis-py exception instead). After a failure the cache does not touch Redis for
    :data:`RETRY_INTERVAL` seconds (those calls fail at once and count as errors too), then
    tries again, so a hung server costs one ``timeout`` per interval, not one per call, and
    the cache reconnects by itself when Redis is back. An entry under our namespace that
    we cannot read (foreign bytes, a corrupt frame, a pickle without ``allow_pickle``, a
    non-string Redis type) is a miss counted in ``misses`` and ``corrupt``.

Async
    ``aget``/``aset``/``adelete``/``aget_many``/``aset_many``: with Redis they run the
    blocking call in a worker thread with :func:`asyncio.to_thread` (sharing the pool,
    statistics and fault handling of the sync calls); the memory backend has no I/O and
    holds its lock for O(1) work, so it runs inline.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import inspect
import math
import threading
from collections.abc import Callable, Iterable, Mapping
from time import monotonic
from typing import Any, Self

from ._cache.compress import Codec
from ._cache.memory import MemoryStore
from ._cache.serialize import ForeignEntry

__all__ = ["Cache"]

RETRY_INTERVAL = 0.5
TIER_TTL = 5.0
_MISSING = object()


# -- validation -------------------------------------------------------------------------
def _int(name: str, value: Any, lo: int, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if value < lo or (hi is not None and value > hi):
        rng = f">= {lo}" if hi is None else f"in {lo}..{hi}"
        raise ValueError(f"{name} must be {rng}, got {value}")
    return value


def _ttl(name: str, value: Any, allow_none: bool = True) -> float | None:
    if value is None:
        if allow_none:
            return None
        raise TypeError(f"{name} must be a number of seconds")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds or None, not {type(value).__name__}")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number of seconds > 0 (or None for no "
                         f"expiry), got {value!r}")
    return float(value)


def _key_error(key: Any) -> TypeError:
    return TypeError(f"cache keys must be str, not {type(key).__name__}")


# -- stable keys for @cached ------------------------------------------------------------
def _canon(obj: Any, out: list[str], depth: int = 0) -> None:
    if depth > 100:
        raise TypeError("arguments nested too deeply to build a cache key")
    t = type(obj)
    if t is str:
        out.append("s" + repr(obj))
    elif t is bool:
        out.append("b1" if obj else "b0")
    elif t is int:
        out.append(f"i{obj:x}")
    elif t is float:
        out.append("f" + obj.hex())
    elif obj is None:
        out.append("n")
    elif t is bytes:
        out.append("y" + obj.hex())
    elif t is tuple or t is list:
        out.append("t(" if t is tuple else "l(")
        for item in obj:
            _canon(item, out, depth + 1)
            out.append(",")
        out.append(")")
    elif t is dict:
        items = []
        for k, v in obj.items():
            kk: list[str] = []
            vv: list[str] = []
            _canon(k, kk, depth + 1)
            _canon(v, vv, depth + 1)
            items.append(("".join(kk), "".join(vv)))
        out.append("d(" + ",".join(f"{k}:{v}" for k, v in sorted(items)) + ")")
    elif t is set or t is frozenset:
        parts = []
        for item in obj:
            p: list[str] = []
            _canon(item, p, depth + 1)
            parts.append("".join(p))
        out.append("S(" + ",".join(sorted(parts)) + ")")
    else:
        mod = t.__module__
        if mod == "numpy" or mod.startswith("numpy."):
            import numpy as np

            if isinstance(obj, (np.ndarray, np.generic)):
                arr = np.ascontiguousarray(obj)
                if arr.dtype.hasobject:
                    raise TypeError("cannot build a cache key from a numpy object array")
                digest = hashlib.blake2b(arr.tobytes(), digest_size=16).hexdigest()
                out.append(f"a{t.__name__}{arr.dtype.str}{arr.shape}{digest}")
                return
        if mod.startswith("pandas"):
            from ._cache import _frames

            digest = hashlib.blake2b(_frames.dump(obj), digest_size=16).hexdigest()
            out.append(f"p{t.__name__}{digest}")
            return
        import datetime
        import decimal
        import enum
        import uuid

        if isinstance(obj, enum.Enum):
            out.append(f"e{t.__module__}.{t.__qualname__}.{obj.name}")
        elif isinstance(obj, (datetime.date, datetime.time, datetime.timedelta,
                              decimal.Decimal, uuid.UUID)):
            out.append(f"o{t.__qualname__}:{obj!r}")
        else:
            raise TypeError(
                f"cannot build a cache key from an argument of type {mod}.{t.__qualname__}: "
                "arguments must be str, bytes, numbers, None, tuples, lists, dicts, sets, "
                "numpy arrays, pandas objects, dates, Decimals, UUIDs or enums")


def stable_key(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> str:
    """A short key that is equal for equal arguments, across processes and runs."""
    out: list[str] = []
    _canon(args, out)
    _canon(dict(kwargs), out)
    return hashlib.blake2b("".join(out).encode("utf-8", "surrogatepass"),
                           digest_size=16).hexdigest()


class Cache:
    """A key/value cache with TTL, LRU bounds, compression and exact statistics.

    See the module docstring for backends, entry format, faults and async behaviour.
    Keys are ``str``. All methods are thread-safe.
    """

    def __init__(self, url: str | None = None, *, namespace: str = "perfkit",
                 default_ttl: float | None = 300, max_entries: int = 10_000,
                 max_bytes: int = 64 * 2**20, compress_threshold: int = 1024,
                 compression_level: int = 3, allow_pickle: bool = False, strict: bool = False,
                 memory_tier: int = 0, timeout: float = 0.5) -> None:
        if url is not None and not isinstance(url, str):
            raise TypeError(f"url must be a str or None, not {type(url).__name__}")
        if not isinstance(namespace, str) or not namespace:
            raise ValueError("namespace must be a non-empty str")
        self._default_ttl = _ttl("default_ttl", default_ttl)
        self._max_entries = _int("max_entries", max_entries, 1)
        self._max_bytes = _int("max_bytes", max_bytes, 1)
        threshold = _int("compress_threshold", compress_threshold, 0)
        level = _int("compression_level", compression_level, 1, 22)
        memory_tier = _int("memory_tier", memory_tier, 0)
        timeout_s = _ttl("timeout", timeout, allow_none=False)
        assert timeout_s is not None
        self.namespace = namespace
        self.allow_pickle = bool(allow_pickle)
        self.strict = bool(strict)
        self.timeout = timeout_s
        self._codec = Codec(level, threshold, self.allow_pickle)
        self._knob_lock = threading.Lock()
        self._stats_lock = threading.Lock()
        # Counters kept here (the memory store keeps its own under its lock).
        self._hits = self._misses = self._sets = self._deletes = 0
        self._errors = self._corrupt = self._tier_hits = 0
        self._raw_bytes = self._stored_bytes = 0
        self._down_until = 0.0
        self._last_error: str | None = None
        self._closed = False
        if url is None:
            self.backend = "memory"
            self._mem: MemoryStore | None = MemoryStore(self._max_entries, self._max_bytes)
            self._redis: Any = None  # a RedisStore with the Redis backend
            self._tier: MemoryStore | None = None
        else:
            if not url.startswith(("redis://", "rediss://", "unix://")):
                raise ValueError(f"unsupported cache URL {url!r}: use None or redis://host:port/db")
            import redis

            from ._cache.redis_backend import RedisStore

            self._RedisError = redis.RedisError
            self._ResponseError = redis.ResponseError
            self.backend = "redis"
            self._mem = None
            self._redis = RedisStore(url, namespace, timeout_s)
            self._tier = MemoryStore(memory_tier, self._max_bytes) if memory_tier else None
            self._memory_tier = memory_tier
            try:
                self._redis.server_counters()  # baseline for the INFO deltas
            except Exception as exc:  # noqa: BLE001 - the cache must start with Redis down
                self._last_error = f"{type(exc).__name__}: {exc}"

    # -- knobs -----------------------------------------------------------------------
    @property
    def default_ttl(self) -> float | None:
        """TTL in seconds used when ``set`` gets ``ttl=None``; None = no expiry."""
        return self._default_ttl

    @default_ttl.setter
    def default_ttl(self, value: float | None) -> None:
        v = _ttl("default_ttl", value)
        with self._knob_lock:
            self._default_ttl = v

    @property
    def max_entries(self) -> int:
        """Entry bound of the memory backend; lowering it evicts at once. Reported but not
        enforced with Redis (``stats()["bounded"]`` is False; the tier holds ``memory_tier``)."""
        return self._max_entries

    @max_entries.setter
    def max_entries(self, value: int) -> None:
        v = _int("max_entries", value, 1)
        with self._knob_lock:
            self._max_entries = v
            if self._mem is not None:
                self._mem.resize(max_entries=v)

    @property
    def max_bytes(self) -> int:
        """Byte bound (sum of stored entry sizes) of the memory backend or tier."""
        return self._max_bytes

    @max_bytes.setter
    def max_bytes(self, value: int) -> None:
        v = _int("max_bytes", value, 1)
        with self._knob_lock:
            self._max_bytes = v
            store = self._mem if self._mem is not None else self._tier
            if store is not None:
                store.resize(max_bytes=v)

    @property
    def compression_level(self) -> int:
        """zstd level (1..22) for new entries; stored entries stay readable."""
        return self._codec.level

    @compression_level.setter
    def compression_level(self, value: int) -> None:
        v = _int("compression_level", value, 1, 22)
        with self._knob_lock:
            self._codec.level = v

    @property
    def compress_threshold(self) -> int:
        """Serialised size in bytes from which entries are compressed (0 = always)."""
        return self._codec.threshold

    @compress_threshold.setter
    def compress_threshold(self, value: int) -> None:
        v = _int("compress_threshold", value, 0)
        with self._knob_lock:
            self._codec.threshold = v

    def settings(self) -> dict[str, Any]:
        with self._knob_lock:
            return {"default_ttl": self._default_ttl, "max_entries": self._max_entries,
                    "max_bytes": self._max_bytes,
                    "compress_threshold": self._codec.threshold,
                    "compression_level": self._codec.level}

    # -- helpers ---------------------------------------------------------------------
    def _resolve_ttl(self, ttl: float | None) -> float | None:
        if ttl is None:
            return self._default_ttl
        return _ttl("ttl", ttl, allow_none=False)

    def _encode(self, value: Any) -> bytes:
        entry, raw = self._codec.encode(value)
        with self._stats_lock:
            self._raw_bytes += raw
            self._stored_bytes += len(entry)
        return entry

    def _count(self, **deltas: int) -> None:
        with self._stats_lock:
            for name, d in deltas.items():
                setattr(self, "_" + name, getattr(self, "_" + name) + d)

    def _redis_available(self) -> bool:
        if self._closed:
            raise RuntimeError("the cache is closed")
        return not self._down_until or monotonic() >= self._down_until

    def _fail(self, exc: BaseException | None, op: str, misses: int = 0) -> None:
        """Count a Redis failure; open the breaker on connection trouble; raise if strict."""
        import redis

        with self._stats_lock:
            self._errors += 1
            self._misses += misses
            if exc is not None:
                self._last_error = f"{op}: {type(exc).__name__}: {exc}"
        if exc is None:
            if self.strict:
                raise redis.ConnectionError(
                    f"Redis unavailable (last failure: {self._last_error}); "
                    f"retrying after {RETRY_INTERVAL}s")
            return
        if isinstance(exc, (redis.ConnectionError, redis.TimeoutError)):
            self._down_until = monotonic() + RETRY_INTERVAL
        if self.strict:
            raise exc

    def _decode_redis(self, entry: bytes) -> Any:
        """Decode an entry read from Redis; _MISSING (counted corrupt) when foreign."""
        try:
            return self._codec.decode(entry)
        except ForeignEntry:
            with self._stats_lock:
                self._corrupt += 1
            return _MISSING

    def _tier_ttl(self, ttl: float | None) -> float:
        return TIER_TTL if ttl is None else min(ttl, TIER_TTL)

    # -- sync API --------------------------------------------------------------------
    def get(self, key: str, default: Any = None) -> Any:
        """The value stored under ``key``, or ``default`` (a counted miss)."""
        if type(key) is not str:
            raise _key_error(key)
        mem = self._mem
        if mem is not None:
            entry = mem.get(key)
            if entry is None:
                return default
            return self._codec.decode(entry)
        return self._redis_get(key, default)

    def _redis_get(self, key: str, default: Any) -> Any:
        tier = self._tier
        if tier is not None:
            entry = tier.peek(key)
            if entry is not None:
                self._count(hits=1, tier_hits=1)
                return self._codec.decode(entry)
        if not self._redis_available():
            self._fail(None, "get", misses=1)
            return default
        try:
            entry = self._redis.get(key)
        except self._ResponseError as exc:
            if "WRONGTYPE" in str(exc):
                self._count(misses=1, corrupt=1)
                return default
            self._fail(exc, "get", misses=1)
            return default
        except self._RedisError as exc:
            self._fail(exc, "get", misses=1)
            return default
        if entry is None:
            with self._stats_lock:
                self._misses += 1
            return default
        value = self._decode_redis(entry)
        if value is _MISSING:
            with self._stats_lock:
                self._misses += 1
            return default
        with self._stats_lock:
            self._hits += 1
        if tier is not None:
            tier.set(key, entry, self._tier_ttl(self._default_ttl))
        return value

    def set(self, key: str, value: Any, ttl: float | None = None) -> bool:
        """Store ``value``; ``ttl`` seconds (None = ``default_ttl``). False if dropped."""
        if type(key) is not str:
            raise _key_error(key)
        ttl = self._default_ttl if ttl is None else _ttl("ttl", ttl, allow_none=False)
        mem = self._mem
        if mem is not None:
            entry, raw = self._codec.encode(value)
            return mem.set(key, entry, ttl, raw)
        entry = self._encode(value)
        if self._tier is not None:
            self._tier.discard(key)
        if not self._redis_available():
            self._fail(None, "set")
            return False
        try:
            self._redis.set(key, entry, None if ttl is None else max(1, int(ttl * 1000)))
        except self._RedisError as exc:
            self._fail(exc, "set")
            return False
        with self._stats_lock:
            self._sets += 1
        if self._tier is not None:
            self._tier.set(key, entry, self._tier_ttl(ttl))
        return True

    def delete(self, key: str) -> bool:
        """Remove ``key``; True when it was there."""
        if type(key) is not str:
            raise _key_error(key)
        if self._mem is not None:
            return self._mem.delete(key)
        if self._tier is not None:
            self._tier.discard(key)
        if not self._redis_available():
            self._fail(None, "delete")
            return False
        try:
            n = self._redis.delete(key)
        except self._RedisError as exc:
            self._fail(exc, "delete")
            return False
        if n:
            self._count(deletes=n)
        return bool(n)

    def clear(self) -> int:
        """Remove every entry of this cache's namespace (other keys are untouched)."""
        if self._mem is not None:
            return self._mem.clear()
        if self._tier is not None:
            self._tier.clear()
        if not self._redis_available():
            self._fail(None, "clear")
            return 0
        try:
            return self._redis.clear()
        except self._RedisError as exc:
            self._fail(exc, "clear")
            return 0

    def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """``{key: value}`` for the keys that are present (one MGET with Redis)."""
        keys = list(dict.fromkeys(keys))
        for k in keys:
            if type(k) is not str:
                raise _key_error(k)
        if not keys:
            return {}
        out: dict[str, Any] = {}
        if self._mem is not None:
            decode = self._codec.decode
            for k, entry in zip(keys, self._mem.get_many(keys)):
                if entry is not None:
                    out[k] = decode(entry)
            return out
        todo = keys
        tier = self._tier
        if tier is not None:
            todo = []
            for k in keys:
                entry = tier.peek(k)
                if entry is None:
                    todo.append(k)
                else:
                    out[k] = self._codec.decode(entry)
            if out:
                self._count(hits=len(out), tier_hits=len(out))
            if not todo:
                return out
        if not self._redis_available():
            self._fail(None, "get_many", misses=len(todo))
            return out
        try:
            entries = self._redis.get_many(todo)
        except self._RedisError as exc:
            self._fail(exc, "get_many", misses=len(todo))
            return out
        hits = misses = corrupt = 0
        tier_ttl = self._tier_ttl(self._default_ttl)
        decode = self._codec.decode
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
        with self._stats_lock:
            self._hits += hits
            self._misses += misses
            self._corrupt += corrupt
        return out

    def set_many(self, mapping: Mapping[str, Any], ttl: float | None = None) -> int:
        """Store every item (one pipeline with Redis); returns how many were stored."""
        ttl = self._resolve_ttl(ttl)
        items = []
        raw_total = 0
        encode = self._codec.encode
        for k, v in mapping.items():
            if type(k) is not str:
                raise _key_error(k)
            entry, raw = encode(v)
            raw_total += raw
            items.append((k, entry))
        if not items:
            return 0
        if self._mem is not None:
            return self._mem.set_many(items, ttl, raw_total)
        with self._stats_lock:
            self._raw_bytes += raw_total
            self._stored_bytes += sum(len(e) for _, e in items)
        tier = self._tier
        if tier is not None:
            for k, _ in items:
                tier.discard(k)
        if not self._redis_available():
            self._fail(None, "set_many")
            return 0
        try:
            self._redis.set_many(items, None if ttl is None else max(1, int(ttl * 1000)))
        except self._RedisError as exc:
            self._fail(exc, "set_many")
            return 0
        self._count(sets=len(items))
        if tier is not None:
            tier.set_many(items, self._tier_ttl(ttl))
        return len(items)

    def get_or_set(self, key: str, compute: Callable[[], Any], ttl: float | None = None) -> Any:
        """The cached value, or ``compute()`` stored under ``key`` and returned."""
        value = self.get(key, _MISSING)
        if value is _MISSING:
            value = compute()
            self.set(key, value, ttl)
        return value

    # -- async API -------------------------------------------------------------------
    async def _run(self, fn: Callable[..., Any], *args: Any) -> Any:
        if self._mem is not None:
            return fn(*args)
        return await asyncio.to_thread(fn, *args)

    async def aget(self, key: str, default: Any = None) -> Any:
        return await self._run(self.get, key, default)

    async def aset(self, key: str, value: Any, ttl: float | None = None) -> bool:
        return await self._run(self.set, key, value, ttl)

    async def adelete(self, key: str) -> bool:
        return await self._run(self.delete, key)

    async def aget_many(self, keys: Iterable[str]) -> dict[str, Any]:
        return await self._run(self.get_many, list(keys))

    async def aset_many(self, mapping: Mapping[str, Any], ttl: float | None = None) -> int:
        return await self._run(self.set_many, dict(mapping), ttl)

    async def aget_or_set(self, key: str, compute: Callable[[], Any],
                          ttl: float | None = None) -> Any:
        """Like get_or_set; ``compute`` may be a coroutine function."""
        value = await self.aget(key, _MISSING)
        if value is _MISSING:
            value = compute()
            if inspect.isawaitable(value):
                value = await value
            await self.aset(key, value, ttl)
        return value

    # -- decorator -------------------------------------------------------------------
    def cached(self, ttl: float | None = None, *,
               key: Callable[..., str] | None = None) -> Callable[[Callable[..., Any]],
                                                                 Callable[..., Any]]:
        """Cache a function's results keyed on its arguments (sync or async functions).

        The key is ``fn:<module>.<qualname>:<hash>`` where the hash is a BLAKE2b digest of
        a canonical, type-tagged form of the arguments (equal across processes, so a shared
        Redis shares results). Arguments must be plain data (see :func:`stable_key`);
        pass ``key=callable(*args, **kwargs) -> str`` for anything else (e.g. methods).
        ``None`` results are cached too.
        """
        if ttl is not None:
            _ttl("ttl", ttl, allow_none=False)

        def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
            prefix = f"fn:{fn.__module__}.{fn.__qualname__}:"

            def make_key(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
                if key is not None:
                    return prefix + key(*args, **kwargs)
                return prefix + stable_key(args, kwargs)

            if inspect.iscoroutinefunction(fn):
                @functools.wraps(fn)
                async def awrapper(*args: Any, **kwargs: Any) -> Any:
                    k = make_key(args, kwargs)
                    value = await self.aget(k, _MISSING)
                    if value is _MISSING:
                        value = await fn(*args, **kwargs)
                        await self.aset(k, value, ttl)
                    return value

                awrapper.cache = self  # type: ignore[attr-defined]
                awrapper.cache_key = lambda *a, **kw: make_key(a, kw)  # type: ignore[attr-defined]
                return awrapper

            @functools.wraps(fn)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                k = make_key(args, kwargs)
                value = self.get(k, _MISSING)
                if value is _MISSING:
                    value = fn(*args, **kwargs)
                    self.set(k, value, ttl)
                return value

            wrapper.cache = self  # type: ignore[attr-defined]
            wrapper.cache_key = lambda *a, **kw: make_key(a, kw)  # type: ignore[attr-defined]
            return wrapper

        return decorate

    # -- statistics ------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        """Lifetime counters, current sizes and the current settings.

        ``hits``/``misses`` (a stored None is a hit; a foreign entry, an expired one or a
        failed Redis call is a miss), ``hit_rate`` (% over the lifetime, None before the
        first lookup), ``entry_count``, ``memory_bytes`` (stored entry bytes: header +
        payload after compression), ``evictions``, ``expirations``, ``sets``, ``deletes``,
        ``errors`` (failed Redis calls), ``corrupt`` (foreign entries read),
        ``compression_ratio`` (serialised / stored bytes over all sets, None before the
        first), ``backend``, ``bounded``, ``last_error`` and :meth:`settings`.

        Memory backend: every count is exact (one lock); expired entries are swept first,
        so ``entry_count`` and ``expirations`` are current. Redis: ``entry_count`` and
        ``memory_bytes`` come from SCAN + STRLEN over our namespace, ``evictions`` and
        ``expirations`` are server-wide INFO deltas (see :mod:`perfkit._cache.redis_backend`);
        they are None while Redis is unreachable. With a memory tier, ``tier_*`` keys too.
        """
        with self._stats_lock:
            s: dict[str, Any] = {
                "hits": self._hits, "misses": self._misses, "sets": self._sets,
                "deletes": self._deletes, "errors": self._errors, "corrupt": self._corrupt,
                "raw_bytes": self._raw_bytes, "stored_bytes": self._stored_bytes,
            }
            last_error = self._last_error
        if self._mem is not None:
            self._mem.purge_expired()
            snap = self._mem.snapshot()
            s.update(snap)
            s["bounded"] = True
        else:
            s.update(self._redis_stats())
        lookups = s["hits"] + s["misses"]
        s["hit_rate"] = 100.0 * s["hits"] / lookups if lookups else None
        s["compression_ratio"] = (s["raw_bytes"] / s["stored_bytes"]) if s["stored_bytes"] else None
        s["backend"] = self.backend
        s["namespace"] = self.namespace
        s["last_error"] = last_error
        s.update(self.settings())
        return s

    def _redis_stats(self) -> dict[str, Any]:
        out: dict[str, Any] = {"entry_count": None, "memory_bytes": None,
                               "evictions": None, "expirations": None,
                               "sizes_truncated": False, "bounded": False,
                               "counters_scope": "server"}
        tier = self._tier
        if tier is not None:
            tier.purge_expired()
            t = tier.snapshot()
            out.update({"tier_hits": self._tier_hits, "tier_entry_count": t["entry_count"],
                        "tier_memory_bytes": t["memory_bytes"], "tier_evictions": t["evictions"],
                        "memory_tier": self._memory_tier})
        if self._closed:
            return out
        try:
            count, total, truncated = self._redis.sizes()
            counters = self._redis.server_counters()
        except Exception as exc:  # noqa: BLE001 - stats must not raise when Redis is down
            with self._stats_lock:
                self._last_error = f"stats: {type(exc).__name__}: {exc}"
            return out
        out.update({"entry_count": count, "memory_bytes": total, "sizes_truncated": truncated,
                    "evictions": counters["evicted_keys"],
                    "expirations": counters["expired_keys"]})
        return out

    def reset_stats(self) -> None:
        """Zero the lifetime counters (hits, misses, ...) but keep the entries."""
        with self._stats_lock:
            self._hits = self._misses = self._sets = self._deletes = 0
            self._errors = self._corrupt = self._tier_hits = 0
            self._raw_bytes = self._stored_bytes = 0
        for store in (self._mem, self._tier):
            if store is not None:
                store.reset_counters()

    # -- lifecycle -------------------------------------------------------------------
    def close(self) -> None:
        """Release the Redis connections (the memory backend keeps its entries)."""
        if self._redis is not None and not self._closed:
            self._closed = True
            self._redis.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        where = "memory" if self._redis is None else f"redis, namespace={self.namespace!r}"
        return f"<perfkit.Cache {where}>"
