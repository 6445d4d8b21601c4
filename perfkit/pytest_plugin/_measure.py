"""Timing: warm-up, calibration of iterations per round, timed rounds.

Stdlib only. One *round* calls the function ``iterations`` times between two
``time.perf_counter()`` readings; its *sample* is the round's duration divided
by ``iterations`` (seconds per call). Calibration chooses ``iterations`` so a
round lasts at least ``min_round_time`` (250 µs by default: 250 000 times the
resolution of ``perf_counter`` on Linux and ~2 500 times the cost of reading
it), which keeps the clock's resolution and the timer's own cost below 0.1 %
of every sample.

Garbage collection: ``gc.collect()`` once before the timed rounds; the
collector is disabled while a round runs and re-enabled between rounds, so
garbage made in a round is collected outside the timed region. With
``gc=True`` the collector stays enabled in rounds (its cost is then part of
what is measured, unevenly spread over the rounds).

Preemption: on Linux the thread's involuntary context switches are read
(``getrusage(RUSAGE_THREAD)``, ~2 µs, outside the timed region) around every
round; a round during which the OS took the CPU away is discarded and run
again (up to a hard deadline of 4 x the time budget). On a loaded machine this
is what keeps a 2.5 ms function from measuring 6 ms: in our tests 60 % of its
rounds were preempted and measured ~15 ms each. If fewer than
``max(5, min_rounds // 2)`` undisturbed rounds are obtained, all rounds are
kept and the measurement is flagged ``busy``.

Interleaved reference: after every round of the function, a short round
(~100 µs) of a fixed pure-Python workload (:func:`reference_workload`) is
timed too. Its median tells how fast this interpreter on this machine was
*during this run*; the decision divides it out, which removes most of the
run-to-run drift of a shared machine (see ``docs/regression.md``).
"""

from __future__ import annotations

import gc
import itertools
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from perfkit.pytest_plugin._options import PerfSettings

timer = time.perf_counter


@dataclass
class Measurement:
    """The raw result of measuring one function."""

    samples: list[float]          # seconds per call, one per round
    iterations: int               # calls per round
    ref_samples: list[float] = field(default_factory=list)  # reference s/call, one per round
    ref_iterations: int = 0
    discarded: int = 0            # rounds dropped because the OS preempted the thread
    busy: bool = False            # too few undisturbed rounds: preempted ones were kept
    rounds_executed: int = 0      # rounds run, kept or discarded
    rounds_wall_s: float = 0.0    # wall time of the rounds phase
    rounds_inside_s: float = 0.0  # of which inside the timed regions of the function

    @property
    def overhead_per_round(self) -> float:
        """Seconds per round spent outside the function's timed region (reference round,
        preemption check, GC switching, bookkeeping)."""
        return (self.rounds_wall_s - self.rounds_inside_s) / max(self.rounds_executed, 1)
    warmup_calls: int = 0
    calibration_rounds: int = 0
    wall_s: float = 0.0           # wall time of the whole measurement, incl. warm-up
    gc_enabled: bool = False
    clock_resolution: float = field(default_factory=lambda: time.get_clock_info(
        "perf_counter").resolution)

    @property
    def rounds(self) -> int:
        return len(self.samples)

    def stat(self, name: str) -> float:
        return summarize(self.samples)[name]

    def summary(self) -> dict[str, float]:
        return summarize(self.samples)


def pooled(first: Measurement, more: Measurement) -> Measurement:
    """Both measurements' rounds as one (same function, same iterations per round)."""
    if more.iterations != first.iterations:
        raise ValueError("only measurements with the same iterations per round can be pooled")
    return replace(
        first, samples=first.samples + more.samples,
        ref_samples=(first.ref_samples + more.ref_samples
                     if first.ref_samples and more.ref_samples else []),
        discarded=first.discarded + more.discarded, busy=first.busy or more.busy,
        rounds_executed=first.rounds_executed + more.rounds_executed,
        rounds_wall_s=first.rounds_wall_s + more.rounds_wall_s,
        rounds_inside_s=first.rounds_inside_s + more.rounds_inside_s,
        warmup_calls=first.warmup_calls + more.warmup_calls,
        calibration_rounds=first.calibration_rounds + more.calibration_rounds,
        wall_s=first.wall_s + more.wall_s)


def percentile(sorted_values: list[float], q: float) -> float:
    """Linear-interpolation percentile (numpy's default) of pre-sorted values."""
    if not sorted_values:
        return math.nan
    pos = (len(sorted_values) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def summarize(samples: list[float]) -> dict[str, float]:
    s = sorted(samples)
    return {
        "min": s[0] if s else math.nan,
        "median": percentile(s, 50),
        "mean": statistics.fmean(s) if s else math.nan,
        "stdev": statistics.stdev(s) if len(s) > 1 else 0.0,
        "p95": percentile(s, 95),
        "p99": percentile(s, 99),
        "max": s[-1] if s else math.nan,
    }


#: bump when reference_workload changes: stored reference timings of another
#: version are not comparable and are then ignored
REFERENCE_VERSION = 1
REFERENCE_ROUND_TIME = 100e-6
_ref_iterations: int | None = None


def _rusage_switches() -> Callable[[], int] | None:
    try:
        import resource

        who = resource.RUSAGE_THREAD
        resource.getrusage(who)
    except (ImportError, AttributeError, OSError, ValueError):
        return None

    def switches() -> int:
        return resource.getrusage(who).ru_nivcsw
    return switches


#: number of involuntary context switches of this thread so far (None where unavailable)
_involuntary_switches = _rusage_switches()


def reference_workload() -> int:
    """A fixed mix of interpreter work: dict updates, int arithmetic, str building."""
    d: dict[int, int] = {}
    for i in range(64):
        k = i % 13
        d[k] = d.get(k, 0) + i * 3
    return len("".join([str(v) for v in d.values()]))


def reference_iterations() -> int:
    """Calls of the reference per ~100 µs round (calibrated once per process)."""
    global _ref_iterations
    if _ref_iterations is None:
        run = _make_round(reference_workload, (), {})
        run(200)
        n = 1
        while True:
            t = min(run(n) for _ in range(3))
            if t >= REFERENCE_ROUND_TIME or n >= 1 << 20:
                break
            n = max(n * 2, math.ceil(n * REFERENCE_ROUND_TIME * 1.1 / max(t, 1e-9)))
        _ref_iterations = n
    return _ref_iterations


def _make_round(func: Callable[..., Any], args: tuple, kwargs: dict) -> Callable[[int], float]:
    """A function timing ``n`` calls; specialised so the no-argument case costs least."""
    repeat = itertools.repeat
    if not args and not kwargs:
        def run(n: int) -> float:
            t0 = timer()
            for _ in repeat(None, n):
                func()
            return timer() - t0
    else:
        def run(n: int) -> float:
            t0 = timer()
            for _ in repeat(None, n):
                func(*args, **kwargs)
            return timer() - t0
    return run


class _GCPaused:
    """Disable the collector inside the block (unless keep), restore its state after."""

    def __init__(self, keep: bool) -> None:
        self.keep = keep

    def __enter__(self) -> None:
        self.was = gc.isenabled()
        if not self.keep:
            gc.disable()

    def __exit__(self, *exc: object) -> None:
        if self.was:
            gc.enable()


def measure(func: Callable[..., Any], args: tuple = (), kwargs: dict | None = None,
            settings: PerfSettings | None = None, *,
            iterations: int | None = None, rounds: int | None = None,
            first_call: bool = True, iterations_hint: int | None = None,
            reference: bool = True) -> tuple[Any, Measurement]:
    """Warm up, calibrate and time ``func(*args, **kwargs)``.

    Returns ``(result of the first call, Measurement)``. ``iterations`` /
    ``rounds`` override the settings (used to repeat a measurement with the
    same shape as the first one). ``iterations_hint`` (the baseline's
    iterations) is used instead of calibrating when one round of it lasts
    between half the calibration target and a reasonable share of the time
    budget, so both runs average the same number of calls per sample.
    ``reference=False`` skips the interleaved reference rounds.
    """
    kwargs = kwargs or {}
    s = settings or PerfSettings()
    run = _make_round(func, args, kwargs)
    start = timer()
    paused = _GCPaused(keep=s.gc)

    result = None
    calls = 0
    if first_call:
        result = func(*args, **kwargs)       # the result the test gets back
        calls = 1

    # warm-up: untimed calls for s.warmup seconds (at least one call when warmup > 0)
    if s.warmup > 0:
        w_start = timer()
        w_end = w_start + s.warmup
        n = 1
        while True:
            with paused:
                run(n)
            calls += n
            now = timer()
            if now >= w_end:
                break
            # double the batch, but do not overshoot the warm-up time by much
            per_call = (now - w_start) / calls
            n = max(1, min(n * 2, 1 << 20, int((w_end - now) / max(per_call, 1e-9)) + 1))

    # calibration: smallest power-of-two-ish n whose round lasts >= min_round_time
    n_iter = iterations or s.iterations
    cal_rounds = 0
    t = 0.0
    if n_iter is None and iterations_hint:
        with paused:
            t = run(iterations_hint)
        cal_rounds += 1
        if s.min_round_time / 2 <= t <= max(s.min_round_time * 8, 2 * s.max_time / s.min_rounds):
            n_iter = iterations_hint
    if n_iter is None:
        n_iter = 1
        while True:
            with paused:
                t = run(n_iter)
            cal_rounds += 1
            if t >= s.min_round_time or n_iter >= 1 << 30:
                break
            grow = s.min_round_time * 1.2 / t if t > 0 else 10.0
            n_iter = max(n_iter * 2, math.ceil(n_iter * min(grow, 1000.0)))
    elif cal_rounds == 0:
        with paused:
            t = run(n_iter)          # one untimed round of the fixed shape
        cal_rounds = 1
    last_round = t

    # rounds: a fixed number, or as many as fit in max_time (between min_rounds and
    # max_rounds) -- counted by the clock, so one disturbed calibration round cannot
    # shrink the sample. Rounds during which the OS preempted this thread (an involuntary
    # context switch, Linux getrusage) are discarded and run again, up to a hard deadline.
    fixed = rounds or s.rounds
    lo_rounds, hi_rounds = (fixed, fixed) if fixed else (s.min_rounds, s.max_rounds)
    samples: list[float] = []
    ref_samples: list[float] = []
    spare: list[tuple[float, float]] = []
    append, ref_append = samples.append, ref_samples.append
    ref_n = reference_iterations() if reference else 0
    ref_run = _make_round(reference_workload, (), {})
    preempted = _involuntary_switches
    keep, was_enabled = s.gc, gc.isenabled()
    gc.collect()
    now = rounds_start = timer()
    deadline = now + s.max_time
    hard_deadline = now + 4 * max(s.max_time, lo_rounds * (last_round + REFERENCE_ROUND_TIME))
    t_ref = 0.0
    try:
        while len(samples) < hi_rounds:
            c0 = preempted() if preempted else 0
            if not keep:
                gc.disable()
            t = run(n_iter)
            if ref_n:
                t_ref = ref_run(ref_n)   # interleaved: same moment, same machine state
            if was_enabled:
                gc.enable()          # garbage of the round is collected here, untimed
            if preempted and preempted() != c0:
                spare.append((t / n_iter, t_ref / ref_n if ref_n else 0.0))
            else:
                append(t / n_iter)
                if ref_n:
                    ref_append(t_ref / ref_n)
            now = timer()
            if (len(samples) >= lo_rounds and now >= deadline) or now >= hard_deadline:
                break
    finally:
        if was_enabled:
            gc.enable()
    rounds_wall = timer() - rounds_start
    executed = len(samples) + len(spare)
    inside = (sum(samples) + sum(a for a, _ in spare)) * n_iter
    busy = len(samples) < max(5, lo_rounds // 2)
    if busy:  # too few undisturbed rounds: use them all rather than decide on a handful
        samples += [a for a, _ in spare]
        if ref_n:
            ref_samples += [b for _, b in spare]
    wall = timer() - start
    return result, Measurement(samples=samples, iterations=n_iter, warmup_calls=calls,
                               calibration_rounds=cal_rounds, wall_s=wall, gc_enabled=s.gc,
                               ref_samples=ref_samples, ref_iterations=ref_n,
                               discarded=0 if busy else len(spare), busy=busy,
                               rounds_executed=executed, rounds_wall_s=rounds_wall,
                               rounds_inside_s=inside)
