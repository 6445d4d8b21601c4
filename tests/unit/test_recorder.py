"""The hot path: exact counts under concurrency, error ratios, percentiles."""

from __future__ import annotations

import asyncio
import math
import threading
import time

import pytest

from perfkit.collectors import ApplicationCollector
from perfkit.recorder import Histogram, Recorder


def _by(readings, metric, labels=""):
    return {r.metric: r.value for r in readings if r.labels == labels}.get(metric)


def test_counts_are_exact_across_threads():
    rec = Recorder()
    n_threads, per_thread = 8, 5_000

    def work(k: int) -> None:
        for i in range(per_thread):
            rec.observe(f"ep{k % 2}", 0.001, error=(i % 10 == 0))

    threads = [threading.Thread(target=work, args=(k,)) for k in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    iv = rec.drain()
    total = iv.overall()
    assert total.count == n_threads * per_thread
    assert total.errors == n_threads * per_thread // 10
    assert iv.endpoints["ep0"].count == iv.endpoints["ep1"].count == n_threads * per_thread // 2
    assert rec.drain().overall().count == 0  # drained means reset


def test_injected_error_ratio_is_reported_exactly():
    rec = Recorder()
    coll = ApplicationCollector(rec)
    for i in range(1000):
        try:
            with rec.track("GET /orders"):
                if i % 8 == 0:
                    raise RuntimeError("boom")
        except RuntimeError:
            pass
    out = coll.collect()
    assert _by(out, "application.error_rate") == pytest.approx(12.5, abs=1e-12)
    rate = _by(out, "application.error_rate", "endpoint=GET /orders")
    assert rate == pytest.approx(12.5, abs=1e-12)
    assert _by(out, "application.requests_per_second") > 0


def test_percentiles_from_histogram_within_five_percent():
    h = Histogram()
    rec = Recorder()
    values = [i / 1000 for i in range(1, 1001)]  # 1..1000 ms uniform
    for v in values:
        rec.observe("x", v)
    h = rec.drain().endpoints["x"]
    assert h.total / h.count == pytest.approx(sum(values) / len(values), rel=1e-12)
    for q, true in ((50, 0.5), (95, 0.95), (99, 0.99)):
        assert h.quantile(q) == pytest.approx(true, rel=0.05)


def test_decorators_sync_and_async_count_errors():
    rec = Recorder()

    @rec.track("sync")
    def ok(x):
        return x * 2

    @rec.track("async")
    async def bad():
        await asyncio.sleep(0)
        raise ValueError("no")

    assert ok(21) == 42
    with pytest.raises(ValueError):
        asyncio.run(bad())

    async def use_async_with():
        async with rec.track("async"):
            await asyncio.sleep(0.01)

    asyncio.run(use_async_with())
    iv = rec.drain()
    assert (iv.endpoints["sync"].count, iv.endpoints["sync"].errors) == (1, 0)
    assert (iv.endpoints["async"].count, iv.endpoints["async"].errors) == (2, 1)
    assert iv.endpoints["async"].quantile(99) >= 0.009


def test_interleaved_async_requests_time_independently():
    rec = Recorder()

    async def req(delay: float) -> None:
        with rec.track("GET /slow"):
            await asyncio.sleep(delay)

    async def main() -> None:
        await asyncio.gather(req(0.05), req(0.01))

    t0 = time.perf_counter()
    asyncio.run(main())
    wall = time.perf_counter() - t0
    h = rec.drain().endpoints["GET /slow"]
    assert h.count == 2
    # each span lasts at least its own sleep and at most the whole run: had the spans
    # shared one timer (not independent), the total would be ~2 x 0.05 or ~2 x 0.01
    assert 0.06 <= h.total <= 2 * wall


def test_bad_input_is_rejected_and_nothing_recorded_is_lost():
    rec = Recorder()
    rec.observe("a", 0.002)
    with pytest.raises(ValueError, match="duration"):
        rec.observe("a", -1.0)
    with pytest.raises(ValueError, match="duration"):
        rec.observe("b", math.nan)
    with pytest.raises(ValueError, match="duration"):
        rec.observe("a", math.inf)
    with pytest.raises(ValueError, match="duration"):
        rec.observe("a", math.nan)
    with pytest.raises(TypeError):
        rec.track(42)  # type: ignore[arg-type]
    assert rec.drain().endpoints["a"].count == 1


def test_no_requests_means_no_latency_but_a_real_zero_rate():
    rec = Recorder()
    coll = ApplicationCollector(rec)
    assert coll.collect() == []  # never used: nothing to report
    rec.observe("x", 0.01)
    coll.collect()
    out = coll.collect()
    assert _by(out, "application.requests_per_second") == 0.0
    assert _by(out, "application.api_response_time") is None
