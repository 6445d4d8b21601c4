"""The metric catalogue: what each metric means, its unit, and which way is worse.

Every name perfkit must *look up* (a store query, an alert rule, a threshold
override) goes through :func:`get_metric`, so a typo fails loudly with close
matches instead of silently matching nothing. Analysis
functions accept any series name; they only consult the catalogue for
direction, thresholds and bounds when the name is known.
"""

from __future__ import annotations

import difflib
import math
import re
import threading
from dataclasses import dataclass, replace
from typing import Literal

import pandas as pd

from perfkit.errors import UnknownNameError

__all__ = [
    "GROUPS",
    "PERCENTILES",
    "Direction",
    "Metric",
    "catalog_frame",
    "find_metric",
    "get_metric",
    "metrics",
    "register_metric",
    "set_thresholds",
    "unknown_name_error",
]

Direction = Literal["higher", "lower", "none"]
"""Which way a metric gets worse: ``higher`` (CPU), ``lower`` (hit rate) or ``none``."""

GROUPS = ("system", "process", "cache", "database", "application")
"""The metric groups, in display order. Users may add their own groups."""

PERCENTILES = (50, 95, 99)
"""Latency percentiles carried as ``<metric>.p50`` / ``.p95`` / ``.p99``."""

_NAME = re.compile(r"^[a-z_][a-z0-9_]*(\.[a-z0-9_]+)+$")


@dataclass(frozen=True, slots=True)
class Metric:
    """One catalogue entry.

    ``warning`` and ``critical`` are compared in the metric's ``direction``:
    for ``higher`` a value at or above the threshold is bad, for ``lower`` a
    value at or below it. ``lower_bound`` / ``upper_bound`` are the physical
    limits (0–100 for a percentage) used to clip forecast intervals.
    """

    name: str
    unit: str
    group: str
    direction: Direction = "none"
    warning: float | None = None
    critical: float | None = None
    lower_bound: float | None = None
    upper_bound: float | None = None
    description: str = ""

    def is_worse(self, value: float, threshold: float) -> bool:
        """True when ``value`` is at or past ``threshold`` in the bad direction."""
        if self.direction == "higher":
            return value >= threshold
        if self.direction == "lower":
            return value <= threshold
        return False

    def severity(self, value: float) -> str | None:
        """``"critical"``, ``"warning"`` or None for a single value."""
        if self.critical is not None and self.is_worse(value, self.critical):
            return "critical"
        if self.warning is not None and self.is_worse(value, self.warning):
            return "warning"
        return None


def _pct(name: str, group: str, direction: Direction, warn: float | None, crit: float | None,
         desc: str) -> Metric:
    return Metric(name, "%", group, direction, warn, crit, 0.0, 100.0, desc)


def _builtin() -> list[Metric]:
    m = [
        _pct("system.cpu_usage", "system", "higher", 70, 90, "Host CPU utilisation"),
        _pct("system.memory_usage", "system", "higher", 80, 95, "Host memory in use"),
        _pct("system.disk_usage", "system", "higher", 80, 90,
             "Disk space used on the watched path"),
        Metric("system.memory_available", "GB", "system", "lower", 1.0, 0.25, 0.0, None,
               "Memory available to new processes"),
        Metric("process.rss", "MB", "process", "higher", None, None, 0.0, None,
               "Resident set size of the monitored process"),
        _pct("process.cpu_usage", "process", "higher", None, None,
             "CPU used by the monitored process (100 = one core)"),
        _pct("cache.hit_rate", "cache", "lower", 80, 60,
             "Cache hits / (hits + misses) in the interval"),
        Metric("cache.entry_count", "count", "cache", "none", None, None, 0.0, None,
               "Entries held by the cache"),
        Metric("cache.memory_usage", "MB", "cache", "higher", None, None, 0.0, None,
               "Bytes held by the cache"),
        Metric("database.pool_size", "count", "database", "none", None, None, 0.0, None,
               "Connections the pool keeps"),
        Metric("database.checked_out", "count", "database", "higher", None, None, 0.0, None,
               "Connections in use"),
        Metric("database.overflow", "count", "database", "higher", None, None, 0.0, None,
               "Connections open beyond pool_size"),
        Metric("database.query_time", "ms", "database", "higher", 100, 1000, 0.0, None,
               "Mean statement time in the interval"),
        Metric("database.queries_per_second", "1/s", "database", "none", None, None, 0.0, None,
               "Statements per second"),
        Metric("application.api_response_time", "ms", "application", "higher", 100, 500, 0.0, None,
               "Mean request latency in the interval"),
        _pct("application.error_rate", "application", "higher", 1, 5,
             "Requests that raised or answered 5xx"),
        Metric("application.requests_per_second", "1/s", "application", "none", None, None, 0.0,
               None, "Requests per second"),
    ]
    for base in ("application.api_response_time", "database.query_time"):
        b = next(x for x in m if x.name == base)
        for p in PERCENTILES:
            m.append(replace(b, name=f"{base}.p{p}", description=f"{b.description} (p{p})"))
    return m


CORE_METRICS: tuple[str, ...] = (
    "system.cpu_usage", "system.memory_usage", "system.disk_usage", "system.memory_available",
    "cache.hit_rate", "cache.entry_count", "cache.memory_usage",
    "database.pool_size", "database.checked_out", "database.overflow", "database.query_time",
    "application.api_response_time", "application.error_rate", "application.requests_per_second",
)
"""The fourteen core metrics: the ones a score and a summary expect from every service."""

_lock = threading.Lock()
_catalog: dict[str, Metric] = {x.name: x for x in _builtin()}


def unknown_name_error(kind: str, name: str, known: list[str] | tuple[str, ...]
                       ) -> UnknownNameError:
    """The :class:`~perfkit.errors.UnknownNameError` (a ``ValueError`` and ``LookupError``)
    for an unknown ``name``; it lists the closest ``known`` names."""
    close = difflib.get_close_matches(str(name), list(known), n=5, cutoff=0.5)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    return UnknownNameError(f"unknown {kind} {name!r}.{hint} Known: {len(known)} names "
                      f"(see perfkit.catalog_frame()).")


def find_metric(name: str) -> Metric | None:
    """The catalogue entry for ``name``, or None when the name is not catalogued."""
    return _catalog.get(name)


def get_metric(name: str) -> Metric:
    """The catalogue entry for ``name``; a ``ValueError`` with close matches otherwise."""
    if not isinstance(name, str):
        raise TypeError(f"metric name must be a str, got {type(name).__name__}")
    m = _catalog.get(name)
    if m is None:
        raise unknown_name_error("metric", name, sorted(_catalog))
    return m


def _check_threshold(field: str, v: float | None) -> float | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise TypeError(f"{field} must be a number or None, got {type(v).__name__}")
    if not math.isfinite(v):
        raise ValueError(f"{field} must be finite, got {v}")
    return float(v)


def register_metric(name: str, *, unit: str = "", group: str | None = None,
                    direction: Direction = "none", thresholds: tuple[float | None, float | None]
                    | None = None, bounds: tuple[float | None, float | None] = (None, None),
                    description: str = "") -> Metric:
    """Add (or replace) a user metric such as ``orders.placed``.

    ``thresholds`` is ``(warning, critical)`` read in ``direction``. The group
    defaults to the part of the name before the first dot.
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"metric name {name!r} must look like 'group.name' "
                         "(lower case letters, digits, underscores, dot-separated)")
    if direction not in ("higher", "lower", "none"):
        raise ValueError(f"direction must be 'higher', 'lower' or 'none', got {direction!r}")
    warn, crit = thresholds if thresholds is not None else (None, None)
    warn = _check_threshold("warning threshold", warn)
    crit = _check_threshold("critical threshold", crit)
    m = Metric(name, unit, group or name.split(".", 1)[0], direction, warn, crit,
               _check_threshold("lower bound", bounds[0]),
               _check_threshold("upper bound", bounds[1]),
               description)
    with _lock:
        _catalog[name] = m
    return m


def set_thresholds(name: str, warning: float | None = None,
                   critical: float | None = None) -> Metric:
    """Override the default thresholds of a catalogued metric for this process."""
    m = get_metric(name)
    new = replace(m, warning=_check_threshold("warning", warning),
                  critical=_check_threshold("critical", critical))
    with _lock:
        _catalog[name] = new
    return new


def metrics() -> list[Metric]:
    """Every catalogued metric, built-in and user-registered."""
    return list(_catalog.values())


def catalog_frame() -> pd.DataFrame:
    """The catalogue as a frame, one row per metric."""
    rows = [
        {"name": m.name, "unit": m.unit, "group": m.group, "direction": m.direction,
         "warning": m.warning, "critical": m.critical, "lower_bound": m.lower_bound,
         "upper_bound": m.upper_bound, "description": m.description}
        for m in _catalog.values()
    ]
    return pd.DataFrame(rows)
