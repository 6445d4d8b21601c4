"""Hot-path and collection cost: perfkit vs prometheus_client in the same run.

    python benchmarks/bench_recorder.py

Prints per-request overhead of ``with mon.track(name)`` (and the decorator)
against ``with Histogram.labels(endpoint).time()`` and ``Histogram.observe``,
with a bare ``__slots__`` timer and a Lock round trip as floors; then the
median time of one full collection (system, application, database, cache
collectors; no database probe query).
"""

from __future__ import annotations

import statistics
import tempfile
import threading
import timeit
from time import perf_counter, perf_counter_ns

import prometheus_client
import sqlalchemy as sa

from perfkit.collectors import (
    ApplicationCollector,
    CacheCollector,
    DatabaseCollector,
    SystemCollector,
)
from perfkit.monitor import Monitor
from perfkit.recorder import Recorder

N = 200_000
REPEAT = 7


def _best(stmt, number: int = N) -> float:
    """Best-of-REPEAT seconds per call: the least disturbed run on a shared machine."""
    return min(timeit.repeat(stmt, number=number, repeat=REPEAT)) / number


class _BareTimer:
    __slots__ = ("out", "t")

    def __init__(self, out: list[int]) -> None:
        self.out = out

    def __enter__(self) -> None:
        self.t = perf_counter_ns()

    def __exit__(self, *a: object) -> None:
        self.out.append(perf_counter_ns() - self.t)


def hot_path() -> list[tuple[str, float]]:
    registry = prometheus_client.CollectorRegistry()
    hist = prometheus_client.Histogram("req_seconds", "latency", ["endpoint"], registry=registry)
    child = hist.labels("GET /markets")
    mon = Monitor(f"sqlite:///{tempfile.mkdtemp()}/bench.db")
    rec = mon.recorder
    lock = threading.Lock()
    out: list[int] = []
    bare = _BareTimer(out)

    @mon.track("GET /markets")
    def decorated() -> None:
        pass

    def prom_time() -> None:
        with hist.labels("GET /markets").time():
            pass

    def prom_child_time() -> None:
        with child.time():
            pass

    def pk_track() -> None:
        with mon.track("GET /markets"):
            pass

    def pk_observe() -> None:
        rec.observe("GET /markets", 0.001)

    def bare_timer() -> None:
        with bare:
            pass
        if len(out) > 100_000:
            out.clear()

    def lock_rt() -> None:
        with lock:
            pass

    def empty() -> None:
        pass

    # Interleave the candidates round by round so drift on a shared machine hits all alike.
    cases = {
        "prometheus `with Histogram.labels(e).time()`": prom_time,
        "prometheus `with child.time()` (label resolved once)": prom_child_time,
        "prometheus `child.observe(x)`": lambda: child.observe(0.001),
        "perfkit `with mon.track(e)`": pk_track,
        "perfkit `@mon.track(e)` decorator": decorated,
        "perfkit `recorder.observe(e, x)`": pk_observe,
        "bare __slots__ timer (floor)": bare_timer,
        "Lock acquire/release": lock_rt,
    }
    base = _best(empty)
    results: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(3):
        for name, fn in cases.items():
            results[name].append(_best(fn, N // 4) - base)
    return [(k, min(v)) for k, v in results.items()]


def collection() -> tuple[float, float]:
    tmp = tempfile.mkdtemp()
    engine = sa.create_engine(f"sqlite:///{tmp}/app.db")
    db = DatabaseCollector()
    db.instrument(engine)
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT 1"))

    class _Stats:
        def stats(self) -> dict[str, int]:
            return {"hits": 10, "misses": 2, "entry_count": 5, "memory_bytes": 1000}

    rec = Recorder()
    collectors = [SystemCollector("/"), ApplicationCollector(rec), db, CacheCollector(_Stats())]
    times = []
    for _ in range(300):
        for i in range(50):
            rec.observe(f"ep{i % 5}", 0.001 * (i + 1))
        t0 = perf_counter()
        for c in collectors:
            c.collect()
        times.append(perf_counter() - t0)
    return statistics.median(times), min(times)


def main() -> None:
    rows = hot_path()
    ref = dict(rows)["prometheus `with Histogram.labels(e).time()`"]
    print(f"{'per request (empty body)':<56} {'µs':>7} {'vs prom .time()':>16}")
    for name, sec in rows:
        print(f"{name:<56} {sec * 1e6:7.3f} {sec / ref:15.2f}x")
    med, best = collection()
    print(f"\none full collection (system+application+database+cache): "
          f"median {med * 1e3:.3f} ms, best {best * 1e3:.3f} ms")


if __name__ == "__main__":
    main()
