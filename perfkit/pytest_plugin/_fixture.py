"""The ``perf`` fixture object: measures the function once per test, compares it with
the baseline (measuring again when the verdict would fail or cannot decide), checks the
budgets, and stores the row.

Imports only the standard library and pytest at load; measurement, statistics and storage
are imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from perfkit.pytest_plugin._session import PerfSession


class PerfFixture:
    """The ``perf`` fixture: ``perf(func, *args, **kwargs)`` measures and returns the result.

    After the call: ``perf.stats`` (min/median/mean/stdev/p95/p99/max, seconds
    per call over the rounds), ``perf.samples``, ``perf.iterations``,
    ``perf.comparison`` (None without a baseline) and ``perf.verdict``.
    """

    def __init__(self, item: pytest.Item, session: PerfSession, settings: Any) -> None:
        self._item = item
        self._session = session
        self.settings = settings
        self.budgets: dict[str, float] = dict(settings.budget)
        self._budget_specs: dict[str, Any] = {}
        self.measurement: Any = None
        self.comparison: Any = None
        self.baseline_row: dict | None = None
        self.note: str = ""
        self.attempts: int = 0
        self.normalized = False
        self.views: tuple[Any, Any] = (None, None)   # (absolute, machine-normalised)
        self._called = False

    # -- public API --
    def __call__(self, func: Any, *args: Any, **kwargs: Any) -> Any:
        if not callable(func):
            raise TypeError(f"perf(func, *args, **kwargs): func must be callable, got {func!r}")
        if self._called:
            raise RuntimeError("perf() can be called once per test (one row per test per run); "
                               "measure other functions in their own tests")
        self._called = True
        if self._session.disabled:
            return func(*args, **kwargs)
        from perfkit.pytest_plugin._measure import measure

        s = self._session
        hint = None
        if s.compare is not None:
            from perfkit.pytest_plugin._storage import latest_baseline

            self.baseline_row = latest_baseline(s.engine, self._item.nodeid, s.compare or None,
                                                exclude_run_id=s.run_id)
            if self.baseline_row is not None:
                hint = self.baseline_row["iterations"]
        result, m = measure(func, args, kwargs, self.settings, iterations_hint=hint,
                            reference=self.settings.normalize)
        self.attempts = 1
        self.measurement = m
        if s.compare is not None:
            self._compare_with_baseline(func, args, kwargs)
        return result

    def budget(self, **limits: Any) -> None:
        """Absolute budgets, e.g. ``perf.budget(p95="2ms", median="1ms")``, checked after it."""
        from perfkit.pytest_plugin._options import PerfUsageError, parse_budget

        if not limits:
            raise pytest.UsageError("perf.budget() needs at least one of "
                                    "min, median, mean, p95, p99, max (e.g. p95='2ms')")
        try:
            parsed = parse_budget(limits, "perf.budget()")
        except PerfUsageError as exc:
            raise pytest.UsageError(str(exc)) from None
        self.budgets.update(parsed)
        self._budget_specs.update(limits)

    @property
    def stats(self) -> dict[str, float]:
        """Summary of the measured rounds (seconds per call: min, median, mean, p95, ...);
        empty before the function was measured."""
        return self.measurement.summary() if self.measurement else {}

    @property
    def samples(self) -> list[float]:
        """Seconds per call of each measured round, in the order they ran."""
        return list(self.measurement.samples) if self.measurement else []

    @property
    def iterations(self) -> int | None:
        """Calls per round (chosen by calibration); None before the function was measured."""
        return self.measurement.iterations if self.measurement else None

    @property
    def verdict(self) -> str:
        """``regression``, ``improved``, ``ok`` or ``inconclusive`` against the baseline;
        ``no baseline``, ``saved`` or ``measured`` when there was nothing to compare."""
        if self.comparison is not None:
            return self.comparison.verdict
        if self._session.compare is not None:
            return "no baseline"
        return "saved" if self._session.save else "measured"

    # -- internals --
    def _compare_with_baseline(self, func: Any, args: tuple, kwargs: dict) -> None:
        from perfkit.pytest_plugin._machine import describe, same_machine
        from perfkit.pytest_plugin._measure import REFERENCE_VERSION, measure, pooled
        from perfkit.pytest_plugin._stats import judge as decide
        from perfkit.pytest_plugin._stats import seed_for

        s = self._session
        test = self._item.nodeid
        row = self.baseline_row
        if row is None:
            self.note = (f"no baseline {s.compare!r} stored" if s.compare
                         else "no saved baseline stored")
            return
        cfg = self.settings
        base, base_ref = row["samples"], row.get("ref_samples")
        self.normalized = bool(cfg.normalize and base_ref and len(base_ref) == len(base)
                               and row.get("ref_version") == REFERENCE_VERSION)
        seed = seed_for(test)

        def judge(m: Any) -> Any:
            refs = (m.ref_samples, base_ref) if self.normalized else (None, None)
            cmp, raw, norm = decide(m.samples, base, cfg.max_regression, cfg.confidence, seed,
                                    current_ref=refs[0], baseline_ref=refs[1])
            self.views = (raw, norm)
            return cmp

        cmp = judge(self.measurement)
        # a verdict that would fail the test or cannot decide is measured again (same shape)
        # and decided on all rounds together: more rounds narrow the CI, and a slowdown that
        # is real is still there in the second batch.
        first = self.measurement
        for _ in range(cfg.repeat):
            if cmp.verdict not in ("regression", "inconclusive"):
                break
            _, again = measure(func, args, kwargs, cfg, iterations=first.iterations,
                               rounds=first.rounds, first_call=False, reference=cfg.normalize)
            self.attempts += 1
            self.measurement = pooled(self.measurement, again)
            cmp = judge(self.measurement)
        self.comparison = cmp
        notes = []
        if self.attempts > 1:
            notes.append(f"measured {self.attempts}x")
        if not same_machine(describe(), row.get("machine") or {}):
            notes.append("baseline from another machine")
        raw, norm = self.views
        if cmp.verdict == "inconclusive" or cmp not in (raw, norm):
            notes.append(cmp.reason)
        if norm is not None and raw.verdict != norm.verdict:
            other = norm if cmp is raw else raw
            label = "machine-normalised" if other is norm else "absolute"
            notes.append(f"{label}: {other.ratio:.3f} [{other.ci_low:.3f}, {other.ci_high:.3f}] "
                         f"{other.verdict}")
        self.note = "; ".join(notes)

    def _budget_results(self) -> list[tuple[str, float, float, bool]]:
        stats = self.stats
        return [(k, limit, stats[k], stats[k] <= limit) for k, limit in self.budgets.items()]

    def _finish(self) -> list[str]:
        """Store the row, attach the summary to the report; return failure messages."""
        from perfkit._format import format_duration
        from perfkit.pytest_plugin._machine import describe
        from perfkit.pytest_plugin._measure import REFERENCE_VERSION, percentile
        from perfkit.pytest_plugin._storage import write_benchmark

        s = self._session
        m = self.measurement
        stats = m.summary()
        ref_median = percentile(sorted(m.ref_samples), 50) if m.ref_samples else None
        base_row: dict = self.baseline_row or {}
        raw_ratio = (stats["median"] / base_row["median_s"]
                     if self.comparison is not None else None)
        budgets = self._budget_results()
        cmp = self.comparison
        test = self._item.nodeid
        row = {
            "run_id": s.run_id, "baseline": s.save or "", "test": test, "commit": s.commit,
            "machine": describe(), "rounds": m.rounds, "iterations": m.iterations,
            "median_s": stats["median"], "p95_s": stats["p95"], "mean_s": stats["mean"],
            "stdev_s": stats["stdev"], "min_s": stats["min"], "samples": m.samples,
            "ref_samples": m.ref_samples or None,
            "ref_median_s": ref_median, "ref_version": REFERENCE_VERSION if m.ref_samples else None,
            "ratio": cmp.ratio if cmp else None, "raw_ratio": raw_ratio,
            "norm_ratio": self.views[1].ratio if cmp and self.views[1] else None,
            "normalized": self.normalized if cmp else None,
            "ci_low": cmp.ci_low if cmp else None,
            "ci_high": cmp.ci_high if cmp else None,
            "confidence": self.settings.confidence,
            "max_regression": self.settings.max_regression, "verdict": self.verdict,
            "compared_run_id": self.baseline_row["run_id"] if self.baseline_row else None,
            "compared_baseline": self.baseline_row["baseline"] if self.baseline_row else None,
            "budget": {k: [lim, val, ok] for k, lim, val, ok in budgets} or None,
            "worker": s.worker, "wall_s": m.wall_s, "discarded_rounds": m.discarded,
        }
        write_benchmark(s.engine, row)

        failures = []
        if cmp is not None and cmp.verdict == "regression" and "regression" in s.fail_on:
            failures.append(
                f"perf regression in {test}: median {format_duration(stats['median'])} vs "
                f"{format_duration(base_row['median_s'])} in baseline "
                f"{base_row['baseline']!r}; ratio {cmp.ratio:.3f} "
                f"[{cmp.confidence:.0%} CI {cmp.ci_low:.3f}-{cmp.ci_high:.3f}] exceeds "
                f"max_regression {self.settings.max_regression:.0%} (limit {cmp.limit:.3g})")
        breached = [(k, lim, val) for k, lim, val, ok in budgets if not ok]
        if breached and "budget" in s.fail_on:
            for k, lim, val in breached:
                spec = self._budget_specs.get(k)
                shown = spec if isinstance(spec, str) else format_duration(lim)
                failures.append(
                    f"perf budget exceeded in {test}: {k} budget {shown}, measured {k} "
                    f"{format_duration(val)} ({m.rounds} rounds x {m.iterations} iterations)")
        note = self.note
        if m.busy:
            note = "; ".join(x for x in (note, "machine busy: most rounds were preempted") if x)
        elif m.discarded > m.rounds:
            note = "; ".join(x for x in (note, f"{m.discarded} preempted rounds re-run") if x)
        if breached:
            note = "; ".join(x for x in (note, ", ".join(
                f"{k} {format_duration(v)} > {format_duration(lim)}" for k, lim, v in breached))
                if x)
        self.result_summary = {
            "test": test, "rounds": m.rounds, "iterations": m.iterations,
            "median_s": stats["median"], "p95_s": stats["p95"],
            "ratio": row["ratio"], "ci_low": row["ci_low"], "ci_high": row["ci_high"],
            "verdict": self.verdict, "budget_failed": bool(breached), "note": note,
            "worker": s.worker,
        }
        return failures
