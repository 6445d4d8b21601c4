"""The Store's actions queue and audit log: requesting, claiming, expiring and finishing
actions, and reading the log back (the SQL is in :mod:`perfkit.store._queue`).

A mixin of :class:`perfkit.store.Store` (kept apart so each file reads in one sitting);
it uses the Store's connection, watchdog and failure bookkeeping.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

import pandas as pd
import sqlalchemy as sa

from perfkit.store import _queue as queue
from perfkit.store import _records as records
from perfkit.store._failures import transient
from perfkit.store._reads import names
from perfkit.store._when import to_ns


class ActionsQueue:
    """The actions queue and audit log of :class:`perfkit.store.Store`."""

    action_lease: float
    pending_ttl: float

    if TYPE_CHECKING:  # provided by Store
        def _read_ready(self) -> None: ...

        def _connect(self, write: bool) -> contextlib.AbstractContextManager[sa.Connection]:
            ...

        def _failed(self, exc: BaseException, during: str) -> None: ...

    def _new_action(self, values: dict[str, Any]) -> int:
        self._read_ready()
        with self._connect(write=True) as conn, conn.begin():
            return queue.insert(conn, values)

    def request_action(self, action: str, params: dict | None = None, *, host: str,
                       requested_by: str = "user", dry_run: bool = False) -> int:
        """Queue an action for the Monitor of ``host`` (status 'pending'); returns its id."""
        return self._new_action(queue.new_action_values(action, params, host, requested_by,
                                                        dry_run, "pending"))

    def record_action(self, action: str, params: dict | None, *, host: str, requested_by: str,
                      dry_run: bool = False) -> int:
        """Log an action run locally now (status 'running'); finish it with finish_action."""
        return self._new_action(queue.new_action_values(action, params, host, requested_by,
                                                        dry_run, "running"))

    def claim_actions(self, host: str | list[str], claimer: str, limit: int = 10
                      ) -> list[dict[str, Any]]:
        """Atomically move up to ``limit`` pending actions of ``host`` to 'running'.

        ``host`` may be several names (a Monitor's ``hostname:pid`` and its service
        name). Two claimers (threads, processes, machines) never get the same row.
        Each claim first closes what can no longer finish (:meth:`expire_actions`).
        An unreachable store yields ``[]`` (recorded in health()) rather than raising.
        """
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"limit must be a positive int, got {limit!r}")
        try:
            self._read_ready()
            with self._connect(write=True) as conn, conn.begin():
                queue.expire(conn, int(self.action_lease * 1e9), int(self.pending_ttl * 1e9))
                got = queue.claim(conn, host, claimer, limit)
        except Exception as exc:
            if not transient(exc):
                raise
            self._failed(exc, "claim_actions")
            return []
        return sorted((records.action_record(r) for r in got), key=lambda d: d["id"])

    def expire_actions(self) -> dict[str, int]:
        """Mark running actions past ``action_lease`` seconds 'abandoned' (their Monitor
        died mid-run) and pending ones past ``pending_ttl`` seconds 'expired' (no Monitor
        of that host claimed them); returns how many of each."""
        self._read_ready()
        with self._connect(write=True) as conn, conn.begin():
            gone, stale = queue.expire(conn, int(self.action_lease * 1e9),
                                       int(self.pending_ttl * 1e9))
        return {"abandoned": gone, "expired": stale}

    def finish_action(self, action_id: int, *, status: str, before: dict | None = None,
                      after: dict | None = None, verdict: str | None = None,
                      detail: dict | str | None = None, error: str | None = None,
                      duration_s: float | None = None) -> None:
        """Close a pending/running action with its outcome (status done/failed/rejected)."""
        values = queue.finish_values(status, before, after, verdict, detail, error, duration_s)
        self._read_ready()
        with self._connect(write=True) as conn, conn.begin():
            queue.finish(conn, action_id, values)

    def reject_action(self, action_id: int, error: str) -> None:
        """Refuse a pending/running action (unknown name, bad params…) with a reason."""
        self.finish_action(action_id, status="rejected", error=error)

    def actions(self, since: Any = None, host: str | list[str] | None = None,
                status: str | list[str] | None = None, action: str | list[str] | None = None
                ) -> pd.DataFrame:
        """The actions audit log, oldest first (``since`` filters on requested_at)."""
        q = queue.select(to_ns(since, "since"), names(host, "host"), names(status, "status"),
                         names(action, "action"))
        self._read_ready()
        with self._connect(write=False) as conn:
            rows = conn.execute(q).mappings().all()
        return records.actions_frame(rows)

