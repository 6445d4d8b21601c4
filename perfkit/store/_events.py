"""The Store's alert history: writing alert events (buffered like samples while the
database is down) and reading them back.

A mixin of :class:`perfkit.store.Store` (kept apart so each file reads in one sitting);
it uses the Store's buffer, connection and writer thread (``_drain``).
"""

from __future__ import annotations

import contextlib
import threading
from typing import TYPE_CHECKING, Any

import pandas as pd
import sqlalchemy as sa

from perfkit.store import _reads as reads
from perfkit.store import _records as records
from perfkit.store._reads import names
from perfkit.store._when import to_ns

if TYPE_CHECKING:
    from perfkit.store._buffer import WriteBuffer


class AlertHistory:
    """The alert events of :class:`perfkit.store.Store`."""

    host: str
    _lock: threading.RLock
    _buf: WriteBuffer

    if TYPE_CHECKING:  # provided by Store
        def _read_ready(self) -> None: ...

        def _connect(self, write: bool) -> contextlib.AbstractContextManager[sa.Connection]:
            ...

        def _drain(self) -> int: ...

    def write_alert_events(self, frame: pd.DataFrame) -> int:
        """Store alert events (ts, host, metric, labels, severity, state, value, threshold,
        message); buffered like samples while the store is down. Returns rows accepted."""
        rows = records.alert_rows(frame, self.host)
        if not rows:
            return 0
        with self._lock:
            self._buf.add_events(rows)
            due = self._buf.retry_due()
        if due:
            self._drain()
        return len(rows)

    def alert_events(self, since: Any = None, host: str | list[str] | None = None,
                     metric: str | list[str] | None = None, until: Any = None) -> pd.DataFrame:
        """Alert events sorted by ts (columns as written; value/threshold NaN when unset)."""
        lo, hi = to_ns(since, "since"), to_ns(until, "until")
        hosts, metrics = names(host, "host"), names(metric, "metric")
        self._read_ready()
        with self._connect(write=False) as conn:
            return reads.alert_events(conn, lo, hi, hosts, metrics)

    def latest_alert_events(self, severity: str, host: str | list[str] | None = None
                            ) -> pd.DataFrame:
        """The newest event of ``severity`` per (host, metric, labels), however old, sorted
        by ts (columns as :meth:`alert_events`): which episodes are open now, e.g.
        ``severity='anomaly-episode'`` rows whose ``state`` is 'firing'."""
        if not isinstance(severity, str) or not severity:
            raise ValueError(f"severity must be a non-empty str such as 'anomaly-episode', "
                             f"got {severity!r}")
        hosts = names(host, "host")
        self._read_ready()
        with self._connect(write=False) as conn:
            return reads.latest_alert_events(conn, severity, hosts)
