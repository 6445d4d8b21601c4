"""What a Store holds while its database is unreachable: the bounded buffer and the back-off.

Samples (as :class:`~perfkit.store._validate.Batch`) and alert-event rows wait
here until :meth:`WriteBuffer.drain` writes them. When the buffer is over its
limit the *oldest* rows are dropped and counted. After a failure the next
automatic attempt waits 0.5 s, doubling up to 30 s (``flush()`` ignores the wait).
"""

from __future__ import annotations

import collections
import contextlib
import logging
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from perfkit._ratelog import RepeatLog
from perfkit.store._failures import permanent, sqlstate, transient
from perfkit.store._validate import Batch

__all__ = ["WriteBuffer", "permanent", "transient"]

log = logging.getLogger("perfkit.store")

MAX_BATCH = 500_000           # rows per transaction when draining the buffer
RETRY_MIN, RETRY_MAX = 0.5, 30.0
WARN_EVERY = 10.0             # seconds between repeated overflow warnings


def _describe(during: str, exc: BaseException) -> str:
    code = sqlstate(exc)
    state = f" (SQLSTATE {code})" if code else ""
    return f"{during}: {type(exc).__name__}{state}: {exc}".strip()[:500]


class WriteBuffer:
    """Rows waiting to be written, the counters of ``Store.health()`` and the retry clock.

    Not thread-safe by itself: the Store calls it under its buffer lock (which
    :meth:`drain` releases while the database works).
    """

    def __init__(self, limit: int, where: str) -> None:
        self.limit = limit
        self.where = where  # the store's masked URL, for log messages
        self.samples: collections.deque[Batch] = collections.deque()
        self.events: collections.deque[dict[str, Any]] = collections.deque()
        self.buffered = 0     # sample rows waiting, including those being written now
        self.dropped = 0
        self.written = 0
        self.rejected = 0     # rows the database refused for good (poison), not retried
        self.last_error: str | None = None
        self.last_rejection: str | None = None
        self.repeats = RepeatLog(log)
        self.reachable = False
        self._retry_at = 0.0
        self._retry_delay = RETRY_MIN
        self._last_warn = 0.0

    # -- the retry clock ------------------------------------------------------------
    def retry_due(self) -> bool:
        """True once the back-off after the last failure has passed."""
        return time.monotonic() >= self._retry_at

    def ok(self) -> None:
        if not self.reachable:
            self.repeats.clear("unreachable")
        self.reachable = True
        self._retry_delay = RETRY_MIN
        self._retry_at = 0.0

    def failed(self, exc: BaseException, during: str) -> None:
        """Record an unreachable database; the next automatic attempt waits (back-off)."""
        self.reachable = False
        self.last_error = _describe(during, exc)
        self._retry_at = time.monotonic() + self._retry_delay
        self._retry_delay = min(self._retry_delay * 2, RETRY_MAX)
        self.repeats.log(logging.WARNING, "unreachable",
                         "store %s unreachable during %s (%s); %d sample(s) buffered",
                         self.where, during, _describe("", exc)[2:300], self.buffered)

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
              write_events: Callable[[list[dict[str, Any]]], None],
              lock: AbstractContextManager[Any] | None = None) -> None:
        """Write everything waiting, oldest first, in transactions of at most MAX_BATCH rows.

        ``lock`` guards the buffer's state and is held only to take rows out or put
        them back, never while the database works, so writers can keep adding and
        ``health()`` keeps answering. A transient error propagates with the unwritten
        rows back in the buffer. A permanent one (the database refuses some rows) is
        isolated: the refused series are rejected, the rest written. Any other error
        means the batch can never be written: it is dropped (counted, logged).
        """
        lock = lock if lock is not None else contextlib.nullcontext()
        while True:
            with lock:
                frames: list[Batch] = []
                rows = 0
                while self.samples and (not frames or rows + len(self.samples[0]) <= MAX_BATCH):
                    f = self.samples.popleft()
                    frames.append(f)
                    rows += len(f)
            if not frames:
                break
            try:
                self._write_batch(write_samples, Batch.concat(frames), rows)
            except BaseException:
                with lock:
                    self.samples.extendleft(reversed(frames))
                raise
            with lock:
                self.buffered -= rows
        with lock:
            events = list(self.events)
            self.events.clear()
        if events:
            try:
                write_events(events)
            except Exception as exc:
                if transient(exc):
                    with lock:
                        self.events.extendleft(reversed(events))
                    raise
                self.dropped += len(events)
                self.last_error = _describe("write_alert_events", exc)
                self.repeats.log(logging.ERROR, "drop-events", "store %s rejected %d alert "
                                 "event(s), dropped: %s", self.where, len(events), self.last_error)

    def _write_batch(self, write_samples: Callable[[Batch], None], batch: Batch,
                     rows: int) -> None:
        try:
            write_samples(batch)
        except Exception as exc:
            if transient(exc):
                raise
            if permanent(exc):
                self._isolate(write_samples, batch, exc)
            else:
                self.dropped += rows
                self.last_error = _describe("write", exc)
                self.repeats.log(logging.ERROR, f"drop:{type(exc).__name__}",
                                 "store %s failed a batch of %d sample(s), dropped: %s",
                                 self.where, rows, self.last_error)
        else:
            self.written += rows

    def _isolate(self, write_samples: Callable[[Batch], None], batch: Batch,
                 exc: BaseException) -> None:
        """Write every series of ``batch`` the database accepts; reject the ones it refuses.

        Bisects over the batch's series: a failing half is split again, a failing single
        series is rejected (its rows counted in ``rejected``, the reason logged). A
        poison series costs about 2 log2(series) transactions; the rest is written.
        A transient error on the way propagates (the whole batch stays buffered: the
        halves already written are simply overwritten with the same values on retry).
        """
        pending = [list(range(len(batch.keys)))]
        first = exc
        while pending:
            ks = pending.pop()
            if len(ks) == 1:
                self._reject(batch.keys[ks[0]], int((batch.codes == ks[0]).sum()), first)
                continue
            for half in (ks[:len(ks) // 2], ks[len(ks) // 2:]):
                part = batch.subset(half)
                try:
                    write_samples(part)
                except Exception as err:
                    if transient(err) or not permanent(err):
                        raise
                    first = err
                    pending.append(half)
                else:
                    self.written += len(part)

    def _reject(self, key: tuple[str, str, str], rows: int, exc: BaseException) -> None:
        host, metric, labels = key
        code = sqlstate(exc)
        reason = (f"{type(exc).__name__}{f' (SQLSTATE {code})' if code else ''}: "
                  f"{str(exc).splitlines()[0][:200] if str(exc) else ''}")
        self.rejected += rows
        self.last_rejection = (f"series host={host[:60]!r} metric={metric[:60]!r} "
                               f"labels={labels[:60]!r}: {reason}")
        self.repeats.log(logging.ERROR, f"reject:{code or type(exc).__name__}",
                         "store %s refused %d sample(s) for good, written the rest: %s "
                         "(%d rejected in all)", self.where, rows, self.last_rejection,
                         self.rejected)

    def discard(self) -> int:
        """Drop everything still waiting (the store is closing); returns the rows lost."""
        lost = self.buffered + len(self.events)
        self.dropped += lost
        self.samples.clear()
        self.events.clear()
        self.buffered = 0
        return lost
