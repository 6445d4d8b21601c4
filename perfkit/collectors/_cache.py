"""Cache metrics from a cache's ``stats()`` mapping or a Redis server's INFO."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from perfkit.collectors._base import Reading

__all__ = ["CacheCollector", "RedisCollector"]

_MB = 2**20


def _hit_rate(prev: tuple[float, float] | None, hits: float, misses: float) -> float | None:
    # The rate over the interval, not the lifetime: a lifetime rate hides a cache
    # that has just gone cold behind hours of good history.
    if prev is None:
        return None
    dh, dm = hits - prev[0], misses - prev[1]
    if dh < 0 or dm < 0:  # counters were reset (restart, CONFIG RESETSTAT)
        return None
    if dh + dm == 0:
        return None
    return 100.0 * dh / (dh + dm)


class CacheCollector:
    """Reads any object with a ``stats()`` mapping (perfkit.Cache or your own).

    Understood keys: ``hits``, ``misses`` (cumulative counters), ``entry_count``,
    ``memory_bytes``. Missing keys give missing metrics.
    """

    name = "cache"

    def __init__(self, cache: Any, labels: str = "") -> None:
        if not callable(getattr(cache, "stats", None)):
            raise TypeError(f"attach_cache() needs an object with a stats() method, "
                            f"got {type(cache).__name__}; for a Redis client use attach_redis()")
        self.cache = cache
        self.labels = labels
        self._prev: tuple[float, float] | None = None

    def collect(self) -> list[Reading]:
        """One reading of the cache's counters."""
        stats = self.cache.stats()
        if not isinstance(stats, Mapping):
            raise TypeError(f"{type(self.cache).__name__}.stats() returned "
                            f"{type(stats).__name__}, expected a mapping")
        out: list[Reading] = []
        if "hits" in stats and "misses" in stats:
            hits, misses = float(stats["hits"]), float(stats["misses"])
            rate = _hit_rate(self._prev, hits, misses)
            self._prev = (hits, misses)
            if rate is not None:
                out.append(Reading("cache.hit_rate", rate, self.labels))
        if stats.get("entry_count") is not None:
            out.append(Reading("cache.entry_count", float(stats["entry_count"]), self.labels))
        if stats.get("memory_bytes") is not None:
            mb = float(stats["memory_bytes"]) / _MB
            out.append(Reading("cache.memory_usage", mb, self.labels))
        return out


class RedisCollector:
    """Reads a Redis server: INFO keyspace hits/misses, used_memory and DBSIZE.

    The numbers are the whole server's (hits and memory) and the client's
    database (DBSIZE), which is what Redis itself can tell. ``labels`` tells
    several caches apart (``cache=sessions``); the first one has none.
    """

    name = "redis"

    def __init__(self, client: Any, labels: str = "") -> None:
        if not (callable(getattr(client, "info", None))
                and callable(getattr(client, "dbsize", None))):
            raise TypeError(f"attach_redis() needs a redis-py client, got {type(client).__name__}")
        self.client = client
        self.labels = labels
        self._prev: tuple[float, float] | None = None

    def collect(self) -> list[Reading]:
        """One INFO + DBSIZE round trip."""
        stats = self.client.info("stats")
        memory = self.client.info("memory")
        hits, misses = float(stats["keyspace_hits"]), float(stats["keyspace_misses"])
        out: list[Reading] = []
        rate = _hit_rate(self._prev, hits, misses)
        self._prev = (hits, misses)
        if rate is not None:
            out.append(Reading("cache.hit_rate", rate, self.labels))
        out.append(Reading("cache.entry_count", float(self.client.dbsize()), self.labels))
        out.append(Reading("cache.memory_usage", float(memory["used_memory"]) / _MB, self.labels))
        return out
