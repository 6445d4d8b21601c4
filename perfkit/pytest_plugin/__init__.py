"""perfkit's pytest plugin: performance-regression checks that do not cry wolf.

Registered as the ``pytest11`` entry point ``perfkit``, so it is loaded into
every pytest run: this module imports only the standard library and pytest,
and does nothing unless a test uses the ``perf`` fixture or the ``perf``
marker, or a ``--perf-*`` option is given. Measurement, statistics and
storage live in :mod:`perfkit.pytest_plugin` and are imported on first use.

    def test_price_lookup(perf):
        result = perf(lookup_price, "market-42")   # calibrated rounds; returns the result
        perf.budget(p95="2ms")                     # optional absolute budget

    @pytest.mark.perf(max_regression="10%", rounds=200)
    def test_order_book(perf): ...

Options: ``--perf-save NAME``, ``--perf-compare[=NAME]``, ``--perf-store URL``,
``--perf-fail-on regression,budget|none``, ``--perf-max-regression 10%``,
``--perf-disable``. See ``docs/regression.md``.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from typing import Any

import pytest

__all__ = ["PerfFixture"]

_RESULT_ATTR = "perfkit"  # attribute on the call-phase TestReport (travels through xdist)
_FAIL_ON_CHOICES = ("regression", "budget", "none")


class _PerfSession:
    """Per-pytest-session state. Construction is cheap; everything heavy is lazy."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        opt = config.option
        self.save: str | None = opt.perf_save
        self.compare: str | None = opt.perf_compare        # None: no comparison; '': latest
        self.store_url: str | None = opt.perf_store
        self.disabled: bool = bool(opt.perf_disable)
        self.fail_on_raw: str | None = opt.perf_fail_on
        self.max_regression_raw: str | None = opt.perf_max_regression
        self.options_given = any(v not in (None, False) for v in (
            self.save, self.compare, self.store_url, self.fail_on_raw,
            self.max_regression_raw, opt.perf_disable or None))
        workerinput = getattr(config, "workerinput", None)
        self.worker: str = workerinput.get("workerid", "") if workerinput else ""
        self.run_id: str = (workerinput or {}).get("perfkit_run_id") or uuid.uuid4().hex
        self.results: list[dict] = []
        self._engine: Any = None
        self._defaults: Any = None
        self._fail_on: frozenset[str] | None = None
        self._commit: str | None = None

    # ---- option handling (validated at configure time only when given) ----
    def validate(self) -> None:
        self.fail_on  # noqa: B018 - parse now so a bad value is a usage error
        self.defaults  # noqa: B018
        if self.save is not None and not self.save.strip():
            raise pytest.UsageError("--perf-save needs a non-empty NAME")
        if self.compare and ("/" in self.compare or self.compare.endswith(".py")
                             or "::" in self.compare) and os.path.exists(
                                 self.compare.split("::")[0]):
            raise pytest.UsageError(
                f"--perf-compare took {self.compare!r} as the baseline NAME, but it is a path. "
                "Write --perf-compare=NAME, or put --perf-compare after the paths.")

    @property
    def fail_on(self) -> frozenset[str]:
        if self._fail_on is None:
            raw = self.fail_on_raw if self.fail_on_raw is not None else "regression,budget"
            parts = {p.strip() for p in raw.split(",") if p.strip()}
            bad = parts - set(_FAIL_ON_CHOICES)
            if bad or not parts or ("none" in parts and len(parts) > 1):
                raise pytest.UsageError(
                    f"--perf-fail-on {raw!r}: expected 'regression', 'budget', "
                    "'regression,budget' or 'none'")
            self._fail_on = frozenset(parts - {"none"})
        return self._fail_on

    @property
    def defaults(self) -> Any:
        if self._defaults is None:
            from perfkit.pytest_plugin._options import PerfSettings, PerfUsageError, parse_fraction

            settings = PerfSettings()
            if self.max_regression_raw is not None:
                try:
                    settings = PerfSettings(max_regression=parse_fraction(
                        self.max_regression_raw, "--perf-max-regression"))
                except PerfUsageError as exc:
                    raise pytest.UsageError(str(exc)) from None
            self._defaults = settings
        return self._defaults

    # ---- lazily created resources ----
    @property
    def url(self) -> str:
        if self.store_url:
            return self.store_url
        if os.environ.get("PERFKIT_STORE_URL"):   # the same variable perfkit.Store reads
            return os.environ["PERFKIT_STORE_URL"]
        root = str(self.config.rootpath)
        return f"sqlite:///{os.path.join(root, '.perfkit', 'perfkit.db')}"

    @property
    def engine(self) -> Any:
        if self._engine is None:
            from perfkit.pytest_plugin._storage import engine_for

            self._engine = engine_for(self.url)
        return self._engine

    @property
    def commit(self) -> str:
        if self._commit is None:
            from perfkit.pytest_plugin._machine import git_commit

            self._commit = git_commit(self.config.rootpath)
        return self._commit

    @property
    def active(self) -> bool:
        return bool(self.results) or self.options_given

    # registered as a plugin object per config (works in-process with pytester and under
    # the xdist controller, which receives the workers' reports)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        summary = getattr(report, _RESULT_ATTR, None)
        if summary and report.when == "call":
            self.results.append(summary)


_SESSION_KEY = pytest.StashKey[_PerfSession]()
_SETTINGS_KEY = pytest.StashKey[Any]()
_FIXTURE_KEY = pytest.StashKey["PerfFixture"]()
_USAGE_ERROR_KEY = pytest.StashKey[str]()


class PerfFixture:
    """The ``perf`` fixture: ``perf(func, *args, **kwargs)`` measures and returns the result.

    After the call: ``perf.stats`` (min/median/mean/stdev/p95/p99/max, seconds
    per call over the rounds), ``perf.samples``, ``perf.iterations``,
    ``perf.comparison`` (None without a baseline) and ``perf.verdict``.
    """

    def __init__(self, item: pytest.Item, session: _PerfSession, settings: Any) -> None:
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
        return self.measurement.summary() if self.measurement else {}

    @property
    def samples(self) -> list[float]:
        return list(self.measurement.samples) if self.measurement else []

    @property
    def iterations(self) -> int | None:
        return self.measurement.iterations if self.measurement else None

    @property
    def verdict(self) -> str:
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


# ---------------------------------------------------------------- hooks

def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("perfkit", "perfkit performance-regression checks (perf fixture)")
    group.addoption("--perf-save", metavar="NAME", default=None,
                    help="store this run's perf results as baseline NAME")
    group.addoption("--perf-compare", metavar="NAME", nargs="?", const="", default=None,
                    help="compare perf results with baseline NAME (default: the latest saved "
                         "one of each test); write --perf-compare=NAME before test paths")
    group.addoption("--perf-store", metavar="URL", default=None,
                    help="SQLAlchemy URL of the perfkit store (default: $PERFKIT_STORE_URL or "
                         "sqlite:///<rootdir>/.perfkit/perfkit.db)")
    group.addoption("--perf-fail-on", metavar="WHAT", default=None,
                    help="fail tests on 'regression', 'budget', both (default: "
                         "'regression,budget') or 'none' (report only)")
    group.addoption("--perf-max-regression", metavar="PCT", default=None,
                    help="default allowed slowdown of the median (default 10%%); "
                         "@pytest.mark.perf(max_regression=...) overrides per test")
    group.addoption("--perf-disable", action="store_true", default=False,
                    help="perf(func) just calls func once: no timing, no storage")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "perf(max_regression='10%', rounds=None, ...): perfkit performance-regression "
        "criteria of a test that uses the perf fixture (see perfkit docs/regression.md)")
    state = _PerfSession(config)
    if state.options_given:
        state.validate()
    config.stash[_SESSION_KEY] = state
    config.pluginmanager.register(state, "perfkit-session")


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist controller: give every worker the same run id (one run, many workers)."""
    state = node.config.stash.get(_SESSION_KEY, None)
    if state is not None:
        node.workerinput["perfkit_run_id"] = state.run_id


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config,
                                  items: list[pytest.Item]) -> None:
    marked = [it for it in items if it.get_closest_marker("perf") is not None]
    uses = [it for it in items if "perf" in getattr(it, "fixturenames", ())]
    if not marked and not uses:
        return
    from perfkit.pytest_plugin._options import PerfUsageError, settings_from_marker

    state = config.stash[_SESSION_KEY]
    errors = []
    for item in uses:
        settings = state.defaults
        # farthest marker first (module, class), closest (function) last: closest wins
        try:
            for mark in reversed(list(item.iter_markers("perf"))):
                settings = settings_from_marker(settings, mark.args, dict(mark.kwargs))
        except PerfUsageError as exc:
            errors.append(f"{item.nodeid}: {exc}")
            continue
        item.stash[_SETTINGS_KEY] = settings
    for item in marked:
        if "perf" not in getattr(item, "fixturenames", ()):
            errors.append(f"{item.nodeid}: marked @pytest.mark.perf but does not use the perf "
                          "fixture; add a `perf` argument and call perf(func, ...)")
    if not errors:
        return
    if getattr(config, "workerinput", None) is None:
        raise pytest.UsageError("perfkit: invalid perf marker usage:\n  " + "\n  ".join(errors))
    # an xdist worker cannot abort the session cleanly: each bad test errors at setup instead
    for item in items:
        mine = [e for e in errors if e.startswith(f"{item.nodeid}: ")]
        if mine:
            item.stash[_USAGE_ERROR_KEY] = "\n".join(mine)


def pytest_runtest_setup(item: pytest.Item) -> None:
    error = item.stash.get(_USAGE_ERROR_KEY, None)
    if error:
        pytest.fail(f"perfkit: invalid perf marker usage:\n  {error}", pytrace=False)


@pytest.fixture
def perf(request: pytest.FixtureRequest) -> PerfFixture:
    """Measure a function: ``result = perf(func, *args, **kwargs)``; see docs/regression.md."""
    state = request.config.stash[_SESSION_KEY]
    settings = request.node.stash.get(_SETTINGS_KEY, None)
    if settings is None:  # e.g. requested dynamically via request.getfixturevalue
        settings = state.defaults
    fixture = PerfFixture(request.node, state, settings)
    request.node.stash[_FIXTURE_KEY] = fixture
    return fixture


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Any:
    try:
        result = yield
    except BaseException:
        fixture = item.stash.get(_FIXTURE_KEY, None)
        if fixture is not None and fixture.measurement is not None:
            # keep the measurement; never mask the test's own exception with a store error
            with contextlib.suppress(Exception):
                fixture._finish()
        raise
    fixture = item.stash.get(_FIXTURE_KEY, None)
    if fixture is None:
        return result
    state = fixture._session
    if state.disabled:
        return result
    if fixture.measurement is None:
        if fixture.budgets or item.get_closest_marker("perf") is not None:
            pytest.fail(f"{item.nodeid} has perf criteria (marker or perf.budget) but never "
                        "called perf(func, ...)", pytrace=False)
        return result
    failures = fixture._finish()
    if failures:
        pytest.fail("\n".join(failures), pytrace=False)
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if call.when == "call":
        fixture = item.stash.get(_FIXTURE_KEY, None)
        summary = getattr(fixture, "result_summary", None) if fixture is not None else None
        if summary is not None:
            setattr(report, _RESULT_ATTR, summary)
    return report


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    state = config.stash.get(_SESSION_KEY, None)
    if state is None or not state.active or getattr(config, "workerinput", None) is not None:
        return
    from perfkit.pytest_plugin._report import counts_line, table_lines

    tr = terminalreporter
    tr.section("perfkit performance summary")
    if state.disabled:
        tr.write_line("perf measurements disabled (--perf-disable)")
        return
    if not state.results:
        tr.write_line("no test measured anything with the perf fixture")
        return
    width = max(30, min(70, tr._tw.fullwidth - 80)) if hasattr(tr, "_tw") else 60
    for line in table_lines(state.results, test_width=width):
        tr.write_line(line)
    where = state.url
    extra = []
    if state.save:
        extra.append(f"saved as baseline {state.save!r}")
    if state.compare is not None:
        extra.append(f"compared with {state.compare!r}" if state.compare
                     else "compared with the latest saved baseline")
    tr.write_line(f"{counts_line(state.results)} · run {state.run_id[:12]} · "
                  + " · ".join([*extra, f"store {where}"]))
