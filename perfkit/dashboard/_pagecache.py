"""One built page per host selection, window, horizon and refresh tick, shared by sessions."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from perfkit.dashboard._build import build_page
from perfkit.dashboard._page import Page
from perfkit.dashboard._window import WindowLoader

__all__ = ["PageCache"]

log = logging.getLogger("perfkit.dashboard")

class PageCache:
    """One :class:`Page` per (hosts, window, horizon) and refresh tick, shared by all sessions.

    Every browser session of a server asks for the same page in the same tick;
    it is computed once (under a per-key lock, so concurrent sessions wait for
    the first instead of repeating it) and reused until the tick ends.
    """

    def __init__(self, store: Any, loader: WindowLoader | None = None, *,
                 max_entries: int = 8) -> None:
        self.store = store
        self.loader = loader if loader is not None else WindowLoader(store)
        self.max_entries = max_entries
        self._lock = threading.Lock()
        self._pages: dict[tuple[Any, ...], Page] = {}
        self._building: dict[tuple[Any, ...], threading.Lock] = {}

    def get(self, *, window: str, horizon: str, host: str | Sequence[str] | None,
            refresh_s: float, now: float | None = None,
            context: Callable[[], dict[str, Any]] | None = None,
            stale_ok: bool = False) -> Page:
        """The page for this tick (``floor(now / refresh_s)``), computed on first request.

        ``context`` returns extra :func:`build_page` arguments (``statements``,
        ``cache_stats``, ``phases``); it is called only when the page is computed.
        ``stale_ok`` (timed refreshes): while this tick's page is not built yet,
        return the previous tick's and build the new one in the background, so a
        refresh never waits for the analysis (the page says when it was built).
        """
        if not refresh_s > 0:
            raise ValueError(f"refresh_s must be positive, got {refresh_s!r}")
        tick = int((time.time() if now is None else now) // refresh_s)
        hosts = None if host is None else ((host,) if isinstance(host, str) else tuple(host))
        key = (hosts, str(window), str(horizon), float(refresh_s), tick)
        with self._lock:
            page = self._pages.get(key)
            if page is not None:
                return page
            previous = self._pages.get((*key[:-1], tick - 1)) if stale_ok else None
            if previous is not None:
                if key not in self._building:
                    self._building[key] = threading.Lock()
                    threading.Thread(target=self._build_quietly, daemon=True,
                                     name="perfkit-dashboard-page",
                                     args=(key, window, horizon, hosts, context)).start()
                return previous
            build_lock = self._building.setdefault(key, threading.Lock())
        with build_lock:
            with self._lock:
                page = self._pages.get(key)
            if page is None:
                page = self._build(key, window, horizon, hosts, context)
        return page

    def _build(self, key: tuple[Any, ...], window: str, horizon: str,
               hosts: tuple[str, ...] | None,
               context: Callable[[], dict[str, Any]] | None) -> Page:
        try:
            page = build_page(self.store, window=window, horizon=horizon, host=hosts,
                              loader=self.loader, **(context() if context else {}))
        finally:
            with self._lock:
                self._building.pop(key, None)
        tick = key[-1]
        with self._lock:
            self._pages[key] = page
            for old in [k for k in self._pages if k[-1] < tick - 1]:
                del self._pages[old]
            while len(self._pages) > self.max_entries:
                del self._pages[next(iter(self._pages))]
        return page

    def _build_quietly(self, *args: Any) -> None:
        build_lock = self._building.get(args[0])
        if build_lock is None:
            return
        with build_lock:
            try:
                self._build(*args)
            except Exception:
                log.debug("background page build failed", exc_info=True)

    def invalidate(self) -> None:
        """Drop every cached page (after an action or a control change)."""
        with self._lock:
            self._pages.clear()

