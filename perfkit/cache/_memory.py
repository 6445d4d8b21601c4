"""In-process store: LRU bounded by entry count and by bytes, per-entry TTL.

Entries are the encoded bytes (see :mod:`.compress`), so ``memory_bytes`` is
the real stored size (sum of the stored entries' lengths; keys and Python
object overhead are not counted), callers never share mutable objects with
the cache, and compression saves memory here as it does in Redis.

Every operation and every counter update happens under one lock, which makes
the statistics exact under any number of threads. Accounting rules:

* ``evictions``: an unexpired entry removed to respect ``max_entries`` or
  ``max_bytes`` (including when those knobs are lowered at run time);
* ``expirations``: an entry whose TTL had passed, counted once when it is
  removed, whether it is found on a lookup, overwritten, deleted, reached by
  the eviction sweep, or swept by :meth:`purge_expired` (``stats()`` sweeps,
  so the count is up to date when it is read);
* ``rejected``: a value larger than ``max_bytes`` on its own, never stored.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from time import monotonic
from typing import Any

INF = float("inf")


class MemoryStore:
    __slots__ = (
        "_data",
        "_lock",
        "bytes",
        "deletes",
        "evictions",
        "expirations",
        "hits",
        "max_bytes",
        "max_entries",
        "misses",
        "raw_bytes",
        "rejected",
        "sets",
        "stored_bytes",
    )

    def __init__(self, max_entries: int, max_bytes: int) -> None:
        self._data: OrderedDict[str, tuple[bytes, float]] = OrderedDict()
        self._lock = threading.Lock()
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.bytes = 0
        self.hits = self.misses = self.evictions = self.expirations = 0
        self.sets = self.deletes = self.rejected = 0
        self.raw_bytes = self.stored_bytes = 0  # serialised vs stored sizes of all sets

    # -- lookups --------------------------------------------------------------------
    def get(self, key: str) -> bytes | None:
        """The entry for ``key`` (refreshing its LRU position) or None; counts hit/miss."""
        with self._lock:
            e = self._data.get(key)
            if e is not None:
                if e[1] > monotonic():
                    self._data.move_to_end(key)
                    self.hits += 1
                    return e[0]
                del self._data[key]
                self.bytes -= len(e[0])
                self.expirations += 1
            self.misses += 1
            return None

    def peek(self, key: str) -> bytes | None:
        """Like :meth:`get` without counting a hit or a miss (expiry still counted)."""
        with self._lock:
            e = self._data.get(key)
            if e is None:
                return None
            if e[1] > monotonic():
                self._data.move_to_end(key)
                return e[0]
            del self._data[key]
            self.bytes -= len(e[0])
            self.expirations += 1
            return None

    def get_many(self, keys: list[str]) -> list[bytes | None]:
        out: list[bytes | None] = []
        with self._lock:
            now = monotonic()
            data = self._data
            for key in keys:
                e = data.get(key)
                if e is not None:
                    if e[1] > now:
                        data.move_to_end(key)
                        self.hits += 1
                        out.append(e[0])
                        continue
                    del data[key]
                    self.bytes -= len(e[0])
                    self.expirations += 1
                self.misses += 1
                out.append(None)
        return out

    # -- writes ---------------------------------------------------------------------
    def set(self, key: str, entry: bytes, ttl: float | None, raw: int = 0) -> bool:
        """Store ``entry``; False when it is larger than ``max_bytes`` by itself.

        ``raw`` is the serialised size before compression (for the compression ratio).
        """
        expires = INF if ttl is None else monotonic() + ttl
        with self._lock:
            self.raw_bytes += raw
            self.stored_bytes += len(entry)
            return self._set_locked(key, entry, expires)

    def set_many(self, items: list[tuple[str, bytes]], ttl: float | None, raw: int = 0) -> int:
        expires = INF if ttl is None else monotonic() + ttl
        stored = 0
        with self._lock:
            self.raw_bytes += raw
            for key, entry in items:
                self.stored_bytes += len(entry)
                stored += self._set_locked(key, entry, expires)
        return stored

    def _set_locked(self, key: str, entry: bytes, expires: float) -> bool:
        data = self._data
        old = data.pop(key, None)
        if old is not None:
            self.bytes -= len(old[0])
            if old[1] <= monotonic():
                self.expirations += 1
        self.sets += 1
        n = len(entry)
        if n > self.max_bytes:
            self.rejected += 1
            return False
        data[key] = (entry, expires)
        self.bytes += n
        if len(data) > self.max_entries or self.bytes > self.max_bytes:
            self._shrink_locked()
        return True

    def _shrink_locked(self) -> None:
        data = self._data
        now = monotonic()
        while len(data) > self.max_entries or self.bytes > self.max_bytes:
            _key, (entry, expires) = data.popitem(last=False)
            self.bytes -= len(entry)
            if expires <= now:
                self.expirations += 1
            else:
                self.evictions += 1

    def delete(self, key: str) -> bool:
        with self._lock:
            e = self._data.pop(key, None)
            if e is None:
                return False
            self.bytes -= len(e[0])
            if e[1] <= monotonic():
                self.expirations += 1
                return False
            self.deletes += 1
            return True

    def discard(self, key: str) -> None:
        """Remove ``key`` without counting anything (tier invalidation)."""
        with self._lock:
            e = self._data.pop(key, None)
            if e is not None:
                self.bytes -= len(e[0])

    def clear(self) -> int:
        with self._lock:
            n = len(self._data)
            self._data.clear()
            self.bytes = 0
            return n

    # -- knobs & stats --------------------------------------------------------------
    def resize(self, max_entries: int | None = None, max_bytes: int | None = None) -> None:
        with self._lock:
            if max_entries is not None:
                self.max_entries = max_entries
            if max_bytes is not None:
                self.max_bytes = max_bytes
            self._shrink_locked()

    def reset_counters(self) -> None:
        with self._lock:
            self.hits = self.misses = self.evictions = self.expirations = 0
            self.sets = self.deletes = self.rejected = 0
            self.raw_bytes = self.stored_bytes = 0

    def purge_expired(self) -> int:
        """Remove every expired entry (O(n) under the lock); returns how many."""
        with self._lock:
            now = monotonic()
            dead = [k for k, (_, exp) in self._data.items() if exp <= now]
            for k in dead:
                self.bytes -= len(self._data.pop(k)[0])
            self.expirations += len(dead)
            return len(dead)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"hits": self.hits, "misses": self.misses, "entry_count": len(self._data),
                    "memory_bytes": self.bytes, "evictions": self.evictions,
                    "expirations": self.expirations, "sets": self.sets, "deletes": self.deletes,
                    "rejected": self.rejected, "raw_bytes": self.raw_bytes,
                    "stored_bytes": self.stored_bytes}
