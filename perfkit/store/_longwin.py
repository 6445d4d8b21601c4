"""The Store's long-window reads and upkeep: rollups, per-series window means,
rebuilding rollups, retention (``prune``), moving an old PostgreSQL table into day
partitions.

A mixin of :class:`perfkit.store.Store` (kept apart so each file reads in one sitting);
it uses the Store's connection, watchdog and writer.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import pandas as pd
import sqlalchemy as sa

from perfkit.store import _partitions as partitions
from perfkit.store import _reads as reads
from perfkit.store import _retention as retention
from perfkit.store import _rollups as rollups
from perfkit.store import _schema as sc
from perfkit.store._engine import mask
from perfkit.store._reads import label_filter, names
from perfkit.store._when import ACCEPTED_WHEN, to_ns

if TYPE_CHECKING:
    from perfkit.store._watch import IOWatch
    from perfkit.store._writer import SampleWriter

log = logging.getLogger("perfkit.store")


def check_timeout(value: object, name: str = "timeout") -> float:
    """``value`` as a positive number of seconds, else ValueError."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
    return float(value)


class LongWindows:
    """Rollups, window means and partition upkeep for :class:`perfkit.store.Store`."""

    dialect: str
    engine: sa.Engine
    url: str
    _writer: SampleWriter
    _watch: IOWatch

    if TYPE_CHECKING:  # provided by Store
        def _read_ready(self) -> None: ...

        def _connect(self, write: bool) -> contextlib.AbstractContextManager[sa.Connection]:
            ...

    def window_means(self, window: Any = "5min", *, since: Any = "6min", until: Any = None,
                     host: str | list[str] | None = None, exact: bool = True) -> pd.DataFrame:
        """Per unlabelled series with samples in [since, until]: one row, ``ts`` its newest
        sample, ``value`` the mean of its samples after its host's newest sample minus
        ``window`` — what :func:`perfkit.analysis.score_hosts` reads, in one grouped query
        instead of every raw sample (a samples frame, sorted by ts).

        ``exact=False`` reads the 1 min rollups instead of the raw samples: the mean
        over the ``window / 1min`` minute buckets ending with the one that holds the
        host's newest sample (so between ``window - 1min`` and ``window`` of samples),
        a few rows per series however dense the samples are."""
        w = pd.Timedelta(window)
        if not w > pd.Timedelta(0):
            raise ValueError(f"window must be a positive duration such as '5min', got {window!r}")
        lo, hi = to_ns(since, "since"), to_ns(until, "until")
        hosts = names(host, "host")
        self._read_ready()
        with self._connect(write=False) as conn, conn.begin():
            return reads.window_means(conn, hosts, lo, hi, int(w.value), exact)

    def rollups(self, metric: str | list[str] | None = None, host: str | list[str] | None = None,
                since: Any = None, until: Any = None,
                labels: str | Mapping[str, str] | None = None, *, every: str = "1min"
                ) -> pd.DataFrame:
        """Downsampled samples: per series and ``every`` bucket (``"1min"`` or ``"1h"``) the
        ``count, min, mean, max`` of the samples written, ``ts`` the bucket's start; sorted
        by ts. Filters as in :meth:`samples` (a bucket is kept when its start is in
        [since, until]). Kept up to date by every write; see :meth:`rebuild_rollups`."""
        table, _width = rollups.level(every)
        metrics, hosts = names(metric, "metric"), names(host, "host")
        lo, hi = to_ns(since, "since"), to_ns(until, "until")
        want_labels = label_filter(labels)
        self._read_ready()
        with self._connect(write=False) as conn, conn.begin():
            rows = reads.pick_series(conn, metrics, hosts, want_labels)
            if not rows:
                return rollups.empty()
            return rollups.read(conn, table, [int(r[0]) for r in rows], rows, lo, hi)

    def rebuild_rollups(self, since: Any = None, until: Any = None) -> dict[str, int]:
        """Recompute the rollup buckets overlapping [since, until] (default: all) from the
        raw samples; buckets written per level. For samples written before rollups
        existed (writes keep them exact, a retried batch included)."""
        lo, hi = to_ns(since, "since"), to_ns(until, "until")
        self._read_ready()
        with self._connect(write=True) as conn, conn.begin():
            return rollups.rebuild(conn, lo, hi)

    def partition_samples(self, timeout: float = 3600.0) -> int:
        """PostgreSQL: move a samples table created before day partitions into them (one
        transaction; reads wait and writers buffer meanwhile); rows moved, 0 when there
        is nothing to do (already partitioned, or SQLite)."""
        timeout = check_timeout(timeout)
        self._read_ready()
        if self.dialect != "postgresql":
            return 0
        moved = partitions.migrate(self.engine, sc.samples, timeout)
        self._writer.forget_ids()
        return moved

    def prune(self, older_than: str | pd.Timedelta | pd.Timestamp = "7d", *,
              what: str | Iterable[str] = ("samples", "alert_events")) -> dict[str, int]:
        """Delete rows older than ``older_than``; returns ``{table: rows deleted}``.

        ``older_than``: a duration (``"7d"``, ``"12h"``, a Timedelta) meaning that long
        before now, or a Timestamp/datetime/ISO string (naive = UTC); rows at exactly
        that moment stay. ``what``: any of ``"samples"``, ``"rollups"`` (the 1 min and
        1 h buckets, kept until pruned on their own so long charts outlive the raw
        samples), ``"alert_events"`` (by ts) and ``"actions"`` (finished actions, by
        finished_at; pending and running actions are never deleted). On PostgreSQL
        whole days of samples go by dropping their partitions (see
        :mod:`perfkit.store._partitions`), the rest in one transaction; needs the
        database (raises SQLAlchemy's ``OperationalError`` while it is down).
        """
        cutoff = to_ns(older_than, "older_than")
        if cutoff is None:
            raise ValueError(f"older_than must not be None; use {ACCEPTED_WHEN}")
        tables = retention.tables(what)
        self._read_ready()
        dropped = 0
        if "samples" in tables and self.dialect == "postgresql":
            with self._watch.op("write"):
                dropped, _names = partitions.drop_before(self.engine, cutoff)
                self._writer.forget_days()
        with self._connect(write=True) as conn, conn.begin():
            deleted = retention.prune(conn, cutoff, tables)
        if "samples" in deleted:
            deleted["samples"] += dropped
        log.info("store %s: pruned rows older than %s: %s", mask(self.url),
                 pd.Timestamp(cutoff, unit="ns", tz="UTC"), deleted)
        return deleted
