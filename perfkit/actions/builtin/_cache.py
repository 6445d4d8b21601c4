"""``cache_optimization``: find why the hit rate is low, then turn the knob that fits the cause.

Misses over the observed window are split by cause (a stated rule, :func:`diagnose_cache`):

* ``evictions``: an entry was pushed out by the size bound and asked for again, so
  the bound that binds (``max_entries`` or ``max_bytes``) grows to the estimated working
  set (entries + evictions), by 1.25× at least and ``max_growth`` at most; when memory
  cannot grow, a higher ``compression_level`` packs more into the same bytes.
* ``expiry``: entries expired before they were read again, so ``default_ttl`` grows by
  the share of misses that expiry explains (1.25× … ``max_growth``, capped by ``max_ttl``).
* ``cold``: first-time keys; no knob helps, the advice is to warm the cache.

The TTL is never raised for a cold cache or for evictions: a longer TTL cannot turn a
first-time key into a hit, and for evictions it only keeps more entries competing for room.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
import weakref
from collections.abc import Mapping
from typing import Any

import psutil

from perfkit.actions._context import ActionContext
from perfkit.actions._registry import Outcome

__all__ = [
    "DESCRIPTION",
    "PARAMS",
    "WATCH",
    "cache_optimization",
    "diagnose_cache",
    "plan_cache_change",
]

DESCRIPTION = ("Diagnose a low hit rate from the cache's counters (cold keys, evictions or "
               "expiry) and change the matching knob: max_entries/max_bytes/compression_level "
               "for evictions, default_ttl for expiry, nothing for a cold cache.")
PARAMS: dict[str, dict[str, Any]] = {
    "target_hit_rate": {"type": "float", "default": 80.0, "min": 1.0, "max": 100.0,
                        "description": "hit rate (%) below which a change is considered"},
    "min_lookups": {"type": "int", "default": 50, "min": 1,
                    "description": "fewest lookups in the window to decide anything"},
    "max_growth": {"type": "float", "default": 2.0, "min": 1.25, "max": 10.0,
                   "description": "largest factor a knob may grow by in one run"},
    "max_ttl": {"type": "float", "default": 86400.0, "min": 1.0,
                "description": "upper bound for default_ttl (seconds)"},
    "memory_share": {"type": "float", "default": 0.1, "min": 0.0, "max": 0.5,
                     "description": "share of available system memory max_bytes may grow into"},
    "observe_s": {"type": "float", "default": 0.0, "min": 0.0, "max": 600.0,
                  "description": "measure counters over this many seconds now (0: since the "
                                 "previous run, or the cache's lifetime)"},
}
WATCH = {"cache.hit_rate": "lower"}
_COUNTERS = ("hits", "misses", "evictions", "expirations")
_KNOBS = ("max_entries", "max_bytes", "default_ttl", "compression_level")
_MAX_LEVEL = 19  # zstd levels above 19 need far more memory per call

# Counters at the previous run, per cache object, so each run judges what happened since.
_baselines: weakref.WeakKeyDictionary[Any, dict[str, float]] = weakref.WeakKeyDictionary()
_baseline_lock = threading.Lock()


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) \
        and math.isfinite(v) else None


def _delta(now: Mapping[str, Any], then: Mapping[str, float] | None) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for k in _COUNTERS:
        v = _num(now.get(k))
        p = then.get(k) if then else 0.0
        # A counter that went backwards was reset: count from zero again.
        out[k] = None if v is None else (v - p if p is not None and v >= p else v)
    return out


def diagnose_cache(delta: Mapping[str, float | None], *, target_hit_rate: float = 80.0,
                   min_lookups: int = 50) -> dict[str, Any]:
    """Why the cache misses, from counter deltas (hits, misses, evictions, expirations).

    Every eviction or expiry is taken to explain at most one miss; the misses left
    over were first-time (cold) keys. The cause is the largest share.
    """
    hits, misses = delta.get("hits") or 0.0, delta.get("misses") or 0.0
    lookups = hits + misses
    out: dict[str, Any] = {"lookups": lookups, "hits": hits, "misses": misses,
                           "hit_rate": 100.0 * hits / lookups if lookups else None}
    if lookups < min_lookups:
        out.update(cause="insufficient_traffic",
                   reason=f"{lookups:.0f} lookups < min_lookups={min_lookups}: too few to judge")
        return out
    if out["hit_rate"] >= target_hit_rate:
        out.update(cause="healthy", reason=f"hit rate {out['hit_rate']:.1f}% >= target "
                                           f"{target_hit_rate:.0f}%")
        return out
    ev, ex = delta.get("evictions"), delta.get("expirations")
    if ev is None and ex is None:
        out.update(cause="unknown", reason="the cache does not count evictions or expirations, "
                                           "so the cause of its misses cannot be told")
        return out
    shares = {"evictions": min(ev or 0.0, misses) / misses,
              "expiry": min(ex or 0.0, misses) / misses}
    shares["cold"] = max(0.0, 1.0 - shares["evictions"] - shares["expiry"])
    cause = max(shares, key=shares.__getitem__)
    out.update(cause=cause, shares=shares, evictions=ev, expirations=ex,
               reason=f"hit rate {out['hit_rate']:.1f}% < {target_hit_rate:.0f}%; of "
                      f"{misses:.0f} misses, evictions explain {shares['evictions']:.0%}, expiry "
                      f"{shares['expiry']:.0%}, first-time keys {shares['cold']:.0%}")
    return out


def plan_cache_change(diagnosis: Mapping[str, Any], stats: Mapping[str, Any], *,
                      max_growth: float = 2.0, max_ttl: float = 86400.0,
                      max_bytes_cap: float | None = None) -> dict[str, Any] | None:
    """The knob change for a diagnosis: ``{knob, old, new, reason}``, or None when no knob
    fits (cold, healthy, unknown) or the cache does not expose the knob."""
    cause = diagnosis.get("cause")
    if cause == "evictions":
        entries, n_ev = _num(stats.get("entry_count")) or 0.0, diagnosis.get("evictions") or 0.0
        growth = min(max_growth, max(1.25, (entries + n_ev) / max(entries, 1.0)))
        fill = {k: (_num(stats.get(u)) or 0.0) / lim for k, u in
                (("max_entries", "entry_count"), ("max_bytes", "memory_bytes"))
                if (lim := _num(stats.get(k)))}
        if not fill:
            return None
        knob = max(fill, key=fill.__getitem__)
        old = int(stats[knob])
        new = math.ceil(old * growth)
        why = (f"evictions explain {diagnosis['shares']['evictions']:.0%} of misses and "
               f"{knob} is {fill[knob]:.0%} full; working set ≈ entries + evictions = "
               f"{entries + n_ev:.0f} → ×{growth:.2f}")
        if knob == "max_bytes" and max_bytes_cap is not None and new > max_bytes_cap:
            new = int(max(old, max_bytes_cap))
            if new <= old:
                level = _num(stats.get("compression_level"))
                if level is None or level >= _MAX_LEVEL or stats.get("compression_ratio") is None:
                    return None
                return {"knob": "compression_level", "old": int(level),
                        "new": int(min(_MAX_LEVEL, level + 3)),
                        "reason": why + "; memory cannot grow (available-memory cap), so "
                                        "compress harder to fit more entries in the same bytes"}
        return {"knob": knob, "old": old, "new": new, "reason": why}
    if cause == "expiry":
        ttl = _num(stats.get("default_ttl"))
        if ttl is None:
            return None
        share = diagnosis["shares"]["expiry"]
        new = min(max_ttl, ttl * min(max_growth, max(1.25, 1.0 + share)))
        if new <= ttl:
            return None
        return {"knob": "default_ttl", "old": ttl, "new": round(new, 3),
                "reason": f"expiry explains {share:.0%} of misses: entries expire before they "
                          f"are read again, so default_ttl ×{new / ttl:.2f}"}
    return None


def _snapshot(cache: Any) -> dict[str, Any]:
    stats = cache.stats()
    if not isinstance(stats, Mapping):
        raise TypeError(f"{type(cache).__name__}.stats() must return a mapping")
    stats = dict(stats)
    if callable(getattr(cache, "settings", None)):
        stats.update(cache.settings())
    for knob in _KNOBS:
        if knob not in stats and hasattr(cache, knob):
            stats[knob] = getattr(cache, knob)
    return stats


def _remember(cache: Any, stats: Mapping[str, Any]) -> None:
    # not weak-referenceable: every run then looks at the lifetime
    with _baseline_lock, contextlib.suppress(TypeError):
        _baselines[cache] = {k: v for k in _COUNTERS if (v := _num(stats.get(k))) is not None}


def _previous(cache: Any) -> dict[str, float] | None:
    with _baseline_lock:
        try:
            return _baselines.get(cache)
        except TypeError:
            return None


def cache_optimization(monitor: ActionContext, *, dry_run: bool, target_hit_rate: float = 80.0,
                       min_lookups: int = 50, max_growth: float = 2.0, max_ttl: float = 86400.0,
                       memory_share: float = 0.1, observe_s: float = 0.0) -> Outcome:
    """Diagnose the attached cache and change the knob that fits the cause of its misses."""
    cache = monitor.cache
    if cache is None:
        raise RuntimeError("no cache attached to this Monitor; call monitor.attach_cache(cache) "
                           "with a perfkit.Cache or any object with stats() and settable knobs")
    if observe_s > 0:
        base: dict[str, float] | None = {k: v for k in _COUNTERS
                                         if (v := _num(_snapshot(cache).get(k))) is not None}
        time.sleep(observe_s)
        window = f"the last {observe_s:g} s"
    else:
        base = _previous(cache)
        window = "since the previous cache_optimization" if base else "the cache's lifetime"
    stats = _snapshot(cache)
    delta = _delta(stats, base)
    diagnosis = diagnose_cache(delta, target_hit_rate=target_hit_rate, min_lookups=min_lookups)
    cap = None
    if _num(stats.get("max_bytes")) is not None:
        cap = stats["max_bytes"] + memory_share * psutil.virtual_memory().available
    change = plan_cache_change(diagnosis, stats, max_growth=max_growth, max_ttl=max_ttl,
                               max_bytes_cap=cap)
    detail: dict[str, Any] = {"window": window, "counters": delta, "diagnosis": diagnosis,
                              "settings_before": {k: stats.get(k) for k in _KNOBS if k in stats}}
    if change is not None and not hasattr(cache, change["knob"]):
        detail["not_applied"] = f"{type(cache).__name__} has no settable {change['knob']!r}"
        change = None
    if diagnosis["cause"] == "cold":
        detail["advice"] = ("most misses are first-time keys: warm the cache at start-up "
                            "(set_many with the hot keys) or accept the misses; no knob helps")
    detail["change"] = change
    # The verdict compares cache.hit_rate in the intervals before and after (the runner
    # reads them from the store); the diagnosed window's rate is in detail only.
    if dry_run or change is None:
        if not dry_run:
            _remember(cache, stats)
        return Outcome(detail, changed=False)
    setattr(cache, change["knob"], change["new"])
    detail["settings_after"] = {k: v for k, v in _snapshot(cache).items() if k in _KNOBS}
    _remember(cache, stats)
    return Outcome(detail, changed=True)
