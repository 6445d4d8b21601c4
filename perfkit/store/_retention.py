"""Retention: delete what is older than a cut-off, table by table.

On a day-partitioned PostgreSQL samples table the whole days before the cut-off are
dropped first (``_partitions.drop_before``: no row is deleted, nothing is rewritten,
writers wait at most a short lock timeout); the rest is one transaction of range deletes.
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa

from perfkit.store import _records as records
from perfkit.store import _schema as sc

TABLES = ("samples", "rollups", "alert_events", "actions")


def tables(what: str | Iterable[str]) -> list[str]:
    """``what`` checked: names from :data:`TABLES`, in the order given, without repeats."""
    given = [what] if isinstance(what, str) else list(what)
    wrong = [w for w in given if w not in TABLES]
    if wrong:
        raise ValueError(f"what={wrong!r}: unknown; use a tuple of {list(TABLES)}, for example "
                         "what=('samples', 'alert_events')")
    return list(dict.fromkeys(given))


def prune(conn: sa.Connection, cutoff: int, what: list[str]) -> dict[str, int]:
    """Delete rows older than ``cutoff`` (int64 ns UTC, exclusive); rows deleted per table.

    The series table is left alone: writers in other processes cache series ids,
    and a removed id would make their later samples unreachable.
    """
    out: dict[str, int] = {}
    for name in what:
        if name == "samples":
            x = sc.samples
            # series_id IN (...) lets both databases walk the (series_id, ts) key per
            # series instead of scanning the whole table for ts alone.
            q = x.delete().where(x.c.series_id.in_(sa.select(sc.series.c.id)), x.c.ts < cutoff)
        elif name == "rollups":  # the 1 min and 1 h buckets starting before the cut-off
            n = 0
            for r in (sc.rollup_1m, sc.rollup_1h):
                q = r.delete().where(r.c.series_id.in_(sa.select(sc.series.c.id)),
                                     r.c.ts < cutoff)
                n += int(conn.execute(q).rowcount)
            out[name] = n
            continue
        elif name == "alert_events":
            q = sc.alert_events.delete().where(sc.alert_events.c.ts < cutoff)
        else:  # actions: only finished ones; pending and running actions are still work
            a = sc.actions
            q = a.delete().where(a.c.status.in_(records.FINAL_STATUSES), a.c.finished_at < cutoff)
        out[name] = int(conn.execute(q).rowcount)
    return out
