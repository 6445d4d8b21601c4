"""A watchdog for database calls: how long the oldest one has run, and an end to a hung one.

A PostgreSQL server that accepts connections but stops answering (a frozen host, a
proxy that forwards nothing) never trips a server-side ``statement_timeout``, and
TCP keepalives are answered by whatever still holds the socket. Only the client
can give up: when a call has run longer than ``timeout`` seconds the watchdog shuts
down the sockets of the engine's connections, the blocked call fails with a
connection error (transient: its rows stay buffered) and the next call opens a
fresh connection, bounded by ``connect_timeout``. SQLite has no socket; its busy
timeout bounds a wait on a lock.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import socket
import threading
import time
import weakref
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

log = logging.getLogger("perfkit.store")

_POLL_S = 0.25


class IOWatch:
    """Tracks the store's database calls in flight; see the module docstring."""

    def __init__(self, engine: sa.Engine, timeout: float, where: str) -> None:
        self.timeout = timeout
        self.where = where
        self.timeouts = 0            # calls ended by the watchdog
        self._lock = threading.Lock()
        self._ops: dict[int, tuple[float, str]] = {}
        self._ids = itertools.count()
        self._conns: weakref.WeakSet[Any] = weakref.WeakSet()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._cuttable = engine.dialect.name == "postgresql"
        if self._cuttable:
            event.listen(engine, "connect", lambda dbapi_conn, _rec: self._conns.add(dbapi_conn))

    @contextlib.contextmanager
    def op(self, what: str) -> Iterator[None]:
        """Mark a database call in flight for the duration of the block."""
        key = next(self._ids)
        with self._lock:
            self._ops[key] = (time.monotonic(), what)
            if self._thread is None and self._cuttable and not self._stop.is_set():
                self._thread = threading.Thread(target=self._run, daemon=True,
                                                name=f"perfkit-store-watch {self.where}")
                self._thread.start()
        try:
            yield
        finally:
            with self._lock:
                self._ops.pop(key, None)

    def oldest(self) -> tuple[float, str] | None:
        """(seconds, what) of the longest-running call in flight, or None."""
        with self._lock:
            if not self._ops:
                return None
            start, what = min(self._ops.values())
        return time.monotonic() - start, what

    def _run(self) -> None:
        while not self._stop.wait(_POLL_S):
            old = self.oldest()
            if old is not None and old[0] > self.timeout:
                self._cut(*old)

    def _cut(self, age: float, what: str) -> None:
        with self._lock:  # each hung call is cut once: restart its clock
            for k, (_start, w) in list(self._ops.items()):
                self._ops[k] = (time.monotonic(), w)
        self.timeouts += 1
        cut = 0
        for conn in list(self._conns):
            try:
                fd = conn.pgconn.socket
                s = socket.fromfd(fd, socket.AF_INET, socket.SOCK_STREAM)
            except Exception:  # noqa: BLE001 - closed, or not a socket: nothing to cut
                continue
            try:
                s.shutdown(socket.SHUT_RDWR)
                cut += 1
            except OSError:
                pass
            finally:
                s.close()  # the duplicate only; the driver still owns its descriptor
        log.warning("store %s: %s ran %.1f s without an answer (timeout %.1f s): closed %d "
                    "connection(s); the rows stay buffered", self.where, what, age,
                    self.timeout, cut)

    def close(self) -> None:
        """Stop the watchdog thread."""
        self._stop.set()
        t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join(2 * _POLL_S + 1)
