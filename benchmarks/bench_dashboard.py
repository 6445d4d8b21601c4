"""How long one dashboard refresh takes on a day of one-second samples (about 1.2 M rows).

    python benchmarks/bench_dashboard.py [--hours 24] [--repeat 3]

A "render" is everything the server does for one refresh of the page: read the
window from a SQLite store, compute every section (score, trends, forecasts,
crossings, alerts, recommendations, actions), build every plotly figure the
page shows and serialise them to JSON (what Streamlit sends to the browser).
The browser's own drawing time is not included.

Compared in the same run:

* perfkit, first render: the whole window read once, then downsampled;
* perfkit, refresh: one more second of samples written, then the next render
  with the same WindowLoader (only new rows read) — the steady state;
* reference: the raw frame plotted without downsampling (the whole window
  read on every refresh, every point sent to the browser), same figures.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from perfkit import plots
from perfkit.catalog import CORE_METRICS, PERCENTILES
from perfkit.store import Store
from perfkit.views import WindowLoader, build_page

LATENCY = ("application.api_response_time", "database.query_time")


def seed(store: Store, hours: float, end: pd.Timestamp) -> int:
    """Write ``hours`` of one-second samples for the core metrics and latency percentiles."""
    n = int(hours * 3600)
    ts = pd.date_range(end=end, periods=n, freq="1s")
    rng = np.random.default_rng(1)
    names = list(CORE_METRICS) + [f"{m}.p{p}" for m in LATENCY for p in PERCENTILES]
    total = 0
    for m in tqdm(names, desc="seeding store", unit="metric"):
        base = 20 + 30 * np.sin(np.linspace(0, 6 * np.pi, n)) ** 2  # a daily-ish shape
        v = np.clip(base + rng.normal(0, 3, n), 0, None)
        total += store.write(pd.DataFrame({"ts": ts, "host": "bench:1", "metric": m,
                                           "value": v, "labels": ""}))
    store.flush()
    return total


def figures(page, *, max_points: int | None) -> int:
    """Build every figure of the page and serialise it; returns the JSON bytes."""
    data = page.display if max_points is not None else page.frame
    mp = max_points if max_points is not None else 10**9
    figs = [plots.health_gauge(page.score.overall if page.score else None)]
    if page.score is not None:
        figs.append(plots.group_scores_figure(page.score.groups, page.score.breakdown))
    figs += [plots.metric_figure(data, m, forecast=page.forecasts, max_points=mp)
             for m in page.metrics]
    figs += [plots.percentiles_figure(data, m, max_points=mp) for m in LATENCY]
    figs.append(plots.alert_timeline_figure(page.alert_events))
    figs.append(plots.action_history_figure(page.actions))
    return sum(len(f.to_json()) for f in figs)


def render(store: Store, loader: WindowLoader, window: str, *, raw: bool) -> dict[str, float]:
    """One refresh; returns seconds per stage and the bytes sent."""
    t0 = time.perf_counter()
    page = build_page(store, window=window, horizon="30min", loader=loader)
    t1 = time.perf_counter()
    size = figures(page, max_points=None if raw else 1000)
    t2 = time.perf_counter()
    return {"rows": len(page.frame), "load": page.timings["load"],
            "analysis": page.timings["total"] - page.timings["load"],
            "figures+json": t2 - t1, "total": t2 - t0, "MB sent": size / 1e6,
            "errors": len(page.errors)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hours", type=float, default=24.0)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    window = f"{int(args.hours * 60)}min"
    with tempfile.TemporaryDirectory() as d:
        store = Store(f"sqlite:///{Path(d)}/bench.db")
        end = pd.Timestamp.now(tz="UTC").floor("s")
        rows = seed(store, args.hours, end)
        print(f"\n{rows:,} samples over {args.hours:g} h in {store!r}\n")
        results: dict[str, list[dict[str, float]]] = {"perfkit first render": [],
                                                      "perfkit refresh": [],
                                                      "reference: raw frame": []}
        for i in range(args.repeat):
            loader = WindowLoader(store)
            results["perfkit first render"].append(render(store, loader, window, raw=False))
            # the next second arrives, then the page refreshes with the same loader
            new = pd.DataFrame({"ts": pd.Timestamp.now(tz="UTC"), "host": "bench:1",
                                "metric": list(CORE_METRICS), "value": 25.0, "labels": ""})
            store.write(new)
            results["perfkit refresh"].append(render(store, loader, window, raw=False))
            results["reference: raw frame"].append(
                render(store, WindowLoader(store), window, raw=True))
        store.close()
    ref = statistics.median(r["total"] for r in results["reference: raw frame"])
    cols = ["rows", "load", "analysis", "figures+json", "total", "MB sent"]
    print(f"{'median of ' + str(args.repeat):<24}" + "".join(f"{c:>14}" for c in cols)
          + f"{'vs raw':>10}")
    for name, rs in results.items():
        med = {c: statistics.median(r[c] for r in rs) for c in cols}
        line = f"{name:<24}" + "".join(
            f"{med[c]:>14,.0f}" if c == "rows" else f"{med[c]:>14.3f}" for c in cols)
        print(line + f"{ref / med['total']:>9.1f}x")
        if any(r["errors"] for r in rs):
            print(f"  ({name}: some page sections failed; see Page.errors)")
    budget = statistics.median(r["total"] for r in results["perfkit refresh"])
    print(f"\nrefresh budget 2 s: {'met' if budget < 2 else 'MISSED'} ({budget:.3f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
