"""``memory_optimization``: a full garbage collection per generation and a glibc heap trim."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
from typing import Any

import psutil

from perfkit.actions._context import ActionContext
from perfkit.actions._registry import Outcome

__all__ = ["DESCRIPTION", "PARAMS", "WATCH", "memory_optimization"]

DESCRIPTION = ("gc.collect() per generation (objects collected per generation) and "
               "malloc_trim(0) where glibc provides it; RSS before and after.")
PARAMS: dict[str, dict[str, Any]] = {
    "generation": {"type": "int", "default": 2, "min": 0, "max": 2,
                   "description": "collect generations 0..generation, youngest first"},
    "trim": {"type": "bool", "default": True,
             "description": "return freed heap pages to the OS with malloc_trim(0)"},
}
WATCH = {"process.rss": "higher"}
_MB = 2**20


@functools.cache
def _malloc_trim() -> Any:
    # Only glibc has malloc_trim; musl, macOS and Windows do not, and then we say so.
    path = ctypes.util.find_library("c")
    if path is None:
        return None
    try:
        fn = ctypes.CDLL(path).malloc_trim
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_size_t]
    fn.restype = ctypes.c_int
    return fn


def _rss_mb() -> float:
    return psutil.Process().memory_info().rss / _MB


def memory_optimization(monitor: ActionContext, *, dry_run: bool, generation: int = 2,
                        trim: bool = True) -> Outcome:
    """Collect generations 0..``generation`` and trim the heap; report what was freed."""
    rss_before = _rss_mb()
    pending = dict(zip(("gen0", "gen1", "gen2"), gc.get_count()))
    trim_fn = _malloc_trim() if trim else None
    detail: dict[str, Any] = {"pending_allocations": pending,
                              "malloc_trim_available": _malloc_trim() is not None}
    if dry_run:
        detail["would_collect_generations"] = list(range(generation + 1))
        detail["would_trim"] = trim_fn is not None
        return Outcome(detail, before={"process.rss": rss_before}, changed=False)
    collected = {f"gen{g}": gc.collect(g) for g in range(generation + 1)}
    detail["collected"] = collected
    detail["collected_total"] = sum(collected.values())
    detail["uncollectable"] = len(gc.garbage)
    if trim_fn is not None:
        # malloc_trim returns 1 when it released memory to the system, 0 otherwise.
        detail["malloc_trim_released"] = bool(trim_fn(0))
    rss_after = _rss_mb()
    detail["rss_freed_mb"] = rss_before - rss_after
    changed = detail["collected_total"] > 0 or bool(detail.get("malloc_trim_released"))
    return Outcome(detail, before={"process.rss": rss_before}, after={"process.rss": rss_after},
                   changed=changed)
