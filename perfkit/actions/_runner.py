"""The Optimizer: runs registered actions for one Monitor, with an audit row for each.

* ``run()``: validate → audit row (``record_action``) → metrics before → the action in a
  worker thread with a timeout → settle → metrics after → verdict → ``finish_action``.
  A failing or timed-out action is recorded with its error; nothing propagates.
* ``process_requests()``: claims this host's queued requests atomically through the
  store and runs them (requested_by as queued). A request naming an unknown action
  or invalid params is rejected with the reason.
* ``cycle()``: one automatic round — ``recommend()`` on the recent window, then at most
  ``max_per_cycle`` actions by priority, skipping any (action, target) run less than
  ``cooldown_s`` ago.
* ``start()``/``stop()``: the automatic loop in a background thread, woken after each
  Monitor collection (the Monitor hook) or every interval.

Before/after: when the Monitor is collecting, the means of the watched metrics over
the last ``before_intervals`` intervals and over the ``settle_s`` seconds after the
action (read from the store); when it is not, one ``collect()`` before and one after
``settle_s``. The action's own direct measurements take precedence. One action runs
at a time per Monitor so their measurements do not overlap.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import uuid
from collections.abc import Mapping
from typing import Any

import pandas as pd

from perfkit._json import jsonable
from perfkit._time import as_timedelta
from perfkit.actions import _registry as registry
from perfkit.actions._context import ActionContext
from perfkit.actions._recommend import recommend
from perfkit.actions._result import ActionResult
from perfkit.actions._verdict import verdict, window_means, window_series
from perfkit.catalog import find_metric
from perfkit.frames import is_finite_number

__all__ = ["Optimizer"]

log = logging.getLogger("perfkit.actions")

_OPTIONS = {"max_per_cycle": (int, 1, 100), "cooldown_s": (float, 0.0, 7 * 86400.0),
            "timeout_s": (float, 0.01, 3600.0), "settle_s": (float, 0.0, 3600.0),
            "tolerance": (float, 0.0, 1.0), "before_intervals": (int, 1, 1000)}


class Optimizer:
    """Runs actions for ``monitor``; see the module docstring. Options (all settable
    through :meth:`configure`): ``max_per_cycle`` (3), ``cooldown_s`` (600),
    ``timeout_s`` (120), ``settle_s`` (None: two intervals when the Monitor collects,
    else 0), ``tolerance`` (0.05, the verdict's no-change band), ``before_intervals`` (3),
    ``window`` ("15min", what the automatic loop analyses)."""

    def __init__(self, monitor: ActionContext, **options: Any) -> None:
        self.monitor = monitor
        self.max_per_cycle = 3
        self.cooldown_s = 600.0
        self.timeout_s = 120.0
        self.settle_s: float | None = None
        self.tolerance = 0.05
        self.before_intervals = 3
        self.window = "15min"
        self.claimer = f"{monitor.host}/{uuid.uuid4().hex[:8]}"
        self.last_recommendations = pd.DataFrame()
        self.last_skipped: list[dict[str, Any]] = []
        self._last_run: dict[tuple[str, str], float] = {}
        self._running_threads: dict[str, threading.Thread] = {}
        self._run_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._auto = False
        self._thread: threading.Thread | None = None
        self.configure(**options)

    # -- configuration ---------------------------------------------------------------
    def configure(self, **options: Any) -> Optimizer:
        """Set options (see the class docstring); unknown names or bad values raise."""
        for name, value in options.items():
            if name == "window":
                as_timedelta(value, "window")  # refuse a bad duration now, not in the loop
                self.window = value
                continue
            if name == "settle_s" and value is None:
                self.settle_s = None
                continue
            if name not in _OPTIONS:
                raise ValueError(f"unknown optimizer option {name!r}; known: "
                                 f"{sorted([*_OPTIONS, 'window'])}")
            kind, lo, hi = _OPTIONS[name]
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or (kind is int and not isinstance(value, int)) \
                    or not math.isfinite(value) or not lo <= value <= hi:
                raise ValueError(f"{name} must be a {kind.__name__} in [{lo}, {hi}], got {value!r}")
            setattr(self, name, kind(value))
        return self

    # -- one action ------------------------------------------------------------------
    def run(self, name: str, params: Mapping[str, Any] | None = None, *, dry_run: bool = False,
            requested_by: str = "user", target: str | None = None,
            request_id: int | None = None) -> ActionResult:
        """Run the registered action ``name`` now and return its result.

        Unknown names and invalid params raise ``ValueError`` (a queued request with
        ``request_id`` is rejected in the store instead).
        """
        try:
            action = registry.get(name)
            checked = action.validate(params)
            if not isinstance(dry_run, bool):
                raise TypeError(f"dry_run must be True or False, got {dry_run!r}")
        except (ValueError, TypeError) as exc:
            if request_id is None:
                raise
            self._finish(request_id, status="rejected", error=str(exc))
            return ActionResult(name, "rejected", dict(params or {}), target or "", requested_by,
                                dry_run is True, request_id, error=str(exc))
        result = ActionResult(name, "failed", checked, target or action.target, requested_by,
                              dry_run, request_id, started_at=pd.Timestamp.now(tz="UTC"))
        if result.id is None:
            result.id = self._record(result)
        with self._run_lock:
            try:
                self._execute(action, result)
            except Exception as exc:  # the audit row must never stay 'running'
                log.exception("running %s failed inside the optimizer", name)
                result.status = "failed"
                result.error = f"internal error: {type(exc).__name__}: {exc}"
        self._finish(result.id, status=result.status, before=result.before, after=result.after,
                     verdict=result.verdict,
                     detail={**result.detail, "target": result.target,
                             "verdict_reason": result.verdict_reason},
                     error=result.error, duration_s=result.duration_s)
        if not dry_run:
            with self._state_lock:
                self._last_run[(name, result.target)] = time.monotonic()
        return result

    def _execute(self, action: registry.Action, result: ActionResult) -> None:
        stuck = self._running_threads.get(action.name)
        if stuck is not None and stuck.is_alive():
            result.error = (f"a previous {action.name} run timed out and is still running; "
                            "not starting another")
            return
        watch = list(action.watch)
        stored = [m for m in watch if find_metric(m) is not None]
        try:
            before = self._measure(stored)
        except Exception as exc:  # noqa: BLE001 - a measurement failure must not stop the action
            before, result.detail["measure_error"] = {}, f"{type(exc).__name__}: {exc}"
        t0 = time.perf_counter()
        box: dict[str, Any] = {}

        def call() -> None:
            try:
                box["out"] = action.func(self.monitor, dry_run=result.dry_run, **result.params)
            except BaseException as exc:  # noqa: BLE001 - reported in the audit row
                box["err"] = exc

        worker = threading.Thread(target=call, name=f"perfkit-action-{action.name}", daemon=True)
        worker.start()
        worker.join(self.timeout_s)
        result.duration_s = time.perf_counter() - t0
        ended = pd.Timestamp.now(tz="UTC")
        if worker.is_alive():
            # Python threads cannot be killed: remember it so the same action is not
            # started again on top of it.
            self._running_threads[action.name] = worker
            result.error = f"timed out after {self.timeout_s:g} s (the action thread may still run)"
            result.before = before
            return
        if "err" in box:
            err = box["err"]
            result.error = f"{type(err).__name__}: {err}"
            result.before = before
            return
        try:
            outcome = _as_outcome(box.get("out"))
        except TypeError as exc:
            result.error = str(exc)
            return
        result.status = "done"
        result.detail.update(_jsonable(outcome.detail))
        result.detail["changed"] = outcome.changed
        result.before = {**before, **_floats(outcome.before)}
        if result.dry_run:
            result.verdict_reason = "dry run: nothing was changed"
            return
        try:
            after, series = self._measure_after(stored, ended)
        except Exception as exc:  # noqa: BLE001
            after, series = {}, {}
            result.detail["measure_error"] = f"{type(exc).__name__}: {exc}"
        if series:
            result.detail["after_intervals"] = series
        result.after = {**after, **_floats(outcome.after)}
        result.verdict, result.verdict_reason = verdict(result.before, result.after,
                                                        action.watch, self.tolerance)

    def _settle(self) -> float:
        if self.settle_s is not None:
            return self.settle_s
        return min(2 * self.monitor.interval, 60.0) if self.monitor.running else 0.0

    def _measure(self, metrics: list[str]) -> dict[str, float]:
        if not metrics:
            return {}
        if self.monitor.running:
            since = pd.Timestamp.now(tz="UTC") - pd.Timedelta(
                seconds=self.before_intervals * self.monitor.interval)
            frame = self.monitor.store.samples(host=self.monitor.host, since=since)
            return window_means(frame, metrics)
        return window_means(self.monitor.collect(), metrics)

    def _measure_after(self, metrics: list[str], ended: pd.Timestamp
                       ) -> tuple[dict[str, float], dict[str, list[float]]]:
        settle = self._settle()
        if settle:
            time.sleep(settle)
        if not metrics:
            return {}, {}
        if self.monitor.running:
            frame = self.monitor.store.samples(host=self.monitor.host, since=ended)
            return window_means(frame, metrics), window_series(frame, metrics)
        return window_means(self.monitor.collect(), metrics), {}

    # -- audit -----------------------------------------------------------------------
    def _record(self, r: ActionResult) -> int | None:
        try:
            return self.monitor.store.record_action(r.action, r.params, host=self.monitor.host,
                                                    requested_by=r.requested_by,
                                                    dry_run=r.dry_run)
        except Exception:  # the store being down must not block an action
            log.exception("could not record action %s in the store", r.action)
            return None

    def _finish(self, action_id: int | None, **fields: Any) -> None:
        if action_id is None:
            return
        try:
            self.monitor.store.finish_action(action_id, **fields)
        except Exception:
            log.exception("could not write the outcome of action %s", action_id)

    # -- requests and the automatic loop --------------------------------------------
    def process_requests(self, limit: int = 10) -> list[ActionResult]:
        """Claim this host's queued requests (atomically) and run them in id order."""
        names = getattr(self.monitor, "addresses", None) or self.monitor.host
        rows = self.monitor.store.claim_actions(names, self.claimer, limit=limit)
        results = []
        for row in rows:
            try:
                results.append(self.run(row["action"], row.get("params") or {},
                                        dry_run=bool(row.get("dry_run")),
                                        requested_by=row.get("requested_by") or "api",
                                        request_id=row["id"]))
            except Exception as exc:  # one request must not block the others
                log.exception("request %s failed", row.get("id"))
                self._finish(row["id"], status="failed", error=f"{type(exc).__name__}: {exc}")
        return results

    def in_cooldown(self, action: str, target: str) -> float:
        """Seconds left before ``action`` may run again on ``target`` (0 when free)."""
        with self._state_lock:
            last = self._last_run.get((action, target))
        return 0.0 if last is None else max(0.0, self.cooldown_s - (time.monotonic() - last))

    def cycle(self, frame: pd.DataFrame | None = None, alerts: pd.DataFrame | None = None
              ) -> list[ActionResult]:
        """One automatic round on ``frame`` (default: this host's recent window)."""
        if frame is None:
            frame = self.monitor.recent(self.window)
        statements = self.monitor.database.statements() if self.monitor.database.engines() \
            else None
        cache = self.monitor.cache
        stats = cache.stats() if cache is not None and callable(getattr(cache, "stats", None)) \
            else None
        recs = recommend(frame, alerts, statements=statements, cache_stats=stats)
        known = set(registry.names())
        results: list[ActionResult] = []
        skipped: list[dict[str, Any]] = []
        rec: Any  # a row of the recommendations frame
        for rec in recs.itertuples(index=False):
            if len(results) >= self.max_per_cycle:
                skipped.append({"action": rec.action, "target": rec.target,
                                "why": f"max_per_cycle={self.max_per_cycle} reached"})
                continue
            wait = self.in_cooldown(rec.action, rec.target)
            if wait > 0 or rec.action not in known:
                why = f"cooldown: {wait:.0f} s left" if wait > 0 else "action not registered"
                skipped.append({"action": rec.action, "target": rec.target, "why": why})
                continue
            try:
                results.append(self.run(rec.action, rec.params, requested_by="auto",
                                        target=rec.target))
            except Exception as exc:  # e.g. params no longer valid
                log.exception("automatic %s failed", rec.action)
                skipped.append({"action": rec.action, "target": rec.target,
                                "why": f"{type(exc).__name__}: {exc}"})
        # Published whole at the end, so a reader never sees a half-built cycle.
        self.last_recommendations, self.last_skipped = recs, skipped
        return results

    @property
    def active(self) -> bool:
        """Whether the automatic loop is on."""
        return self._auto and self._thread is not None and self._thread.is_alive()

    def hook(self, monitor: ActionContext, frame: pd.DataFrame) -> None:
        """Monitor hook: after each collection, wake the worker (started on demand) so it
        claims queued requests and, when automatic, runs a cycle."""
        if self.monitor.running or self._auto:  # not for a one-off collect() in a notebook
            self._ensure_thread()
        self._wake.set()

    def _ensure_thread(self) -> None:
        with self._state_lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, daemon=True,
                                            name=f"perfkit-optimizer-{self.monitor.host}")
            self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.monitor.interval)
            self._wake.clear()
            if self._stop.is_set() or not (self._auto or self.monitor.running):
                break  # without the automatic loop, requests are served while the Monitor runs
            try:
                self.process_requests()
            except Exception:  # the loop outlives any single failure
                log.exception("claiming action requests failed")
            if self._auto:
                try:
                    self.cycle()
                except Exception:
                    log.exception("optimisation cycle failed")

    def start(self, **options: Any) -> Optimizer:
        """Turn the automatic loop on (options as in :meth:`configure`)."""
        self.configure(**options)
        self._auto = True
        self._ensure_thread()
        self._wake.set()
        return self

    def stop(self, timeout: float | None = None) -> None:
        """Turn the automatic loop off and wait for the worker to finish its current step."""
        self._auto = False
        with self._state_lock:
            t = self._thread
            self._stop.set()
            self._wake.set()
        if t is not None and t is not threading.current_thread():
            t.join(timeout if timeout is not None else self.timeout_s + self._settle() + 5.0)
        with self._state_lock:
            if self._thread is t:
                self._thread = None


def _as_outcome(value: Any) -> registry.Outcome:
    if isinstance(value, registry.Outcome):
        return value
    if value is None:
        return registry.Outcome()
    if isinstance(value, Mapping):
        return registry.Outcome(detail=dict(value))
    raise TypeError(f"an action must return an Outcome, a dict or None, got "
                    f"{type(value).__name__}")


def _floats(values: Mapping[str, Any]) -> dict[str, float]:
    return {str(k): float(v) for k, v in values.items() if is_finite_number(v)}


def _jsonable(detail: Mapping[str, Any]) -> dict[str, Any]:
    # The audit row stores JSON; anything exotic an action returns is kept as text.
    try:
        clean: dict[str, Any] = jsonable(dict(detail))
        return clean
    except (RecursionError, TypeError, ValueError) as exc:  # e.g. a circular structure
        return {"detail_not_serialisable": f"{type(exc).__name__}: {exc}"}
