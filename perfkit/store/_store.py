"""The :class:`Store` class; the contract is documented in :mod:`perfkit.store`."""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import threading
from collections.abc import Iterator, Mapping
from typing import Any

import pandas as pd
import sqlalchemy as sa

from perfkit._host import default_host
from perfkit.store import _partitions as partitions
from perfkit.store import _reads as reads
from perfkit.store import _schema as sc
from perfkit.store._actions import ActionsQueue
from perfkit.store._buffer import WriteBuffer
from perfkit.store._engine import (
    BUSY_TIMEOUT_MS,
    DEFAULT_URL,
    ENV_VAR,
    connect,
    make_engine,
    mask,
    normalise_url,
)
from perfkit.store._events import AlertHistory
from perfkit.store._failures import permanent, transient
from perfkit.store._longwin import LongWindows, check_timeout
from perfkit.store._reads import label_filter, names
from perfkit.store._validate import Batch, InvalidSamplesError, prepare
from perfkit.store._watch import IOWatch
from perfkit.store._when import ACCEPTED_WHEN, to_ns
from perfkit.store._writer import SampleWriter

__all__ = ["ACCEPTED_WHEN", "DEFAULT_URL", "ENV_VAR", "InvalidSamplesError", "Store"]

log = logging.getLogger("perfkit.store")

# URL schemes served by another backend than SQLAlchemy: scheme -> (module, class). Read once,
# in Store.__new__, so no method has to ask which backend it is.
_BACKENDS = {scheme: ("perfkit.store._prometheus", "PrometheusStore")
             for scheme in ("prometheus", "prometheus+http", "prometheus+https")}


HUNG_AFTER_S = 2.0  # a database call running longer than this is reported as hung
DEFAULT_TIMEOUT_S = 30.0


def _check_limit(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"buffer_limit must be a non-negative int (rows), got {value!r}")
    return value


class Store(AlertHistory, ActionsQueue, LongWindows):
    """A durable store of samples, alert events and actions (details in the module docstring).

    ``write``/``samples``/``latest`` for samples, ``write_alert_events``/``alert_events``
    for alert history, ``request_action``/``claim_actions``/``finish_action``/``actions``
    for the actions queue and audit log, ``prune(older_than="7d")`` for retention,
    ``health()`` for the buffer and connection state. ``buffer_limit`` bounds the rows
    kept while the database is unreachable; ``host`` is written for frames without one.
    ``action_lease`` (seconds, default 900: longer than any action's timeout) is how long
    a claimed action may stay 'running' before it counts as abandoned; ``pending_ttl``
    (seconds, default 3600) how long a request may wait to be claimed.
    ``timeout`` (seconds) is the longest one database call may run before perfkit gives
    up on its connection (see :mod:`perfkit.store._watch`; on SQLite it also caps the
    busy timeout, 10 s by default); ``write(..., wait=False)``
    hands the rows to a background writer thread and returns at once.
    """

    def __new__(cls, url: str | None = None, **options: Any) -> Store:
        """A SQL store, or the read-only backend the URL's scheme names (``prometheus://``)."""
        target = url if url is not None else os.environ.get(ENV_VAR)
        if cls is Store and isinstance(target, str):
            scheme = target.split("://", 1)[0].lower()
            if scheme in _BACKENDS:
                module, name = _BACKENDS[scheme]
                backend: type[Store] = getattr(importlib.import_module(module), name)
                return super().__new__(backend)
        return super().__new__(cls)

    def __init__(self, url: str | None = None, *, buffer_limit: int = 200_000,
                 host: str | None = None, timeout: float = DEFAULT_TIMEOUT_S,
                 action_lease: float = 900.0, pending_ttl: float = 3600.0,
                 **options: Any) -> None:
        if options:
            raise TypeError(f"Store({mask(str(url))!r}) got option(s) {sorted(options)} that "
                            "only a prometheus:// source takes (actions_store, metrics, step…)")
        _check_limit(buffer_limit)
        timeout = check_timeout(timeout)
        self.action_lease: float = check_timeout(action_lease, "action_lease")
        self.pending_ttl: float = check_timeout(pending_ttl, "pending_ttl")
        u = normalise_url(url)
        self.url: str = u.render_as_string(hide_password=False)
        self.engine: sa.Engine = make_engine(u, min(BUSY_TIMEOUT_MS, int(timeout * 1000)))
        self.dialect: str = self.engine.dialect.name
        self.host: str = host or default_host()
        # _lock guards the buffer and is never held while the database works; _io
        # serialises the writes themselves. health() needs only _lock.
        self._lock = threading.RLock()
        self._io = threading.RLock()
        self._buf = WriteBuffer(buffer_limit, mask(self.url))
        self._writer = SampleWriter(self.engine)
        self._watch = IOWatch(self.engine, timeout, mask(self.url))
        self._schema_ok = False
        self._closed = False
        self._bg: threading.Thread | None = None
        self._bg_wake = threading.Event()
        try:
            with self._watch.op("open"):
                self._ensure_schema()
        except Exception as exc:  # a store that is down must not stop collection
            if not transient(exc):
                self.engine.dispose()
                self._watch.close()
                raise
            self._failed(exc, "open")

    # -- state --------------------------------------------------------------------------
    def __repr__(self) -> str:
        return f"Store({mask(self.url)!r})"

    @property
    def buffer_limit(self) -> int:
        """Rows (samples, and separately alert events) kept while the database is down."""
        return self._buf.limit

    @buffer_limit.setter
    def buffer_limit(self, value: int) -> None:
        self._buf.limit = _check_limit(value)

    def _ensure_schema(self) -> None:
        if not self._schema_ok:
            self._writer.forget_ids()  # ids are only trusted for tables known to be intact
            sc.create_schema(self.engine)
            self._writer.ensure_days(partitions.ahead())
            self._schema_ok = True
            self._buf.ok()

    @contextlib.contextmanager
    def _connect(self, write: bool) -> Iterator[sa.Connection]:
        """A connection whose use is watched (a hung call is cut after ``timeout``)."""
        with self._watch.op("write" if write else "read"), connect(self.engine, write) as conn:
            yield conn

    @property
    def timeout(self) -> float:
        """Seconds one database call may run before its connection is given up."""
        return self._watch.timeout

    def _failed(self, exc: BaseException, during: str) -> None:
        with self._lock:
            self._buf.failed(exc, during)
            self._schema_ok = False  # re-check the tables once it answers again
        if self.dialect == "postgresql":
            self.engine.dispose()  # drop pooled connections to the server that went away

    def health(self) -> dict[str, Any]:
        """The store's state without touching the database (so it answers at once).

        ``state``: ``"ok"``, ``"unreachable"`` (the last call failed) or ``"hung"`` (a
        call has run over 2 s: ``stalled_s`` says how long, ``stalled_in`` in what);
        reachable, buffered, dropped, written, last_error, url (password masked),
        dialect, buffer_limit, events_buffered; rejected / last_rejection: rows the
        database refused for good (isolated from their batch, whose other rows were
        written); timeouts: calls ended by the ``timeout`` watchdog.
        """
        old = self._watch.oldest()
        hung = old is not None and old[0] > HUNG_AFTER_S
        with self._lock:
            b = self._buf
            reachable = b.reachable and not hung
            return {"state": "hung" if hung else "ok" if reachable else "unreachable",
                    "reachable": reachable, "buffered": b.buffered,
                    "dropped": b.dropped, "written": b.written,
                    "last_error": b.last_error, "url": mask(self.url),
                    "dialect": self.dialect, "buffer_limit": b.limit,
                    "events_buffered": len(b.events), "rejected": b.rejected,
                    "last_rejection": b.last_rejection, "timeouts": self._watch.timeouts,
                    "stalled_s": round(old[0], 3) if hung and old else 0.0,
                    "stalled_in": old[1] if hung and old else None}

    # -- writing ------------------------------------------------------------------------
    def write(self, frame: pd.DataFrame, *, on_invalid: str = "raise", wait: bool = True) -> int:
        """Write a samples frame; returns the rows accepted (written or buffered).

        Invalid rows are rejected and the valid ones kept; then
        :class:`InvalidSamplesError` is raised (``on_invalid="drop"``: a warning).
        ``wait=False`` only buffers the rows and wakes the background writer thread,
        so the caller never waits on the database (the Monitor's collection loop).
        """
        if on_invalid not in ("raise", "drop"):
            raise ValueError(f"on_invalid must be 'raise' or 'drop', got {on_invalid!r}")
        if self._closed:
            raise RuntimeError(f"{self!r} is closed; open a new Store to write")
        good, rejected, problems = prepare(frame, self.host)
        with self._lock:
            self._buf.add_samples(good)
            self._buf.trim()
            due = bool(self._buf.samples) and self._buf.retry_due()
        if due:
            if wait:
                self._drain()
            else:
                self._kick()
        if rejected:
            msg = (f"rejected {rejected} of {rejected + len(good)} sample(s), kept the other "
                   f"{len(good)}: " + "; ".join(problems))
            if on_invalid == "raise":
                raise InvalidSamplesError(msg, accepted=len(good), rejected=rejected,
                                          problems=problems)
            self._buf.repeats.log(logging.WARNING, "invalid", "%s", msg)
        return len(good)

    def flush(self) -> int:
        """Write everything buffered now (ignoring the retry back-off); rows written."""
        if self._closed:
            return 0
        return self._drain()

    def _drain(self) -> int:
        """Write what is buffered (serialised by ``_io``); rows written."""
        b = self._buf
        with self._io:
            if not b.samples and not b.events:
                return 0
            before = b.written
            try:
                with self._watch.op("write"):
                    self._ensure_schema()
                    b.drain(self._insert_samples, self._insert_events, self._lock)
                with self._lock:
                    b.ok()
            except Exception as exc:
                if not transient(exc):
                    raise
                self._failed(exc, "write")
            with self._lock:
                b.trim()
            return b.written - before

    # -- the background writer (write(wait=False)) ----------------------------------------
    def _kick(self) -> None:
        if self._bg is None:
            with self._lock:
                if self._bg is None and not self._closed:
                    self._bg = threading.Thread(target=self._bg_loop, daemon=True,
                                                name=f"perfkit-store-writer {mask(self.url)}")
                    self._bg.start()
        self._bg_wake.set()

    def _bg_loop(self) -> None:
        while not self._closed:
            self._bg_wake.wait(1.0)
            self._bg_wake.clear()
            if self._closed:
                return
            with self._lock:
                due = bool(self._buf.samples or self._buf.events) and self._buf.retry_due()
            if due:
                try:
                    self._drain()
                except Exception:  # counted in health(); the thread goes on
                    log.debug("store %s: background write failed", mask(self.url), exc_info=True)

    def _insert_samples(self, batch: Batch) -> None:
        try:
            self._writer.insert(batch)
        except Exception as exc:
            if transient(exc) or permanent(exc):  # permanent: the rows, not the tables
                raise
            # tables dropped or changed under us? check the schema, try once more
            log.warning("store %s: write failed (%s: %s); re-checking the tables",
                        mask(self.url), type(exc).__name__, exc)
            self._schema_ok = False
            self._ensure_schema()
            self._writer.insert(batch)

    def _insert_events(self, rows: list[dict[str, Any]]) -> None:
        with self._connect(write=True) as conn, conn.begin():
            conn.execute(sc.alert_events.insert(), rows)

    # -- reading samples ----------------------------------------------------------------
    def _read_ready(self) -> None:
        """Raise if closed; write what is due; make sure the tables exist (or raise)."""
        if self._closed:
            raise RuntimeError(f"{self!r} is closed; open a new Store to read")
        if self._buf.samples and self._buf.retry_due():
            self._drain()
        if not self._schema_ok:
            try:
                with self._watch.op("read"):
                    self._ensure_schema()
            except Exception as exc:
                if transient(exc):
                    self._failed(exc, "read")
                raise

    def samples(self, metric: str | list[str] | None = None, host: str | list[str] | None = None,
                since: Any = None, until: Any = None, labels: str | Mapping[str, str] | None = None
                ) -> pd.DataFrame:
        """Samples as a contract frame sorted by ts; filters combine with AND.

        ``since``/``until`` (both inclusive): a Timestamp/datetime, or a duration
        such as ``"15min"`` meaning that long before now. ``labels``: every
        ``k=v`` pair given must be present (``""``: only unlabelled series).
        """
        metrics, hosts = names(metric, "metric"), names(host, "host")
        lo, hi = to_ns(since, "since"), to_ns(until, "until")
        want_labels = label_filter(labels)
        self._read_ready()
        with self._connect(write=False) as conn, conn.begin():
            return reads.samples(conn, metrics, hosts, want_labels, lo, hi)

    def metric_names(self) -> list[str]:
        """Distinct metric names in the store, sorted."""
        self._read_ready()
        with self._connect(write=False) as conn:
            return sorted(conn.execute(sa.select(sc.series.c.metric).distinct()).scalars())

    def hosts(self) -> list[str]:
        """Distinct hosts in the store, sorted."""
        self._read_ready()
        with self._connect(write=False) as conn:
            return sorted(conn.execute(sa.select(sc.series.c.host).distinct()).scalars())

    def latest(self, host: str | None = None) -> pd.DataFrame:
        """The last sample of each (host, metric, labels), sorted by host, metric, labels."""
        self._read_ready()
        with self._connect(write=False) as conn:
            return reads.latest(conn, host)

    # -- pytest regression history -------------------------------------------------------
    def benchmarks(self, test: str | None = None) -> pd.DataFrame:
        """Benchmark history recorded by perfkit's pytest plugin."""
        from perfkit.pytest_plugin._storage import read_benchmarks  # written in parallel
        return read_benchmarks(self.engine, test=test)

    # -- life cycle ---------------------------------------------------------------------
    def close(self) -> None:
        """Flush what is buffered (what cannot be written is counted as dropped), release
        the connections. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        bg = self._bg
        if bg is not None:
            self._bg_wake.set()
            bg.join(self.timeout + 1)
        try:
            self._drain()
        except Exception:  # closing must not raise over unwritable data
            log.exception("store %s: final flush failed", mask(self.url))
        with self._lock:
            lost = self._buf.discard()
        if lost:
            log.warning("store %s closed while unreachable: %d buffered row(s) not written",
                        mask(self.url), lost)
        self._watch.close()
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
