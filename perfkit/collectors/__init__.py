"""Collectors: one module per source. Each has ``name`` and ``collect() -> list[Reading]``.

A collector reports only what its source really measured; a metric without a
source is absent from the frame, never a made-up zero.
"""

from perfkit.collectors._application import ApplicationCollector
from perfkit.collectors._base import Collector, Reading
from perfkit.collectors._cache import CacheCollector, RedisCollector
from perfkit.collectors._database import INTERNAL, DatabaseCollector
from perfkit.collectors._system import SystemCollector

__all__ = [
           "INTERNAL",
           "ApplicationCollector",
           "CacheCollector",
           "Collector",
           "DatabaseCollector",
           "Reading",
           "RedisCollector",
           "SystemCollector",
]
