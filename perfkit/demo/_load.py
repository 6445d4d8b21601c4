"""The demo's load generator: real requests at a set rate through scripted phases.

Each phase changes what the service is asked to do, never what it reports:

* ``steady``: market reads skewed to a few popular markets (mostly cache hits),
  price history and orders;
* ``cold_cache``: the cache is cleared and reads spread over every market, so
  the hit rate falls and recovers only as the cache warms;
* ``slow_query``: about one request in eight asks for a user's orders, a query
  that scans the unindexed ``orders`` table;
* ``error_burst``: a settlement job holds SQLite's write lock, so orders fail
  with "database is locked" after the service's short busy timeout;
* ``memory_growth``: order-book snapshots are kept in an untrimmed history and
  cached, so process memory and cache memory grow; released when it ends;
* ``cpu_heavy``: a pricing-model job recomputes fair prices in a work/rest duty
  cycle that holds ``cpu_share`` of one core (default half), so CPU rises for
  real without pinning the machine.

The generator keeps the wall-clock :attr:`LoadGenerator.timeline` of its phases
(:meth:`LoadGenerator.phases_frame`), which the dashboard draws as bands.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from perfkit.demo._service import CATEGORIES, MarketService

__all__ = ["DEFAULT_PHASES", "PHASE_KINDS", "PHASE_METRIC", "PHASE_SEVERITY", "LoadGenerator",
           "Phase", "PhaseStats"]

log = logging.getLogger("perfkit.demo")

PHASE_KINDS = ("steady", "cold_cache", "slow_query", "error_burst", "memory_growth",
               "cpu_heavy")
"""The phase kinds a script may use."""

PHASE_SEVERITY = "demo-phase"
"""The ``severity`` of the demo's phase records in the store's alert history."""
PHASE_METRIC = "demo.phase"
"""The ``metric`` of those records (the phase kind is the ``message``)."""

# Request mix per phase: weights of each endpoint.
_BASE = {"list": 0.10, "market": 0.53, "prices": 0.25, "order": 0.12}
_MIX: dict[str, dict[str, float]] = {
    "steady": _BASE,
    "cold_cache": _BASE,
    "slow_query": {**_BASE, "user_orders": 0.15},
    "error_burst": {**_BASE, "order": 0.35},
    "memory_growth": {**_BASE, "book": 0.35},
    "cpu_heavy": _BASE,
}
_SLICE_S = 0.05  # the pricing job's work slice: short, so the duty cycle holds at any scale


@dataclass(frozen=True, slots=True)
class Phase:
    """One step of the script: a phase ``kind`` held for ``seconds``."""

    kind: str
    seconds: float

    def __post_init__(self) -> None:
        if self.kind not in PHASE_KINDS:
            raise ValueError(f"unknown demo phase {self.kind!r}; one of {', '.join(PHASE_KINDS)}")
        if isinstance(self.seconds, bool) or not isinstance(self.seconds, (int, float)) \
                or not self.seconds > 0:
            raise ValueError(f"phase {self.kind!r} needs a positive duration in seconds, "
                             f"got {self.seconds!r}")


DEFAULT_PHASES: tuple[Phase, ...] = (
    Phase("steady", 45), Phase("slow_query", 60), Phase("steady", 30), Phase("cold_cache", 40),
    Phase("error_burst", 30), Phase("steady", 30), Phase("cpu_heavy", 45),
    Phase("steady", 30), Phase("memory_growth", 60),
)
"""The default script (repeated): the slow query comes early so a first visit sees it."""


@dataclass(slots=True)
class PhaseStats:
    """What the generator did in one run of one phase (counted, not estimated)."""

    kind: str
    requests: int = 0
    errors: int = 0
    by_endpoint: dict[str, int] = field(default_factory=dict)
    error_types: dict[str, int] = field(default_factory=dict)


class LoadGenerator:
    """Drives a :class:`MarketService` at ``rate`` requests per second through ``phases``.

    ``start()`` runs the script in background threads (``workers`` request
    threads, looping over the script when ``loop``); ``run_phase()`` runs one
    phase synchronously in the calling thread, for tests and notebooks.
    ``on_phase(kind, state, unix_time)`` is told each phase's start (``'firing'``) and
    end (``'resolved'``), so the phases can be recorded where a viewer reads them.
    """

    def __init__(self, service: MarketService, *, rate: float = 20.0,
                 phases: Sequence[Phase] = DEFAULT_PHASES, workers: int = 4, loop: bool = True,
                 seed: int | None = None, cpu_share: float = 0.5,
                 on_phase: Callable[[str, str, float], None] | None = None) -> None:
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 < rate <= 10_000:
            raise ValueError(f"rate must be requests per second in (0, 10000], got {rate!r}")
        if not isinstance(workers, int) or not 1 <= workers <= 64:
            raise ValueError(f"workers must be an int in 1..64, got {workers!r}")
        if isinstance(cpu_share, bool) or not isinstance(cpu_share, (int, float)) \
                or not 0 < cpu_share <= 1:
            raise ValueError(f"cpu_share must be a fraction of one core in (0, 1], "
                             f"got {cpu_share!r}")
        phases = tuple(phases)
        if not phases or not all(isinstance(p, Phase) for p in phases):
            raise ValueError("phases must be a non-empty sequence of perfkit.demo.Phase")
        self.service = service
        self.rate = float(rate)
        self.phases = phases
        self.workers = workers
        self.loop = loop
        self._seed = seed
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._kind = phases[0].kind
        self._index = 0
        self._cycle = 0
        self._phase_started = time.monotonic()
        self._current = PhaseStats(self._kind)
        self.history: list[PhaseStats] = []
        self._settler: threading.Thread | None = None
        self._settle_stop = threading.Event()
        self.cpu_share = float(cpu_share)
        self.on_phase = on_phase
        self.timeline: list[list[Any]] = []  # [kind, start, end or None], epoch seconds

    # -- one request ---------------------------------------------------------------------
    def _request(self, rng: random.Random, kind: str) -> str:
        svc = self.service
        mix = _MIX[kind]
        op = rng.choices(list(mix), weights=list(mix.values()))[0]
        market = self._pick_market(rng, kind)
        if op == "list":
            svc.list_markets(rng.choice((None, *CATEGORIES)))
        elif op == "market":
            svc.get_market(market)
        elif op == "prices":
            svc.price_history(market)
        elif op == "order":
            svc.place_order(rng.randint(1, svc.n_users), market, rng.choice(("buy", "sell")),
                            float(rng.randint(1, 50)))
        elif op == "user_orders":
            svc.user_orders(rng.randint(1, svc.n_users))
        else:
            svc.order_book(market, retain=True)
        return op

    def _pick_market(self, rng: random.Random, kind: str) -> int:
        n = self.service.n_markets
        if kind == "cold_cache":
            return rng.randint(1, n)
        # A few markets get most of the traffic, as on a real exchange: with this
        # Pareto draw 97 % of reads land on the 20 most popular markets.
        return min(n, int(rng.paretovariate(1.2)))

    def _one(self, rng: random.Random, kind: str) -> None:
        try:
            op = self._request(rng, kind)
            err: str | None = None
        except Exception as exc:  # noqa: BLE001 - a failed request is part of the load
            op, err = "error", type(exc).__name__
        with self._lock:
            st = self._current
            st.requests += 1
            st.by_endpoint[op] = st.by_endpoint.get(op, 0) + 1
            if err is not None:
                st.errors += 1
                st.error_types[err] = st.error_types.get(err, 0) + 1

    # -- phase transitions ---------------------------------------------------------------
    def _enter(self, kind: str) -> None:
        with self._lock:
            if self._current.requests:
                self.history.append(self._current)
                del self.history[:-50]
            self._kind = kind
            self._current = PhaseStats(kind)
            self._phase_started = time.monotonic()
            now = time.time()
            if self.timeline and self.timeline[-1][2] is None:
                self.timeline[-1][2] = now
            self.timeline.append([kind, now, None])
            del self.timeline[:-200]
        log.info("demo phase: %s", kind)
        self._tell(kind, "firing", now)
        if kind == "cold_cache":
            self.service.cache.clear()
        elif kind in ("error_burst", "cpu_heavy"):
            self._settle_stop.clear()
            job = self._settle if kind == "error_burst" else self._price_model
            self._settler = threading.Thread(target=job, name=f"perfkit-demo-{kind}",
                                             daemon=True)
            self._settler.start()

    def _exit(self, kind: str) -> None:
        now = time.time()
        with self._lock:
            if self.timeline and self.timeline[-1][2] is None:
                self.timeline[-1][2] = now
        self._tell(kind, "resolved", now)
        if kind in ("error_burst", "cpu_heavy") and self._settler is not None:
            self._settle_stop.set()
            self._settler.join(5.0)
            self._settler = None
        elif kind == "memory_growth":
            self.service.release_memory()

    def _tell(self, kind: str, state: str, when: float) -> None:
        if self.on_phase is None:
            return
        try:
            self.on_phase(kind, state, when)
        except Exception:
            log.warning("demo phase %s %s not recorded", kind, state, exc_info=True)

    def _settle(self) -> None:
        while not self._settle_stop.is_set():
            try:
                self.service.hold_write_lock(0.8)
            except Exception:
                log.exception("demo settlement job failed")
            self._settle_stop.wait(0.1)

    def _price_model(self) -> None:
        # Work for a slice, rest for the rest of the period: the job's own CPU time is
        # cpu_share of one core however fast the machine is (a slower one does less work).
        rest = _SLICE_S * (1.0 - self.cpu_share) / self.cpu_share
        while not self._settle_stop.is_set():
            t0 = time.thread_time()
            while time.thread_time() - t0 < _SLICE_S and not self._settle_stop.is_set():
                self.service.price_model()
            self._settle_stop.wait(rest)

    def phases_frame(self) -> Any:
        """The phases run so far: ``kind, start, end`` (UTC; the current one ends now)."""
        import pandas as pd

        with self._lock:
            rows = [(k, a, b if b is not None else time.time()) for k, a, b in self.timeline]
        return pd.DataFrame({"kind": [r[0] for r in rows],
                             "start": pd.to_datetime([r[1] for r in rows], unit="s", utc=True),
                             "end": pd.to_datetime([r[2] for r in rows], unit="s", utc=True)})

    def run_phase(self, kind: str, *, requests: int | None = None,
                  seconds: float | None = None, paced: bool = False) -> PhaseStats:
        """Run one phase in this thread: ``requests`` requests or for ``seconds``.

        Unpaced by default (as fast as the service answers); ``paced`` holds the
        generator's rate. Returns the phase's counts.
        """
        Phase(kind, 1.0)  # validates the kind
        if (requests is None) == (seconds is None):
            raise ValueError("pass exactly one of requests= or seconds=")
        if self.running:
            raise RuntimeError("the generator is running in the background; stop() it first")
        rng = random.Random(self._seed)
        self._enter(kind)
        try:
            end = time.monotonic() + seconds if seconds is not None else float("inf")
            n = 0
            while (requests is None or n < requests) and time.monotonic() < end:
                self._one(rng, kind)
                n += 1
                if paced:
                    time.sleep(1.0 / self.rate)
        finally:
            self._exit(kind)
        with self._lock:
            return self._current

    # -- background run ------------------------------------------------------------------
    def _script(self) -> None:
        try:
            while not self._stop.is_set():
                phase = self.phases[self._index]
                self._enter(phase.kind)
                try:
                    self._stop.wait(phase.seconds)
                finally:
                    self._exit(phase.kind)
                if self._index + 1 == len(self.phases):
                    if not self.loop:
                        break
                    self._cycle += 1
                self._index = (self._index + 1) % len(self.phases)
        finally:
            self._stop.set()

    def _worker(self, i: int) -> None:
        rng = random.Random(None if self._seed is None else self._seed + i)
        period = self.workers / self.rate
        next_at = time.monotonic() + rng.uniform(0, period)
        while not self._stop.is_set():
            delay = next_at - time.monotonic()
            if delay > 0 and self._stop.wait(delay):
                break
            self._one(rng, self._kind)
            next_at = max(next_at + period, time.monotonic() - period)

    @property
    def running(self) -> bool:
        """Whether the background script is running."""
        return any(t.is_alive() for t in self._threads)

    def start(self) -> LoadGenerator:
        """Run the script in the background (no-op when already running)."""
        if self.running:
            return self
        self._stop.clear()
        self._index = 0
        self._threads = [threading.Thread(target=self._script, name="perfkit-demo-script",
                                          daemon=True)]
        self._threads += [threading.Thread(target=self._worker, args=(i,), daemon=True,
                                           name=f"perfkit-demo-load-{i}")
                          for i in range(self.workers)]
        for t in self._threads:
            t.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the background run and undo the current phase (no-op when stopped)."""
        self._stop.set()
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        self._threads = []

    def status(self) -> dict[str, Any]:
        """Current phase, time left in it, cycle number and the phase's request counts."""
        with self._lock:
            st = self._current
            elapsed = time.monotonic() - self._phase_started
            phase = self.phases[self._index] if self.running else None
            return {
                "running": self.running,
                "phase": self._kind if self.running else None,
                "phase_index": self._index,
                "cycle": self._cycle,
                "elapsed_s": elapsed,
                "remaining_s": max(0.0, phase.seconds - elapsed) if phase else None,
                "rate": self.rate,
                "requests": st.requests,
                "errors": st.errors,
                "error_types": dict(st.error_types),
            }
