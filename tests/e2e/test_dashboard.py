"""The dashboard page under Streamlit's AppTest, against real SQLite stores.

Fragments: AppTest runs the ``st.fragment`` body as part of every full run
(the page's charts, metrics and buttons all render below), so the live part is
tested through the page itself; only ``run_every`` timing is not exercised here
(the browser test covers the live refresh).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from perfkit.catalog import CORE_METRICS
from perfkit.dashboard import open_runtimes
from perfkit.monitor import Monitor
from perfkit.store import Store

APP = str(Path(__file__).resolve().parents[2] / "app.py")
HOST = "svc-a:1"

# Healthy values for every core metric, plus two that are not: memory past its
# critical threshold, so the page must show an alert and a memory recommendation.
LEVELS = {
    "system.cpu_usage": 35.0, "system.memory_usage": 97.0, "system.disk_usage": 40.0,
    "system.memory_available": 6.0, "cache.hit_rate": 92.0, "cache.entry_count": 500.0,
    "cache.memory_usage": 12.0, "database.pool_size": 5.0, "database.checked_out": 1.0,
    "database.overflow": 0.0, "database.query_time": 3.0,
    "application.api_response_time": 20.0, "application.error_rate": 0.2,
    "application.requests_per_second": 40.0, "application.api_response_time.p95": 45.0,
    "database.query_time.p95": 8.0,
}


def seed(url: str, host: str = HOST, minutes: int = 15, step_s: int = 2) -> None:
    """Write ``minutes`` of samples ending now for ``host`` (small noise around LEVELS)."""
    rng = np.random.default_rng(0)
    n = minutes * 60 // step_s
    ts = pd.date_range(end=pd.Timestamp.now(tz="UTC"), periods=n, freq=f"{step_s}s")
    frames = [pd.DataFrame({"ts": ts, "host": host, "metric": m, "labels": "",
                            "value": v + rng.normal(0, 0.01 * abs(v) + 1e-3, n)})
              for m, v in LEVELS.items()]
    with Store(url) as store:
        store.write(pd.concat(frames, ignore_index=True))


@pytest.fixture
def fresh_cache() -> Iterator[None]:
    """Each AppTest gets its own Runtime: clear st.cache_resource and close what it opened."""
    st.cache_resource.clear()
    yield
    for rt in open_runtimes():
        rt.close()
    st.cache_resource.clear()


@pytest.fixture
def viewer(sqlite_url: str, monkeypatch: pytest.MonkeyPatch, fresh_cache: None) -> str:
    seed(sqlite_url)
    monkeypatch.setenv("PERFKIT_STORE_URL", sqlite_url)
    monkeypatch.setenv("PERFKIT_EMBEDDED", "0")
    return sqlite_url


def _run(at: AppTest) -> AppTest:
    at.run()
    return _ok(at)


def _ok(at: AppTest) -> AppTest:
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_page_renders_every_core_metric_from_a_seeded_store(viewer: str) -> None:
    at = _run(AppTest.from_file(APP, default_timeout=90))
    labels = {m.label.rsplit(" ", 1)[0]: m.value for m in at.metric}
    assert set(CORE_METRICS) <= set(labels), set(CORE_METRICS) - set(labels)
    assert labels["system.memory_usage"].startswith("97")
    assert all(v != "—" for k, v in labels.items() if k in CORE_METRICS)
    assert len(at.get("plotly_chart")) >= len(CORE_METRICS) + 2  # + gauge and group scores
    assert not at.error  # the store answers: no banner
    md = " ".join(m.value for m in at.markdown)
    assert "memory_optimization" in md
    keys = [b.key for b in at.button]
    assert "rec_Run_memory_optimization_process" in keys
    assert "rec_Dry-run_memory_optimization_process" in keys
    assert at.selectbox[0].value == HOST  # the host selector lists the store's hosts


def test_run_button_queues_the_action_and_shows_its_result(viewer: str) -> None:
    at = _run(AppTest.from_file(APP, default_timeout=90))
    _ok(at.button(key="rec_Run_memory_optimization_process").click().run())
    with Store(viewer) as store:
        queued = store.actions(host=HOST)
    assert list(queued["action"]) == ["memory_optimization"]
    assert queued["status"].iloc[0] == "pending" and queued["requested_by"].iloc[0] == "dashboard"
    assert not bool(queued["dry_run"].iloc[0])
    assert any("queued as request #" in i.value for i in at.info)
    # The service on HOST (here: a Monitor in this test process) claims and runs it.
    mon = Monitor(viewer, host=HOST, interval=60)
    results = mon.optimizer.process_requests()
    assert [r.action for r in results] == ["memory_optimization"] and results[0].ok
    with Store(viewer) as store:
        done = store.actions(host=HOST).iloc[0]
    assert done["status"] == "done" and isinstance(done["after"], dict) and done["after"]
    _run(at)
    md = " ".join(m.value for m in at.markdown)
    assert f"#{done['id']}" in md and "**memory_optimization**" in md
    assert f"**{done['verdict']}**" in md
    mon.store.close()


def test_a_store_that_cannot_be_opened_is_a_banner_until_it_can(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_cache: None) -> None:
    blocker = tmp_path / "data"
    blocker.write_text("a file where the store's directory should be")
    url = f"sqlite:///{blocker}/perfkit.db"
    monkeypatch.setenv("PERFKIT_STORE_URL", url)
    monkeypatch.setenv("PERFKIT_EMBEDDED", "0")
    at = _run(AppTest.from_file(APP, default_timeout=60))
    banner = " ".join(e.value for e in at.error)
    assert "Store unreachable" in banner and str(blocker) in banner, banner
    blocker.unlink()
    seed(url)
    _run(at)
    assert not at.error
    assert {m.label.rsplit(" ", 1)[0] for m in at.metric} >= set(CORE_METRICS)


@pytest.mark.postgres
def test_store_outage_shows_a_banner_and_the_page_recovers(
        proxied_pg: tuple, monkeypatch: pytest.MonkeyPatch, fresh_cache: None) -> None:
    proxy, url = proxied_pg
    seed(url)
    monkeypatch.setenv("PERFKIT_STORE_URL", url)
    monkeypatch.setenv("PERFKIT_EMBEDDED", "0")
    at = _run(AppTest.from_file(APP, default_timeout=90))
    assert not at.error and len(at.metric) >= len(CORE_METRICS)
    proxy.close()
    _run(at)
    banner = " ".join(e.value for e in at.error)
    assert "Store unreachable" in banner and f"127.0.0.1:{proxy.port}" in banner, banner
    assert "OperationalError" in banner  # the error itself, not only "something failed"
    assert len(at.metric) >= len(CORE_METRICS)  # the last data read stays on the page
    proxy.open()
    _run(at)
    assert not at.error


def test_toggles_start_and_stop_the_embedded_monitor(sqlite_url: str,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     fresh_cache: None) -> None:
    monkeypatch.setenv("PERFKIT_STORE_URL", sqlite_url)
    monkeypatch.setenv("PERFKIT_EMBEDDED", "1")
    monkeypatch.setenv("PERFKIT_DEMO", "0")  # the demo's seeding is tested in test_demo
    at = _run(AppTest.from_file(APP, default_timeout=90))
    rt = next(r for r in open_runtimes() if r.store.url.endswith(sqlite_url[len("sqlite:///"):]))
    assert rt.embedded and rt.monitoring and not rt.optimizing
    _ok(at.toggle(key="ctl_monitoring").set_value(False).run())
    assert not rt.monitor.running
    _ok(at.toggle(key="ctl_optimizing").set_value(True).run())
    assert rt.monitor.optimization_active
    _ok(at.toggle(key="ctl_optimizing").set_value(False).run())
    assert not rt.monitor.optimization_active
    _ok(at.toggle(key="ctl_monitoring").set_value(True).run())
    assert rt.monitor.running
    assert at.selectbox[0].value == rt.monitor.host  # its own host comes first
