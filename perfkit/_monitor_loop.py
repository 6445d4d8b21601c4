"""The Monitor's collection: one round of every collector into the store, the hooks run
after it, and the two background loops (collection on the interval; hooks apart, so a
slow store never delays collection).

A mixin of :class:`perfkit.Monitor` (kept apart so each file reads in one sitting); its
state (collectors, hooks, events) is set up in ``Monitor.__init__``, the threads in
``Monitor.start``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from perfkit._ratelog import RepeatLog
from perfkit.collectors import Collector
from perfkit.frames import SAMPLE_COLUMNS, as_samples, empty_samples
from perfkit.store import Store


@dataclass
class CollectorState:
    """One collector and its record: runs, errors, the last error and success."""

    collector: Collector
    runs: int = 0
    errors: int = 0
    last_error: str | None = None
    last_ok: pd.Timestamp | None = None
    failing: bool = False


class CollectionLoop:
    """Collection rounds, hooks and background loops of :class:`perfkit.Monitor`."""

    store: Store
    host: str
    interval: float
    collections: int
    _lock: threading.RLock
    _collectors: dict[str, CollectorState]
    _hooks: list[Callable[[Any, pd.DataFrame], None]]  # Monitor.add_hook's
    _stop: threading.Event
    _hooks_due: threading.Event
    _last_frame: pd.DataFrame | None
    _repeats: RepeatLog

    def _collect_once(self, wait: bool) -> pd.DataFrame:
        ts = pd.Timestamp.now(tz="UTC")
        rows: list[tuple[Any, ...]] = []
        with self._lock:
            states = list(self._collectors.values())
        for st in states:
            try:
                readings = st.collector.collect()
            except Exception as exc:  # noqa: BLE001 - one broken source must not stop the rest
                st.errors += 1
                st.last_error = f"{type(exc).__name__}: {exc}"
                st.failing = True
                self._repeats.log(logging.WARNING, f"collector:{st.collector.name}:{st.last_error}",
                                  "collector %s failed: %s", st.collector.name,
                                  st.last_error[:300])
                continue
            finally:
                st.runs += 1
            if st.failing:
                self._repeats.clear(f"collector:{st.collector.name}:{st.last_error}")
            st.last_ok, st.failing = ts, False
            rows += [(ts, self.host, r.metric, r.value, r.labels) for r in readings]
        frame = (as_samples(pd.DataFrame(rows, columns=list(SAMPLE_COLUMNS)), drop_invalid=True)
                 if rows else empty_samples())
        self.store.write(frame, on_invalid="drop", wait=wait)
        self.collections += 1
        return frame

    def _run_hooks(self, frame: pd.DataFrame) -> None:
        for hook in list(self._hooks):
            try:
                hook(self, frame)
            except Exception as exc:  # noqa: BLE001 - hooks (alerts, actions) must not stop collection
                self._repeats.log(logging.WARNING, f"hook:{hook!r}:{type(exc).__name__}",
                                  "monitor hook %r failed: %s: %s", hook, type(exc).__name__,
                                  str(exc)[:300])

    def _hooks_loop(self) -> None:
        # Hooks read the store (alerts replay the window, actions are claimed), so a
        # hung database would hold them: they run here, never in the collection loop.
        # A collection that lands while the hooks still run is picked up next time.
        while not self._stop.is_set():
            self._hooks_due.wait()
            self._hooks_due.clear()
            if self._stop.is_set():
                return
            frame, self._last_frame = self._last_frame, None
            if frame is not None:
                self._run_hooks(frame)

    def _run(self) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set():
            try:
                self._last_frame = self._collect_once(wait=False)
                self._hooks_due.set()
            except Exception as exc:  # noqa: BLE001 - the loop outlives any single failure
                self._repeats.log(logging.ERROR, f"collect:{type(exc).__name__}",
                                  "collection failed: %s: %s", type(exc).__name__, str(exc)[:300])
            next_at += self.interval
            delay = next_at - time.monotonic()
            if delay < 0:  # fell behind (suspended process): skip, do not burst
                next_at = time.monotonic()
                delay = 0
            self._stop.wait(delay)
