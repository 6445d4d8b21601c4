"""How soon a first visitor of ``perfkit dashboard`` (all-in-one demo) sees the score and charts.

    python benchmarks/bench_first_content.py [--visits 3] [--wait 0]

Starts the command as a user does (default embedded store in a temporary
directory, demo workload, ``--no-browser``), checks that samples reach the store
before any browser has connected, then opens the page in Debian's headless
Chromium (a fresh browser context per visit: empty cache, like a first visit)
and times, from the navigation:

* the health score: the gauge's "N / 100" SVG text;
* the first metric chart: a system chart's SVG (a first visit's charts are
  server-drawn SVG; the bare page's is plotly's);
* every chart of the open tab drawn (the four system charts, and every other
  plotly chart on the page);
* the first interactive metric chart (plotly's, which replaces the SVG at the
  session's first timed refresh);
* where the first chart's time goes: when the browser asked for plotly.js
  (Streamlit's ``PlotlyChart`` chunk, 4.7 MB, requested when the first chart
  element is rendered), when it had received it, and how many plotly charts were
  drawn in the same task as the first (none shows before all of them are drawn).

Reference in the same run: a bare Streamlit page (a title and one plotly
chart) served the same way, timed to its title and to its chart: Streamlit's
and plotly.js's own floor on this machine. ``--wait`` seconds pass between the
command's start and the first visit (0: open as soon as the server answers).
"""

from __future__ import annotations

import argparse
import os
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks._report import print_rows

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCORE = "[...document.querySelectorAll('svg text')].some(t => /^\\d+ \\/ 100$/.test(t.textContent))"
CHARTS = ("[class*=\"st-key-fig_system\"] .main-svg, "
          "[class*=\"st-key-svg_system\"] svg[aria-label$=\" chart\"]")
FIRST_CHART = f"!!document.querySelector('{CHARTS}')"
INTERACTIVE = "!!document.querySelector('[class*=\"st-key-fig_system\"] .main-svg')"
ALL_CHARTS = ("(() => { const c = [...document.querySelectorAll("
              "'[data-testid=\"stPlotlyChart\"]')];"
              f" return document.querySelectorAll('{CHARTS}')"
              ".length >= 4 && c.every(e => e.querySelector('.main-svg')); })()")
# Browser-side clock (ms from the navigation): plotly.js's request and arrival, and how
# many charts had their SVG when the first one appeared.
PROBE = """
new PerformanceObserver(l => { for (const e of l.getEntries()) if (e.name.includes('PlotlyChart'))
  window.__pk = {...window.__pk, asked: e.startTime, got: e.responseEnd}; })
  .observe({type: 'resource', buffered: true});
new MutationObserver((_, o) => { const n = document.querySelectorAll('.js-plotly-plot .main-svg');
  if (n.length) { window.__pk = {...window.__pk, together: document.querySelectorAll(
    '.js-plotly-plot').length}; o.disconnect(); } })
  .observe(document, {subtree: true, childList: true});
"""
HELLO = """import plotly.graph_objects as go
import streamlit as st
st.title("hello")
st.plotly_chart(go.Figure(go.Scatter(y=[1, 3, 2])), key="fig_system_hello")
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_health(proc: subprocess.Popen[bytes], port: int, timeout: float = 120) -> float:
    """Seconds until the server answers its health check."""
    t0 = time.perf_counter()
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2):
                return time.perf_counter() - t0
        except OSError:
            pass
        if proc.poll() is not None or time.perf_counter() - t0 > timeout:
            raise SystemExit(f"server did not start (exit {proc.poll()})")
        time.sleep(0.05)


@contextmanager
def _server(cmd: list[str], cwd: Path, port: int) -> Iterator[tuple[subprocess.Popen[bytes],
                                                                    float]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PERFKIT_")}
    # the server runs from a temporary directory: import this checkout's perfkit, not
    # whichever one is installed
    env.update(HOME=str(cwd), DISPLAY="",
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])))
    t0 = time.perf_counter()
    log = (cwd / "server.log").open("wb")
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=log,
                            stderr=subprocess.STDOUT)
    try:
        _wait_health(proc, port)
        yield proc, time.perf_counter() - t0
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _samples(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as c:
            return int(c.execute("SELECT count(*) FROM perfkit_samples").fetchone()[0])
    except sqlite3.Error:
        return 0


def _visit(browser: object, url: str, marks: dict[str, str]) -> dict[str, float]:
    """Open ``url`` in a fresh context; seconds from navigation to each mark's JS being true."""
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})  # type: ignore[attr-defined]
    ctx.add_init_script(PROBE)
    page = ctx.new_page()
    t0 = time.perf_counter()
    page.goto(url, wait_until="commit")
    out = {}
    for name, js in marks.items():
        page.wait_for_function(js, timeout=120_000, polling=20)
        out[name] = time.perf_counter() - t0
    probe = page.evaluate("window.__pk || {}")
    out.update(asked=probe.get("asked", float("nan")) / 1000,
               got=probe.get("got", float("nan")) / 1000,
               together=float(probe.get("together", 0)))
    ctx.close()
    return out


def _median(visits: list[dict[str, float]], key: str) -> float:
    return statistics.median(v[key] for v in visits)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--visits", type=int, default=3)
    ap.add_argument("--wait", type=float, default=0.0)
    a = ap.parse_args()
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"{CHROMIUM} is needed (apt install chromium)")
    from playwright.sync_api import sync_playwright

    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        d = Path(tmp)
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        run: Callable[[list[str], Path, int, dict[str, str]], tuple[float, list[dict[str, float]],
                                                                    int]]

        def run(cmd: list[str], cwd: Path, port: int, marks: dict[str, str]
                ) -> tuple[float, list[dict[str, float]], int]:
            cwd.mkdir()
            with _server(cmd, cwd, port) as (_, up):
                time.sleep(a.wait)
                before = _samples(cwd / ".perfkit" / "perfkit.db")
                visits = [_visit(browser, f"http://127.0.0.1:{port}", marks)
                          for _ in range(a.visits)]
            return up, visits, before

        (d / "hello.py").write_text(HELLO)
        port = _free_port()
        ref_up, ref, _ = run([sys.executable, "-m", "streamlit", "run", str(d / "hello.py"),
                              "--server.port", str(port), "--server.headless", "true",
                              "--browser.gatherUsageStats", "false"], d / "ref", port,
                             {"title": "document.querySelector('h1') !== null",
                              "chart": FIRST_CHART})
        port = _free_port()
        pk_up, pk, before = run([sys.executable, "-m", "perfkit.cli", "dashboard",
                                 "--no-browser", "--port", str(port)], d / "pk", port,
                                {"score": SCORE, "chart": FIRST_CHART, "all": ALL_CHARTS,
                                 "live": INTERACTIVE})
        browser.close()
    first, rest = pk[0], pk[1:] or pk
    rows += [
        ("command start → server answers: perfkit dashboard", f"{pk_up:.2f} s"),
        ("command start → server answers: bare Streamlit page", f"{ref_up:.2f} s"),
        ("samples in the store before any browser connected", f"{before:,}"),
        ("first visit → health score", f"{first['score']:.2f} s"),
        ("first visit → first metric chart", f"{first['chart']:.2f} s"),
        ("first visit → every chart of the open tab", f"{first['all']:.2f} s"),
        ("first visit → first interactive (plotly) metric chart", f"{first['live']:.2f} s"),
        (f"later visits (median of {len(rest)}) → health score", f"{_median(rest, 'score'):.2f} s"),
        (f"later visits (median of {len(rest)}) → first metric chart",
         f"{_median(rest, 'chart'):.2f} s"),
        (f"slowest of all {len(pk)} visits → health score / first metric chart",
         f"{max(v['score'] for v in pk):.2f} / {max(v['chart'] for v in pk):.2f} s"),
        ("plotly.js asked for / received, median of every visit: perfkit",
         f"{_median(pk, 'asked'):.2f} / {_median(pk, 'got'):.2f} s"),
        ("plotly.js asked for / received, median of every visit: bare page",
         f"{_median(ref, 'asked'):.2f} / {_median(ref, 'got'):.2f} s"),
        ("plotly charts drawn with the first (median of every visit)",
         f"{_median(pk, 'together'):.0f}"),
        (f"reference, bare Streamlit page (median of {len(ref)}) → title",
         f"{_median(ref, 'title'):.2f} s"),
        (f"reference, bare Streamlit page (median of {len(ref)}) → chart",
         f"{_median(ref, 'chart'):.2f} s"),
        ("first visit score / reference chart", f"{first['score'] / _median(ref, 'chart'):.1f}×"),
    ]
    print_rows(rows)


if __name__ == "__main__":
    main()
