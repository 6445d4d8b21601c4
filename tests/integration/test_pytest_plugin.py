"""perfkit's pytest plugin, driven through pytester.

Verdicts are deterministic: the end-to-end runs time their rounds on a
:class:`FakeClock` (installed as the plugin's timer) that moves only when the
measured function says how long it "took" — a controlled sample with seeded
noise — so "30 % slower" is exactly 30 % more time whatever else the machine
is doing. How the gate behaves on the real clock of a busy machine (false
alarms, power) is measured in ``benchmarks/bench_regression.py``, not here.
"""

from __future__ import annotations

import json
import math
import os
import random
import subprocess
import sys
import textwrap

# Imported here, before pytester snapshots sys.modules, so inner in-process runs
# reuse these modules (numpy in particular must not be imported twice).
import numpy
import pytest
import sqlalchemy  # noqa: F401

from perfkit.pytest_plugin import _measure as measure_mod
from perfkit.pytest_plugin import _stats as stats_mod
from perfkit.pytest_plugin import _storage as storage_mod
from perfkit.pytest_plugin._options import (
    PerfSettings,
    PerfUsageError,
    parse_duration,
    parse_fraction,
)

pytest_plugins = ["pytester"]

# unrelated plugins that make a fresh interpreter's pytest start-up slow (seconds)
_LEAN = ("-p", "no:cacheprovider", "-p", "no:schemathesis", "-p", "no:hypothesispytest",
         "-p", "no:benchmark", "-p", "no:anyio")

class FakeClock:
    """``perf_counter`` for the plugin: time passes only through :meth:`spend`.

    ``speed`` scales everything timed (the function and the reference
    workload alike), as a machine that is slower today would; ``noise`` is the
    log-normal spread of each call's duration (mean 1), from a seeded generator.
    """

    def __init__(self, seed: int = 1, noise: float = 0.02) -> None:
        self.now = 0.0
        self.speed = 1.0
        self.noise = noise
        self.ref_noise = noise
        self.rng = random.Random(seed)

    def __call__(self) -> float:
        return self.now

    def spend(self, seconds: float, noise: float | None = None) -> None:
        spread = self.noise if noise is None else noise
        # mean-preserving: noise spreads a round's time, it does not make rounds slower
        factor = math.exp(self.rng.gauss(-spread * spread / 2, spread))
        self.now += seconds * self.speed * factor


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """Install a FakeClock as the plugin's timer; the reference workload 'takes' 1 µs."""
    fake = FakeClock()
    monkeypatch.setattr(measure_mod, "timer", fake)
    monkeypatch.setattr(measure_mod, "_involuntary_switches", None)
    monkeypatch.setattr(measure_mod, "_ref_iterations", None)
    monkeypatch.setattr(measure_mod, "reference_workload",
                        lambda: fake.spend(1e-6, fake.ref_noise))
    return fake


WORK_MODULE = """
import pytest

from perfkit.pytest_plugin import _measure

FACTOR = {factor!r}


def work(n):
    _measure.timer.spend(n * 1e-8 * FACTOR)   # the FakeClock of the outer test
    return n


@pytest.mark.perf(max_regression="10%", max_time="0.06s", warmup="20ms")
def test_loop_small(perf):
    assert perf(work, 300) == 300


@pytest.mark.perf(max_regression="10%", max_time="0.06s", warmup="20ms")
def test_loop_large(perf):
    assert perf(work, 20000) == 20000
"""


def _url(pytester: pytest.Pytester) -> str:
    return f"sqlite:///{pytester.path}/perf.db"


def _run(pytester: pytest.Pytester, *args: str, factor: float = 1.0) -> pytest.RunResult:
    pytester.makepyfile(test_work=WORK_MODULE.format(factor=factor))
    return pytester.runpytest("-p", "no:cacheprovider", f"--perf-store={_url(pytester)}", *args)


def _rows(pytester: pytest.Pytester):
    return storage_mod.read_benchmarks(storage_mod.engine_for(_url(pytester)))


def _last_verdicts(pytester: pytest.Pytester) -> dict[str, str]:
    frame = _rows(pytester)
    last = frame[frame["run_id"] == frame["run_id"].iloc[-1]]
    return {t.split("::")[-1]: v for t, v in zip(last["test"], last["verdict"])}


# ----------------------------------------------------------------- end to end

def test_aa_unchanged_code_passes_repeatedly(pytester: pytest.Pytester, clock: FakeClock) -> None:
    saved = _run(pytester, "--perf-save=base")
    saved.assert_outcomes(passed=2)
    saved.stdout.fnmatch_lines(["*perfkit performance summary*", "*test_loop_small*saved*"])
    for speed in (1.0, 1.15, 0.9):   # the same code on a machine slower / faster today
        clock.speed = speed
        result = _run(pytester, "--perf-compare=base")
        result.assert_outcomes(passed=2)
        verdicts = _last_verdicts(pytester)
        assert set(verdicts.values()) == {"ok"}, verdicts
    frame = _rows(pytester)
    assert len(frame) == 8 and frame["run_id"].nunique() == 4  # one row per test per run
    compared = frame[frame["baseline"] == ""]
    assert compared["ratio"].between(0.97, 1.03).all()
    assert (compared["ci_low"] <= compared["ratio"]).all()
    assert (compared["ratio"] <= compared["ci_high"]).all()


def test_30_percent_slower_fails_with_10_percent_limit(pytester: pytest.Pytester,
                                                       clock: FakeClock) -> None:
    _run(pytester, "--perf-save=base").assert_outcomes(passed=2)
    result = _run(pytester, "--perf-compare", factor=1.3)
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines([
        ("*perf regression in test_work.py::test_loop_large: median * vs * in baseline 'base';"
        " ratio 1.* [[]99% CI 1.*] exceeds max_regression 10% (limit 1.1)*"),
        "*perfkit performance summary*",
    ])
    assert _last_verdicts(pytester) == {"test_loop_small": "regression",
                                        "test_loop_large": "regression"}
    frame = _rows(pytester)
    assert frame["ratio"].dropna().between(1.27, 1.33).all()


def test_30_percent_slower_is_caught_when_the_reference_is_noisy(
        pytester: pytest.Pytester, clock: FakeClock) -> None:
    """A busy machine disturbs the short reference rounds most: the normalised view gets
    wide, and the clear absolute regression must still be reported."""
    _run(pytester, "--perf-save=base").assert_outcomes(passed=2)
    clock.ref_noise = 1.0
    result = _run(pytester, "--perf-compare=base", factor=1.3)
    result.assert_outcomes(failed=2)
    assert set(_last_verdicts(pytester).values()) == {"regression"}


def test_30_percent_slower_is_caught_when_the_machine_is_faster_today(
        pytester: pytest.Pytester, clock: FakeClock) -> None:
    """A baseline saved on a slow moment, 1.3x the work on a machine 30 % faster now:
    the absolute ratio (~0.91) looks fine; the reference rounds show the machine moved,
    so the machine-normalised view (~1.3) decides."""
    _run(pytester, "--perf-save=base").assert_outcomes(passed=2)
    clock.speed = 0.7
    result = _run(pytester, "--perf-compare=base", factor=1.3)
    result.assert_outcomes(failed=2)
    assert set(_last_verdicts(pytester).values()) == {"regression"}
    frame = _rows(pytester)
    compared = frame[frame["baseline"] == ""]
    assert compared["raw_ratio"].between(0.85, 0.97).all()
    assert compared["ratio"].between(1.25, 1.35).all()
    result.stdout.fnmatch_lines(["*machine-normalised view decides*"])


def test_3_percent_slower_passes_with_10_percent_limit(pytester: pytest.Pytester,
                                                       clock: FakeClock) -> None:
    _run(pytester, "--perf-save=base").assert_outcomes(passed=2)
    result = _run(pytester, "--perf-compare=base", factor=1.03)
    result.assert_outcomes(passed=2)
    assert "regression" not in _last_verdicts(pytester).values()


def test_improvement_is_reported(pytester: pytest.Pytester, clock: FakeClock) -> None:
    _run(pytester, "--perf-save=base", factor=1.5).assert_outcomes(passed=2)
    result = _run(pytester, "--perf-compare=base", factor=1.0)
    result.assert_outcomes(passed=2)
    assert _last_verdicts(pytester)["test_loop_large"] == "improved"
    # the ratio is ~0.67; under load it moves, so the table is checked for the verdict and a CI
    result.stdout.fnmatch_lines(["*test_loop_large*0.* [0.*]*improved*"])


def test_fail_on_none_reports_without_failing(pytester: pytest.Pytester, clock: FakeClock) -> None:
    _run(pytester, "--perf-save=base").assert_outcomes(passed=2)
    result = _run(pytester, "--perf-compare=base", "--perf-fail-on=none", factor=1.3)
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*2 regression*"])


def test_budget_breach_names_budget_and_measured_p95(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_budget="""
        def work(n):
            return sum(i * i for i in range(n))

        def test_within(perf):
            perf(work, 200)
            perf.budget(p95="1s")

        def test_breach(perf):
            perf(work, 2000)
            perf.budget(p95="1us")
    """)
    result = pytester.runpytest("-p", "no:cacheprovider", f"--perf-store={_url(pytester)}")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        ("*perf budget exceeded in test_budget.py::test_breach: p95 budget 1us, "
        "measured p95 * (* rounds x * iterations)*"),
        "*test_breach*over budget*p95 * > 1 µs*",
    ])
    stored = json.loads(_rows(pytester).set_index("test")["budget"]["test_budget.py::test_breach"])
    assert stored["p95"][0] == pytest.approx(1e-6) and stored["p95"][2] is False
    # --perf-fail-on=regression ignores budgets
    again = pytester.runpytest("-p", "no:cacheprovider", f"--perf-store={_url(pytester)}",
                               "--perf-fail-on=regression")
    again.assert_outcomes(passed=2)


def test_noisy_function_is_inconclusive_not_a_failure(pytester: pytest.Pytester,
                                                      clock: FakeClock) -> None:
    pytester.makepyfile(test_noisy="""
        import random, pytest

        from perfkit.pytest_plugin import _measure

        rng = random.Random(4)

        def jittery():
            _measure.timer.spend(rng.choice((0.0005, 0.003)))

        @pytest.mark.perf(rounds=40, iterations=1, warmup=0)
        def test_noisy(perf):
            perf(jittery)
    """)
    args = ("-p", "no:cacheprovider", f"--perf-store={_url(pytester)}")
    pytester.runpytest(*args, "--perf-save=base").assert_outcomes(passed=1)
    result = pytester.runpytest(*args, "--perf-compare=base")
    result.assert_outcomes(passed=1)
    assert _last_verdicts(pytester) == {"test_noisy": "inconclusive"}
    result.stdout.fnmatch_lines(["*test_noisy*inconclusive*too noisy to decide*"])


@pytest.mark.parametrize("marker, message", [
    ("max_regresion='10%'", "unknown argument 'max_regresion' (did you mean 'max_regression'?)"),
    ("max_regression='ten percent'", "cannot read 'ten percent'; use a percentage such as '10%'"),
    ("rounds=2", "rounds=...): expected an integer >= 5, got 2"),
    ("'10%'", "takes keyword arguments only"),
    ("budget={'p96': '2ms'}", "unknown statistic 'p96'"),
    ("max_time='fast'", "max_time=...): 'fast' is not a duration; use a positive duration"),
])
def test_bad_marker_arguments_are_a_usage_error(pytester: pytest.Pytester, marker: str,
                                                message: str) -> None:
    pytester.makepyfile(test_bad=f"""
        import pytest

        @pytest.mark.perf({marker})
        def test_it(perf):
            perf(len, "abc")
    """)
    result = pytester.runpytest("-p", "no:cacheprovider", f"--perf-store={_url(pytester)}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*invalid perf marker usage*",
                                 f"*test_bad.py::test_it: *{message}*"])
    assert not (pytester.path / "perf.db").exists()


def test_marker_without_fixture_and_bad_options_are_usage_errors(
        pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_nofix="""
        import pytest

        @pytest.mark.perf(max_regression="5%")
        def test_it():
            pass
    """)
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*marked @pytest.mark.perf but does not use the perf fixture*"])
    for bad, msg in (("--perf-fail-on=sometimes", "*--perf-fail-on 'sometimes': expected*"),
                     ("--perf-max-regression=lots", "*cannot read 'lots'*")):
        result = pytester.runpytest("-p", "no:cacheprovider", bad)
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines([msg])
    pytester.makepyfile(test_nofix="def test_it(): pass")
    result = pytester.runpytest("-p", "no:cacheprovider", "--perf-compare", "test_nofix.py")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*Write --perf-compare=NAME*"])


def test_perf_returns_result_and_exposes_stats(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_perf_call_api="""
        import pytest

        @pytest.mark.perf(rounds=20, warmup=0)
        def test_api(perf):
            calls = []
            def f(a, b=1):
                calls.append(1)
                return a + b
            assert perf(f, 1, b=2) == 3
            assert len(perf.samples) == 20 and perf.iterations >= 1
            assert 0 < perf.stats["min"] <= perf.stats["median"] <= perf.stats["p95"]
            assert len(calls) >= 20 * perf.iterations + 1
            assert perf.verdict == "measured"
            with pytest.raises(RuntimeError, match="once per test"):
                perf(f, 1)
    """)
    result = pytester.runpytest("-p", "no:cacheprovider", f"--perf-store={_url(pytester)}")
    result.assert_outcomes(passed=1)
    row = _rows(pytester).iloc[0]
    assert row["rounds"] == 20 and len(row["samples"]) == 20
    machine = json.loads(row["machine"])
    assert machine["python"] and machine["packages"]["perfkit"]
    assert row["verdict"] == "measured" and row["baseline"] == ""


def test_plain_runs_are_untouched(pytester: pytest.Pytester,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """No perf fixture, no marker, no option: no store, no summary, no heavy import."""
    # Only perfkit's plugin: another installed plugin may import pandas itself.
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    pytester.makepyfile(test_plain="""
        import sys

        def test_plain():
            heavy = {"pandas", "numpy", "scipy", "sqlalchemy", "statsmodels"} & set(sys.modules)
            assert not heavy, heavy
    """)
    result = pytester.runpytest_subprocess("-p", "perfkit.pytest_plugin", *_LEAN)
    result.assert_outcomes(passed=1)
    assert "perfkit performance summary" not in result.stdout.str()
    assert not (pytester.path / ".perfkit").exists()


def test_default_store_and_disable(pytester: pytest.Pytester,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PERFKIT_STORE_URL", raising=False)   # the suite points it to a temp dir
    pytester.makepyfile(test_d="""
        def test_d(perf):
            assert perf(sum, [1, 2, 3]) == 6
            perf.budget(max="1ns")
    """)
    result = pytester.runpytest("-p", "no:cacheprovider", "--perf-disable")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*perf measurements disabled*"])
    assert not (pytester.path / ".perfkit").exists()
    result = pytester.runpytest("-p", "no:cacheprovider", "--perf-fail-on=none")
    result.assert_outcomes(passed=1)
    db = pytester.path / ".perfkit" / "perfkit.db"
    assert db.exists()
    frame = storage_mod.read_benchmarks(storage_mod.engine_for(f"sqlite:///{db}"))
    assert list(frame["test"]) == ["test_d.py::test_d"]
    # the perfkit store reads the same table
    store_mod = pytest.importorskip("perfkit.store")
    store = store_mod.Store(f"sqlite:///{db}")
    try:
        assert list(store.benchmarks()["test"]) == ["test_d.py::test_d"]
        assert len(store.benchmarks(test="test_d.py::test_d")) == 1
    finally:
        store.close()


def test_xdist_workers_measure_and_results_merge(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_par="""
        import pytest

        def work(n):
            return sum(range(n))

        @pytest.mark.parametrize("n", [100, 1000, 5000, 20000])
        @pytest.mark.perf(max_time="0.1s", warmup=0)
        def test_par(perf, n):
            perf(work, n)
    """)
    args = (*_LEAN, "-n", "2", f"--perf-store={_url(pytester)}")
    result = pytester.runpytest_subprocess(*args, "--perf-save=par")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["*perfkit performance summary*", "*4 saved*"])
    for n in (100, 1000, 5000, 20000):
        result.stdout.fnmatch_lines([f"*test_par.py::test_par?{n}?*saved*"])
    frame = _rows(pytester)
    assert len(frame) == 4 and frame["run_id"].nunique() == 1       # one run...
    assert set(frame["worker"]) <= {"gw0", "gw1"}
    assert frame["worker"].nunique() == 2  # ...two workers
    # a bad marker cannot abort the session from a worker: that test errors at setup instead
    pytester.makepyfile(test_bad="""
        import pytest

        @pytest.mark.perf(roundz=3)
        def test_bad(perf):
            perf(len, "x")
    """)
    result = pytester.runpytest_subprocess(*args, "--perf-compare=par", "--perf-fail-on=none")
    result.assert_outcomes(passed=4, errors=1)
    result.stdout.fnmatch_lines(["*invalid perf marker usage*",
                                 "*unknown argument 'roundz' (did you mean 'rounds'?)*"])
    frame = _rows(pytester)
    assert frame["ratio"].notna().sum() == 4 and frame["run_id"].nunique() == 2


# ----------------------------------------------------------------- units

def test_decide_rules() -> None:
    decide = stats_mod.decide
    assert decide(1.3, 1.25, 1.35, 0.10)[0] == "regression"
    assert decide(1.12, 1.05, 1.19, 0.10)[0] == "inconclusive"      # straddles the limit
    assert decide(1.03, 1.01, 1.05, 0.10)[0] == "ok"                # significant but small
    assert decide(0.7, 0.68, 0.72, 0.10)[0] == "improved"
    assert decide(1.0, 0.6, 1.05, 0.10)[0] == "inconclusive"        # wider than the band
    assert decide(1.0, 0.95, 1.05, 0.02)[0] == "inconclusive"


def test_combine_lets_neither_view_contradict() -> None:
    def c(ratio: float, verdict: str) -> stats_mod.Comparison:
        return stats_mod.Comparison(ratio, ratio * 0.98, ratio * 1.02, verdict, "", 1.1, 0.99)

    raw, norm = c(1.3, "regression"), c(1.25, "regression")
    assert stats_mod.combine(raw, norm) is norm                       # closer to 1 reported
    assert stats_mod.combine(c(1.14, "regression"), c(1.01, "ok")).verdict == "ok"  # drift
    assert stats_mod.combine(c(0.87, "improved"), c(0.99, "ok")).verdict == "ok"
    # a clear regression stands when the other view is only noisy, not pointing elsewhere
    assert stats_mod.combine(c(1.3, "regression"), c(1.25, "inconclusive")).verdict == \
        "regression"
    assert stats_mod.combine(c(1.25, "inconclusive"), c(1.3, "regression")).verdict == \
        "regression"
    assert stats_mod.combine(c(0.7, "improved"), c(0.8, "inconclusive")).verdict == "improved"
    assert stats_mod.combine(c(1.2, "regression"), c(1.08, "inconclusive")).verdict == \
        "inconclusive"
    assert stats_mod.combine(c(1.3, "regression"), c(0.8, "improved")).verdict == \
        "inconclusive"
    assert stats_mod.combine(raw, None) is raw


def test_combine_lets_the_normalised_view_decide_when_the_machine_moved() -> None:
    def c(ratio: float, verdict: str) -> stats_mod.Comparison:
        return stats_mod.Comparison(ratio, ratio * 0.98, ratio * 1.02, verdict, "", 1.1, 0.99)

    masked = (c(0.85, "improved"), c(1.35, "regression"))   # 1.3x work, machine 1.6x faster
    assert stats_mod.combine(*masked, shift=1 / 1.6).verdict == "regression"
    assert stats_mod.combine(*masked, shift=1.0).verdict == "inconclusive"   # did not move
    assert stats_mod.combine(c(1.02, "ok"), c(1.3, "regression"), shift=0.75).verdict == \
        "regression"
    assert stats_mod.combine(c(1.5, "regression"), c(1.0, "ok"), shift=1.5).verdict == "ok"
    # a noisy normalised view does not decide alone: the usual rules apply
    assert stats_mod.combine(c(0.95, "ok"), c(1.2, "inconclusive"), shift=0.7).verdict == "ok"
    assert stats_mod.machine_moved(1.06, 1.1) and stats_mod.machine_moved(0.94, 1.1)
    assert not stats_mod.machine_moved(1.04, 1.1) and not stats_mod.machine_moved(0.96, 1.1)


def _two_speed_machine(rng: numpy.random.Generator, n: int, work: float
                       ) -> tuple[numpy.ndarray, numpy.ndarray]:
    """Rounds on a machine that is 1.6x slower in a random half of the rounds (a busy
    neighbour comes and goes); each round and its reference round share the speed."""
    speed = numpy.where(rng.random(n) < 0.5, 1.0, 1.6)
    fn = work * 1e-3 * speed * numpy.exp(0.02 * rng.standard_normal(n))
    ref = 5e-6 * speed * numpy.exp(0.02 * rng.standard_normal(n))
    return fn, ref


def test_paired_normalisation_cancels_a_machine_that_changes_speed_within_a_run() -> None:
    rng = numpy.random.default_rng(11)
    base, base_ref = _two_speed_machine(rng, 80, 1.0)
    for work, expected in ((1.0, "ok"), (1.3, "regression")):
        cur, cur_ref = _two_speed_machine(rng, 80, work)
        cmp, raw, norm = stats_mod.judge(cur, base, 0.10, current_ref=cur_ref,
                                         baseline_ref=base_ref)
        assert raw.ci_high / raw.ci_low > 1.5      # medians flip between the two speeds
        assert norm is not None and abs(norm.ratio / work - 1) < 0.03
        assert norm.ci_high / norm.ci_low < 1.06
        assert cmp.verdict == expected


def test_pooled_measurements_keep_rounds_paired() -> None:
    a = measure_mod.Measurement(samples=[1.0, 2.0], iterations=4, ref_samples=[0.1, 0.2],
                                discarded=1, rounds_executed=3)
    b = measure_mod.Measurement(samples=[3.0], iterations=4, ref_samples=[0.3],
                                busy=True, rounds_executed=1)
    both = measure_mod.pooled(a, b)
    assert both.samples == [1.0, 2.0, 3.0] and both.ref_samples == [0.1, 0.2, 0.3]
    assert (both.rounds, both.discarded, both.rounds_executed, both.busy) == (3, 1, 4, True)
    assert measure_mod.pooled(a, measure_mod.Measurement(samples=[3.0], iterations=4)
                              ).ref_samples == []
    with pytest.raises(ValueError, match="same iterations per round"):
        measure_mod.pooled(a, measure_mod.Measurement(samples=[3.0], iterations=8))


def test_normalised_ratio_cancels_a_slower_machine() -> None:
    rng = numpy.random.default_rng(5)
    base = 1e-3 * (1 + 0.02 * rng.standard_normal(100))
    base_ref = 5e-6 * (1 + 0.02 * rng.standard_normal(100))
    slow = 1.15                                    # the whole machine 15 % slower today
    cur = slow * 1e-3 * (1 + 0.02 * rng.standard_normal(100))
    cur_ref = slow * 5e-6 * (1 + 0.02 * rng.standard_normal(100))
    raw = stats_mod.compare(cur, base, 0.10)
    norm = stats_mod.compare(cur, base, 0.10, current_ref=cur_ref, baseline_ref=base_ref)
    assert raw.verdict == "regression"
    assert norm.verdict == "ok" and abs(norm.ratio - 1) < 0.02
    assert stats_mod.combine(raw, norm).verdict == "ok"


def test_preempted_rounds_are_discarded(monkeypatch: pytest.MonkeyPatch,
                                        clock: FakeClock) -> None:
    counter = iter(range(10**6))
    calls = {"n": 0}

    def fake_switches() -> int:
        """Read before and after each round; odd rounds see a context switch."""
        calls["n"] += 1
        after, round_no = calls["n"] % 2 == 0, (calls["n"] - 1) // 2
        return 1 if after and round_no % 2 else 0

    monkeypatch.setattr(measure_mod, "_involuntary_switches", fake_switches)
    _, m = measure_mod.measure(clock.spend, (1e-5,), settings=PerfSettings(
        rounds=20, warmup=0.0, max_time=0.1))
    assert m.rounds == 20 and m.discarded >= 10 and not m.busy
    assert len(m.ref_samples) == 20

    monkeypatch.setattr(measure_mod, "_involuntary_switches", lambda: next(counter))
    _, m = measure_mod.measure(clock.spend, (1e-5,), settings=PerfSettings(
        rounds=20, warmup=0.0, max_time=0.01))
    assert m.busy and m.rounds > 0                 # never clean: keeps them all, flags it


def test_ratio_ci_is_reproducible_and_covers_truth() -> None:
    rng = numpy.random.default_rng(3)
    base = 1e-3 * (1 + 0.05 * rng.standard_normal(200))
    cur = 1.2e-3 * (1 + 0.05 * rng.standard_normal(200))
    a = stats_mod.ratio_ci(cur, base, 0.99, seed=7)
    assert a == stats_mod.ratio_ci(cur, base, 0.99, seed=7)
    assert a[1] < 1.2 < a[2] and a[1] < a[0] < a[2]


def test_measure_calibrates_rounds_above_clock_resolution(clock: FakeClock) -> None:
    settings = PerfSettings(max_time=0.05, warmup=0.0, min_rounds=5)

    def answer() -> int:
        clock.spend(1e-6)
        return 42

    result, m = measure_mod.measure(answer, settings=settings)
    assert result == 42
    assert m.iterations >= 250          # 1 µs calls, rounds of at least 250 µs
    assert min(m.samples) * m.iterations >= settings.min_round_time * 0.9
    assert 15 <= m.rounds <= 200        # 50 ms of ~300 µs rounds
    assert m.clock_resolution * 1000 <= settings.min_round_time


def test_measure_restores_gc_state() -> None:
    import gc

    assert gc.isenabled()
    measure_mod.measure(lambda: [[] for _ in range(10)],
                        settings=PerfSettings(max_time=0.01, warmup=0.0, min_rounds=5))
    assert gc.isenabled()
    with pytest.raises(ZeroDivisionError):
        measure_mod.measure(lambda: 1 / 0, settings=PerfSettings(warmup=0.0))
    assert gc.isenabled()


def test_option_parsers() -> None:
    assert parse_duration("2ms") == pytest.approx(2e-3)
    assert parse_duration("150us") == parse_duration("150µs") == pytest.approx(150e-6)
    assert parse_duration(0.5) == 0.5
    assert parse_fraction("10%") == pytest.approx(0.1) and parse_fraction(0.05) == 0.05
    for bad in ("-1ms", "2 parsecs", True, None):
        with pytest.raises(PerfUsageError):
            parse_duration(bad)
    for bad in ("0%", "x", -0.1):
        with pytest.raises(PerfUsageError):
            parse_fraction(bad)


def test_storage_round_trip_sqlite(tmp_path) -> None:
    engine = storage_mod.engine_for(f"sqlite:///{tmp_path}/nested/dir/s.db")
    empty = storage_mod.read_benchmarks(engine)
    assert empty.empty and "samples" in empty.columns
    _write_rows(engine)
    _check_rows(engine)


def test_history_uses_the_store_time_convention_and_sets_aside_an_old_table(tmp_path) -> None:
    """ts is int64 ns UTC like every store table; a table from before that is kept, renamed."""
    import sqlalchemy as sa

    url = f"sqlite:///{tmp_path}/h.db"
    old = sa.create_engine(url)
    with old.begin() as conn:
        conn.execute(sa.text("CREATE TABLE perfkit_benchmarks (id INTEGER PRIMARY KEY, "
                             "test TEXT, ts DATETIME)"))
        conn.execute(sa.text("CREATE INDEX ix_perfkit_benchmarks_test_ts "
                             "ON perfkit_benchmarks (test, ts)"))
        conn.execute(sa.text("INSERT INTO perfkit_benchmarks (test, ts) "
                             "VALUES ('t', '2026-01-01 00:00:00')"))
    old.dispose()
    engine = storage_mod.engine_for(url)
    _write_rows(engine)
    with engine.connect() as conn:
        raw = conn.execute(sa.text("SELECT ts FROM perfkit_benchmarks")).scalars().all()
        kept = conn.execute(sa.text("SELECT test FROM perfkit_benchmarks_legacy")).scalars().all()
    assert kept == ["t"]
    assert len(raw) == 3 and all(isinstance(v, int) and v > 1_700_000_000 * 10**9 for v in raw)
    frame = storage_mod.read_benchmarks(engine)
    assert str(frame["ts"].dtype) == "datetime64[ns, UTC]"
    assert (frame["ts"].astype("int64").to_numpy() == sorted(raw)).all()
    engine.dispose()


@pytest.mark.postgres
def test_storage_round_trip_postgres(pg_url: str) -> None:
    engine = storage_mod.engine_for(pg_url)
    _write_rows(engine)
    _check_rows(engine)
    engine.dispose()


def _write_rows(engine) -> None:
    for i, (baseline, median) in enumerate([("main", 1e-3), ("", 1.1e-3), ("main", 0.9e-3)]):
        storage_mod.write_benchmark(engine, {
            "run_id": f"run{i}", "baseline": baseline, "test": "t.py::test_x",
            "commit": f"c{i}", "machine": {"cpu": "x"}, "rounds": 3, "iterations": 10,
            "median_s": median, "p95_s": median, "mean_s": median, "stdev_s": 0.0,
            "samples": [median] * 3, "verdict": "saved" if baseline else "ok", "worker": "",
        })


def _check_rows(engine) -> None:
    frame = storage_mod.read_benchmarks(engine, test="t.py::test_x")
    assert list(frame["run_id"]) == ["run0", "run1", "run2"]
    assert str(frame["ts"].dtype) == "datetime64[ns, UTC]"
    assert frame["samples"].iloc[1] == [1.1e-3] * 3
    assert json.loads(frame["machine"].iloc[0]) == {"cpu": "x"}
    assert len(storage_mod.read_benchmarks(engine, baseline="main")) == 2
    latest = storage_mod.latest_baseline(engine, "t.py::test_x")
    assert latest["run_id"] == "run2" and latest["samples"] == [0.9e-3] * 3
    assert storage_mod.latest_baseline(engine, "t.py::test_x", exclude_run_id="run2")[
        "run_id"] == "run0"
    assert storage_mod.latest_baseline(engine, "t.py::other") is None
    with pytest.raises(ValueError, match="unknown columns"):
        storage_mod.write_benchmark(engine, {"nope": 1})


def test_history_figure(tmp_path) -> None:
    from perfkit.plots._benchmarks import benchmark_history_figure

    engine = storage_mod.engine_for(f"sqlite:///{tmp_path}/h.db")
    _write_rows(engine)
    fig = benchmark_history_figure(storage_mod.read_benchmarks(engine), "t.py::test_x")
    assert len(fig.data) >= 1
    assert fig.layout.yaxis.title.text
    with pytest.raises(ValueError, match="no stored results"):
        benchmark_history_figure(storage_mod.read_benchmarks(engine), "missing")


def test_plugin_import_is_cheap() -> None:
    code = textwrap.dedent("""
        import sys
        import perfkit.pytest_plugin
        heavy = {"pandas", "numpy", "scipy", "sqlalchemy", "statsmodels", "plotly"}
        print(sorted(heavy & set(sys.modules)))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert out.stdout.strip() == "[]"
