"""The collector protocol shared by every source."""

from __future__ import annotations

from typing import NamedTuple, Protocol, runtime_checkable

__all__ = ["Collector", "Reading"]


class Reading(NamedTuple):
    """One measured value: the Monitor adds the timestamp and host."""

    metric: str
    value: float
    labels: str = ""


@runtime_checkable
class Collector(Protocol):
    """Anything with a ``name`` and a ``collect()`` that returns readings."""

    name: str

    def collect(self) -> list[Reading]:
        """Measure now and return the readings (may be empty)."""
        ...
