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

Key = tuple[Any, ...]


class PageCache:
    """One :class:`Page` per (hosts, window, horizon) and refresh tick, shared by all sessions.

    Every browser session of a server asks for the same page in the same tick;
    it is computed once (under a per-key lock, so concurrent sessions wait for
    the first instead of repeating it) and reused until the tick ends.
    ``builder`` computes a page (default :func:`build_page`).
    """

    def __init__(self, store: Any, loader: WindowLoader | None = None, *,
                 max_entries: int = 8, builder: Callable[..., Page] = build_page) -> None:
        self.store = store
        self.loader = loader if loader is not None else WindowLoader(store)
        self.max_entries = max_entries
        self._builder = builder
        self._lock = threading.Lock()
        self._pages: dict[Key, tuple[Page, float]] = {}   # key -> (page, requested at)
        self._building: dict[Key, threading.Lock] = {}
        self._threads: list[threading.Thread] = []

    def get(self, *, window: str, horizon: str, host: str | Sequence[str] | None,
            refresh_s: float, now: float | None = None,
            context: Callable[[], dict[str, Any]] | None = None,
            stale_ok: bool = False, recent_s: float | None = None) -> Page:
        """The page for this tick (``floor(now / refresh_s)``), computed on first request.

        ``context`` returns extra :func:`build_page` arguments (``statements``,
        ``cache_stats``, ``phases``); it is called only when the page is computed.
        While this tick's page is not built yet, a page already built for the same
        hosts, window and horizon can be returned at once, the new one being built
        in the background (the page says when it was built): ``stale_ok`` (timed
        refreshes) accepts the previous tick's, ``recent_s`` (a new visitor) the
        newest one requested within the last ``recent_s`` seconds, whatever its
        refresh interval.
        """
        if not refresh_s > 0:
            raise ValueError(f"refresh_s must be positive, got {refresh_s!r}")
        if recent_s is not None and not recent_s >= 0:
            raise ValueError(f"recent_s must be a non-negative number of seconds, "
                             f"got {recent_s!r}")
        at = time.time() if now is None else now
        tick = int(at // refresh_s)
        hosts = None if host is None else ((host,) if isinstance(host, str) else tuple(host))
        key = (hosts, str(window), str(horizon), float(refresh_s), tick)
        with self._lock:
            entry = self._pages.get(key)
            if entry is not None:
                return entry[0]
            earlier = self._earlier(key, at, stale_ok, recent_s)
            if earlier is not None:
                if key not in self._building:
                    self._building[key] = threading.Lock()
                    thread = threading.Thread(target=self._build_quietly, daemon=True,
                                              name="perfkit-dashboard-page",
                                              args=(key, at, window, horizon, hosts, context))
                    self._threads = [t for t in self._threads if t.is_alive()] + [thread]
                    thread.start()
                return earlier
            build_lock = self._building.get(key) or self._same_view_build(key, recent_s)
            if build_lock is None:
                build_lock = self._building.setdefault(key, threading.Lock())
        with build_lock:
            with self._lock:
                entry = self._pages.get(key)
                # a new visitor may have waited for another key's build: take that one
                done = entry[0] if entry is not None else self._earlier(key, at, False,
                                                                        recent_s)
            page = done if done is not None else \
                self._build(key, at, window, horizon, hosts, context)
        return page

    def _same_view_build(self, key: Key, recent_s: float | None) -> threading.Lock | None:
        # caller holds self._lock. A new visitor arriving while the same view is being
        # built (the warm-up, another tick's refresh) waits for that build rather than
        # running a second one beside it.
        if recent_s is None:
            return None
        return next((lock for k, lock in self._building.items() if k[:3] == key[:3]), None)

    def _earlier(self, key: Key, at: float, stale_ok: bool,
                 recent_s: float | None) -> Page | None:
        # caller holds self._lock
        if stale_ok:
            entry = self._pages.get((*key[:-1], key[-1] - 1))
            if entry is not None:
                return entry[0]
        if recent_s is None:
            return None
        same_view = [e for k, e in self._pages.items()
                     if k[:3] == key[:3] and at - e[1] <= recent_s]
        return max(same_view, key=lambda e: e[1])[0] if same_view else None

    def _build(self, key: Key, at: float, window: str, horizon: str,
               hosts: tuple[str, ...] | None,
               context: Callable[[], dict[str, Any]] | None) -> Page:
        try:
            page = self._builder(self.store, window=window, horizon=horizon, host=hosts,
                                 loader=self.loader, **(context() if context else {}))
        finally:
            with self._lock:
                self._building.pop(key, None)
        with self._lock:
            self._pages[key] = (page, at)
            # ticks are comparable only within one refresh interval: drop that
            # interval's older ticks, then the oldest pages past max_entries
            for old in [k for k in self._pages if k[:4] == key[:4] and k[-1] < key[-1] - 1]:
                del self._pages[old]
            while len(self._pages) > self.max_entries:
                del self._pages[min(self._pages, key=lambda k: self._pages[k][1])]
        return page

    def _build_quietly(self, key: Key, *args: Any) -> None:
        build_lock = self._building.get(key)
        if build_lock is None:
            return
        with build_lock:
            try:
                self._build(key, *args)
            except Exception:
                log.debug("background page build failed", exc_info=True)

    def wait_background(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the background builds started so far;
        True when none is still running."""
        end = time.monotonic() + timeout
        for thread in list(self._threads):
            thread.join(max(0.0, end - time.monotonic()))
        return not any(t.is_alive() for t in self._threads)

    def invalidate(self) -> None:
        """Drop every cached page (after an action or a control change)."""
        with self._lock:
            self._pages.clear()
