"""Power and false alarms of the regression gate, with and without a competing busy loop.

Called by ``python benchmarks/bench_regression.py --power`` (or run directly).
In one process, each trial does what the ``perf`` fixture does with its
default settings: measure the baseline function, measure the current one
(same iterations per round when that fits), decide with
``perfkit.pytest_plugin._stats.judge`` (absolute and machine-normalised
views), and on a ``regression`` or ``inconclusive`` verdict measure once more
and decide on both batches' rounds together. ``max_regression`` is 10 %.

Trials: A/A (the same work for baseline and current) and the current doing
1.1x, 1.3x and 2x the work. Conditions: the machine as it is ("quiet", which
on a shared machine is not idle), and with one busy-loop process per core.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from perfkit.pytest_plugin._measure import measure, pooled
from perfkit.pytest_plugin._options import PerfSettings
from perfkit.pytest_plugin._stats import judge, seed_for

FACTORS = (1.0, 1.1, 1.3, 2.0)


def loop(n: int) -> int:
    x = 0
    for i in range(n):
        x += i
    return x


def _spin(stop: mp.synchronize.Event) -> None:
    while not stop.is_set():
        for _ in range(100_000):
            pass


def trial(n: int, factor: float, settings: PerfSettings, seed: int) -> str:
    """One baseline + current comparison through the gate; returns the verdict."""
    _, base = measure(loop, (n,), settings=settings)
    cur_n = int(n * factor)
    _, cur = measure(loop, (cur_n,), settings=settings, iterations_hint=base.iterations)

    def decide(m):
        return judge(m.samples, base.samples, settings.max_regression, settings.confidence,
                     seed, current_ref=m.ref_samples, baseline_ref=base.ref_samples)[0]

    cmp = decide(cur)
    first = cur
    for _ in range(settings.repeat):
        if cmp.verdict not in ("regression", "inconclusive"):
            break
        _, again = measure(loop, (cur_n,), settings=settings, iterations=first.iterations,
                           rounds=first.rounds, first_call=False)
        cur = pooled(cur, again)
        cmp = decide(cur)
    return cmp.verdict


def run(aa: int, slowed: int, busy: bool, n: int = 20_000) -> dict[float, dict[str, int]]:
    stop = mp.Event()
    spinners = [mp.Process(target=_spin, args=(stop,), daemon=True)
                for _ in range(os.cpu_count() or 2)] if busy else []
    for p in spinners:
        p.start()
    settings = PerfSettings(max_regression=0.10)
    out: dict[float, dict[str, int]] = {}
    try:
        for factor in FACTORS:
            k = aa if factor == 1.0 else slowed
            counts: dict[str, int] = {}
            for i in range(k):
                v = trial(n, factor, settings, seed_for(f"power-{factor}-{i}"))
                counts[v] = counts.get(v, 0) + 1
            out[factor] = counts
            print(f"{'busy' if busy else 'quiet'} x{factor}: {counts}", file=sys.stderr,
                  flush=True)
    finally:
        stop.set()
        for p in spinners:
            p.join(5)
            if p.is_alive():
                p.terminate()
    return out


def table(results: dict[str, dict[float, dict[str, int]]]) -> str:
    lines = [("| condition | A/A false failures | 1.1x reported | 1.3x reported | "
              "2x reported | A/A inconclusive |"), "|---|---|---|---|---|---|"]

    def share(c: dict[str, int]) -> str:
        total = sum(c.values())
        return f"{c.get('regression', 0)}/{total} ({c.get('regression', 0) / total:.0%})"

    for cond, res in results.items():
        aa = res[1.0]
        lines.append(f"| {cond} | {aa.get('regression', 0)}/{sum(aa.values())} | "
                     f"{share(res[1.1])} | {share(res[1.3])} | {share(res[2.0])} | "
                     f"{aa.get('inconclusive', 0)}/{sum(aa.values())} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--aa", type=int, default=40, help="A/A trials per condition")
    ap.add_argument("--slowed", type=int, default=20, help="trials per slowdown and condition")
    ap.add_argument("--only", choices=["quiet", "busy"], default=None)
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    results = {}
    for cond in ("quiet", "busy"):
        if a.only in (None, cond):
            results[cond if cond == "quiet" else f"busy ({os.cpu_count()} busy loops)"] = run(
                a.aa, a.slowed, busy=cond == "busy")
    print(f"<!-- python benchmarks/bench_regression.py --power --aa {a.aa} --slowed "
          f"{a.slowed}; {time.perf_counter() - t0:.0f} s -->")
    print(table(results))


if __name__ == "__main__":
    main()
