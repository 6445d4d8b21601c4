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
from typing import Any

import pytest

from perfkit.pytest_plugin._fixture import PerfFixture
from perfkit.pytest_plugin._session import RESULT_ATTR, PerfSession

__all__ = ["PerfFixture"]

_SESSION_KEY = pytest.StashKey[PerfSession]()
_SETTINGS_KEY = pytest.StashKey[Any]()
_FIXTURE_KEY = pytest.StashKey[PerfFixture]()
_USAGE_ERROR_KEY = pytest.StashKey[str]()


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
    state = PerfSession(config)
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
            setattr(report, RESULT_ATTR, summary)
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
