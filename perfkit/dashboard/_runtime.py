"""What one dashboard server holds: the store, and in all-in-one mode the Monitor and the demo.

Two modes:

* **all-in-one** (``embedded=True``, the default when no store URL is given):
  a Monitor watches this process and the demo service runs in it, so a first
  run shows live data with nothing else installed;
* **viewer** (a store URL given, e.g. PostgreSQL shared by several services):
  the page only reads the store.

In both, actions are queued in the store for the selected host's Monitor to
claim, run and record (the embedded Monitor is one such host).

``app.py`` keeps exactly one :class:`Runtime` per server (``st.cache_resource``),
never one per browser session or rerun.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from perfkit.dashboard._page import Page
from perfkit.dashboard._pagecache import PageCache
from perfkit.dashboard._status import StoreStatus, failed_status, probe_store
from perfkit.dashboard._window import WindowLoader
from perfkit.errors import InvalidInputError

__all__ = ["DEMO_ENV", "EMBEDDED_ENV", "ActionTicket", "Runtime", "open_runtimes",
           "resolve_mode", "shared_runtime"]

log = logging.getLogger("perfkit.dashboard")

EMBEDDED_ENV = "PERFKIT_EMBEDDED"
"""Environment variable forcing the mode: ``1`` all-in-one, ``0`` viewer."""

DEMO_ENV = "PERFKIT_DEMO"
"""``0`` runs an all-in-one dashboard without the demo workload (it watches only itself)."""

_opened: weakref.WeakSet[Runtime] = weakref.WeakSet()
_shared_lock = threading.Lock()


def open_runtimes() -> list[Runtime]:
    """The runtimes opened in this process and not closed (tests reach the app's one here)."""
    return list(_opened)


def _flag(name: str, default: bool) -> bool:
    v = os.environ.get(name, "").strip().lower()
    if not v:
        return default
    if v in ("1", "true", "yes", "on"):
        return True
    if v in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{name}={v!r} is not understood; use 1 or 0")


def shared_runtime(store_url: str | None, embedded: bool) -> Runtime:
    """The open runtime of this process for ``(store_url, embedded)``, opened if there is none.

    ``perfkit dashboard`` opens it before the server starts, so collection begins
    with the command and the first visitor finds history already collected.
    """
    with _shared_lock:
        for rt in list(_opened):
            if rt.store_url == store_url and rt.embedded == embedded:
                return rt
        return Runtime(store_url, embedded=embedded).open()


def resolve_mode(store_url: str | None, embedded: bool | None = None) -> bool:
    """All-in-one unless told otherwise: ``embedded`` argument, then ``PERFKIT_EMBEDDED``,
    then "viewer when a store URL is configured"."""
    if embedded is not None:
        return embedded
    return _flag(EMBEDDED_ENV, not (store_url or os.environ.get("PERFKIT_STORE_URL")))


@dataclass(frozen=True)
class ActionTicket:
    """What happened to an action asked for from the page."""

    action: str
    host: str
    mode: str          # "queued": a request row in the store for that host's Monitor
    dry_run: bool
    message: str
    action_id: int | None = None


class Runtime:
    """The store, the page cache and (all-in-one) the Monitor and demo of one dashboard server.

    Nothing starts on import; :meth:`open` builds and starts everything the
    mode needs. ``interval`` is the embedded Monitor's collection interval
    (short, so a first visit fills within a minute); ``rate`` the demo's
    requests per second; ``demo`` None follows ``PERFKIT_DEMO`` (default on).
    """

    def __init__(self, store_url: str | None = None, *, embedded: bool | None = None,
                 interval: float = 2.0, rate: float = 20.0, demo: bool | None = None) -> None:
        from perfkit.store import Store

        self.embedded = resolve_mode(store_url, embedded)
        self.store_url = store_url
        self.store = Store(store_url)
        self.loader = WindowLoader(self.store)
        self.pages = PageCache(self.store, self.loader)
        self.monitor: Any = None
        self.demo: Any = None
        self._lock = threading.Lock()
        self._last_status = StoreStatus(True, "")
        self._last_pages: dict[tuple[Any, ...], Page] = {}
        self._last_hosts: list[str] | None = None
        if self.embedded:
            from perfkit.monitor import Monitor

            self.monitor = Monitor(self.store, interval=interval)
            # Touching the optimizer registers its hook: from now on this Monitor claims
            # the actions queued for its host after each collection.
            self.monitor.optimizer  # noqa: B018
            if _flag(DEMO_ENV, True) if demo is None else demo:
                from perfkit.demo import Demo

                self.demo = Demo(self.monitor, rate=rate)

    # -- life cycle ----------------------------------------------------------------------
    def open(self) -> Runtime:
        """Start the Monitor and the demo (all-in-one); nothing to start in viewer mode."""
        if self.monitor is not None:
            # The collection thread collects at once. No extra collect() before it: two
            # collections a moment apart give a CPU reading over a few milliseconds (0 or
            # 100 %), a start-up spike that would widen the CPU forecast for half an hour.
            self.monitor.start()
        if self.demo is not None:
            self.demo.start()
        _opened.add(self)
        return self

    def close(self) -> None:
        """Stop the demo and the Monitor, close the store."""
        _opened.discard(self)
        if self.demo is not None:
            self.demo.close()
        if self.monitor is not None:
            if self.optimizing:
                self.monitor.stop_optimization()
            self.monitor.stop()
        self.store.close()

    # -- controls ------------------------------------------------------------------------
    @property
    def host(self) -> str | None:
        """The embedded Monitor's host name (None in viewer mode)."""
        return self.monitor.host if self.monitor is not None else None

    @property
    def monitoring(self) -> bool:
        """Whether the embedded Monitor is collecting."""
        return self.monitor is not None and self.monitor.running

    def set_monitoring(self, on: bool) -> None:
        """Start or stop the embedded Monitor (viewer mode: a clear error)."""
        mon = self._need_monitor("start or stop monitoring")
        mon.start() if on else mon.stop()

    @property
    def optimizing(self) -> bool:
        """Whether the embedded Monitor's automatic optimisation loop runs."""
        return self.monitor is not None and self.monitor.optimization_active

    def set_optimizing(self, on: bool) -> None:
        """Start or stop automatic optimisation on the embedded Monitor."""
        mon = self._need_monitor("start or stop automatic optimisation")
        mon.start_optimization() if on else mon.stop_optimization()

    @property
    def demo_running(self) -> bool:
        """Whether the demo load is running."""
        return self.demo is not None and self.demo.running

    def set_demo(self, on: bool) -> None:
        """Start or stop the demo's load (the service stays, instrumented)."""
        if self.demo is None:
            raise RuntimeError("this dashboard runs no demo (viewer mode); start one with "
                               "`perfkit demo --store URL` next to your store")
        self.demo.start() if on else self.demo.stop()

    def _need_monitor(self, what: str) -> Any:
        if self.monitor is None:
            raise RuntimeError(f"cannot {what} from a viewer: the Monitors run inside the "
                               "services that fill the store. Open the dashboard without a "
                               "store URL (or with PERFKIT_EMBEDDED=1) to run one here.")
        return self.monitor

    # -- reading -------------------------------------------------------------------------
    def status(self) -> StoreStatus:
        """Probe the store now (cheap) and remember the answer."""
        self._last_status = probe_store(self.store)
        return self._last_status

    def hosts(self) -> list[str]:
        """Hosts with samples in the store; this server's own host first (all-in-one).

        While the store does not answer: the list it gave last (so the page keeps
        its selection), or the error when it never answered.
        """
        try:
            found = self.store.hosts()
        except Exception:
            if self._last_hosts is None:
                raise
            return list(self._last_hosts)
        own = self.host
        if own is not None:
            found = [own] + [h for h in found if h != own]
        self._last_hosts = found
        return found

    def page(self, *, window: str, horizon: str, host: str | None, refresh_s: float,
             stale_ok: bool = False,
             recent_s: float | None = None) -> tuple[Page | None, StoreStatus]:
        """This tick's page and the store status; while the store is down, the last good
        page for the same selection (or None) with the failing status. ``stale_ok`` and
        ``recent_s``: see :meth:`PageCache.get`."""
        status = self.status()
        key = (host, window, horizon)
        if status.ok:
            own = self.monitor is not None and host == self.host
            try:
                page = self.pages.get(window=window, horizon=horizon, host=host,
                                      refresh_s=refresh_s, stale_ok=stale_ok,
                                      recent_s=recent_s,
                                      context=self._local_context if own else None)
            except Exception as exc:  # noqa: BLE001 - a read failing between probe and load
                status = failed_status(self.store.url, exc)
            else:
                with self._lock:
                    self._last_pages[key] = page
                return page, status
        with self._lock:
            return self._last_pages.get(key), status

    def _local_context(self) -> dict[str, Any]:
        # Only this process's Monitor knows its statements and cache counters.
        mon = self.monitor
        cache = getattr(mon, "cache", None)
        out = {"statements": mon.database.statements(),
               "cache_stats": cache.stats() if cache is not None else None}
        if self.demo is not None:
            out["phases"] = self.demo.load.phases_frame()
        return out

    # -- actions -------------------------------------------------------------------------
    def act(self, action: str, params: Mapping[str, Any] | None = None, *, host: str,
            dry_run: bool = False, requested_by: str = "dashboard") -> ActionTicket:
        """Queue a registered action for ``host``'s Monitor through the store.

        The name and params are checked against the action registry first (an
        unknown action or bad params raise ``ValueError``; nothing else can
        run). The same path serves this server's own Monitor (all-in-one) and
        a service on another machine (viewer): the Monitor claims the request
        after its next collection, runs it and writes the result to the row.
        """
        from perfkit.actions._registry import request

        if not isinstance(host, str) or not host:
            raise InvalidInputError("choose one host to run the action on")
        if self.monitor is not None:
            aid = self.monitor.request_action(action, host, dry_run, requested_by=requested_by,
                                              params=dict(params or {}))
        else:  # a viewer without a Monitor of its own queues through the store directly
            aid = request(self.store, action, params, host=host, requested_by=requested_by,
                          dry_run=dry_run)
        self.pages.invalidate()
        when = "after its next collection"
        if self.monitor is not None and host == self.monitor.host and not self.monitor.running:
            when = "once monitoring is switched back on"
        kind = "dry run" if dry_run else "run"
        return ActionTicket(action, host, "queued", dry_run,
                            f"{action} ({kind}) queued as request #{aid} for {host}; its Monitor "
                            f"claims it {when} and the result appears in the action history.",
                            aid)
