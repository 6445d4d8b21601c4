"""Rolling-origin forecast accuracy of perfkit on the NAB real-metric series in data/nab.

    python benchmarks/forecast_accuracy.py [--origins 200] [--horizon 30min] [--window 6h]
                                            [--data data/nab] [--methods auto,linear,...]

For every series: origins are spread evenly over the second half of the series
(up to ``--origins``; an origin needs >= 10 points in its trailing window, a
non-constant window, and at least one observation within the horizon). At each
origin the method sees only the trailing window ``(t0 - 6h, t0]`` and forecasts
``ceil(30min / step)`` steps on the window's median sampling step. Each actual
observation in ``(t0, t0 + 30min]`` is scored against the forecast step it falls
in (``h = ceil((t - t0) / step)``, capped to the last step), which handles the
jittery realTraffic clocks.

MASE of one origin = mean |error| over the horizon / mean |one-step difference|
inside the trailing window (the in-sample naive error). Coverage = share of
actual observations inside the ``--level`` interval; the Winkler interval score
(width + 2 / (1 - level) x the miss distance) is divided by the same scale.
Reported: median and mean MASE
over all origins pooled, and coverage pooled; the mean again without the 1 % of
origins whose window is near-constant (scale under 1 % of the series' median
scale — a handful of such windows in the network / disk series dominate the
plain mean); and the median over series of a
per-series MASE (sum of errors / sum of scales). ``--per-series`` adds tables.

Repeated timestamps (the 2014-03-09 clock change) are averaged into one point.
Nothing is tuned per file: every method runs with the same settings everywhere.
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from perfkit.analysis._core import forecast_array

# label -> (perfkit method, shift detection)
METHODS = {
    "auto": ("auto", True),
    "linear": ("linear", True),
    "theil_sen": ("theil_sen", True),
    "ets": ("ets", True),
    "naive": ("naive", False),
    "ols_no_shift": ("linear", False),
    "ses": ("ses", False),
    "damped holt": ("damped", False),
}


def load(path: Path) -> pd.Series:
    d = pd.read_csv(path, parse_dates=["timestamp"])
    s = d.groupby("timestamp")["value"].mean().sort_index()
    s.name = str(path.relative_to(path.parents[1]))
    return s


def origins_for(s: pd.Series, window: pd.Timedelta, horizon: pd.Timedelta, max_origins: int):
    t = s.index.to_numpy()
    v = s.to_numpy()
    n = len(t)
    lo = np.searchsorted(t, t - np.timedelta64(window), side="right")
    hi = np.searchsorted(t, t + np.timedelta64(horizon), side="right")
    idx = np.arange(n // 2, n)
    ok = [(i, lo[i]) for i in idx
          if i + 1 - lo[i] >= 10 and hi[i] > i + 1 and np.ptp(v[lo[i]:i + 1]) > 0]
    if len(ok) > max_origins:
        pick = np.linspace(0, len(ok) - 1, max_origins).round().astype(int)
        ok = [ok[k] for k in pick]
    return ok, hi


def evaluate(args):
    path, methods, window, horizon, max_origins, level = args
    s = load(Path(path))
    t_ns = s.index.to_numpy().astype("datetime64[ns]").astype(np.int64)
    v = s.to_numpy(dtype=float)
    orgs, hi = origins_for(s, window, horizon, max_origins)
    rows = []
    for i, j0 in orgs:
        xw = (t_ns[j0:i + 1] - t_ns[i]) / 3.6e12          # hours, 0 at the origin
        yw = v[j0:i + 1]
        scale = np.mean(np.abs(np.diff(yw)))
        if scale == 0:
            continue
        scale_hist = np.mean(np.abs(np.diff(v[:i + 1])))
        step = float(np.median(np.diff(xw)))
        steps = int(np.ceil(horizon / pd.Timedelta(hours=step) - 1e-9))
        ft = (t_ns[i + 1:hi[i]] - t_ns[i]) / 3.6e12
        fy = v[i + 1:hi[i]]
        h = np.clip(np.ceil(ft / step - 1e-9).astype(int), 1, steps) - 1
        for label in methods:
            meth, shift = METHODS[label]
            t0 = time.perf_counter()
            fc = forecast_array(xw, yw, step, steps, level, meth, shift=shift)
            dt = time.perf_counter() - t0
            err = np.abs(fy - fc.mean[h])
            lo, up = fc.lower[h], fc.upper[h]
            cov = (fy >= lo) & (fy <= up)
            # Winkler (interval) score: width plus 2 / (1 - level) times any miss
            wk = (up - lo) + 2 / (1 - level) * (np.maximum(lo - fy, 0) + np.maximum(fy - up, 0))
            rows.append((s.name, int(i), label, float(err.mean() / scale), int(cov.sum()),
                         int(cov.size), fc.model, dt, float(err.mean()), float(err[-1]),
                         scale, scale_hist, int(cov[-1]), float(wk.mean() / scale)))
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT / "data" / "nab"))
    ap.add_argument("--origins", type=int, default=200)
    ap.add_argument("--horizon", default="30min")
    ap.add_argument("--window", default="6h")
    ap.add_argument("--level", type=float, default=0.8)
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", default=None, help="write the per-origin rows to this CSV")
    ap.add_argument("--per-series", action="store_true")
    a = ap.parse_args(argv)
    from tqdm import tqdm

    files = sorted(Path(a.data).glob("*/*.csv"))
    methods = [m.strip() for m in a.methods.split(",") if m.strip()]
    jobs = [(str(f), methods, pd.Timedelta(a.window), pd.Timedelta(a.horizon), a.origins, a.level)
            for f in files]
    rows = []
    with ProcessPoolExecutor(a.jobs) as ex:
        for r in tqdm(ex.map(evaluate, jobs), total=len(jobs), desc="series", unit="series"):
            rows.extend(r)
    df = pd.DataFrame(rows, columns=["series", "origin", "method", "mase", "covered", "points",
                                     "model", "seconds", "mae", "ae_last", "scale",
                                     "scale_hist", "covered_last", "winkler"])
    if a.out:
        df.to_csv(a.out, index=False)
    g = df.groupby("method", sort=False)
    # the same origins for every method: drop near-constant windows, whose scale is
    # under 1 % of the series' median scale (a few such windows dominate the plain mean)
    med = df.groupby("series")["scale"].transform("median")
    keep = df["scale"] > 0.01 * med
    n_drop = int((~keep[df["method"] == df["method"].iloc[0]]).sum())
    big = df[keep].groupby("method", sort=False)
    per = df.groupby(["method", "series"], sort=False)
    per_series = (per["mae"].sum() / per["scale"].sum()).groupby("method", sort=False).median()
    table = pd.DataFrame({
        "median MASE": g["mase"].median(),
        "mean MASE": g["mase"].mean(),
        f"{a.level:.0%} coverage": g["covered"].sum() / g["points"].sum(),
        "median Winkler / scale": g["winkler"].median(),
        "mean MASE, no near-constant windows": big["mase"].mean(),
        "median of per-series MASE": per_series,
        "origins": g.size().astype(int),
        "ms / forecast": g["seconds"].mean() * 1e3,
    }).round(3)
    print(f"\n{len(files)} series, horizon {a.horizon}, window {a.window}, "
          f"up to {a.origins} origins each; {n_drop} near-constant windows left out of "
          f"the 'no near-constant windows' mean\n")
    print(_md(table))
    if a.per_series:
        per = df.pivot_table(index="series", columns="method", values="mase", aggfunc="median")
        print("\nmedian MASE per series\n")
        print(_md(per.round(3)))
        cov = df.groupby(["series", "method"])[["covered", "points"]].sum()
        cov = (cov["covered"] / cov["points"]).unstack().round(2)
        print("\ncoverage per series\n")
        print(_md(cov))
    if "auto" in methods:
        print("\nmodels chosen by auto:", df[df.method == "auto"]["model"].value_counts().to_dict())
    return 0


def _md(df: pd.DataFrame) -> str:
    """A markdown table (no tabulate dependency)."""
    cols = [str(df.index.name or "")] + [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" + "---:|" * len(df.columns)]
    for idx, row in df.iterrows():
        cells = [(str(int(v)) if c == "origins" else f"{v:.3f}") if isinstance(v, float)
                 else str(v) for c, v in row.items()]
        lines.append("| " + " | ".join([str(idx), *cells]) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
