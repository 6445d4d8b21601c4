"""Peak memory of one big forecast: 1,000,000 points at 5 s, 24 h ahead (17,280 steps).

    python benchmarks/bench_forecast_memory.py [--points 1000000] [--horizon 24h]

Each case runs in a fresh interpreter and reports its peak RSS (``ru_maxrss``):
the interpreter with pandas and perfkit.analysis imported and the input Series
built (the floor), then ``perfkit.forecast(series, horizon)`` for ``auto``,
``damped`` and ``linear``, and, as the reference, statsmodels ``ETSModel`` damped
Holt fitted on the same newest ``MAX_HISTORY_POINTS`` points with the same
horizon (statsmodels given all 1,000,000 points needs minutes). Target: perfkit's
peak <= 300 MB.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CASE = r"""
import json, resource, sys, time, warnings
import numpy as np, pandas as pd
from perfkit.analysis import MAX_HISTORY_POINTS, forecast
n, horizon, case = int(sys.argv[1]), sys.argv[2], sys.argv[3]
rng = np.random.default_rng(0)
s = pd.Series(20 + np.cumsum(rng.normal(0, 0.05, n)),
              pd.date_range("2026-01-01", periods=n, freq="5s", tz="UTC"), name="orders.custom")
floor = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
rows = 0
if case in ("auto", "damped", "linear"):
    rows = len(forecast(s, horizon, method=case))
elif case == "statsmodels":
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel
    steps = int(pd.Timedelta(horizon) / pd.Timedelta("5s"))
    y = pd.Series(s.to_numpy()[-MAX_HISTORY_POINTS:])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = ETSModel(y, error="add", trend="add", damped_trend=True).fit(disp=False)
        rows = len(r.get_prediction(start=len(y), end=len(y) + steps - 1).summary_frame(alpha=0.2))
took = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"floor_mb": floor / 1024, "peak_mb": peak / 1024, "s": took, "rows": rows}))
"""


def run(points: int, horizon: str, case: str) -> dict:
    out = subprocess.run([sys.executable, "-c", CASE, str(points), horizon, case],
                         capture_output=True, text=True, check=True, timeout=900,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin",
                              "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"})
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--points", type=int, default=1_000_000)
    ap.add_argument("--horizon", default="24h")
    a = ap.parse_args(argv)
    print(f"\n{a.points:,} points at 5 s, horizon {a.horizon}\n")
    print("| case | peak RSS | RSS before the call | time | rows | target |")
    print("|---|---:|---:|---:|---:|---|")
    for case in ("auto", "damped", "linear", "statsmodels"):
        r = run(a.points, a.horizon, case)
        label = ("statsmodels ETSModel damped, newest 50,000 points (reference)"
                 if case == "statsmodels" else f"perfkit forecast(method={case!r})")
        target = "" if case == "statsmodels" else "<= 300 MB"
        print(f"| {label} | {r['peak_mb']:,.0f} MB | {r['floor_mb']:,.0f} MB | {r['s']:.2f} s "
              f"| {r['rows']:,} | {target} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
