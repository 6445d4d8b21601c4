"""Inserting a Batch: resolve its series to ids (cached), make sure its days have a
partition (PostgreSQL), then the fast sample path and the rollups, in one transaction."""

from __future__ import annotations

from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from perfkit.store import _fastio as fastio
from perfkit.store import _partitions as partitions
from perfkit.store import _rollups as rollups
from perfkit.store import _schema as sc
from perfkit.store._engine import connect
from perfkit.store._failures import sqlstate
from perfkit.store._validate import Batch, Key

_LOOKUP_CHUNK = 300  # series keys per SELECT ... WHERE (host, metric, labels) IN (...)


class SampleWriter:
    """Writes batches of samples in one transaction each; remembers series ids."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self._ids: dict[Key, int] = {}
        self._days: set[int] = set()  # days known to have a partition (or no partitioning)
        self._partitioned: bool | None = None

    def forget_ids(self) -> None:
        """Stop trusting cached series ids and partitions (the tables may have been
        recreated or pruned)."""
        self._ids.clear()
        self._days.clear()
        self._partitioned = None

    def forget_days(self) -> None:
        """Stop trusting the partitions seen (a prune dropped some)."""
        self._days.clear()

    def ensure_days(self, want: set[int]) -> None:
        """PostgreSQL: create the partitions of ``want`` (UTC days) that are missing."""
        need = want - self._days
        if not need or self.dialect != "postgresql":
            return
        if self._partitioned is None:
            with self.engine.connect() as conn:
                self._partitioned = partitions.is_partitioned(conn)
        if self._partitioned:
            partitions.create(self.engine, need)
        self._days |= need

    def insert(self, batch: Batch) -> None:
        """Write ``batch`` in one transaction (samples and rollups)."""
        days = partitions.days(batch.ts)
        self.ensure_days(days)
        try:
            self._insert(batch)
        except Exception as exc:  # the COPY path raises the driver's own errors
            # no partition for a row: another process migrated the table or pruned that
            # day since this writer looked; look again once instead of refusing the rows
            if sqlstate(exc) != "23514" or self.dialect != "postgresql":
                raise
            self.forget_ids()
            self.ensure_days(days)
            self._insert(batch)

    def _insert(self, batch: Batch) -> None:
        with connect(self.engine, write=True) as conn:
            info = conn.connection.info
            with conn.begin():
                ids, new = self._series_ids(conn, batch.keys)
                sid = ids[batch.codes]
                raw = conn.connection.driver_connection
                if self.dialect == "sqlite":
                    ts, value = batch.ts, batch.value
                    keep = fastio.last_per_key(sid, ts)
                    if len(keep) != len(sid):  # the rollups count a repeated key once
                        sid, ts, value = sid[keep], ts[keep], value[keep]
                    if fastio.sqlite_insert(raw, sid, ts, value):
                        rollups.sqlite_refresh(raw, sid, ts)
                    else:
                        rollups.sqlite_add(raw, sid, ts, value)
                elif fastio.pg_insert(raw, bool(info.get("perfkit_stage")), sid, batch.ts,
                                      batch.value):
                    rollups.pg_refresh(raw)
                else:
                    rollups.pg_add(raw)
            info["perfkit_stage"] = True  # committed: the temporary table now exists
        self._ids.update(new)  # only after the commit: ids of a rolled-back insert lie

    def _series_ids(self, conn: sa.Connection, keys: list[Key]
                    ) -> tuple[np.ndarray, dict[Key, int]]:
        """Ids of ``keys`` (inserting the new series) and the ids looked up now."""
        ids = np.empty(len(keys), dtype=np.int64)
        missing = []
        for i, k in enumerate(keys):
            sid = self._ids.get(k)
            if sid is None:
                missing.append(i)
            else:
                ids[i] = sid
        new: dict[Key, int] = {}
        if missing:
            s = sc.series
            insert: Any = sqlite.insert if self.dialect == "sqlite" else postgresql.insert
            want = sorted({keys[i] for i in missing})  # one order for all writers: no deadlock
            conn.execute(insert(s).on_conflict_do_nothing(),
                         [{"host": h, "metric": m, "labels": lab} for h, m, lab in want])
            for start in range(0, len(want), _LOOKUP_CHUNK):
                part = want[start:start + _LOOKUP_CHUNK]
                q = sa.select(s.c.id, s.c.host, s.c.metric, s.c.labels).where(
                    sa.tuple_(s.c.host, s.c.metric, s.c.labels).in_(part))
                for sid, h, m, lab in conn.execute(q):
                    new[(h, m, lab)] = int(sid)
            for i in missing:
                ids[i] = new[keys[i]]
        return ids, new
