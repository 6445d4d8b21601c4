"""End to end in a real browser: ``streamlit run app.py`` driven by Debian's headless Chromium.

The page runs as a viewer of a seeded SQLite store; the test plays the
service on the seeded host (a Monitor in this process claims the queued
action), so the click travels the whole way: button → store queue → Monitor →
audit row → the page's next refresh. Full-page screenshots are saved to
``test-artifacts/`` (one per tab, and ``dashboard.png`` after the dry run);
with ``PERFKIT_UPDATE_SCREENSHOT=1`` the last one becomes the README's
``docs/img/dashboard.png``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from _procs import free_port, wait_until

from perfkit.monitor import Monitor

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.browser


def _need_chromium() -> None:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"{CHROMIUM} is needed under CI (apt install chromium)")
        pytest.skip(f"{CHROMIUM} not installed (apt install chromium)")


@pytest.fixture
def server(sqlite_url: str, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """``streamlit run app.py`` on a free port, viewing a seeded store; yields (url, store)."""
    _need_chromium()
    sys.path.insert(0, str(Path(__file__).parent))
    from test_dashboard import seed

    seed(sqlite_url)
    port = free_port()
    env = {**os.environ, "PERFKIT_STORE_URL": sqlite_url, "PERFKIT_EMBEDDED": "0",
           "PERFKIT_DASHBOARD_HOST": "127.0.0.1"}
    env.pop("PERFKIT_DASHBOARD_TOKEN", None)
    log = (tmp_path / "streamlit.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.port",
         str(port), "--server.address", "127.0.0.1", "--server.headless", "true",
         "--browser.gatherUsageStats", "false",
         "--client.toolbarMode", "viewer"], cwd=tmp_path, env=env, stdout=log,
        stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        assert proc.poll() is None, (tmp_path / "streamlit.log").read_text()
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
            return r.status == 200

    try:
        wait_until(healthy, 120, "streamlit to start", every=0.3, retry_on=(OSError,))
    except AssertionError:
        proc.kill()
        raise
    yield url, sqlite_url
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


TABS = ("System", "Cache", "Database", "Application", "Other")
FIRST_TILE = {"System": "system.cpu_usage", "Cache": "cache.hit_rate",
              "Database": "database.pool_size", "Application": "application.api_response_time",
              "Other": None}


# the out-of-sight chart that preloads plotly.js on a first visit is 1 px wide: not counted
DRAWN = """() => [...document.querySelectorAll('.js-plotly-plot')]
  .filter(p => !p.closest('.st-key-plotly_preload')).every(p => {
  const svg = p.querySelector('.main-svg');
  return svg && Math.abs(svg.getBoundingClientRect().width
                         - p.getBoundingClientRect().width) < 2;
})"""


def _full_page(page, path: Path) -> None:
    """A capture of the whole page: Streamlit scrolls inside its main block, not the
    document, so the viewport is grown to the content's height first (then restored)."""
    height = page.evaluate("document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
    page.set_viewport_size({"width": 1400, "height": max(1000, int(height) + 40)})
    page.evaluate("document.querySelector('[data-testid=\"stMain\"]').scrollTo(0, 0)")
    # every chart drawn at its container's width (plotly adds its SVG once it has laid
    # the figure out, and redraws it on a resize), then two frames painted
    page.wait_for_function(DRAWN, timeout=60_000)
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
    page.screenshot(path=str(path), full_page=True, timeout=120_000, animations="disabled")
    page.set_viewport_size({"width": 1400, "height": 1000})


# When the page first showed a metric chart as SVG and as a plotly figure (the
# out-of-sight preload chart aside), in ms from the navigation's start.
CHART_ORDER = """(() => {
  window.__charts = {svg: null, plotly: null};
  new MutationObserver(() => {
    const c = window.__charts;
    if (c.svg === null && document.querySelector(
        "[class*='st-key-svg_system'] svg[aria-label$=' chart']")) c.svg = performance.now();
    if (c.plotly === null && document.querySelector("[class*='st-key-fig_system'] .main-svg"))
      c.plotly = performance.now();
  }).observe(document, {childList: true, subtree: true});
})()"""


MAIN = "document.querySelector('[data-testid=\"stMain\"]')"
# Every animation frame, the lowest opacity of what a refresh could fade: element
# containers, expanders, tab bars (a disabled tab is meant to look faded).
SAMPLER = """() => {
  const sel = "[data-testid=stElementContainer], .stExpander details, .stExpander summary, "
            + ".stTabs [role=tablist], .stTabs [role=tab]:not([data-disabled])";
  window.__calm = {low: {}, frames: 0, staleFrames: 0, stop: false};
  (function tick() {
    const c = window.__calm;
    c.frames++;
    if (document.querySelector("[data-stale='true']")) c.staleFrames++;
    for (const el of document.querySelectorAll(sel)) {
      const o = parseFloat(getComputedStyle(el).opacity);
      if (o < 0.99) {
        const k = el.className.split(" ")[0] || el.getAttribute("data-testid") || el.tagName;
        c.low[k] = Math.min(c.low[k] ?? 1, o);
      }
    }
    if (!c.stop) requestAnimationFrame(tick);
  })();
}"""
STAMP = re.compile(r"updated (\d\d:\d\d:\d\d) UTC")


def _stamp(page) -> str:
    text = page.locator("[data-testid='stCaptionContainer']", has_text=STAMP).first.inner_text()
    found = STAMP.search(text)
    assert found, text
    return found.group(1)


def _calm_refresh(page) -> None:
    """Two timed refreshes (the "updated" time changes) keep an open expander open, the
    scroll position where the reader left it, and nothing fades while they redraw."""
    page.locator(".st-key-exp_possible summary").click()
    opened = page.locator(".st-key-exp_possible details[open]")
    expect_open = opened.count
    page.wait_for_function("document.querySelector('.st-key-exp_possible details[open]')")
    page.evaluate(f"{MAIN}.scrollTo(0, 420)")
    top = page.evaluate(f"{MAIN}.scrollTop")
    assert top > 300, f"the page is too short to scroll ({top})"
    page.evaluate(SAMPLER)
    for _ in range(2):
        before = _stamp(page)
        # the refresh event: the status line shows a newer build time (5 s refresh)
        page.wait_for_function(
            "t => [...document.querySelectorAll('[data-testid=stCaptionContainer]')]"
            ".some(c => /updated \\d\\d:\\d\\d:\\d\\d UTC/.test(c.innerText) "
            "&& !c.innerText.includes('updated ' + t))", arg=before, timeout=60_000)
    calm = page.evaluate("(() => { window.__calm.stop = true; return window.__calm; })()")
    assert expect_open() == 1, "the open expander closed on a refresh"
    assert abs(page.evaluate(f"{MAIN}.scrollTop") - top) <= 2, "the refresh moved the page"
    assert calm["frames"] > 10 and not calm["low"], calm
    page.evaluate(f"{MAIN}.scrollTo(0, 0)")


def test_dashboard_in_chromium(server: tuple[str, str]) -> None:
    """Score, every tab, a dry run read back from the page; no console errors, no exceptions."""
    from playwright.sync_api import expect, sync_playwright

    url, store_url = server
    from test_dashboard import HOST

    artifacts = ROOT / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    problems: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}")
                if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        page.set_default_timeout(60_000)
        expect.set_options(timeout=60_000)
        page.goto(url)
        # the score gauge is SVG drawn by the server, the metric charts are plotly's SVG
        gauge = page.locator(".st-key-gauge svg", has=page.locator("text",
                                                                   has_text="Health score"))
        expect(gauge.first).to_be_visible()
        expect(gauge.first.locator("text", has_text=re.compile(r"^\d+ / 100$")).first) \
            .to_be_visible()
        # memory at 97 % is critical: the score, the alert and the costing list say so alike
        expect(page.get_by_text(re.compile(r"system\.memory_usage 97(\.\d+)? %, above its "
                                           r"critical threshold of 95 %")).first).to_be_visible()
        expect(page.locator("[data-testid='stMetricLabel']", has_text="system.cpu_usage")
               .first).to_be_visible()
        _calm_refresh(page)
        _full_page(page, artifacts / "dashboard.png")  # the overview, as a visitor sees it
        for tab in TABS:
            page.get_by_role("tab", name=tab).click()
            expect(page.get_by_role("tab", name=tab)).to_have_attribute("aria-selected", "true")
            if FIRST_TILE[tab]:
                expect(page.locator("[data-testid='stMetricLabel']",
                                    has_text=FIRST_TILE[tab]).first).to_be_visible()
            else:
                expect(page.get_by_text("No other metrics in this window")).to_be_visible()
            _full_page(page, artifacts / f"dashboard-{tab.lower()}.png")
        page.get_by_role("tab", name="System").click()
        # a dry run, queued from the page, run by the service on HOST, read back on the page
        page.locator(".st-key-rec_Dry-run_memory_optimization_process button").click()
        expect(page.get_by_text(re.compile(r"queued as request #1"))).to_be_visible()
        mon = Monitor(store_url, host=HOST, interval=60)
        results = mon.optimizer.process_requests()
        assert [r.status for r in results] == ["done"]
        mon.store.close()
        # the sections refresh on their own (every 5 s by default) and show the result
        said = page.get_by_text(re.compile(rf"#1 · A dry run of memory_optimization on "
                                           rf"{re.escape(HOST)} changed nothing"))
        expect(said).to_be_visible(timeout=60_000)
        record = page.locator(".st-key-latest_action")
        expect(record.locator("table").first).to_be_visible()  # before / after, side by side
        header = record.locator("table th").all_inner_texts()
        assert [h for h in header if h.strip()][:3] == ["measure", "before", "after"], header
        expect(page.get_by_text("Full record of #1")).to_be_visible()
        _full_page(page, artifacts / "dashboard-dry-run.png")
        assert page.locator("[data-testid='stException']").count() == 0
        browser.close()
    assert not problems, problems
    shot = artifacts / "dashboard.png"
    assert shot.stat().st_size > 20_000
    if os.environ.get("PERFKIT_UPDATE_SCREENSHOT") == "1":
        # the README's picture is this capture, never a drawn one
        (ROOT / "docs" / "img").mkdir(parents=True, exist_ok=True)
        (ROOT / "docs" / "img" / "dashboard.png").write_bytes(shot.read_bytes())


def _store_rows(db: Path) -> int:
    import sqlite3

    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as c:
            return int(c.execute("SELECT count(*) FROM perfkit_samples").fetchone()[0])
    except sqlite3.Error:  # the schema is not there yet
        return 0


def test_all_in_one_demo_collects_before_a_visit_and_shows_score_and_charts(
        tmp_path: Path, record_property: Callable[[str, object], None]) -> None:
    """``perfkit dashboard`` as a first run: default store, demo workload, no browser of its own.

    Samples reach the store before any browser connects (collection starts with
    the command); then a visit shows the score and the first metric chart (SVG), and
    the next refresh the interactive one in its place. The
    times from opening the page are recorded (the JUnit report's properties; printed
    with ``-s``) and measured properly in ``benchmarks/bench_first_content.py``, never
    asserted.
    """
    from playwright.sync_api import expect, sync_playwright

    _need_chromium()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PERFKIT_")}
    env["DISPLAY"] = ""
    proc = subprocess.Popen([sys.executable, "-m", "perfkit.cli", "dashboard", "--no-browser",
                             "--port", str(port)], cwd=tmp_path, env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        def alive() -> None:
            assert proc.poll() is None, f"perfkit dashboard exited {proc.returncode}"

        def stored() -> int:
            alive()
            return _store_rows(tmp_path / ".perfkit" / "perfkit.db")

        def serving() -> bool:
            alive()
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2):
                return True

        wait_until(stored, 120, "samples stored before any browser connects", every=0.2)
        wait_until(serving, 120, "the dashboard's server", every=0.2, retry_on=(OSError,))
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            expect.set_options(timeout=120_000)
            page.add_init_script(CHART_ORDER)
            t0 = time.perf_counter()
            page.goto(f"http://127.0.0.1:{port}")
            gauge = page.locator(".st-key-gauge svg", has=page.locator(
                "text", has_text="Health score")).first
            expect(gauge.locator("text", has_text=re.compile(r"^\d+ / 100$")).first) \
                .to_be_visible()
            to_score = time.perf_counter() - t0
            # a first visit's charts come as SVG, before plotly.js has loaded, and the next
            # refresh puts the interactive charts in their place: the order is recorded as
            # the page changes, so a busy machine's slow browser cannot miss the SVG stage
            page.wait_for_function("() => window.__charts.plotly !== null", timeout=120_000)
            seen = page.evaluate("() => window.__charts")
            assert seen["svg"] is not None, "the first metric charts were not SVG"
            assert seen["svg"] <= seen["plotly"], seen
            to_chart = seen["svg"] / 1000
            expect(page.locator("[class*='st-key-fig_system'] .main-svg").first).to_be_visible()
            expect(page.locator("[class*='st-key-svg_system']")).to_have_count(0)
            assert page.locator("[data-testid='stException']").count() == 0
            browser.close()
        load = os.getloadavg()[0]
        for name, value in (("first_visit_score_s", round(to_score, 2)),
                            ("first_visit_chart_s", round(to_chart, 2)), ("load", round(load, 1))):
            record_property(name, value)
        print(f"\nfirst visit of the all-in-one demo: health score after {to_score:.2f} s, "
              f"first metric chart after {to_chart:.2f} s (load {load:.1f})")
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(30)
