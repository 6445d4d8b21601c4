"""Is the store answering? The facts behind the dashboard's "store unreachable" banner."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from perfkit.store._engine import mask

__all__ = ["StoreStatus", "failed_status", "probe_store"]


@dataclass(frozen=True)
class StoreStatus:
    """Whether the store answered a read just now, its URL (password masked) and the error."""

    ok: bool
    url: str
    error: str | None = None
    buffered: int = 0
    dropped: int = 0

    @property
    def message(self) -> str:
        """One line for a banner: what is wrong and that the page keeps retrying."""
        if self.ok:
            return f"store {self.url} reachable"
        return (f"Store unreachable: {self.url} — {self.error}. The page retries on every "
                "refresh and recovers by itself when the store answers again; what it "
                "shows meanwhile is the last data it read.")


def probe_store(store: Any) -> StoreStatus:
    """Ask ``store`` for its host list (a cheap read) and report the outcome; never raises."""
    url = mask(str(getattr(store, "url", "?")))
    try:
        store.hosts()
    except Exception as exc:  # noqa: BLE001 - any failure to read means "unreachable" here
        return StoreStatus(False, url, f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}")
    health = store.health() if callable(getattr(store, "health", None)) else {}
    return StoreStatus(True, url, None, int(health.get("buffered", 0) or 0),
                       int(health.get("dropped", 0) or 0))


def failed_status(url: str | None, exc: BaseException) -> StoreStatus:
    """The status of a store that could not even be opened (bad URL, server down at start)."""
    first = str(exc).splitlines()[0][:300] if str(exc) else ""
    return StoreStatus(False, mask(url or "(default)"), f"{type(exc).__name__}: {first}")
