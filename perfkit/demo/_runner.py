"""``Demo``: the service and its load generator wired to a Monitor, started and stopped as one."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from perfkit.demo._load import (
    DEFAULT_PHASES,
    PHASE_METRIC,
    PHASE_SEVERITY,
    LoadGenerator,
    Phase,
)
from perfkit.demo._service import MarketService

if TYPE_CHECKING:
    from perfkit.monitor import Monitor

__all__ = ["Demo"]


class Demo:
    """The demo workload for ``monitor``: a :class:`MarketService` plus a :class:`LoadGenerator`.

    Building it seeds the database with a small orders table (the first
    :meth:`start` grows it in the background until the slow query is slow,
    see :class:`MarketService`; an explicit ``n_orders`` is seeded at once)
    and instruments the service on ``monitor`` (``instrument_engine`` and
    ``attach_cache``, as a user's app would); each phase's start and end is written
    to the Monitor's store (alert history, ``severity='demo-phase'``);
    :meth:`start` / :meth:`stop` run and halt the load. The Monitor itself is
    started and stopped by its owner.
    """

    def __init__(self, monitor: Monitor, *, rate: float = 20.0,
                 phases: Sequence[Phase] = DEFAULT_PHASES, workers: int = 4,
                 db_path: str | Path | None = None, n_orders: int | None = None,
                 slow_query_ms: float = 150.0, seed: int | None = None) -> None:
        self.monitor = monitor
        self.service = MarketService(monitor, db_path=db_path, n_orders=n_orders,
                                     slow_query_ms=slow_query_ms, grow_later=n_orders is None,
                                     seed=0 if seed is None else seed)
        self._grower: threading.Thread | None = None
        self._stop_growing = threading.Event()
        self.load = LoadGenerator(self.service, rate=rate, phases=phases, workers=workers,
                                  seed=seed, on_phase=self._record_phase)

    def _record_phase(self, kind: str, state: str, when: float) -> None:
        # In the store's alert history beside alerts and anomaly episodes, so a dashboard
        # viewing this store from another process draws the phases too.
        import pandas as pd

        self.monitor.store.write_alert_events(pd.DataFrame({
            "ts": [pd.Timestamp(when, unit="s", tz="UTC")], "host": [self.monitor.host],
            "metric": [PHASE_METRIC], "severity": [PHASE_SEVERITY], "state": [state],
            "message": [kind]}))

    @property
    def running(self) -> bool:
        """Whether the load generator is running."""
        return self.load.running

    def start(self) -> Demo:
        """Start the load (no-op when running) and, the first time, size the orders table
        in the background (see :meth:`MarketService.grow_orders`)."""
        if not self.service.sized.is_set() and self._grower is None:
            self._grower = threading.Thread(
                target=self.service.grow_orders, args=(self._stop_growing,),
                kwargs={"background": True}, name="perfkit-demo-grow", daemon=True)
            self._grower.start()
        self.load.start()
        return self

    def stop(self) -> None:
        """Stop the load; the service and its database stay for a later :meth:`start`."""
        self.load.stop()

    def status(self) -> dict[str, Any]:
        """The load generator's status plus the service's database and orders table size."""
        return {**self.load.status(), "database": str(self.service.db_path),
                "orders": self.service.n_orders, "orders_sized": self.service.sized.is_set(),
                "slow_query_probe_ms": self.service.probe_ms}

    def close(self) -> None:
        """Stop the load (and any sizing still running), remove the temporary database."""
        self.stop()
        self._stop_growing.set()
        if self._grower is not None:
            self._grower.join(30.0)
        self.service.close()
