"""Work on many series in worker processes, results in input order.

One helper for every batch function that handles series independently
(forecasts, anomaly scores), so the pool, its start method and the chunking
live in one place.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")

CHUNKS_PER_JOB = 8
"""Chunks per worker: enough that a slow chunk does not leave the other workers idle at the
end, few enough that each chunk's pickling and hand-off stays small next to its work."""


def cpu_jobs() -> int:
    """Cores this process may run on (the affinity mask where the OS has one)."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def map_chunks(fn: Callable[..., list[R]], items: Sequence[T], jobs: int, *args: Any,
               done: Callable[[int], None] | None = None) -> list[R]:
    """``fn(chunk, *args)`` over interleaved chunks of ``items`` in ``jobs`` processes; one
    result per item, in the order of ``items``.

    ``fn`` returns a list with one result per item of its chunk and must be a module-level
    function (it is pickled by name). ``done(k)`` is called as each chunk of ``k`` items
    finishes (a progress bar). Chunks interleave (``items[i::n]``) so that a run of large
    series does not land in one chunk. Processes are spawned, not forked: a fork of a process
    with running threads (a Monitor) can deadlock.
    """
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    n = min(jobs * CHUNKS_PER_JOB, len(items))
    chunks = [items[i::n] for i in range(n)]
    out: list[Any] = [None] * len(items)
    with ProcessPoolExecutor(jobs, mp_context=mp.get_context("spawn")) as ex:
        futs = [ex.submit(fn, c, *args) for c in chunks]
        for i, f in enumerate(futs):
            res = f.result()
            out[i::n] = res
            if done is not None:
                done(len(res))
    return out
