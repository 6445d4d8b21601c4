"""End to end in a real browser: ``streamlit run app.py`` driven by Debian's headless Chromium.

The page runs as a viewer of a seeded SQLite store; the test plays the
service on the seeded host (a Monitor in this process claims the queued
action), so the click travels the whole way: button → store queue → Monitor →
audit row → the page's next refresh. A screenshot is saved to
``test-artifacts/dashboard.png``.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from perfkit.monitor import Monitor
from perfkit.store import Store

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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(sqlite_url: str, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """``streamlit run app.py`` on a free port, viewing a seeded store; yields (url, store)."""
    _need_chromium()
    sys.path.insert(0, str(Path(__file__).parent))
    from test_dashboard import seed

    seed(sqlite_url)
    port = _free_port()
    env = {**os.environ, "PERFKIT_STORE_URL": sqlite_url, "PERFKIT_EMBEDDED": "0"}
    log = (tmp_path / "streamlit.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.port",
         str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false",
         "--client.toolbarMode", "viewer"], cwd=tmp_path, env=env, stdout=log,
        stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail("streamlit did not start: " + (tmp_path / "streamlit.log").read_text())
        time.sleep(0.3)
    yield url, sqlite_url
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


def test_dashboard_in_chromium(server: tuple[str, str]) -> None:
    from playwright.sync_api import expect, sync_playwright

    url, store_url = server
    from test_dashboard import HOST

    artifacts = ROOT / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(60_000)
        expect.set_options(timeout=60_000)
        page.goto(url)
        # the score gauge and the metric charts are real plotly charts, drawn as SVG
        gauge = page.locator(".js-plotly-plot", has=page.locator("svg text",
                                                                 has_text="Health score"))
        expect(gauge.first).to_be_visible()
        expect(gauge.first.locator("svg text", has_text=re.compile(r"^\d+ / 100$")).first) \
            .to_be_visible()
        assert page.locator(".js-plotly-plot").count() >= 5
        # Streamlit marks a keyed widget with the CSS class st-key-<key>
        page.locator(".st-key-rec_Run_memory_optimization_process button").click()
        expect(page.get_by_text(re.compile(r"queued as request #1"))).to_be_visible()
        # the service on HOST claims and runs it
        mon = Monitor(store_url, host=HOST, interval=60)
        results = mon.optimizer.process_requests()
        assert [r.status for r in results] == ["done"]
        mon.store.close()
        with Store(store_url) as store:
            row = store.actions().iloc[0]
        outcome = row["verdict"] if isinstance(row["verdict"], str) else row["status"]
        # the live fragment refreshes on its own (every 5 s by default) and shows the result
        expect(page.get_by_text(re.compile(rf"by dashboard — {re.escape(outcome)}"))) \
            .to_be_visible(timeout=60_000)
        page.set_viewport_size({"width": 1400, "height": 2600})
        # between refreshes: no "running" indicator, so no half-replaced elements
        time.sleep(1)
        expect(page.locator("[data-testid='stStatusWidget']")).to_be_hidden()
        page.screenshot(path=str(artifacts / "dashboard.png"), full_page=True,
                        timeout=120_000, animations="disabled")
        browser.close()
    assert (artifacts / "dashboard.png").stat().st_size > 20_000
