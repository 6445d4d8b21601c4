"""What a Store holds while its database is unreachable: the bounded buffer and the back-off.

Samples (as :class:`~perfkit.store._validate.Batch`) and alert-event rows wait
here until :meth:`WriteBuffer.drain` writes them. When the buffer is over its
limit the *oldest* rows are dropped and counted. After a failure the next
automatic attempt waits 0.5 s, doubling up to 30 s (``flush()`` ignores the wait).
"""

from __future__ import annotations

import collections
import logging
import sqlite3
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from perfkit.store._validate import Batch

log = logging.getLogger("perfkit.store")

MAX_BATCH = 500_000           # rows per transaction when draining the buffer
RETRY_MIN, RETRY_MAX = 0.5, 30.0
WARN_EVERY = 10.0             # seconds between repeated overflow warnings


def transient(exc: BaseException) -> bool:
    """True for "the database is not there / busy right now": keep the data, retry later."""
    if isinstance(exc, (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.DisconnectionError,
                        sa.exc.TimeoutError, OSError)):
        return True
    if isinstance(exc, sa.exc.DBAPIError):
        return bool(exc.connection_invalidated) or (exc.orig is not None
                                                     and transient(exc.orig))
    if isinstance(exc, (sqlite3.OperationalError, sqlite3.InterfaceError)):
        return True
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is a dependency
        return False
    return isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError))


def _describe(during: str, exc: BaseException) -> str:
    return f"{during}: {type(exc).__name__}: {exc}".strip()[:2000]


class WriteBuffer:
    """Rows waiting to be written, the counters of ``Store.health()`` and the retry clock.

    Not thread-safe by itself: the Store calls it under its lock.
    """

    def __init__(self, limit: int, where: str) -> None:
        self.limit = limit
        self.where = where  # the store's masked URL, for log messages
        self.samples: collections.deque[Batch] = collections.deque()
        self.events: collections.deque[dict[str, Any]] = collections.deque()
        self.buffered = 0     # sample rows in ``samples``
        self.dropped = 0
        self.written = 0
        self.last_error: str | None = None
        self.reachable = False
        self._retry_at = 0.0
        self._retry_delay = RETRY_MIN
        self._last_warn = 0.0

    # -- the retry clock ------------------------------------------------------------
    def retry_due(self) -> bool:
        """True once the back-off after the last failure has passed."""
        return time.monotonic() >= self._retry_at

    def ok(self) -> None:
        self.reachable = True
        self._retry_delay = RETRY_MIN
        self._retry_at = 0.0

    def failed(self, exc: BaseException, during: str) -> None:
        """Record an unreachable database; the next automatic attempt waits (back-off)."""
        first = self.reachable or self.last_error is None
        self.reachable = False
        self.last_error = _describe(during, exc)
        self._retry_at = time.monotonic() + self._retry_delay
        self._retry_delay = min(self._retry_delay * 2, RETRY_MAX)
        (log.warning if first else log.debug)(
            "store %s unreachable during %s (%s); %d sample(s) buffered", self.where, during,
            type(exc).__name__, self.buffered)

    # -- adding ---------------------------------------------------------------------
    def add_samples(self, batch: Batch) -> None:
        if len(batch):
            self.samples.append(batch)
            self.buffered += len(batch)

    def add_events(self, rows: list[dict[str, Any]]) -> None:
        self.events.extend(rows)
        over = len(self.events) - self.limit
        for _ in range(max(over, 0)):
            self.events.popleft()
            self.dropped += 1
        if over > 0:
            log.warning("store %s unreachable: alert-event buffer full, dropped the oldest %d",
                        self.where, over)

    def trim(self) -> None:
        """Drop the oldest sample rows beyond ``limit`` (counted, logged at most every 10 s)."""
        over = self.buffered - self.limit
        if over <= 0:
            return
        dropped = 0
        while over > 0 and self.samples:
            first = self.samples[0]
            if len(first) <= over:
                self.samples.popleft()
                k = len(first)
            else:
                self.samples[0] = first.tail(over)
                k = over
            over -= k
            dropped += k
        self.buffered -= dropped
        self.dropped += dropped
        now = time.monotonic()
        if now - self._last_warn >= WARN_EVERY:
            self._last_warn = now
            log.warning("store %s unreachable and its buffer is full (%d rows): dropped the oldest "
                        "%d sample(s), %d dropped in all; last error: %s", self.where,
                        self.limit, dropped, self.dropped, self.last_error)

    # -- writing --------------------------------------------------------------------
    def drain(self, write_samples: Callable[[Batch], None],
              write_events: Callable[[list[dict[str, Any]]], None]) -> None:
        """Write everything waiting, oldest first, in transactions of at most MAX_BATCH rows.

        A transient error propagates with the unwritten rows still here. Any other
        error means that batch can never be written: it is dropped (counted, logged)
        and draining goes on with the rest.
        """
        while self.samples:
            frames: list[Batch] = []
            rows = 0
            for f in self.samples:
                if frames and rows + len(f) > MAX_BATCH:
                    break
                frames.append(f)
                rows += len(f)
            try:
                write_samples(Batch.concat(frames))
            except Exception as exc:
                if transient(exc):
                    raise
                self.dropped += rows
                self.last_error = _describe("write", exc)
                log.error("store %s rejected a batch of %d sample(s), dropped: %s",
                          self.where, rows, self.last_error)
            else:
                self.written += rows
            for _ in frames:
                self.samples.popleft()
            self.buffered -= rows
        if self.events:
            events = list(self.events)
            try:
                write_events(events)
            except Exception as exc:
                if transient(exc):
                    raise
                self.dropped += len(events)
                self.last_error = _describe("write_alert_events", exc)
                log.error("store %s rejected %d alert event(s), dropped: %s",
                          self.where, len(events), self.last_error)
            for _ in events:
                self.events.popleft()

    def discard(self) -> int:
        """Drop everything still waiting (the store is closing); returns the rows lost."""
        lost = self.buffered + len(self.events)
        self.dropped += lost
        self.samples.clear()
        self.events.clear()
        self.buffered = 0
        return lost
