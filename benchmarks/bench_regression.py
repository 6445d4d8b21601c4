"""perfkit's pytest regression plugin vs pytest-benchmark: overhead and A/A false positives.

Run on demand (not part of the test suite):

    python benchmarks/bench_regression.py              # overhead + 20 A/A runs + 2 slowed runs
    python benchmarks/bench_regression.py --aa-runs 5  # quicker

Everything happens in a temporary directory; each pytest run is a fresh
interpreter. The results are printed as Markdown (pasted into
``benchmarks/regression.md``) and written as JSON next to the temporary files.

1. **Overhead per round.** One pytest run measures the same functions with
   ``perf`` and with pytest-benchmark's ``benchmark`` fixture. A conftest
   times the call phase of every test; overhead per round =
   (wall time of the call phase - time inside timed rounds) / rounds, i.e.
   warm-up, calibration, bookkeeping, GC toggling and (perfkit) the
   interleaved reference rounds, spread over the rounds. We also report the
   per-call time each tool reports for an empty function (loop + timer cost
   that ends up inside the samples).
2. **False positives on A/A runs.** One run saves a baseline with both tools
   (``--perf-save`` / ``--benchmark-save``); then N runs of the *same code*
   compare against it (``--perf-compare`` with perfkit's defaults, i.e.
   ``max_regression`` 10 %; ``--benchmark-compare-fail=min:5%``). A false
   positive is a test flagged as slower. pytest-benchmark's decision is
   recomputed from its JSON exactly as its ``min:5%`` check does
   (``current.min / baseline.min - 1 > 5 %``); its session exit status is
   recorded too. perfkit's decision is read from the store; we also
   re-decide perfkit's stored samples with a 5 % limit for a like-for-like
   threshold.
3. **Detection.** Two runs with the functions made 30 % slower (30 % more loop
   iterations): both tools should flag every test.

``--power`` runs ``benchmarks/regression_power.py`` instead: the gate's false
failures on >= 40 A/A trials and its power against 1.1x / 1.3x / 2x slowdowns,
with and without a competing busy loop per core.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

LEAN = ["-p", "no:cacheprovider", "-p", "no:schemathesis", "-p", "no:hypothesispytest",
        "-p", "no:anyio", "-p", "no:randomly", "-q"]

# The measured functions: pure-Python loops of four sizes (~0.1 µs to ~2 ms per call).
FUNCS = """
FACTOR = float(os.environ.get("BENCH_FACTOR", "1.0"))


def noop():
    pass


def loop(n):
    x = 0
    for i in range(n):
        x += i
    return x


def dict_work(n):
    d = {}
    for i in range(n):
        d[i % 97] = d.get(i % 97, 0) + i
    return len(d)


SIZES = {"tiny": (loop, 30), "small": (loop, 600), "medium": (dict_work, 3000),
         "large": (loop, 100000)}
"""

TEST_FILE = """
import os
import pytest
{funcs}

@pytest.mark.parametrize("size", list(SIZES))
def test_perf(perf, size):
    func, n = SIZES[size]
    perf(func, int(n * FACTOR))


@pytest.mark.parametrize("size", list(SIZES))
def test_bench(benchmark, size):
    func, n = SIZES[size]
    benchmark(func, int(n * FACTOR))
"""

OVERHEAD_FILE = """
import os
import time
import pytest
{funcs}

CASES = {{"noop": (noop, ()), "small": (loop, (600,)), "large": (loop, (100000,))}}


# (A) defaults: what a user pays per test
@pytest.mark.parametrize("case", list(CASES))
def test_perf(perf, case, record):
    func, args = CASES[case]
    perf(func, *args)
    m = perf.measurement
    record("perfkit", case, rounds=m.rounds, discarded=m.discarded, iterations=m.iterations,
           timed=sum(m.samples) * m.iterations, per_call=perf.stats["median"],
           min=perf.stats["min"])


@pytest.mark.parametrize("case", list(CASES))
def test_bench(benchmark, case, record):
    func, args = CASES[case]
    benchmark(func, *args)
    st = benchmark.stats.stats
    iters = benchmark.stats.iterations
    record("pytest-benchmark", case, rounds=st.rounds, discarded=0, iterations=iters,
           timed=sum(st.data) * iters, per_call=st.median, min=st.min)


# (B) the measuring loop itself: 2000 rounds x 100 calls of an empty function, fixed shape
@pytest.mark.perf(rounds=2000, iterations=100, warmup=0, normalize=False)
def test_loop_perf_plain(perf, record):
    perf(noop)
    m = perf.measurement
    record("perfkit (normalize=False)", "loop", per_round=m.overhead_per_round,
           rounds=m.rounds_executed, per_call=perf.stats["median"])


@pytest.mark.perf(rounds=2000, iterations=100, warmup=0)
def test_loop_perf_default(perf, record):
    perf(noop)
    m = perf.measurement
    record("perfkit (default, with reference round)", "loop", per_round=m.overhead_per_round,
           rounds=m.rounds_executed, per_call=perf.stats["median"])


def test_loop_bench(benchmark, record):
    t0 = time.perf_counter()
    benchmark.pedantic(noop, rounds=2000, iterations=100, warmup_rounds=0)
    wall = time.perf_counter() - t0
    st = benchmark.stats.stats
    record("pytest-benchmark (pedantic)", "loop",
           per_round=(wall - sum(st.data) * 100) / st.rounds, rounds=st.rounds,
           per_call=st.median)
"""

CONFTEST = """
import json, os, time
import pytest

RESULTS = []


@pytest.fixture
def record(request):
    def rec(tool, case, **kw):
        RESULTS.append(dict(tool=tool, case=case, test=request.node.nodeid, **kw))
    return rec


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    t0 = time.perf_counter()
    try:
        return (yield)
    finally:
        wall = time.perf_counter() - t0
        for r in RESULTS:
            if r["test"] == item.nodeid:
                r["wall"] = wall


def pytest_sessionfinish(session):
    with open(os.environ["BENCH_OUT"], "w") as fh:
        json.dump(RESULTS, fh)
"""


def run_pytest(cwd: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", *LEAN, *args], cwd=cwd,
                          capture_output=True, text=True, env={**os.environ, **(env or {})},
                          check=False)


def overhead(work: Path, repeats: int) -> dict:
    d = work / "overhead"
    d.mkdir()
    (d / "test_overhead.py").write_text(OVERHEAD_FILE.format(funcs=FUNCS))
    (d / "conftest.py").write_text(CONFTEST)
    rows: list[dict] = []
    for i in range(repeats):
        out = d / f"out{i}.json"
        proc = run_pytest(d, f"--perf-store=sqlite:///{d}/perf.db", "--benchmark-disable-gc",
                          "-p", "no:xdist", env={"BENCH_OUT": str(out)})
        if proc.returncode != 0:
            raise SystemExit(proc.stdout + proc.stderr)
        rows += json.loads(out.read_text())
    summary: dict = {"per_test": {}, "loop": {}}
    for tool in ("perfkit", "pytest-benchmark"):
        for case in ("noop", "small", "large"):
            rs = [r for r in rows if r["tool"] == tool and r["case"] == case]
            summary["per_test"][f"{tool}/{case}"] = {
                "rounds": statistics.median(r["rounds"] for r in rs),
                "discarded": statistics.median(r["discarded"] for r in rs),
                "iterations": statistics.median(r["iterations"] for r in rs),
                "wall_s": statistics.median(r["wall"] for r in rs),
                "timed_s": statistics.median(r["timed"] for r in rs),
                "reported_per_call_ns": statistics.median(r["per_call"] * 1e9 for r in rs),
                "min_per_call_ns": statistics.median(r["min"] * 1e9 for r in rs),
            }
    for r in rows:
        if r["case"] == "loop":
            summary["loop"].setdefault(r["tool"], []).append(r)
    summary["loop"] = {
        tool: {"per_round_us_min": min(r["per_round"] for r in rs) * 1e6,
               "per_round_us_median": statistics.median(r["per_round"] for r in rs) * 1e6,
               "per_call_ns": statistics.median(r["per_call"] for r in rs) * 1e9,
               "rounds": statistics.median(r["rounds"] for r in rs)}
        for tool, rs in summary["loop"].items()}
    return summary


def aa(work: Path, runs: int, slowed: int) -> dict:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from perfkit.pytest_plugin import _stats as stats
    from perfkit.pytest_plugin import _storage as storage

    d = work / "aa"
    d.mkdir()
    (d / "test_aa.py").write_text(TEST_FILE.format(funcs=FUNCS))
    store = f"sqlite:///{d}/perf.db"
    bstore = f"file://{d}/bench"
    common = [f"--perf-store={store}", f"--benchmark-storage={bstore}", "-p", "no:xdist"]

    def bench_json(path: Path) -> dict:
        data = json.loads(path.read_text())
        return {b["param"]: b["stats"] for b in data["benchmarks"]}

    t0 = time.perf_counter()
    proc = run_pytest(d, *common, "--perf-save=aa", "--benchmark-save=aa",
                      f"--benchmark-json={d}/base.json")
    if proc.returncode != 0:
        raise SystemExit(proc.stdout + proc.stderr)
    base = bench_json(d / "base.json")
    results = []
    for i in range(runs + slowed):
        factor = "1.3" if i >= runs else "1.0"
        out = d / f"run{i}.json"
        proc = run_pytest(d, *common, "--perf-compare=aa", "--perf-fail-on=regression",
                          "--benchmark-compare=0001", "--benchmark-compare-fail=min:5%",
                          f"--benchmark-json={out}", env={"BENCH_FACTOR": factor})
        cur = bench_json(out)
        bench_flags = {k: cur[k]["min"] / base[k]["min"] - 1 > 0.05 for k in cur}
        frame = storage.read_benchmarks(storage.engine_for(store))
        last = frame[frame["run_id"] == frame["run_id"].iloc[-1]]
        verdicts = {t.split("[")[-1].rstrip("]"): v for t, v in zip(last["test"], last["verdict"])}
        ratios = {t.split("[")[-1].rstrip("]"): r for t, r in zip(last["test"], last["ratio"])}
        raw = {t.split("[")[-1].rstrip("]"): r for t, r in zip(last["test"], last["raw_ratio"])}
        # perfkit's stored samples re-decided with a 5 % limit (like-for-like with min:5%)
        at5 = {}
        for _, row in last.iterrows():
            baseline = storage.latest_baseline(storage.engine_for(store), row["test"], "aa")
            seed = stats.seed_for(row["test"])
            cmp = stats.judge(row["samples"], baseline["samples"], 0.05, 0.99, seed,
                              current_ref=row["ref_samples"],
                              baseline_ref=baseline["ref_samples"])[0]
            at5[row["test"].split("[")[-1].rstrip("]")] = cmp.verdict
        results.append({
            "factor": float(factor), "perf_exit": proc.returncode,
            "bench_session_failed": "Performance has regressed" in proc.stdout + proc.stderr,
            "bench_flags": bench_flags,
            "bench_min_ratio": {k: cur[k]["min"] / base[k]["min"] for k in cur},
            "perf_verdicts": verdicts, "perf_ratio": ratios, "perf_raw_ratio": raw,
            "perf_verdicts_at_5pct": at5,
        })
        print(f"run {i + 1}/{runs + slowed} factor {factor}: perfkit {verdicts} | "
              f"pytest-benchmark flagged {[k for k, v in bench_flags.items() if v]}",
              file=sys.stderr, flush=True)
    return {"runs": results, "elapsed_s": time.perf_counter() - t0}


def _ns(ns: float) -> str:
    for unit, scale in (("ms", 1e6), ("µs", 1e3)):
        if ns >= scale:
            return f"{ns / scale:.3g} {unit}"
    return f"{ns:.3g} ns"


def markdown(over: dict, aa_res: dict) -> str:
    lines = ["### Overhead per round: the measuring loop (same pytest run)", "",
             ("2000 rounds x 100 calls of an empty function, fixed shape, no warm-up; time per "
             "round spent outside the timed region (min / median of the repeats)."), "",
             "| tool | overhead per round (min) | (median) | reported time per call |",
             "|---|---|---|---|"]
    for tool, v in over["loop"].items():
        lines.append(f"| {tool} | {v['per_round_us_min']:.1f} µs | "
                     f"{v['per_round_us_median']:.1f} µs | {v['per_call_ns']:.1f} ns |")
    lines += ["", "### Cost per test with default settings (same functions, same pytest run)", "",
              ("| tool | function | rounds kept (+ discarded) x iterations | wall of the test | "
               "inside kept rounds | median per call | min per call |"),
              "|---|---|---|---|---|---|---|"]
    for key, v in over["per_test"].items():
        tool, case = key.split("/")
        lines.append(
            f"| {tool} | {case} | {v['rounds']:.0f} (+{v['discarded']:.0f}) x "
            f"{v['iterations']:.0f} | {v['wall_s']:.2f} s | {v['timed_s']:.2f} s | "
            f"{_ns(v['reported_per_call_ns'])} | {_ns(v['min_per_call_ns'])} |")
    runs = [r for r in aa_res["runs"] if r["factor"] == 1.0]
    slow = [r for r in aa_res["runs"] if r["factor"] != 1.0]
    tests = sorted(runs[0]["perf_verdicts"]) if runs else []

    def count(rs: list, pred) -> str:
        return f"{sum(1 for r in rs if pred(r))}/{len(rs)}"

    lines += ["", f"### A/A: {len(runs)} runs of unchanged code against one saved baseline", "",
              ("| | runs with any test flagged slower | tests flagged slower |"
              " inconclusive | flagged faster |"), "|---|---|---|---|---|"]
    n_tests = len(runs) * len(tests)
    b_tests = sum(sum(r["bench_flags"].values()) for r in runs)
    p_tests = sum(sum(v == "regression" for v in r["perf_verdicts"].values()) for r in runs)
    p5_tests = sum(sum(v == "regression" for v in r["perf_verdicts_at_5pct"].values())
                   for r in runs)
    lines.append(f"| pytest-benchmark `--benchmark-compare-fail=min:5%` | "
                 f"{count(runs, lambda r: any(r['bench_flags'].values()))} | "
                 f"{b_tests}/{n_tests} | n/a | n/a |")
    def tally(key: str, verdict: str, pool: list) -> int:
        return sum(sum(v == verdict for v in r[key].values()) for r in pool)

    lines.append(f"| perfkit default (max_regression 10 %) | "
                 f"{count(runs, lambda r: 'regression' in r['perf_verdicts'].values())} | "
                 f"{p_tests}/{n_tests} | "
                 f"{tally('perf_verdicts', 'inconclusive', runs)}"
                 f"/{n_tests} | "
                 f"{tally('perf_verdicts', 'improved', runs)}"
                 f"/{n_tests} |")
    lines.append(f"| perfkit, same samples re-decided at max_regression 5 % | "
                 f"{count(runs, lambda r: 'regression' in r['perf_verdicts_at_5pct'].values())}"
                 f" | {p5_tests}/{n_tests} | "
                 f"{tally('perf_verdicts_at_5pct', 'inconclusive', runs)}"
                 f"/{n_tests} | "
                 f"{tally('perf_verdicts_at_5pct', 'improved', runs)}"
                 f"/{n_tests} |")
    lines += ["", ("Per test, A/A runs: pytest-benchmark min ratio range; perfkit ratio range "
              "(the reported one) and absolute ratio range."), "",
              "| test | pytest-benchmark min ratio | perfkit ratio | perfkit absolute ratio |",
              "|---|---|---|---|"]
    for t in tests:
        b = [r["bench_min_ratio"][t] for r in runs]
        p = [r["perf_ratio"][t] for r in runs]
        q = [r["perf_raw_ratio"][t] for r in runs]
        lines.append(f"| {t} | {min(b):.3f} – {max(b):.3f} | {min(p):.3f} – {max(p):.3f} | "
                     f"{min(q):.3f} – {max(q):.3f} |")
    if slow:
        lines += ["", f"### Detection: {len(slow)} runs with 30 % more work", "",
                  "| tool | tests flagged slower |", "|---|---|"]
        lines.append(f"| pytest-benchmark | "
                     f"{sum(sum(r['bench_flags'].values()) for r in slow)}"
                     f"/{len(slow) * len(tests)} |")
        lines.append(f"| perfkit | "
                     f"{tally('perf_verdicts', 'regression', slow)}"
                     f"/{len(slow) * len(tests)} |")
        lines.append("")
        lines.append("perfkit verdicts on the slowed runs: " + "; ".join(
            ", ".join(f"{k} {v} ({r['perf_ratio'][k]:.2f})" for k, v in sorted(
                r["perf_verdicts"].items())) for r in slow))
    lines.append("")
    lines.append(f"A/A + detection runs took {aa_res['elapsed_s']:.0f} s in all.")
    return "\n".join(lines)


def main() -> None:
    if "--power" in sys.argv:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import regression_power

        regression_power.main([a for a in sys.argv[1:] if a != "--power"])
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--aa-runs", type=int, default=20)
    ap.add_argument("--slowed-runs", type=int, default=2)
    ap.add_argument("--overhead-repeats", type=int, default=3)
    ap.add_argument("--keep", help="work directory to keep (default: a temporary one)")
    ap.add_argument("--overhead-only", action="store_true")
    a = ap.parse_args()
    work = Path(a.keep) if a.keep else Path(tempfile.mkdtemp(prefix="perfkit-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    over = overhead(work, a.overhead_repeats)
    if a.overhead_only:
        print(json.dumps(over, indent=1))
        return
    aa_res = aa(work, a.aa_runs, a.slowed_runs)
    (work / "results.json").write_text(json.dumps({"overhead": over, "aa": aa_res}, indent=1))
    print(textwrap.dedent(f"""\
        <!-- python benchmarks/bench_regression.py --aa-runs {a.aa_runs};
             raw: {work}/results.json -->
        """))
    print(markdown(over, aa_res))


if __name__ == "__main__":
    main()
