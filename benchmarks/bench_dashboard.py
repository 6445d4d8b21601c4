"""How long one dashboard refresh takes on a day of one-second samples (about 1.2 M rows).

    python benchmarks/bench_dashboard.py [--hours 24] [--repeat 3]

A "render" is everything the server does for one refresh of the page: read the
window from a SQLite store, compute every section (score, trends, forecasts,
crossings, alerts, recommendations, actions), draw the top row's SVG and build
every plotly figure the page shows, serialised to JSON (what Streamlit sends to the
browser).
Then, when /usr/bin/chromium exists, the same figures are drawn by plotly.js in
headless Chromium (software rendering), once for perfkit and once for the raw
reference; ``--no-browser`` skips that.

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
from perfkit.dashboard import WindowLoader, build_page
from perfkit.store import Store

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


def top_row(page) -> list[str]:
    """The page's top row as it sends it: the score gauge and group scores as SVG text."""
    svgs = [plots.health_gauge_svg(page.score.overall if page.score else None)]
    if page.score is not None:
        svgs.append(plots.group_scores_svg(page.score.groups, page.score.breakdown))
    return svgs


def figures(page, *, max_points: int | None) -> list[str]:
    """Build every plotly figure of the page and serialise it; returns the JSON documents."""
    data = page.display if max_points is not None else page.frame
    mp = max_points if max_points is not None else 10**9
    figs = [plots.metric_figure(data, m, forecast=page.forecasts, max_points=mp)
            for m in page.metrics]
    figs += [plots.percentiles_figure(data, m, max_points=mp) for m in LATENCY]
    figs.append(plots.alert_timeline_figure(page.alert_events))
    figs.append(plots.action_history_figure(page.actions))
    return [f.to_json() for f in figs]


def render(store: Store, loader: WindowLoader, window: str, *, raw: bool,
           keep: list[list[str]] | None = None) -> dict[str, float]:
    """One refresh; returns seconds per stage and the bytes sent (figures kept in ``keep``)."""
    t0 = time.perf_counter()
    page = build_page(store, window=window, horizon="30min", loader=loader)
    t1 = time.perf_counter()
    svgs = top_row(page)
    docs = figures(page, max_points=None if raw else 1000)
    t2 = time.perf_counter()
    if keep is not None:
        keep.append(docs)
    return {"rows": len(page.frame), "load": page.timings["load"],
            "analysis": page.timings["total"] - page.timings["load"],
            "figures+json": t2 - t1, "total": t2 - t0,
            "MB sent": sum(len(d) for d in (*svgs, *docs)) / 1e6, "errors": len(page.errors)}


CHROMIUM = "/usr/bin/chromium"


def browser_draw(docs: list[str], timeout_s: float = 90.0) -> float | None:
    """Seconds headless Chromium's plotly.js takes to draw ``docs`` (None: no browser or
    it did not finish within ``timeout_s``). Transfer into the page is not timed."""
    if not Path(CHROMIUM).exists():
        return None
    from playwright.sync_api import sync_playwright
    from plotly.offline import get_plotlyjs

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.set_content(f"<html><body><script>{get_plotlyjs()}</script></body></html>")
            page.evaluate("docs => { window.docs = docs.map(d => JSON.parse(d)); }", docs)
            page.set_default_timeout(timeout_s * 1000)
            return page.evaluate("""async () => {
                const t0 = performance.now();
                for (const f of window.docs) {
                    const div = document.createElement('div');
                    div.style.width = '700px'; div.style.height = '260px';
                    document.body.appendChild(div);
                    await Plotly.newPlot(div, f.data, f.layout);
                }
                await new Promise(r => requestAnimationFrame(() => r()));
                return (performance.now() - t0) / 1000;
            }""")
        except Exception as exc:  # noqa: BLE001 - a timeout or crash is a result here
            print(f"  browser draw failed: {type(exc).__name__}: {str(exc)[:120]}")
            return None
        finally:
            browser.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hours", type=float, default=24.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-browser", action="store_true",
                    help="skip the Chromium drawing measurement")
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
        kept: dict[str, list[list[str]]] = {"perfkit refresh": [], "reference: raw frame": []}
        for _ in range(args.repeat):
            loader = WindowLoader(store)
            results["perfkit first render"].append(render(store, loader, window, raw=False))
            # the next second arrives, then the page refreshes with the same loader
            new = pd.DataFrame({"ts": pd.Timestamp.now(tz="UTC"), "host": "bench:1",
                                "metric": list(CORE_METRICS), "value": 25.0, "labels": ""})
            store.write(new)
            results["perfkit refresh"].append(render(store, loader, window, raw=False,
                                                     keep=kept["perfkit refresh"]))
            results["reference: raw frame"].append(
                render(store, WindowLoader(store), window, raw=True,
                       keep=kept["reference: raw frame"]))
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
    print(f"\nrefresh budget 2 s (server): {'met' if budget < 2 else 'MISSED'} ({budget:.3f} s)")
    if not args.no_browser:
        print("\nbrowser: plotly.js drawing the same figures in headless Chromium (once each)")
        draws = {name: browser_draw(docs[-1]) for name, docs in kept.items()}
        for name, sec in draws.items():
            print(f"  {name:<24}" + (f"{sec:8.3f} s" if sec is not None else "   n/a"))
        a, b = draws["perfkit refresh"], draws["reference: raw frame"]
        if a and b:
            print(f"  raw / perfkit: {b / a:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
