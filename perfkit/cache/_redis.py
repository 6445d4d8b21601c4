"""Redis store: namespaced string keys, TTL on the server (``SET ... PX``), MGET and
pipelines for the bulk calls, one connection pool per cache.

Connection settings (shared with the benchmark's raw redis-py baseline, see
:func:`client_kwargs`): ``socket_timeout`` and ``socket_connect_timeout`` are the
cache's ``timeout``; redis-py's default of ten retries with exponential backoff is
replaced by one immediate retry on a connection error only (a pooled connection
that died with a restarted server is replaced once; a server that is down fails
in one connect attempt, a server that hangs fails after one ``timeout``).

Statistics that only the server knows:

* ``entry_count`` / ``memory_bytes``: ``SCAN MATCH <namespace>:*`` plus pipelined
  ``STRLEN`` - the number of our keys and the sum of their stored value lengths
  (what we wrote: header + payload, after compression; Redis' own per-key
  overhead is not included). At most :data:`SCAN_LIMIT` keys of the database are
  examined per call; beyond that the figures cover what was examined and
  ``stats()["sizes_truncated"]`` is True.
* ``evictions`` / ``expirations``: deltas of ``INFO stats`` ``evicted_keys`` and
  ``expired_keys`` since the cache was created. These are *server-wide* counts
  (every database, every client): Redis does not say whose key expired without
  keyspace notifications, and tracking every key we set would cost client memory.
  A server restart resets Redis' counters; the deltas are accumulated across it.
"""

from __future__ import annotations

from typing import Any

try:
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry
except ModuleNotFoundError as exc:  # pragma: no cover - depends on the install
    from perfkit.errors import extra_error

    raise extra_error(exc, "redis", "A Redis-backed perfkit.Cache") from exc

SCAN_LIMIT = 200_000
_SCAN_COUNT = 1000


def client_kwargs(timeout: float) -> dict[str, Any]:
    """redis-py connection settings used by the cache (and by its benchmark baseline)."""
    return {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "retry": Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,)),
        "health_check_interval": 0,
    }


def _glob_escape(s: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in s)


class RedisStore:
    def __init__(self, url: str, namespace: str, timeout: float) -> None:
        self.client = redis.Redis.from_url(url, **client_kwargs(timeout))
        self.prefix = namespace + ":"
        self._match = _glob_escape(self.prefix) + "*"
        self._counter_last: dict[str, int] = {}
        self._counter_acc: dict[str, int] = {}

    # -- data -----------------------------------------------------------------------
    def get(self, key: str) -> bytes | None:
        return self.client.execute_command("GET", self.prefix + key)

    def get_many(self, keys: list[str]) -> list[bytes | None]:
        p = self.prefix
        return self.client.execute_command("MGET", *[p + k for k in keys])

    def set(self, key: str, entry: bytes, ttl_ms: int | None) -> None:
        if ttl_ms is None:
            self.client.execute_command("SET", self.prefix + key, entry)
        else:
            self.client.execute_command("SET", self.prefix + key, entry, "PX", ttl_ms)

    def set_many(self, items: list[tuple[str, bytes]], ttl_ms: int | None) -> None:
        p = self.prefix
        with self.client.pipeline(transaction=False) as pipe:
            for key, entry in items:
                if ttl_ms is None:
                    pipe.execute_command("SET", p + key, entry)
                else:
                    pipe.execute_command("SET", p + key, entry, "PX", ttl_ms)
            pipe.execute()

    def delete(self, key: str) -> int:
        return int(self.client.execute_command("DEL", self.prefix + key))

    def clear(self) -> int:
        """UNLINK every key under our namespace (SCAN, never KEYS / FLUSHDB)."""
        removed = 0
        cursor = 0
        while True:
            cursor, keys = self.client.scan(cursor=cursor, match=self._match, count=_SCAN_COUNT)
            if keys:
                removed += int(self.client.unlink(*keys))
            if int(cursor) == 0:
                return removed

    # -- statistics -----------------------------------------------------------------
    def sizes(self) -> tuple[int, int, bool]:
        """(our key count, sum of our stored value lengths, truncated)."""
        count = total = examined = 0
        cursor = 0
        while True:
            cursor, keys = self.client.scan(cursor=cursor, match=self._match, count=_SCAN_COUNT)
            examined += _SCAN_COUNT
            if keys:
                with self.client.pipeline(transaction=False) as pipe:
                    for k in keys:
                        pipe.strlen(k)
                    lengths = pipe.execute(raise_on_error=False)
                for n in lengths:
                    if isinstance(n, int) and n > 0:  # 0 = expired since SCAN
                        count += 1
                        total += n
            if int(cursor) == 0:
                return count, total, False
            if examined >= SCAN_LIMIT:
                return count, total, True

    def server_counters(self) -> dict[str, int]:
        """Accumulated deltas of INFO stats expired_keys / evicted_keys since creation."""
        info = self.client.info("stats")
        out = {}
        for name in ("expired_keys", "evicted_keys"):
            cur = int(info.get(name, 0))
            last = self._counter_last.get(name)
            if last is None:  # first observation: the baseline
                self._counter_acc[name] = 0
            elif cur >= last:
                self._counter_acc[name] += cur - last
            else:  # the server restarted and its counters began again
                self._counter_acc[name] += cur
            self._counter_last[name] = cur
            out[name] = self._counter_acc[name]
        return out

    def close(self) -> None:
        self.client.close()
        self.client.connection_pool.disconnect()
