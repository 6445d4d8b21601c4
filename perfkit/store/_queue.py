"""The actions queue and audit log: argument checks and the SQL behind Store's action methods.

Every function that touches the database takes an open connection inside the
caller's transaction, so the Store decides about locking and error handling.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import sqlalchemy as sa

from perfkit.store import _records as records
from perfkit.store import _schema as sc
from perfkit.store._when import now_ns

_OPEN = ("pending", "running")


def new_action_values(action: str, params: dict | None, host: str, requested_by: str,
                      dry_run: bool, status: str) -> dict[str, Any]:
    """The row of a new action ('pending': queued; 'running': run locally now)."""
    for field, v in (("action", action), ("host", host), ("requested_by", requested_by)):
        if not isinstance(v, str) or not v.strip():
            raise ValueError(f"{field} must be a non-empty string, got {v!r}")
    if not isinstance(dry_run, bool):
        raise TypeError(f"dry_run must be a bool (True or False), got {type(dry_run).__name__}")
    now = now_ns()
    values = {"host": host, "action": action, "params": records.to_json(params or {}, "params"),
              "requested_by": requested_by, "dry_run": dry_run, "status": status,
              "requested_at": now}
    if status == "running":
        values.update(claimed_at=now, claimed_by=requested_by)
    return values


def insert(conn: sa.Connection, values: dict[str, Any]) -> int:
    key = conn.execute(sc.actions.insert().values(**values)).inserted_primary_key
    assert key is not None
    return int(key[0])


def expire(conn: sa.Connection, lease_ns: int, pending_ttl_ns: int) -> tuple[int, int]:
    """Close what can no longer finish: (running past their lease -> 'abandoned',
    pending past ``pending_ttl`` -> 'expired')."""
    a = sc.actions
    now = now_ns()
    gone = conn.execute(a.update().where(a.c.status == "running",
                                         a.c.claimed_at < now - lease_ns).values(
        status="abandoned", finished_at=now,
        error=f"lease of {lease_ns / 1e9:g} s ran out: the Monitor that claimed it stopped "
              "before finishing (killed or restarted); its effect is unknown")).rowcount
    stale = conn.execute(a.update().where(a.c.status == "pending",
                                          a.c.requested_at < now - pending_ttl_ns).values(
        status="expired", finished_at=now,
        error=f"no Monitor of this host claimed it within {pending_ttl_ns / 1e9:g} s; "
              "request it again for a running host or service name")).rowcount
    return int(gone or 0), int(stale or 0)


def claim(conn: sa.Connection, host: str | list[str], claimer: str, limit: int) -> list[Any]:
    """Move up to ``limit`` pending actions of ``host`` to 'running'; the rows claimed.

    PostgreSQL: one UPDATE over ``FOR UPDATE SKIP LOCKED``. SQLite: the write
    transaction (BEGIN IMMEDIATE) already excludes other claimers; each UPDATE
    re-checks 'pending' all the same.
    """
    a = sc.actions
    hosts = [host] if isinstance(host, str) else list(host)
    values = {"status": "running", "claimed_at": now_ns(), "claimed_by": claimer}
    pending = sa.select(a.c.id).where(a.c.host.in_(hosts), a.c.status == "pending") \
        .order_by(a.c.id).limit(limit)
    if conn.dialect.name == "postgresql":
        return list(conn.execute(
            a.update().where(a.c.id.in_(pending.with_for_update(skip_locked=True)),
                             a.c.status == "pending")
            .values(**values).returning(*a.c)).mappings().all())
    ids = []
    for aid in conn.execute(pending).scalars().all():
        r = conn.execute(a.update().where(a.c.id == aid, a.c.status == "pending").values(**values))
        if r.rowcount == 1:
            ids.append(aid)
    return list(conn.execute(sa.select(a).where(a.c.id.in_(ids))).mappings().all()) if ids else []


def finish_values(status: str, before: dict | None, after: dict | None, verdict: str | None,
                  detail: dict | str | None, error: str | None, duration_s: float | None
                  ) -> dict[str, Any]:
    """The columns that close an action; ValueError/TypeError for a bad argument."""
    if status not in records.FINAL_STATUSES:
        raise ValueError(f"status must be one of {list(records.FINAL_STATUSES)}, "
                         f"got {status!r}")
    if duration_s is not None and (isinstance(duration_s, bool) or not isinstance(
            duration_s, (int, float)) or not np.isfinite(duration_s) or duration_s < 0):
        raise ValueError(f"duration_s must be a finite number >= 0 (seconds), got {duration_s!r}")
    return {"status": status, "finished_at": now_ns(),
            "before": records.to_json(before, "before"),
            "after": records.to_json(after, "after"), "verdict": verdict,
            "detail": records.to_json(detail, "detail", mapping=False),
            "error": None if error is None else str(error),
            "duration_s": None if duration_s is None else float(duration_s)}


def finish(conn: sa.Connection, action_id: int, values: dict[str, Any]) -> None:
    """Close a pending/running action; ValueError when it is unknown or already finished."""
    a = sc.actions
    r = conn.execute(a.update().where(a.c.id == int(action_id), a.c.status.in_(_OPEN))
                     .values(**values))
    if r.rowcount != 1:
        now = conn.execute(sa.select(a.c.status).where(a.c.id == int(action_id))).first()
        if now is None:
            raise ValueError(f"no action with id {action_id}; Store.actions() lists the ids")
        raise ValueError(f"action {action_id} is already {now[0]!r}; only a pending or "
                         "running action can be finished")


def select(lo: int | None, hosts: list[str] | None, statuses: list[str] | None,
           names: list[str] | None) -> sa.Select:
    """The audit-log query, oldest first (``lo`` filters on requested_at)."""
    if statuses:
        wrong = [x for x in statuses if x not in records.ACTION_STATUSES]
        if wrong:
            raise ValueError(f"status {wrong} unknown; use one of {list(records.ACTION_STATUSES)}")
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
    return q
