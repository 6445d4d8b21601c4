"""How much CPU the demo workload takes per phase, the CPU phase against steady load.

    nice -n 15 python benchmarks/bench_demo_cpu.py               # 40 s per phase
    nice -n 15 python benchmarks/bench_demo_cpu.py --seconds 15  # quick

The demo (a Monitor collecting every 5 s, the market service, the load generator at
20 requests/s) runs one phase at a time in this process; psutil reads the process's
CPU time (user + system) before and after each phase and every 2 s in between. The
steady phase is the same-run reference for the ``cpu_heavy`` phase, whose price-model
job works ``cpu_share`` (0.5) of one core by its own thread time and rests the rest,
so on 2 cores the CPU phase stays bounded instead of pinning the machine.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._report import print_rows
from perfkit.demo import Demo, Phase
from perfkit.monitor import Monitor


def run_phase(mon: Monitor, kind: str, seconds: float, d: Path) -> tuple[float, float]:
    """Mean and peak (2 s) CPU of this process during one ``kind`` phase, % of one core."""
    proc = psutil.Process()
    demo = Demo(mon, rate=20, phases=[Phase(kind, seconds)], db_path=d / f"{kind}.db",
                n_orders=20_000)
    demo.load.loop = False
    try:
        c0, t0 = sum(proc.cpu_times()[:2]), time.monotonic()
        proc.cpu_percent(None)
        demo.start()
        peaks = [0.0]
        while demo.running:
            time.sleep(2)
            peaks.append(proc.cpu_percent(None))
        c1, t1 = sum(proc.cpu_times()[:2]), time.monotonic()
    finally:
        demo.stop()
        demo.close()
    return (c1 - c0) / (t1 - t0) * 100, max(peaks)


def main() -> None:
    """Run steady, cpu_heavy, steady and print the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=40.0, help="length of each phase")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        mon = Monitor(f"sqlite:///{d}/store.db", interval=5)
        mon.start()
        try:
            res = {k: run_phase(mon, k.split()[0], args.seconds, d)
                   for k in ("steady", "cpu_heavy", "steady again")}
        finally:
            mon.stop()
            mon.store.close()
    rows = [(f"{k}: mean / peak CPU, % of one core", f"{m:.1f} / {p:.1f}")
            for k, (m, p) in res.items()]
    ref = (res["steady"][0] + res["steady again"][0]) / 2
    rows.append(("cpu_heavy extra over steady, % of one core", f"{res['cpu_heavy'][0] - ref:.1f}"))
    rows.append(("cpu_heavy share of the machine (all cores)",
                 f"{res['cpu_heavy'][0] / psutil.cpu_count():.1f} %"))
    print_rows(rows)


if __name__ == "__main__":
    main()
