"""What the optimiser and the actions may use of a Monitor: one narrow, typed interface.

:class:`perfkit.Monitor` satisfies it; a test or another host process can pass any object
with these members. Nothing in :mod:`perfkit.actions` reaches further into the Monitor.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import pandas as pd

    from perfkit._time import Duration
    from perfkit.collectors import DatabaseCollector
    from perfkit.store import Store

__all__ = ["ActionContext"]


class ActionContext(Protocol):
    """The Monitor as the optimiser and the actions see it.

    ``store`` holds the samples, the queue and the audit log; ``host`` names the process the
    actions act on; ``database`` knows the instrumented SQLAlchemy engines and their
    statements; ``cache`` is the last cache given to ``attach_cache`` (None without one);
    ``interval`` and ``running`` say how fresh ``recent()`` is.
    """

    store: Store
    host: str
    interval: float
    cache: Any
    database: DatabaseCollector

    @property
    def running(self) -> bool:
        """Whether the background collection thread runs."""
        ...

    def collect(self) -> pd.DataFrame:
        """One collection now, written to the store; its samples."""
        ...

    def recent(self, window: Duration | None = None) -> pd.DataFrame:
        """This host's samples over ``window`` from the store."""
        ...

    def add_hook(self, hook: Callable[[Any, pd.DataFrame], None]) -> None:
        """Call ``hook(monitor, frame)`` after each collection."""
        ...
