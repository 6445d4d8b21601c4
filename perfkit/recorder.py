"""The hot path: per-request timing into per-interval aggregates.

One request costs a ``perf_counter`` pair, a ``bisect`` into fixed histogram
bounds and a few integer additions under one short lock. Nothing is written or
sent per request; the Monitor drains the aggregates once an interval.
"""

from __future__ import annotations

import functools
import inspect
import math
import threading
from bisect import bisect_right
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from time import perf_counter
from typing import Any, TypeVar

__all__ = [
    "BUCKET_BOUNDS",
    "MAX_SERIES_PER_METRIC",
    "OVERFLOW_ENDPOINT",
    "OVERFLOW_LABELS",
    "Histogram",
    "Interval",
    "Recorder",
    "percentile",
]

# Each distinct endpoint / label set becomes a stored series every interval; past a
# few hundred they stop being readable and start costing seconds per collection,
# so what comes after the cap is folded into one series (and counted).
MAX_SERIES_PER_METRIC = 500
"""Distinct endpoints, and distinct label sets per user metric, kept per interval."""
OVERFLOW_ENDPOINT = "(other)"
"""The endpoint name requests past the cap are counted under."""
OVERFLOW_LABELS = "overflow=true"
"""The labels user values past the cap are recorded with."""

F = TypeVar("F", bound=Callable[..., Any])

# Geometric buckets, 2**(1/8) apart (9 % wide), from 10 µs to ~100 s: a percentile
# read from them is within ~4.5 % of the true value, which is below the noise of
# any latency worth alerting on, and the array stays small enough to bisect fast.
_RATIO = 2 ** (1 / 8)
_INF = math.inf
BUCKET_BOUNDS: tuple[float, ...] = tuple(1e-5 * _RATIO**i for i in range(187))
"""Upper bounds (seconds) of the latency histogram buckets; one more bucket holds the rest."""


def percentile(buckets: list[int], q: float) -> float:
    """The ``q``-th percentile (0–100) in seconds from bucket counts, interpolated geometrically."""
    total = sum(buckets)
    if total == 0:
        return math.nan
    rank = q / 100 * total
    seen = 0
    for i, n in enumerate(buckets):
        if n and seen + n >= rank:
            lo = BUCKET_BOUNDS[i - 1] if i > 0 else BUCKET_BOUNDS[0] / _RATIO
            hi = BUCKET_BOUNDS[i] if i < len(BUCKET_BOUNDS) else lo * _RATIO
            frac = (rank - seen) / n
            return lo * (hi / lo) ** frac
        seen += n
    return BUCKET_BOUNDS[-1]


@dataclass(slots=True)
class Histogram:
    """Count, error count, sum and bucket counts of one endpoint for one interval."""

    count: int = 0
    errors: int = 0
    total: float = 0.0
    buckets: list[int] = field(default_factory=lambda: [0] * (len(BUCKET_BOUNDS) + 1))

    def merge(self, other: Histogram) -> None:
        """Add ``other``'s counts into this one."""
        self.count += other.count
        self.errors += other.errors
        self.total += other.total
        self.buckets = [a + b for a, b in zip(self.buckets, other.buckets)]

    def quantile(self, q: float) -> float:
        """The ``q``-th percentile (0–100) in seconds."""
        return percentile(self.buckets, q)


@dataclass(slots=True)
class Interval:
    """What a Recorder saw between two drains."""

    seconds: float
    endpoints: dict[str, Histogram]
    values: dict[tuple[str, str], list[float]]

    def overall(self) -> Histogram:
        """All endpoints merged."""
        h = Histogram()
        for e in self.endpoints.values():
            h.merge(e)
        return h


class _Span:
    """What ``Recorder.track(name)`` returns: a context manager and a decorator.

    Used with ``with``, this object is the one allocation per request: the start
    time must live somewhere that concurrent requests on one thread (asyncio
    tasks) do not share. The decorator form allocates nothing per call.
    """

    __slots__ = ("_name", "_rec", "_start")

    def __init__(self, rec: Recorder, name: str) -> None:
        self._rec = rec
        self._name = name
        self._start = 0.0

    def __enter__(self) -> _Span:
        self._start = perf_counter()
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._rec.observe(self._name, perf_counter() - self._start, exc_type is not None)

    async def __aenter__(self) -> _Span:
        self._start = perf_counter()
        return self

    async def __aexit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._rec.observe(self._name, perf_counter() - self._start, exc_type is not None)

    def __call__(self, func: F) -> F:
        name, observe = self._name, self._rec.observe
        if inspect.iscoroutinefunction(func):
            @functools.wraps(func)
            async def awrapper(*args: Any, **kwargs: Any) -> Any:
                start = perf_counter()
                try:
                    result = await func(*args, **kwargs)
                except BaseException:
                    observe(name, perf_counter() - start, True)
                    raise
                observe(name, perf_counter() - start, False)
                return result
            return awrapper  # type: ignore[return-value]

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = perf_counter()
            try:
                result = func(*args, **kwargs)
            except BaseException:
                observe(name, perf_counter() - start, True)
                raise
            observe(name, perf_counter() - start, False)
            return result
        return wrapper  # type: ignore[return-value]


class Recorder:
    """Per-interval request aggregates, safe to call from any thread.

    ``observe`` is the hot path. ``drain`` swaps the aggregates out for fresh
    ones and returns what was collected since the previous drain.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._endpoints: dict[str, Histogram] = {}
        self._values: dict[tuple[str, str], list[float]] = {}
        self._label_sets: dict[str, int] = {}
        self._since = perf_counter()
        self.seen_requests = False
        self.folded = 0
        """Observations folded into an overflow series because of the cardinality cap."""

    def observe(self, name: str, seconds: float, error: bool = False) -> None:
        """Record one request of ``name`` that took ``seconds``; ``error`` marks a failure."""
        i = bisect_right(BUCKET_BOUNDS, seconds)
        with self._lock:
            h = self._endpoints.get(name)
            if h is None:
                if not isinstance(name, str):
                    raise TypeError(f"endpoint name must be a str, got {type(name).__name__}")
                if not (seconds >= 0 and math.isfinite(seconds)):
                    raise ValueError(f"duration must be a finite number >= 0, got {seconds!r}")
                if len(self._endpoints) >= MAX_SERIES_PER_METRIC:
                    self.folded += 1
                    name = OVERFLOW_ENDPOINT
                    h = self._endpoints.get(name)
                if h is None:
                    h = self._endpoints[name] = Histogram()
            elif not 0 <= seconds < _INF:  # also false for NaN, without a call
                raise ValueError(f"duration must be a finite number >= 0, got {seconds!r}")
            h.count += 1
            h.total += seconds
            h.buckets[i] += 1
            if error:
                h.errors += 1

    def track(self, name: str) -> _Span:
        """Time a block (``with rec.track("GET /x"):``) or a function (``@rec.track("x")``).

        An exception escaping the block or function counts as an error.
        """
        if not isinstance(name, str) or not name:
            raise TypeError(f"track() needs a non-empty str name, got {name!r}")
        return _Span(self, name)

    def add_value(self, metric: str, value: float, labels: str = "") -> None:
        """Keep one value of a user metric for this interval (see ``Monitor.record``)."""
        with self._lock:
            bucket = self._values.get((metric, labels))
            if bucket is None:
                seen = self._label_sets.get(metric, 0)
                if seen >= MAX_SERIES_PER_METRIC:
                    self.folded += 1
                    labels = OVERFLOW_LABELS
                    bucket = self._values.get((metric, labels))
                else:
                    self._label_sets[metric] = seen + 1
                if bucket is None:
                    bucket = self._values[(metric, labels)] = []
            bucket.append(value)

    def drain(self) -> Interval:
        """Return the aggregates since the last drain and start a new interval."""
        now = perf_counter()
        with self._lock:
            endpoints, self._endpoints = self._endpoints, {}
            values, self._values = self._values, {}
            self._label_sets = {}
            since, self._since = self._since, now
        if endpoints:
            self.seen_requests = True
        return Interval(now - since, endpoints, values)

    def endpoints(self) -> Iterable[str]:
        """Names seen in the current interval."""
        with self._lock:
            return list(self._endpoints)
