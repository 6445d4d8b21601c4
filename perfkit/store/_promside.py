"""What a Prometheus source hands to the SQL store beside it (``actions_store=``): alert
events, the actions queue and audit log, the benchmark history; and the writes it refuses
(samples reach Prometheus by scraping; Prometheus prunes its own data).

A mixin of :class:`perfkit.store._prometheus.PrometheusStore` (kept apart so each file
reads in one sitting).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import pandas as pd

from perfkit.errors import ReadOnlyStoreError
from perfkit.store._records import actions_frame, alerts_frame

if TYPE_CHECKING:
    from perfkit.store._store import Store


class ActionsStoreSide:
    """The SQL side of :class:`~perfkit.store._prometheus.PrometheusStore`."""

    url: str
    actions_store: Store | None

    def _side(self, what: str) -> Store:
        if self.actions_store is None:
            raise ReadOnlyStoreError(
                f"{self!r} is a read-only source: {what} needs a SQL store beside it, e.g. "
                f"Store({self.url!r}, actions_store='postgresql://…') or "
                "`perfkit dashboard --store prometheus://… --actions-store postgresql://…`")
        return self.actions_store

    def write(self, frame: pd.DataFrame, *, on_invalid: str = "raise", wait: bool = True) -> int:
        """Refused: samples reach Prometheus by scraping (``perfkit serve`` exports /metrics)."""
        raise ReadOnlyStoreError(
            f"{self!r} is a read-only source: samples reach Prometheus by scraping. Write them "
            "to a SQL store (a Monitor with --store sqlite:///… or postgresql://…) and let "
            "Prometheus scrape `perfkit serve`'s /metrics")

    def flush(self) -> int:
        """Nothing is buffered here: 0 (the actions store flushes its own)."""
        return self.actions_store.flush() if self.actions_store is not None else 0

    def write_alert_events(self, frame: pd.DataFrame) -> int:
        """Alert events go to the actions store (ReadOnlyStoreError without one)."""
        return self._side("storing alert events").write_alert_events(frame)

    def alert_events(self, since: Any = None, host: str | list[str] | None = None,
                     metric: str | list[str] | None = None, until: Any = None) -> pd.DataFrame:
        """The actions store's alert events (an empty frame without one)."""
        if self.actions_store is None:
            return alerts_frame([])
        return self.actions_store.alert_events(since=since, host=host, metric=metric,
                                               until=until)

    def latest_alert_events(self, severity: str, host: str | list[str] | None = None
                            ) -> pd.DataFrame:
        """The actions store's newest event per series (an empty frame without one)."""
        if self.actions_store is None:
            return alerts_frame([])
        return self.actions_store.latest_alert_events(severity, host=host)

    def request_action(self, action: str, params: dict | None = None, *, host: str,
                       requested_by: str = "user", dry_run: bool = False) -> int:
        """Queued in the actions store (ReadOnlyStoreError without one)."""
        return self._side("the actions queue").request_action(
            action, params, host=host, requested_by=requested_by, dry_run=dry_run)

    def record_action(self, action: str, params: dict | None, *, host: str, requested_by: str,
                      dry_run: bool = False) -> int:
        """Logged in the actions store (ReadOnlyStoreError without one)."""
        return self._side("the actions log").record_action(
            action, params, host=host, requested_by=requested_by, dry_run=dry_run)

    def claim_actions(self, host: str | list[str], claimer: str, limit: int = 10
                      ) -> list[dict[str, Any]]:
        """Claimed from the actions store (ReadOnlyStoreError without one)."""
        return self._side("the actions queue").claim_actions(host, claimer, limit)

    def finish_action(self, action_id: int, *, status: str, before: dict | None = None,
                      after: dict | None = None, verdict: str | None = None,
                      detail: dict | str | None = None, error: str | None = None,
                      duration_s: float | None = None) -> None:
        """Closed in the actions store (ReadOnlyStoreError without one)."""
        self._side("the actions queue").finish_action(
            action_id, status=status, before=before, after=after, verdict=verdict,
            detail=detail, error=error, duration_s=duration_s)

    def actions(self, since: Any = None, host: str | list[str] | None = None,
                status: str | list[str] | None = None, action: str | list[str] | None = None
                ) -> pd.DataFrame:
        """The actions store's audit log (an empty frame without one)."""
        if self.actions_store is None:
            return actions_frame([])
        return self.actions_store.actions(since=since, host=host, status=status, action=action)

    def prune(self, older_than: Any = "7d", *,
              what: str | Iterable[str] = ("samples", "alert_events")) -> dict[str, int]:
        """Refused: Prometheus' own retention (``--storage.tsdb.retention.time``) prunes it."""
        raise ReadOnlyStoreError(f"{self!r} is a read-only source: Prometheus prunes its own "
                                 "data (--storage.tsdb.retention.time); prune the actions "
                                 "store directly")

    def benchmarks(self, test: str | None = None) -> pd.DataFrame:
        """Refused: the pytest history lives in a SQL store."""
        return self._side("the benchmark history").benchmarks(test)
