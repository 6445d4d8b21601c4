"""Monitor: runs the collectors on an interval and writes what they measure to the store."""

from __future__ import annotations

import asyncio
import logging
import math
import os
import threading
import weakref
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import pandas as pd

from perfkit._anomaly_watch import AnomalyWatch
from perfkit._host import default_host
from perfkit._monitor_alerts import AlertBookkeeping
from perfkit._monitor_loop import CollectionLoop, CollectorState
from perfkit._ratelog import RepeatLog
from perfkit._time import Duration, as_timedelta
from perfkit.catalog import _NAME
from perfkit.collectors import (
    ApplicationCollector,
    CacheCollector,
    Collector,
    DatabaseCollector,
    RedisCollector,
    SystemCollector,
)
from perfkit.frames import format_labels
from perfkit.recorder import Recorder, _Span
from perfkit.store import Store

if TYPE_CHECKING:
    from perfkit.actions import ActionResult, Optimizer

__all__ = ["SERVICE_ENV", "Monitor", "default_host"]

SERVICE_ENV = "PERFKIT_SERVICE"
"""Environment variable giving a Monitor its stable service name (see ``Monitor.service``)."""

log = logging.getLogger("perfkit.monitor")

Hook = Callable[["Monitor", pd.DataFrame], None]

_LIVE: weakref.WeakSet[Monitor] = weakref.WeakSet()
"""This process's Monitors, to warn when two share one store and host."""


class Monitor(CollectionLoop, AlertBookkeeping):
    """Collects real metrics from this process on an interval into a store.

    ``Monitor(store=None)`` writes to the default SQLite store (or
    ``PERFKIT_STORE_URL``); pass a URL or a :class:`Store` to share one. After
    each collection it evaluates the alert rules (``alert_rules``, default: the
    catalogue thresholds; see :func:`perfkit.analysis.alerts`) over ``window``
    and writes fire / resolve events to the store. It also scores every collected
    series for anomalies online (one O(1) step per new sample, see
    :func:`perfkit.anomaly_scores`) and writes each anomaly episode's start and end
    to the same alert history with ``severity='anomaly-episode'`` (score in ``value``,
    ``anomaly_min_score`` in ``threshold``, the pattern in ``message``);
    :meth:`anomalies` lists what is unusual now. Anomaly alert rules
    (``AlertRule(kind="anomaly")`` in ``alert_rules``) run on those online
    states too (O(1) per sample, not a replay of the window) and write their
    pending / firing / resolved events with ``severity='anomaly'``. The
    background thread starts with :meth:`start` (or ``await start_monitoring()``);
    :meth:`collect` runs one collection on demand. A collector that raises is
    logged, counted in :meth:`health` and skipped; the others go on.
    ``service`` (or ``PERFKIT_SERVICE``) is a stable name action requests can be
    addressed to, besides ``host`` (``hostname:pid`` by default, new at each restart).

    ``host`` names one Monitor within a store: samples, alert states and anomaly
    episodes are keyed by it. Two Monitors writing the same host to one store are
    taken for one source: their samples of a metric form one series, either one's
    episode end (or its stop) ends the other's episode of that series in the store,
    and a Monitor's first collection ends the episodes the store shows open for its
    host from before it started (a run that died without :meth:`stop`), which for a
    second live Monitor are the first one's. So two Monitors in one process (which
    share the default host) need distinct ``host=`` names; a second one created for
    the same store and host while the first is not stopped logs a warning.
    """

    def __init__(self, store: str | Store | None = None, interval: float = 5.0, *,
                 host: str | None = None, disk_path: str = "/", window: Duration = "1h",
                 alert_rules: Any = None, anomaly_min_score: float = 0.5,
                 service: str | None = None) -> None:
        if isinstance(interval, bool) or not isinstance(interval, (int, float)) \
                or not math.isfinite(interval) or interval <= 0:
            raise ValueError(f"interval must be a positive number of seconds, got {interval!r}")
        # a string is kept as given (it reads back as the user wrote it); the store's `since`
        # takes no bare numbers, so seconds become a Timedelta
        td = as_timedelta(window, "window")
        self.store: Store = store if isinstance(store, Store) else Store(store)
        self.interval = float(interval)
        self.host = host or default_host()
        service = service if service is not None else os.environ.get(SERVICE_ENV) or None
        if service is not None and (not isinstance(service, str) or not service.strip()):
            raise ValueError(f"service must be a non-empty name such as 'orders-api', got "
                             f"{service!r}")
        self.service: str | None = service
        """A stable name for this service: action requests addressed to it are claimed
        too, so they outlive the process (``host`` is ``hostname:pid`` by default)."""
        self.window: Duration = window if isinstance(window, str) else td
        for other in list(_LIVE):
            if other.host == self.host and other.store.url == self.store.url \
                    and not other._stop.is_set():
                log.warning("a second Monitor writes host %r to %r while the first is not "
                            "stopped: their series and anomaly episodes will mix (give each "
                            "Monitor its own host=)", self.host, self.store)
                break
        _LIVE.add(self)
        self.alert_rules = alert_rules
        self._alert_state: dict[tuple[str, str, str], tuple[pd.Timestamp, str]] | None = None
        self._anomaly = AnomalyWatch(anomaly_min_score)
        self._stale_closed = False  # episodes a previous run of this host left open
        self._first_scored: pd.Timestamp | None = None
        self.recorder = Recorder()
        self.database = DatabaseCollector()
        self._optimizer: Optimizer | None = None  # created on first use (see .optimizer)
        self.cache: Any = None  # the last cache given to attach_cache(), for cache_optimization
        self._collectors: dict[str, CollectorState] = {}
        self._lock = threading.RLock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._hooks: list[Hook] = []
        self._hooks_thread: threading.Thread | None = None
        self._hooks_due = threading.Event()
        self._last_frame: pd.DataFrame | None = None
        self._repeats = RepeatLog(log)
        self.collections = 0
        """Collections run (on demand or by the background thread)."""
        self.add_collector(SystemCollector(disk_path))
        self.add_collector(ApplicationCollector(self.recorder))
        self.add_hook(lambda mon, _frame: mon._evaluate_alerts())
        self.add_hook(lambda mon, frame: mon._score_anomalies(frame))

    @property
    def addresses(self) -> list[str]:
        """The names action requests for this Monitor may use: ``host``, and ``service``."""
        return [self.host] + ([self.service] if self.service and self.service != self.host
                              else [])

    # -- instrumentation ---------------------------------------------------------------
    def track(self, name: str) -> _Span:
        """Time a request: ``with mon.track("GET /x"):`` or ``@mon.track("GET /x")``."""
        return self.recorder.track(name)

    def record(self, metric: str, value: float, labels: dict[str, str] | str | None = None) -> None:
        """Record a value of your own metric; each interval stores the mean of its values."""
        if not isinstance(metric, str) or not _NAME.match(metric):
            raise ValueError(f"metric name {metric!r} must look like 'group.name' "
                             "(lower case, dots)")
        if (isinstance(value, bool) or not isinstance(value, (int, float))
                or not math.isfinite(value)):
            raise ValueError(f"value for {metric!r} must be a finite number, got {value!r}")
        self.recorder.add_value(metric, float(value), format_labels(labels))

    def instrument_engine(self, engine: Any) -> DatabaseCollector:
        """Time every statement of a SQLAlchemy engine and read its pool."""
        self.database.instrument(engine)
        if "database" not in self._collectors:
            self.add_collector(self.database)
        return self.database

    def attach_cache(self, cache: Any, name: str | None = None) -> CacheCollector:
        """Collect ``cache.*`` metrics from any object with a ``stats()`` mapping."""
        c = CacheCollector(cache, self._cache_labels(name))
        c.name = f"cache:{name}" if name else "cache"
        self.add_collector(c)
        self.cache = cache
        return c

    def attach_redis(self, client: Any, name: str | None = None) -> RedisCollector:
        """Collect ``cache.*`` metrics from a Redis server through a redis-py client."""
        c = RedisCollector(client, self._cache_labels(name))
        c.name = f"redis:{name}" if name else "redis"
        self.add_collector(c)
        return c

    def _cache_labels(self, name: str | None) -> str:
        return format_labels({"cache": name}) if name else ""

    def add_collector(self, collector: Collector) -> None:
        """Add a collector (anything with ``name`` and ``collect()``); a same name replaces."""
        if not isinstance(collector, Collector):
            raise TypeError(f"{type(collector).__name__} is not a collector: it needs a `name` "
                            "attribute and a collect() method returning readings")
        with self._lock:
            self._collectors[collector.name] = CollectorState(collector)

    def add_hook(self, hook: Hook) -> None:
        """Call ``hook(monitor, frame)`` after each collection (errors are logged, not raised)."""
        self._hooks.append(hook)

    # -- collection --------------------------------------------------------------------
    def collect(self) -> pd.DataFrame:
        """Run every collector once now, write the samples, run the hooks (alerts, queued
        actions), and return the samples as a frame."""
        frame = self._collect_once(wait=True)
        self._run_hooks(frame)
        return frame

    # one round, the hooks and the background loops are in perfkit._monitor_loop

    @property
    def running(self) -> bool:
        """Whether the background collection thread is running."""
        t = self._thread
        return t is not None and t.is_alive()

    def start(self) -> Monitor:
        """Start collecting in a background thread (no-op when already running)."""
        with self._lock:
            if self.running:
                return self
            self._stop.clear()
            self._hooks_due.clear()
            _ = self.optimizer  # serve queued action requests from the store every interval
            self._thread = threading.Thread(target=self._run, name=f"perfkit-monitor-{self.host}",
                                            daemon=True)
            self._hooks_thread = threading.Thread(target=self._hooks_loop, daemon=True,
                                                  name=f"perfkit-hooks-{self.host}")
            self._thread.start()
            self._hooks_thread.start()
        return self

    def stop(self, timeout: float | None = None) -> None:
        """Stop collecting and the optimisation loop, then flush the store (no-op when stopped)."""
        with self._lock:
            t, self._thread = self._thread, None
            h, self._hooks_thread = self._hooks_thread, None
            self._stop.set()
            self._hooks_due.set()
        wait = timeout if timeout is not None else max(self.interval, 5.0) + 5.0
        for thread in (t, h):
            if thread is not None:
                thread.join(wait)
        opt = self._optimizer
        if opt is not None:
            opt.stop()
        with self._lock:
            ended = self._anomaly.close(pd.Timestamp.now(tz="UTC"))
        if len(ended):
            try:
                self.store.write_alert_events(ended.assign(host=self.host))
            except Exception as exc:  # noqa: BLE001 - a read-only store must not fail stop()
                log.warning("anomaly episode ends not stored: %s: %s", type(exc).__name__, exc)
        self.store.flush()

    async def start_monitoring(self) -> Monitor:
        """``start()`` for asyncio apps."""
        return await asyncio.to_thread(self.start)

    async def stop_monitoring(self) -> None:
        """``stop()`` for asyncio apps; does not block the event loop while joining."""
        await asyncio.to_thread(self.stop)

    def __enter__(self) -> Monitor:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- reading -----------------------------------------------------------------------
    def recent(self, window: Duration | None = None) -> pd.DataFrame:
        """This host's samples over ``window`` (default: the Monitor's window) from the store."""
        return self.store.samples(host=self.host, since=window or self.window)

    def health(self) -> dict[str, Any]:
        """Which collectors work, their last error, the store's buffer and write counts."""
        with self._lock:
            states = list(self._collectors.values())
        return {
            "running": self.running,
            "host": self.host,
            "interval": self.interval,
            "collections": self.collections,
            "collectors": {
                s.collector.name: {
                    "ok": s.runs > 0 and not s.failing,
                    "runs": s.runs,
                    "errors": s.errors,
                    "last_error": s.last_error,
                    "last_ok": s.last_ok.isoformat() if s.last_ok is not None else None,
                }
                for s in states
            },
            "store": self.store.health(),
        }

    # -- analysis -------------------------------------------------------------------------
    def summary(self, horizon: str | pd.Timedelta = "30min") -> dict[str, Any]:
        """The performance summary over this Monitor's window, every field computed.

        See :func:`perfkit.analysis.summary` for the keys.
        """
        from perfkit.analysis import summary

        return summary(self.recent(), monitoring_active=self.running,
                       optimization_active=bool(getattr(self, "optimization_active", False)),
                       actions=self.store.actions(host=self.host, since=self.window),
                       horizon=horizon)

    # alerts(), anomalies() and their bookkeeping are in perfkit._monitor_alerts

    # -- optimisation: thin delegation to perfkit.actions ------------------------------
    @property
    def optimizer(self) -> Optimizer:
        """This Monitor's :class:`perfkit.actions.Optimizer`; created on first use, which
        also registers its hook (claim queued action requests after each collection)."""
        opt = self._optimizer
        if opt is None:
            from perfkit.actions._runner import Optimizer

            with self._lock:
                opt = self._optimizer
                if opt is None:
                    opt = self._optimizer = Optimizer(self)
                    self.add_hook(opt.hook)
        return opt

    def run_action(self, name: str, dry_run: bool = False, *, requested_by: str = "user",
                   **params: Any) -> ActionResult:
        """Run the registered action ``name`` now; returns its :class:`ActionResult`
        (also written to the store's audit log). Unknown name / bad params: ValueError."""
        return self.optimizer.run(name, params, dry_run=dry_run, requested_by=requested_by)

    def request_action(self, name: str, host: str | None = None, dry_run: bool = False, *,
                       requested_by: str = "api", params: Mapping[str, Any] | None = None,
                       **kwparams: Any) -> int:
        """Queue ``name`` for the Monitor of ``host`` (default: this one) through the store;
        returns the request id. Validated now, so an unknown action or bad params raise
        ``ValueError`` here. Parameters come as keywords or, when one is called ``host`` or
        ``dry_run``, as ``params={...}``."""
        from perfkit.actions._registry import request

        return request(self.store, name, {**(params or {}), **kwparams}, host=host or self.host,
                       requested_by=requested_by, dry_run=dry_run)

    def start_optimization(self, **options: Any) -> Optimizer:
        """Start the automatic optimisation loop (options: see ``Optimizer.configure``)."""
        return self.optimizer.start(**options)

    def stop_optimization(self) -> None:
        """Stop the automatic optimisation loop (queued requests are still served)."""
        self.optimizer.stop()

    async def start_optimization_async(
            self, **options: Any) -> Optimizer:
        """``start_optimization()`` for asyncio apps."""
        return await asyncio.to_thread(self.start_optimization, **options)

    async def stop_optimization_async(self) -> None:
        """``stop_optimization()`` for asyncio apps; does not block the event loop."""
        await asyncio.to_thread(self.stop_optimization)

    @property
    def optimization_active(self) -> bool:
        """Whether the automatic optimisation loop is running."""
        opt = self._optimizer
        return opt is not None and opt.active
