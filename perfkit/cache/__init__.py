"""perfkit's enhanced cache: memory or Redis backend, zstd compression, safe serialisation,
exact live statistics and run-time tuning knobs.

>>> cache = Cache()                                   # in-memory LRU + TTL
>>> cache = Cache("redis://127.0.0.1:6379/0", namespace="markets", default_ttl=300)
>>> cache.set("k", {"a": 1}, ttl=60); cache.get("k")
{'a': 1}

Backends
    ``url=None``: an in-process LRU bounded by ``max_entries`` and ``max_bytes`` with a
    per-entry TTL (:mod:`perfkit.cache._memory`). ``redis://host:port/db``: Redis, keys
    ``<namespace>:<key>``, TTL on the server, MGET / pipelines for the bulk calls, one
    connection pool, socket timeouts (:mod:`perfkit.cache._redis`). With Redis,
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
    level never breaks stored entries (:mod:`perfkit.cache._serialize`). Both backends
    store the encoded bytes, so callers never share mutable objects with the cache.

Faults (Redis)
    A connection error or timeout makes ``get`` a miss and drops a ``set``; both count in
    ``stats()["errors"]`` and the application keeps running (``strict=True`` raises the
    redis-py exception instead). After a failure the cache does not touch Redis for
    :data:`RETRY_INTERVAL` seconds (those calls fail at once and count as errors too), then
    tries again, so a hung server costs one ``timeout`` per interval, not one per call, and
    the cache reconnects by itself when Redis is back. An entry under our namespace that we
    cannot read (foreign bytes, a corrupt frame, a pickle without ``allow_pickle``, a
    non-string Redis type) is a miss counted in ``misses`` and ``corrupt``
    (:mod:`perfkit.cache._remote`).

Async
    ``aget``/``aset``/``adelete``/``aget_many``/``aset_many``: with Redis they run the
    blocking call in a worker thread with :func:`asyncio.to_thread` (sharing the pool,
    statistics and fault handling of the sync calls); the memory backend has no I/O and
    holds its lock for O(1) work, so it runs inline.
"""

from perfkit.cache._cache import RETRY_INTERVAL, TIER_TTL, Cache
from perfkit.cache._keys import stable_key

__all__ = ["RETRY_INTERVAL", "TIER_TTL", "Cache", "stable_key"]
