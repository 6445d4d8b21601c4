"""Collectors: one module per source. Each has ``name`` and ``collect() -> list[Reading]``.

A collector reports only what its source really measured; a metric without a
source is absent from the frame, never a made-up zero.
"""

from perfkit.collectors.application import ApplicationCollector
from perfkit.collectors.base import Collector, Reading
from perfkit.collectors.cache import CacheCollector, RedisCollector
from perfkit.collectors.database import DatabaseCollector
from perfkit.collectors.system import SystemCollector

__all__ = ["Collector", "Reading", "SystemCollector", "ApplicationCollector", "DatabaseCollector",
           "CacheCollector", "RedisCollector"]
