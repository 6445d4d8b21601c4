"""Load the shown time window from a store, fetching only what is new on each refresh.

A dashboard refreshes every few seconds over a window of up to a day: reading
the whole day each time would cost most of the refresh budget. The
:class:`WindowLoader` keeps the last frame per (host selection, window) and on
each refresh asks the store only for samples since the newest one it holds
(less a small overlap, so a batch written late is still picked up), then drops
what slid out of the window.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from perfkit._time import Duration, as_timedelta
from perfkit.frames import empty_samples
from perfkit.store import Store

__all__ = ["WINDOWS", "WindowLoader", "load_window", "parse_window"]

WINDOWS = ("5min", "15min", "1h", "6h", "24h")
"""Windows the dashboard offers (any pandas duration works in the functions)."""


def parse_window(window: Duration, what: str = "window") -> pd.Timedelta:
    """A positive ``Timedelta`` from ``"15min"``, ``"7d"``, a Timedelta or seconds; anything
    else raises :class:`perfkit.errors.InvalidInputError` (a ``ValueError``)."""
    return as_timedelta(window, what)


def load_window(store: Store, window: str | pd.Timedelta = "1h",
                host: str | Sequence[str] | None = None, *, until: pd.Timestamp | None = None
                ) -> pd.DataFrame:
    """Samples of ``host`` (None: every host) over the ``window`` before ``until`` (now)."""
    td = parse_window(window)
    end = until if until is not None else pd.Timestamp.now(tz="UTC")
    hosts = None if host is None else ([host] if isinstance(host, str) else list(host))
    return store.samples(host=hosts, since=end - td, until=end)


@dataclass
class _Entry:
    frame: pd.DataFrame
    start: pd.Timestamp      # the window start this frame was loaded for
    newest: pd.Timestamp | None
    used: float


class WindowLoader:
    """Keeps each shown window's frame and extends it incrementally (thread-safe).

    ``overlap`` is re-read on every refresh: samples that reach the store up to
    that late (a Monitor's buffered batch) still appear. ``max_entries`` bounds
    how many (host, window) frames are kept.
    """

    def __init__(self, store: Store, *, overlap: str | pd.Timedelta = "30s",
                 max_entries: int = 8) -> None:
        self.store = store
        self.overlap = parse_window(overlap, "overlap")
        self.max_entries = max_entries
        self._lock = threading.Lock()
        self._entries: dict[tuple[tuple[str, ...] | None, pd.Timedelta], _Entry] = {}
        self.last_fetch_rows = 0

    def frame(self, window: str | pd.Timedelta = "1h", host: str | Sequence[str] | None = None,
              *, now: pd.Timestamp | None = None) -> pd.DataFrame:
        """The samples of ``host`` over the ``window`` before ``now``; raises what the store raises.

        ``host``, ``metric`` and ``labels`` come back as categoricals (same
        values; ``.astype(str)`` gives the contract's dtypes).
        """
        td = parse_window(window)
        hosts = None if host is None else ((host,) if isinstance(host, str) else tuple(host))
        end = now if now is not None else pd.Timestamp.now(tz="UTC")
        start = end - td
        key = (hosts, td)
        with self._lock:
            entry = self._entries.get(key)
        if entry is None or entry.start > start or entry.newest is None:
            fresh = _categorize(self.store.samples(host=list(hosts) if hosts else None,
                                                   since=start))
            self.last_fetch_rows = len(fresh)
            entry = _Entry(fresh, start, fresh["ts"].max() if len(fresh) else None, 0.0)
        else:
            cut = entry.newest - self.overlap
            new = self.store.samples(host=list(hosts) if hosts else None, since=cut)
            self.last_fetch_rows = len(new)
            old = entry.frame
            # The frame is in time order: the rows to keep are one contiguous slice.
            lo, hi = old["ts"].searchsorted(start), old["ts"].searchsorted(cut)
            old = old.iloc[lo:hi]
            merged = _concat(old, new) if len(new) else old.reset_index(drop=True)
            newest = merged["ts"].iloc[-1] if len(merged) else None
            entry = _Entry(merged, start, newest, 0.0)
        entry.used = time.monotonic()
        with self._lock:
            self._entries[key] = entry
            while len(self._entries) > self.max_entries:
                oldest = min(self._entries, key=lambda k: self._entries[k].used)
                del self._entries[oldest]
        return entry.frame if len(entry.frame) else empty_samples()

    def clear(self) -> None:
        """Forget every kept frame (the next call reads the whole window)."""
        with self._lock:
            self._entries.clear()


_KEYS = ("host", "metric", "labels")


def _categorize(frame: pd.DataFrame) -> pd.DataFrame:
    # A day of samples repeats a few dozen strings a million times: as categoricals,
    # every filter and group-by of a refresh works on small integer codes.
    if not len(frame):
        return frame
    return frame.astype({k: "category" for k in _KEYS})


def _concat(old: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    """``old`` (categorical keys) + ``new`` rows, keeping the categorical codes of ``old``."""
    if not len(old):
        return _categorize(new.reset_index(drop=True))
    cols = {}
    for k in _KEYS:
        cats = old[k].cat.categories
        extra = pd.Index(new[k].unique()).difference(cats)
        if len(extra):
            cats = cats.append(extra)
            old = old.assign(**{k: old[k].cat.set_categories(cats)})
        cols[k] = pd.Categorical(new[k], categories=cats)
    new = new.assign(**cols)
    return pd.concat([old, new], ignore_index=True)
