"""The :class:`Cache` class; the contract is documented in :mod:`perfkit.cache`."""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Self

from perfkit.cache._compress import Codec
from perfkit.cache._decorator import MISSING, wrap
from perfkit.cache._keys import stable_key
from perfkit.cache._memory import MemoryStore
from perfkit.cache._validate import int_arg, key_error, seconds_arg

if TYPE_CHECKING:
    from perfkit.cache._remote import RemoteCache

__all__ = ["RETRY_INTERVAL", "TIER_TTL", "Cache", "stable_key"]

RETRY_INTERVAL = 0.5  # seconds without touching Redis after a connection failure
TIER_TTL = 5.0        # longest time the memory tier serves an entry without asking Redis


class Cache:
    """A key/value cache with TTL, LRU bounds, compression and exact statistics.

    See the module docstring for backends, entry format, faults and async behaviour.
    Keys are ``str``. All methods are thread-safe.
    """

    def __init__(self, url: str | None = None, *, namespace: str = "perfkit",
                 default_ttl: float | None = 300, max_entries: int = 10_000,
                 max_bytes: int = 64 * 2**20, compress_threshold: int = 1024,
                 compression_level: int = 3, allow_pickle: bool = False, strict: bool = False,
                 memory_tier: int = 0, timeout: float = 0.5,
                 max_entry_bytes: int | None = None) -> None:
        if url is not None and not isinstance(url, str):
            raise TypeError(f"url must be a str or None, not {type(url).__name__}")
        if not isinstance(namespace, str) or not namespace:
            raise ValueError(f"namespace must be a non-empty str, got {namespace!r}")
        self._default_ttl = seconds_arg("default_ttl", default_ttl)
        self._max_entries = int_arg("max_entries", max_entries, 1)
        self._max_bytes = int_arg("max_bytes", max_bytes, 1)
        threshold = int_arg("compress_threshold", compress_threshold, 0)
        level = int_arg("compression_level", compression_level, 1, 22)
        memory_tier = int_arg("memory_tier", memory_tier, 0)
        timeout_s = seconds_arg("timeout", timeout, allow_none=False)
        assert timeout_s is not None
        self.namespace = namespace
        self.allow_pickle = bool(allow_pickle)
        self._strict = bool(strict)
        self.timeout = timeout_s
        # The largest entry this cache writes is also the largest it will decompress.
        self._max_entry = int_arg("max_entry_bytes", max_entry_bytes if max_entry_bytes
                                  is not None else self._max_bytes, 1)
        self._codec = Codec(level, threshold, self.allow_pickle, self._max_entry)
        self._knob_lock = threading.Lock()
        self._mem: MemoryStore | None = None
        self._remote: RemoteCache | None = None  # with Redis
        if url is None:
            self.backend = "memory"
            self._mem = MemoryStore(self._max_entries, self._max_bytes)
        elif url.startswith(("redis://", "rediss://", "unix://")):
            from perfkit.cache._remote import RemoteCache  # imports redis-py: only when used

            self.backend = "redis"
            self._remote = RemoteCache(url, namespace, timeout_s, self._codec, self._strict,
                                       memory_tier, self._max_bytes,
                                       retry_interval=RETRY_INTERVAL, tier_ttl=TIER_TTL)
        else:
            raise ValueError(f"unsupported cache URL {url!r}: use None (in memory) or "
                             "'redis://host:port/db' ('rediss://' for TLS, 'unix://' for a socket)")

    # -- knobs -----------------------------------------------------------------------
    @property
    def strict(self) -> bool:
        """Raise redis-py's exception on a Redis failure instead of missing / dropping."""
        return self._strict

    @strict.setter
    def strict(self, value: bool) -> None:
        self._strict = bool(value)
        if self._remote is not None:
            self._remote.strict = self._strict

    @property
    def default_ttl(self) -> float | None:
        """TTL in seconds used when ``set`` gets ``ttl=None``; None = no expiry."""
        return self._default_ttl

    @default_ttl.setter
    def default_ttl(self, value: float | None) -> None:
        v = seconds_arg("default_ttl", value)
        with self._knob_lock:
            self._default_ttl = v

    @property
    def max_entries(self) -> int:
        """Entry bound of the memory backend; lowering it evicts at once. Reported but not
        enforced with Redis (``stats()["bounded"]`` is False; the tier holds ``memory_tier``)."""
        return self._max_entries

    @max_entries.setter
    def max_entries(self, value: int) -> None:
        v = int_arg("max_entries", value, 1)
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
        v = int_arg("max_bytes", value, 1)
        with self._knob_lock:
            self._max_bytes = v
            store = self._mem if self._remote is None else self._remote.tier
            if store is not None:
                store.resize(max_bytes=v)

    @property
    def compression_level(self) -> int:
        """zstd level (1..22) for new entries; stored entries stay readable."""
        return self._codec.level

    @compression_level.setter
    def compression_level(self, value: int) -> None:
        v = int_arg("compression_level", value, 1, 22)
        with self._knob_lock:
            self._codec.level = v

    @property
    def compress_threshold(self) -> int:
        """Serialised size in bytes from which entries are compressed (0 = always)."""
        return self._codec.threshold

    @compress_threshold.setter
    def compress_threshold(self, value: int) -> None:
        v = int_arg("compress_threshold", value, 0)
        with self._knob_lock:
            self._codec.threshold = v

    def settings(self) -> dict[str, Any]:
        """The current knobs: default_ttl, max_entries, max_bytes, compress_threshold,
        compression_level."""
        with self._knob_lock:
            return {"default_ttl": self._default_ttl, "max_entries": self._max_entries,
                    "max_bytes": self._max_bytes,
                    "compress_threshold": self._codec.threshold,
                    "compression_level": self._codec.level}

    def _resolve_ttl(self, ttl: float | None) -> float | None:
        if ttl is None:
            return self._default_ttl
        return seconds_arg("ttl", ttl, allow_none=False)

    # -- sync API --------------------------------------------------------------------
    def get(self, key: str, default: Any = None) -> Any:
        """The value stored under ``key``, or ``default`` (a counted miss)."""
        if type(key) is not str:
            raise key_error(key)
        mem = self._mem
        if mem is not None:
            entry = mem.get(key)
            if entry is None:
                return default
            return self._codec.decode(entry)
        assert self._remote is not None
        return self._remote.get(key, default, self._default_ttl)

    def set(self, key: str, value: Any, ttl: float | None = None) -> bool:
        """Store ``value``; ``ttl`` seconds (None = ``default_ttl``). False if dropped."""
        if type(key) is not str:
            raise key_error(key)
        ttl = self._resolve_ttl(ttl)
        entry, raw = self._codec.encode(value)
        mem = self._mem
        if mem is not None:
            return mem.set(key, entry, ttl, raw)
        assert self._remote is not None
        if raw > self._max_entry:
            self._remote.refuse(1)
            return False
        return self._remote.put([(key, entry)], raw, ttl) == 1

    def delete(self, key: str) -> bool:
        """Remove ``key``; True when it was there."""
        if type(key) is not str:
            raise key_error(key)
        if self._mem is not None:
            return self._mem.delete(key)
        assert self._remote is not None
        return self._remote.delete(key)

    def clear(self) -> int:
        """Remove every entry of this cache's namespace (other keys are untouched)."""
        if self._mem is not None:
            return self._mem.clear()
        assert self._remote is not None
        return self._remote.clear()

    def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """``{key: value}`` for the keys that are present (one MGET with Redis)."""
        keys = list(dict.fromkeys(keys))
        for k in keys:
            if type(k) is not str:
                raise key_error(k)
        if not keys:
            return {}
        if self._mem is None:
            assert self._remote is not None
            return self._remote.get_many(keys, self._default_ttl)
        decode = self._codec.decode
        return {k: decode(entry) for k, entry in zip(keys, self._mem.get_many(keys))
                if entry is not None}

    def set_many(self, mapping: Mapping[str, Any], ttl: float | None = None) -> int:
        """Store every item (one pipeline with Redis); returns how many were stored."""
        ttl = self._resolve_ttl(ttl)
        items = []
        raw_total = 0
        encode = self._codec.encode
        for k, v in mapping.items():
            if type(k) is not str:
                raise key_error(k)
            entry, raw = encode(v)
            if self._remote is not None and raw > self._max_entry:
                self._remote.refuse(1)
                continue
            raw_total += raw
            items.append((k, entry))
        if not items:
            return 0
        if self._mem is not None:
            return self._mem.set_many(items, ttl, raw_total)
        assert self._remote is not None
        return self._remote.put(items, raw_total, ttl)

    def get_or_set(self, key: str, compute: Callable[[], Any], ttl: float | None = None) -> Any:
        """The cached value, or ``compute()`` stored under ``key`` and returned."""
        value = self.get(key, MISSING)
        if value is MISSING:
            value = compute()
            self.set(key, value, ttl)
        return value

    # -- async API -------------------------------------------------------------------
    async def _run(self, fn: Callable[..., Any], *args: Any) -> Any:
        if self._mem is not None:  # no I/O: running inline beats a thread hop
            return fn(*args)
        return await asyncio.to_thread(fn, *args)

    async def aget(self, key: str, default: Any = None) -> Any:
        """:meth:`get` without blocking the event loop."""
        return await self._run(self.get, key, default)

    async def aset(self, key: str, value: Any, ttl: float | None = None) -> bool:
        """:meth:`set` without blocking the event loop."""
        return await self._run(self.set, key, value, ttl)

    async def adelete(self, key: str) -> bool:
        """:meth:`delete` without blocking the event loop."""
        return await self._run(self.delete, key)

    async def aget_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """:meth:`get_many` without blocking the event loop."""
        return await self._run(self.get_many, list(keys))

    async def aset_many(self, mapping: Mapping[str, Any], ttl: float | None = None) -> int:
        """:meth:`set_many` without blocking the event loop."""
        return await self._run(self.set_many, dict(mapping), ttl)

    async def aget_or_set(self, key: str, compute: Callable[[], Any],
                          ttl: float | None = None) -> Any:
        """Like get_or_set; ``compute`` may be a coroutine function."""
        value = await self.aget(key, MISSING)
        if value is MISSING:
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
            seconds_arg("ttl", ttl, allow_none=False)
        return lambda fn: wrap(self, fn, ttl, key)

    # -- statistics ------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        """Lifetime counters, current sizes and the current settings.

        ``hits``/``misses`` (a stored None is a hit; a foreign entry, an expired one or a
        failed Redis call is a miss), ``hit_rate`` (% over the lifetime, None before the
        first lookup), ``entry_count``, ``memory_bytes`` (stored entry bytes: header +
        payload after compression), ``evictions``, ``expirations``, ``sets``, ``deletes``,
        ``errors`` (failed Redis calls), ``corrupt`` (foreign entries read, including a
        compressed entry that claims more than ``max_entry_bytes`` decompressed: refused
        from its header), ``rejected`` (values over ``max_entry_bytes``, not stored),
        ``compression_ratio`` (serialised / stored bytes over all sets, None before the
        first), ``backend``, ``bounded``, ``last_error`` and :meth:`settings`.

        Memory backend: every count is exact (one lock); expired entries are swept first,
        so ``entry_count`` and ``expirations`` are current. Redis: ``entry_count`` and
        ``memory_bytes`` come from SCAN + STRLEN over our namespace, ``evictions`` and
        ``expirations`` are server-wide INFO deltas (see :mod:`perfkit.cache._redis`);
        they are None while Redis is unreachable. With a memory tier, ``tier_*`` keys too.
        """
        s: dict[str, Any] = dict.fromkeys(("hits", "misses", "sets", "deletes", "errors",
                                           "corrupt", "rejected", "raw_bytes", "stored_bytes"), 0)
        if self._mem is not None:
            self._mem.purge_expired()
            s.update(self._mem.snapshot())
            s["bounded"] = True
            last_error = None
        else:
            assert self._remote is not None
            s.update((k, v) for k, v in self._remote.counters().items() if k != "tier_hits")
            s.update(self._remote.stats())
            last_error = self._remote.last_error
        lookups = s["hits"] + s["misses"]
        s["hit_rate"] = 100.0 * s["hits"] / lookups if lookups else None
        s["compression_ratio"] = (s["raw_bytes"] / s["stored_bytes"]) if s["stored_bytes"] else None
        s["backend"] = self.backend
        s["namespace"] = self.namespace
        s["last_error"] = last_error
        s.update(self.settings())
        return s

    def reset_stats(self) -> None:
        """Zero the lifetime counters (hits, misses, ...) but keep the entries."""
        if self._mem is not None:
            self._mem.reset_counters()
        else:
            assert self._remote is not None
            self._remote.reset_counters()

    # -- lifecycle -------------------------------------------------------------------
    def close(self) -> None:
        """Release the Redis connections (the memory backend keeps its entries)."""
        if self._remote is not None:
            self._remote.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        where = "memory" if self._mem is not None else f"redis, namespace={self.namespace!r}"
        return f"<perfkit.Cache {where}>"
