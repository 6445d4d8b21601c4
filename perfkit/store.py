"""perfkit's durable store: samples, alert events, the actions queue and its audit log.

SQLAlchemy Core on SQLite (the default, ``sqlite:///.perfkit/perfkit.db``, WAL
mode) or PostgreSQL (``postgresql://…`` through psycopg 3)::

    store = perfkit.Store()                       # or Store("postgresql://u:pw@db/perf")
    store.write(frame)                            # a samples frame (perfkit.frames)
    store.samples(metric="system.cpu_usage", since="15min")

Writing
    Each ``write`` is one batch (one transaction). A sample with the same
    (host, metric, labels, ts) as a stored one **overwrites** it (last write
    wins), so retrying a batch is harmless. Rows with a NaN/inf value, a missing
    ts or metric, or a wrong type are **rejected; the valid rows of the same
    frame are accepted**, then :class:`InvalidSamplesError` (a ``ValueError``)
    names the fields and metrics concerned (``on_invalid="drop"`` logs a warning
    instead of raising).

A store that is down
    ``write`` never fails because the database is unreachable or locked: the
    rows wait in a bounded buffer (``buffer_limit`` rows) and are written on a
    later ``write`` or ``flush`` once it answers again (retries back off from
    0.5 s to 30 s; ``flush()`` always tries). When the buffer is full the
    *oldest* rows are dropped; they are counted in ``health()["dropped"]`` and
    logged. Alert events are buffered the same way.

Several writers
    Threads share a Store (one lock) or open their own; processes open their
    own. SQLite: WAL, ``busy_timeout`` 30 s and ``BEGIN IMMEDIATE`` for every
    write transaction, so concurrent writers queue instead of failing.
    (``sqlite://``, in memory, is one connection: for tests and notebooks.)

Reading
    ``samples()`` returns the contract frame (``perfkit.frames.empty_samples()``
    dtypes) sorted by ts. ``since``/``until`` are inclusive and take a
    Timestamp/datetime (naive = UTC), an ISO string, or a duration such as
    ``"15min"`` meaning that long before now; anything else is a ``ValueError``
    listing the accepted forms. A metric name neither catalogued nor stored is
    a ``ValueError`` with close matches. Reads need the database: while it is
    down they raise SQLAlchemy's ``OperationalError``.

Actions
    ``request_action`` queues a row ('pending'); the target host's Monitor
    ``claim_actions`` it atomically ('running'), runs it and calls
    ``finish_action`` ('done' / 'failed' / 'rejected') with the metrics before
    and after. ``record_action`` logs an action run locally. ``actions()`` is the
    audit log. JSON columns are TEXT holding JSON; times are int64 ns UTC in the
    database and ``datetime64[ns, UTC]`` in frames.
"""

from __future__ import annotations

import collections
import logging
import os
import socket
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from perfkit._store import fastio, records
from perfkit._store import schema as sc
from perfkit._store.engine import DEFAULT_URL, ENV_VAR, make_engine, mask, normalise_url
from perfkit._store.validate import Batch, InvalidSamplesError, prepare
from perfkit._store.when import ACCEPTED_WHEN, now_ns, to_ns
from perfkit.catalog import metrics as catalog_metrics
from perfkit.catalog import unknown_name_error
from perfkit.frames import empty_samples, format_labels, parse_labels

__all__ = ["ACCEPTED_WHEN", "DEFAULT_URL", "ENV_VAR", "InvalidSamplesError", "Store"]

log = logging.getLogger("perfkit.store")

_MAX_BATCH = 500_000          # rows per transaction when draining the buffer
_RETRY_MIN, _RETRY_MAX = 0.5, 30.0
_WARN_EVERY = 10.0            # seconds between repeated overflow warnings


def _default_host() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _transient(exc: BaseException) -> bool:
    """True for "the database is not there / busy right now": keep the data, retry later."""
    if isinstance(exc, (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.DisconnectionError,
                        sa.exc.TimeoutError, OSError)):
        return True
    if isinstance(exc, sa.exc.DBAPIError):
        return bool(exc.connection_invalidated) or (exc.orig is not None
                                                     and _transient(exc.orig))
    import sqlite3
    if isinstance(exc, (sqlite3.OperationalError, sqlite3.InterfaceError)):
        return True
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is a dependency
        return False
    return isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError))


def _names(value: str | Iterable[str] | None, field: str) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    try:
        out = list(value)
    except TypeError:
        raise TypeError(f"{field} must be a str or a list of str, "
                        f"got {type(value).__name__}") from None
    if not all(isinstance(v, str) for v in out):
        raise TypeError(f"{field} must be a str or a list of str")
    return out


class Store:
    """A durable store of samples, alert events and actions (see the module docstring)."""

    def __init__(self, url: str | None = None, *, buffer_limit: int = 200_000,
                 host: str | None = None) -> None:
        if isinstance(buffer_limit, bool) or not isinstance(buffer_limit, int) or buffer_limit < 0:
            raise ValueError(f"buffer_limit must be a non-negative int, got {buffer_limit!r}")
        u = normalise_url(url)
        self.url: str = u.render_as_string(hide_password=False)
        self.engine: sa.Engine = make_engine(u)
        self.dialect: str = self.engine.dialect.name
        self.host: str = host or _default_host()
        self.buffer_limit = buffer_limit
        self._lock = threading.RLock()
        self._pending: collections.deque[Batch] = collections.deque()
        self._pending_events: collections.deque[dict[str, Any]] = collections.deque()
        self._buffered = 0
        self._dropped = 0
        self._written = 0
        self._last_error: str | None = None
        self._reachable = False
        self._retry_at = 0.0
        self._retry_delay = _RETRY_MIN
        self._last_warn = 0.0
        self._schema_ok = False
        self._series_cache: dict[tuple[str, str, str], int] = {}
        self._closed = False
        try:
            self._ensure_schema()
        except Exception as exc:  # a store that is down must not stop collection
            if not _transient(exc):
                self.engine.dispose()
                raise
            self._failed(exc, "open")

    # -- state --------------------------------------------------------------------------
    def __repr__(self) -> str:
        return f"Store({mask(self.url)!r})"

    def _ensure_schema(self) -> None:
        if not self._schema_ok:
            self._series_cache.clear()  # ids are only trusted for tables known to be intact
            sc.create_schema(self.engine)
            self._schema_ok = True
            self._ok()

    def _ok(self) -> None:
        self._reachable = True
        self._retry_delay = _RETRY_MIN
        self._retry_at = 0.0

    def _failed(self, exc: BaseException, during: str) -> None:
        first = self._reachable or self._last_error is None
        self._reachable = False
        self._schema_ok = False  # re-check the tables once it answers again
        self._last_error = f"{during}: {type(exc).__name__}: {exc}".strip()[:2000]
        self._retry_at = time.monotonic() + self._retry_delay
        self._retry_delay = min(self._retry_delay * 2, _RETRY_MAX)
        if self.dialect == "postgresql":
            self.engine.dispose()  # drop pooled connections to the server that went away
        (log.warning if first else log.debug)(
            "store %s unreachable during %s (%s); %d sample(s) buffered", mask(self.url), during,
            type(exc).__name__, self._buffered)

    def health(self) -> dict[str, Any]:
        """reachable, buffered, dropped, written, last_error, url (password masked), …"""
        with self._lock:
            return {"reachable": self._reachable, "buffered": self._buffered,
                    "dropped": self._dropped, "written": self._written,
                    "last_error": self._last_error, "url": mask(self.url),
                    "dialect": self.dialect, "buffer_limit": self.buffer_limit,
                    "events_buffered": len(self._pending_events)}

    # -- writing samples ----------------------------------------------------------------
    def write(self, frame: pd.DataFrame, *, on_invalid: str = "raise") -> int:
        """Write a samples frame; returns the rows accepted (written or buffered).

        Invalid rows are rejected and the valid ones kept; then
        :class:`InvalidSamplesError` is raised (``on_invalid="drop"``: a warning).
        """
        if on_invalid not in ("raise", "drop"):
            raise ValueError(f"on_invalid must be 'raise' or 'drop', got {on_invalid!r}")
        if self._closed:
            raise RuntimeError(f"{self!r} is closed")
        good, rejected, problems = prepare(frame, self.host)
        with self._lock:
            if len(good):
                self._pending.append(good)
                self._buffered += len(good)
            if self._pending and time.monotonic() >= self._retry_at:
                self._flush_locked()
            self._trim()
        if rejected:
            msg = (f"rejected {rejected} of {rejected + len(good)} sample(s), kept the other "
                   f"{len(good)}: " + "; ".join(problems))
            if on_invalid == "raise":
                raise InvalidSamplesError(msg, accepted=len(good), rejected=rejected,
                                          problems=problems)
            log.warning("%s", msg)
        return len(good)

    def flush(self) -> int:
        """Write everything buffered now (ignoring the retry back-off); rows written."""
        with self._lock:
            if self._closed:
                return 0
            n = self._flush_locked()
            self._trim()
            return n

    def _trim(self) -> None:
        over = self._buffered - self.buffer_limit
        if over <= 0:
            return
        dropped = 0
        while over > 0 and self._pending:
            first = self._pending[0]
            if len(first) <= over:
                self._pending.popleft()
                k = len(first)
            else:
                self._pending[0] = first.tail(over)
                k = over
            over -= k
            dropped += k
        self._buffered -= dropped
        self._dropped += dropped
        now = time.monotonic()
        if now - self._last_warn >= _WARN_EVERY:
            self._last_warn = now
            log.warning("store %s unreachable and its buffer is full (%d rows): dropped the oldest "
                        "%d sample(s), %d dropped in all; last error: %s", mask(self.url),
                        self.buffer_limit, dropped, self._dropped, self._last_error)

    def _flush_locked(self) -> int:
        written = 0
        if not self._pending and not self._pending_events:
            return 0
        try:
            self._ensure_schema()
            while self._pending:
                frames: list[Batch] = []
                rows = 0
                for f in self._pending:
                    if frames and rows + len(f) > _MAX_BATCH:
                        break
                    frames.append(f)
                    rows += len(f)
                batch = Batch.concat(frames)
                try:
                    try:
                        self._insert_samples(batch)
                    except Exception as exc:
                        if _transient(exc):
                            raise
                        # tables dropped or changed under us? check the schema, try once more
                        log.warning("store %s: write failed (%s: %s); re-checking the tables",
                                    mask(self.url), type(exc).__name__, exc)
                        self._schema_ok = False
                        self._ensure_schema()
                        self._insert_samples(batch)
                except Exception as exc:
                    if _transient(exc):
                        raise
                    # not the connection: this batch can never be written; keep the rest
                    for _ in frames:
                        self._pending.popleft()
                    self._buffered -= rows
                    self._dropped += rows
                    self._last_error = f"write: {type(exc).__name__}: {exc}"[:2000]
                    log.error("store %s rejected a batch of %d sample(s), dropped: %s",
                              mask(self.url), rows, self._last_error)
                    continue
                for _ in frames:
                    self._pending.popleft()
                self._buffered -= rows
                self._written += rows
                written += rows
            if self._pending_events:
                events = list(self._pending_events)
                try:
                    with self._connect(write=True) as conn, conn.begin():
                        conn.execute(sc.alert_events.insert(), events)
                except Exception as exc:
                    if _transient(exc):
                        raise
                    self._dropped += len(events)
                    self._last_error = f"write_alert_events: {type(exc).__name__}: {exc}"[:2000]
                    log.error("store %s rejected %d alert event(s), dropped: %s",
                              mask(self.url), len(events), self._last_error)
                for _ in events:
                    self._pending_events.popleft()
            self._ok()
        except Exception as exc:
            if not _transient(exc):
                raise
            self._failed(exc, "write")
        return written

    def _connect(self, write: bool) -> sa.Connection:
        conn = self.engine.connect()
        if write and self.dialect == "sqlite":
            conn = conn.execution_options(perfkit_immediate=True)
        return conn

    def _insert_samples(self, batch: Batch) -> None:
        codes, triples, ts, value = batch.codes, batch.keys, batch.ts, batch.value
        with self._connect(write=True) as conn:
            info = conn.connection.info
            with conn.begin():
                ids, new = self._series_ids(conn, triples)
                sid = ids[codes]
                raw = conn.connection.driver_connection
                if self.dialect == "sqlite":
                    fastio.sqlite_insert(raw, sid, ts, value)
                else:
                    fastio.pg_insert(raw, bool(info.get("perfkit_stage")), sid, ts, value)
            info["perfkit_stage"] = True  # committed: the temporary table now exists
        self._series_cache.update(new)  # only after the commit: ids of a rolled-back insert lie

    def _series_ids(self, conn: sa.Connection, triples: list[tuple[str, str, str]]
                    ) -> tuple[np.ndarray, dict[tuple[str, str, str], int]]:
        ids = np.empty(len(triples), dtype=np.int64)
        missing = []
        for i, t in enumerate(triples):
            sid = self._series_cache.get(t)
            if sid is None:
                missing.append(i)
            else:
                ids[i] = sid
        new: dict[tuple[str, str, str], int] = {}
        if missing:
            s = sc.series
            from sqlalchemy.dialects import postgresql, sqlite
            insert: Any = sqlite.insert if self.dialect == "sqlite" else postgresql.insert
            want = sorted({triples[i] for i in missing})  # one order for all writers: no deadlock
            conn.execute(insert(s).on_conflict_do_nothing(),
                         [{"host": h, "metric": m, "labels": lab} for h, m, lab in want])
            for k in range(0, len(want), 300):
                part = want[k:k + 300]
                q = sa.select(s.c.id, s.c.host, s.c.metric, s.c.labels).where(
                    sa.tuple_(s.c.host, s.c.metric, s.c.labels).in_(part))
                for sid, h, m, lab in conn.execute(q):
                    new[(h, m, lab)] = int(sid)
            for i in missing:
                ids[i] = new[triples[i]]
        return ids, new

    # -- reading samples ----------------------------------------------------------------
    def _maybe_flush(self) -> None:
        if self._pending and time.monotonic() >= self._retry_at:
            with self._lock:
                self._flush_locked()
                self._trim()

    def _read_ready(self) -> None:
        if self._closed:
            raise RuntimeError(f"{self!r} is closed")
        self._maybe_flush()
        if not self._schema_ok:
            try:
                self._ensure_schema()
            except Exception as exc:
                if _transient(exc):
                    with self._lock:
                        self._failed(exc, "read")
                raise

    def _check_metrics(self, conn: sa.Connection, wanted: list[str], found: set[str],
                       extra: Iterable[str] = ()) -> None:
        catalogued = {m.name for m in catalog_metrics()}
        unknown = [m for m in wanted if m not in found and m not in catalogued]
        if unknown:
            stored = set(conn.execute(sa.select(sc.series.c.metric).distinct()).scalars())
            stored |= set(extra)
            for m in unknown:
                if m not in stored:
                    raise unknown_name_error("metric", m, sorted(catalogued | stored))

    def samples(self, metric: str | list[str] | None = None, host: str | list[str] | None = None,
                since: Any = None, until: Any = None, labels: str | Mapping[str, str] | None = None
                ) -> pd.DataFrame:
        """Samples as a contract frame sorted by ts; filters combine with AND.

        ``since``/``until`` (both inclusive): a Timestamp/datetime, or a duration
        such as ``"15min"`` meaning that long before now. ``labels``: every
        ``k=v`` pair given must be present (``""``: only unlabelled series).
        """
        metrics, hosts = _names(metric, "metric"), _names(host, "host")
        lo, hi = to_ns(since, "since"), to_ns(until, "until")
        want_labels = self._label_filter(labels)
        self._read_ready()
        s = sc.series
        with self._connect(write=False) as conn, conn.begin():
            q = sa.select(s.c.id, s.c.host, s.c.metric, s.c.labels).order_by(s.c.id)
            if metrics is not None:
                q = q.where(s.c.metric.in_(metrics))
            if hosts is not None:
                q = q.where(s.c.host.in_(hosts))
            rows = conn.execute(q).all()
            if metrics:
                self._check_metrics(conn, metrics, {r[2] for r in rows})
            if want_labels is not None:
                rows = [r for r in rows if self._labels_match(r[3], want_labels)]
            if not rows:
                return empty_samples()
            ids = [int(r[0]) for r in rows]
            raw = conn.connection.driver_connection
            read = fastio.sqlite_read if self.dialect == "sqlite" else fastio.pg_read
            which, ts, value = read(raw, ids, lo, hi)
        return fastio.build_frame(which, ts, value, [r[1] for r in rows], [r[2] for r in rows],
                                  [r[3] for r in rows])

    @staticmethod
    def _label_filter(labels: str | Mapping[str, str] | None) -> dict[str, str] | None:
        if labels is None:
            return None
        if isinstance(labels, Mapping):
            labels = format_labels(labels)
        if not isinstance(labels, str):
            raise TypeError("labels must be a 'k=v,k=v' string or a dict, "
                            f"got {type(labels).__name__}")
        try:
            return parse_labels(labels.strip())
        except ValueError:
            raise ValueError(f"labels={labels!r} is not a 'k=v,k=v' string") from None

    @staticmethod
    def _labels_match(stored: str, want: dict[str, str]) -> bool:
        if not want:
            return stored == ""
        have = parse_labels(stored)
        return all(have.get(k) == v for k, v in want.items())

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
        s, x, y = sc.series, sc.samples, sc.samples.alias("y")
        newest = sa.select(sa.func.max(y.c.ts)).where(y.c.series_id == s.c.id).scalar_subquery()
        q = (sa.select(s.c.host, s.c.metric, s.c.labels, x.c.ts, x.c.value)
             .select_from(s.join(x, sa.and_(x.c.series_id == s.c.id, x.c.ts == newest)))
             .order_by(s.c.host, s.c.metric, s.c.labels))
        if host is not None:
            q = q.where(s.c.host == host)
        with self._connect(write=False) as conn:
            rows = conn.execute(q).all()
        if not rows:
            return empty_samples()
        n = len(rows)
        return fastio.build_frame(np.arange(n), np.array([r[3] for r in rows], dtype=np.int64),
                                  np.array([r[4] for r in rows], dtype=np.float64),
                                  [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows],
                                  sort=False)

    # -- alert events (issue 3) ----------------------------------------------------------
    def write_alert_events(self, frame: pd.DataFrame) -> int:
        """Store alert events (ts, host, metric, labels, severity, state, value, threshold,
        message); buffered like samples while the store is down. Returns rows accepted."""
        rows = records.alert_rows(frame, self.host)
        if not rows:
            return 0
        with self._lock:
            self._pending_events.extend(rows)
            over = len(self._pending_events) - self.buffer_limit
            for _ in range(max(over, 0)):
                self._pending_events.popleft()
                self._dropped += 1
            if over > 0:
                log.warning("store %s unreachable: alert-event buffer full, dropped the oldest %d",
                            mask(self.url), over)
            if time.monotonic() >= self._retry_at:
                self._flush_locked()
        return len(rows)

    def alert_events(self, since: Any = None, host: str | list[str] | None = None,
                     metric: str | list[str] | None = None, until: Any = None) -> pd.DataFrame:
        """Alert events sorted by ts (columns as written; value/threshold NaN when unset)."""
        lo, hi = to_ns(since, "since"), to_ns(until, "until")
        hosts, metrics = _names(host, "host"), _names(metric, "metric")
        self._read_ready()
        a = sc.alert_events
        q = sa.select(*[a.c[c] for c in records.ALERT_COLUMNS]).order_by(a.c.ts, a.c.id)
        if lo is not None:
            q = q.where(a.c.ts >= lo)
        if hi is not None:
            q = q.where(a.c.ts <= hi)
        if hosts is not None:
            q = q.where(a.c.host.in_(hosts))
        if metrics is not None:
            q = q.where(a.c.metric.in_(metrics))
        with self._connect(write=False) as conn:
            rows = conn.execute(q).all()
            if metrics:
                ev = set(conn.execute(sa.select(a.c.metric).distinct()).scalars())
                self._check_metrics(conn, metrics, {r[2] for r in rows}, ev)
        return records.alerts_frame(rows)

    # -- actions queue and audit log (issue 4) --------------------------------------------
    def _new_action(self, action: str, params: dict | None, host: str, requested_by: str,
                    dry_run: bool, status: str) -> int:
        for field, v in (("action", action), ("host", host), ("requested_by", requested_by)):
            if not isinstance(v, str) or not v.strip():
                raise ValueError(f"{field} must be a non-empty string, got {v!r}")
        if not isinstance(dry_run, bool):
            raise TypeError(f"dry_run must be a bool, got {type(dry_run).__name__}")
        now = now_ns()
        values = {"host": host, "action": action, "params": records.to_json(params or {}, "params"),
                  "requested_by": requested_by, "dry_run": dry_run, "status": status,
                  "requested_at": now}
        if status == "running":
            values.update(claimed_at=now, claimed_by=requested_by)
        self._read_ready()
        with self._connect(write=True) as conn, conn.begin():
            key = conn.execute(sc.actions.insert().values(**values)).inserted_primary_key
            assert key is not None
            return int(key[0])

    def request_action(self, action: str, params: dict | None = None, *, host: str,
                       requested_by: str = "user", dry_run: bool = False) -> int:
        """Queue an action for the Monitor of ``host`` (status 'pending'); returns its id."""
        return self._new_action(action, params, host, requested_by, dry_run, "pending")

    def record_action(self, action: str, params: dict | None, *, host: str, requested_by: str,
                      dry_run: bool = False) -> int:
        """Log an action run locally now (status 'running'); finish it with finish_action."""
        return self._new_action(action, params, host, requested_by, dry_run, "running")

    def claim_actions(self, host: str, claimer: str, limit: int = 10) -> list[dict[str, Any]]:
        """Atomically move up to ``limit`` pending actions of ``host`` to 'running'.

        Two claimers (threads, processes, machines) never get the same row. An
        unreachable store yields ``[]`` (recorded in health()) rather than raising.
        """
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"limit must be a positive int, got {limit!r}")
        a = sc.actions
        now = now_ns()
        claim = {"status": "running", "claimed_at": now, "claimed_by": claimer}
        pending = sa.select(a.c.id).where(a.c.host == host, a.c.status == "pending") \
            .order_by(a.c.id).limit(limit)
        try:
            self._read_ready()
            with self._connect(write=True) as conn, conn.begin():
                if self.dialect == "postgresql":
                    got = conn.execute(
                        a.update().where(a.c.id.in_(pending.with_for_update(skip_locked=True)),
                                         a.c.status == "pending")
                        .values(**claim).returning(*a.c)).mappings().all()
                else:
                    ids = []
                    for aid in conn.execute(pending).scalars().all():
                        r = conn.execute(a.update().where(a.c.id == aid, a.c.status == "pending")
                                         .values(**claim))
                        if r.rowcount == 1:
                            ids.append(aid)
                    got = conn.execute(sa.select(a).where(a.c.id.in_(ids))).mappings().all() \
                        if ids else []
        except Exception as exc:
            if not _transient(exc):
                raise
            with self._lock:
                self._failed(exc, "claim_actions")
            return []
        return sorted((records.action_record(r) for r in got), key=lambda d: d["id"])

    def finish_action(self, action_id: int, *, status: str, before: dict | None = None,
                      after: dict | None = None, verdict: str | None = None,
                      detail: dict | str | None = None, error: str | None = None,
                      duration_s: float | None = None) -> None:
        """Close a pending/running action with its outcome (status done/failed/rejected)."""
        if status not in records.FINAL_STATUSES:
            raise ValueError(f"status must be one of {list(records.FINAL_STATUSES)}, "
                             f"got {status!r}")
        if duration_s is not None and (isinstance(duration_s, bool) or not isinstance(
                duration_s, (int, float)) or not np.isfinite(duration_s) or duration_s < 0):
            raise ValueError(f"duration_s must be a finite number >= 0, got {duration_s!r}")
        values = {"status": status, "finished_at": now_ns(),
                  "before": records.to_json(before, "before"),
                  "after": records.to_json(after, "after"), "verdict": verdict,
                  "detail": records.to_json(detail, "detail", mapping=False),
                  "error": None if error is None else str(error),
                  "duration_s": None if duration_s is None else float(duration_s)}
        a = sc.actions
        self._read_ready()
        with self._connect(write=True) as conn, conn.begin():
            r = conn.execute(a.update().where(a.c.id == int(action_id),
                                              a.c.status.in_(("pending", "running")))
                             .values(**values))
            if r.rowcount != 1:
                now = conn.execute(sa.select(a.c.status).where(a.c.id == int(action_id))).first()
                if now is None:
                    raise ValueError(f"no action with id {action_id}")
                raise ValueError(f"action {action_id} is already {now[0]!r}; only a pending or "
                                 "running action can be finished")

    def reject_action(self, action_id: int, error: str) -> None:
        """Refuse a pending/running action (unknown name, bad params…) with a reason."""
        self.finish_action(action_id, status="rejected", error=error)

    def actions(self, since: Any = None, host: str | list[str] | None = None,
                status: str | list[str] | None = None, action: str | list[str] | None = None
                ) -> pd.DataFrame:
        """The actions audit log, oldest first (``since`` filters on requested_at)."""
        lo = to_ns(since, "since")
        hosts, statuses = _names(host, "host"), _names(status, "status")
        names = _names(action, "action")
        if statuses:
            wrong = [x for x in statuses if x not in records.ACTION_STATUSES]
            if wrong:
                raise ValueError(f"status {wrong} unknown; one of {list(records.ACTION_STATUSES)}")
        self._read_ready()
        a = sc.actions
        q = sa.select(a).order_by(a.c.requested_at, a.c.id)
        if lo is not None:
            q = q.where(a.c.requested_at >= lo)
        if hosts is not None:
            q = q.where(a.c.host.in_(hosts))
        if statuses is not None:
            q = q.where(a.c.status.in_(statuses))
        if names is not None:
            q = q.where(a.c.action.in_(names))
        with self._connect(write=False) as conn:
            rows = conn.execute(q).mappings().all()
        return records.actions_frame(rows)

    # -- pytest regression history (issue 7) ---------------------------------------------
    def benchmarks(self, test: str | None = None) -> pd.DataFrame:
        """Benchmark history recorded by perfkit's pytest plugin."""
        from perfkit.regression.storage import read_benchmarks  # written in parallel
        return read_benchmarks(self.engine, test=test)

    # -- life cycle ---------------------------------------------------------------------
    def close(self) -> None:
        """Flush what is buffered (what cannot be written is counted as dropped), release
        the connections. Idempotent."""
        with self._lock:
            if self._closed:
                return
            try:
                self._flush_locked()
            except Exception:  # closing must not raise over unwritable data
                log.exception("store %s: final flush failed", mask(self.url))
            lost = self._buffered + len(self._pending_events)
            if lost:
                self._dropped += lost
                log.warning("store %s closed while unreachable: %d buffered row(s) not written",
                            mask(self.url), lost)
                self._pending.clear()
                self._pending_events.clear()
                self._buffered = 0
            self._closed = True
            self.engine.dispose()

    def __enter__(self) -> Store:  # noqa: PYI034
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
