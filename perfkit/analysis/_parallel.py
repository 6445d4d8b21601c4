"""Work on many series in worker processes, results in input order.

One helper for every batch function that handles series independently
(forecasts, anomaly scores), so the pool, its start method and the chunking
live in one place.
"""

from __future__ import annotations

import numbers
import os
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, overload

from perfkit.errors import InvalidInputError

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


@overload
def check_jobs(jobs: object) -> int: ...
@overload
def check_jobs(jobs: object, none_means: str) -> int | None: ...


def check_jobs(jobs: object, none_means: str | None = None) -> int | None:
    """``jobs`` as given when it is a whole number >= 1; None passes when ``none_means`` says
    what None does (for the message).

    Raises:
        InvalidInputError: for 0, a negative number, a float, a string or a bool.
    """
    if jobs is None and none_means is not None:
        return None
    if isinstance(jobs, bool) or not isinstance(jobs, numbers.Integral) or int(jobs) < 1:
        also = f" (or None: {none_means})" if none_means else " (1: in this process)"
        raise InvalidInputError(f"jobs must be a whole number >= 1{also}, got {jobs!r}")
    return int(jobs)


def _context(preload: Sequence[str]) -> Any:
    """Fork a single-threaded process (nothing to import, nothing to deadlock); otherwise a
    fork server that imported perfkit.analysis and ``preload`` once (forking a process with
    running threads, such as a Monitor's, can deadlock), or spawn where neither exists."""
    import multiprocessing as mp

    methods = mp.get_all_start_methods()
    # fork on Linux only: macOS system libraries are not fork-safe even without threads
    if sys.platform == "linux" and "fork" in methods and threading.active_count() == 1:
        return mp.get_context("fork")
    if "forkserver" in methods:
        ctx = mp.get_context("forkserver")
        # the default preload (the main module) plus this package: the server starts once
        # per process and every later pool forks from it with them imported
        ctx.set_forkserver_preload(["__main__", "perfkit.analysis", *preload])
        return ctx
    return mp.get_context("spawn")


def _one_blas_thread() -> None:
    """Run a worker's BLAS on one thread: the workers already fill the cores, and BLAS
    threads on top of them (two per worker on two cores) made a pool 2-4x slower than a
    single process on a busy machine."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)


def map_chunks(fn: Callable[..., list[R]], items: Sequence[T], jobs: int, *args: Any,
               done: Callable[[int], None] | None = None,
               preload: Sequence[str] = ()) -> list[R]:
    """``fn(chunk, *args)`` over interleaved chunks of ``items`` in ``jobs`` processes; one
    result per item, in the order of ``items``.

    ``fn`` returns a list with one result per item of its chunk and must be a module-level
    function (it is pickled by name). ``done(k)`` is called as each chunk of ``k`` items
    finishes (a progress bar). Chunks interleave (``items[i::n]``) so that a run of large
    series does not land in one chunk. A single-threaded process forks its workers (no
    start-up cost); one with running threads (a Monitor, a web server) starts them from a
    fork server (see :func:`_context`), and such a worker imports the main module, so a
    script with threads must make its calls under ``if __name__ == "__main__":``; when a
    worker dies this way (or is killed, e.g. out of memory) the error says so. The modules
    named in ``preload`` are imported here first, so workers inherit them instead of each
    importing them again (statsmodels' ETS: ~0.7 s per worker).
    """
    import importlib
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    for name in preload:
        importlib.import_module(name)
    n = min(jobs * CHUNKS_PER_JOB, len(items))
    chunks = [items[i::n] for i in range(n)]
    out: list[Any] = [None] * len(items)
    try:
        with ProcessPoolExecutor(jobs, mp_context=_context(preload),
                                 initializer=_one_blas_thread) as ex:
            futs = [ex.submit(fn, c, *args) for c in chunks]
            for i, f in enumerate(futs):
                res = f.result()
                out[i::n] = res
                if done is not None:
                    done(len(res))
    except BrokenProcessPool as e:
        raise RuntimeError(
            f"a worker process (of jobs={jobs}) stopped before returning its results. Each "
            "worker imports the main module: in a script, make the call under "
            "`if __name__ == \"__main__\":`. It may also have been killed (out of memory). "
            "Pass jobs=1 to score in this process.") from e
    return out
