"""Logging a failure that repeats every interval: once in full, then a count once a minute."""

from __future__ import annotations

import logging
import threading
import time

__all__ = ["RepeatLog"]

EVERY_S = 60.0


class RepeatLog:
    """Logs the first occurrence of each key, then at most one line per ``every`` seconds
    saying how many times it happened since; a different key logs at once. Thread-safe.

    ``clear(key)`` forgets a key (the failure ended), so its next occurrence logs in full.
    """

    def __init__(self, logger: logging.Logger, every: float = EVERY_S) -> None:
        self.logger = logger
        self.every = every
        self._lock = threading.Lock()
        self._seen: dict[str, tuple[float, int]] = {}  # key -> (last logged, suppressed since)

    def log(self, level: int, key: str, msg: str, *args: object) -> bool:
        """Log ``msg % args`` unless ``key`` was logged less than ``every`` seconds ago;
        returns whether a line was written."""
        now = time.monotonic()
        with self._lock:
            last, suppressed = self._seen.get(key, (None, 0))
            if last is not None and now - last < self.every:
                self._seen[key] = (last, suppressed + 1)
                return False
            self._seen[key] = (now, 0)
        if suppressed:
            msg = f"{msg} (repeated {suppressed} more time(s) in the last {self.every:.0f} s)"
        self.logger.log(level, msg, *args)
        return True

    def clear(self, key: str) -> None:
        """The failure behind ``key`` is over: log it in full if it comes back."""
        with self._lock:
            self._seen.pop(key, None)
