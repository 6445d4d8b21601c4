"""The dashboard page under Streamlit's AppTest, against real SQLite stores.

Fragments: AppTest runs the ``st.fragment`` body as part of every full run
(the page's charts, metrics and buttons all render below), so the live part is
tested through the page itself; only ``run_every`` timing is not exercised here
(the browser test covers the live refresh).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from perfkit.catalog import CORE_METRICS
from perfkit.dashboard import build_page, open_runtimes
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
    # a level of 0 (no pool overflow) stays exactly 0: noise there would be a fake event
    frames = [pd.DataFrame({"ts": ts, "host": host, "metric": m, "labels": "",
                            "value": v + rng.normal(0, 0.01 * abs(v), n) if v else np.zeros(n)})
              for m, v in LEVELS.items()]
    with Store(url) as store:
        store.write(pd.concat(frames, ignore_index=True))


@pytest.fixture(autouse=True)
def local_bind(monkeypatch: pytest.MonkeyPatch) -> None:
    """The page as ``perfkit dashboard`` serves it by default: bound to 127.0.0.1."""
    monkeypatch.setenv("PERFKIT_DASHBOARD_HOST", "127.0.0.1")
    monkeypatch.delenv("PERFKIT_DASHBOARD_TOKEN", raising=False)
    monkeypatch.delenv("PERFKIT_DASHBOARD_ALLOW_URL", raising=False)


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


TABS = ("System", "Cache", "Database", "Application", "Other")


def tiles(at: AppTest) -> tuple[dict[str, str], int]:
    """Every tab's metric tiles (label -> value) and how many charts the tabs drew.

    Only the open tab is drawn (tabs rerun on change), so each is opened in turn.
    """
    labels, charts = {}, 0
    for tab in TABS:
        at.session_state["metric_tab"] = tab
        _run(at)
        labels.update({m.label.rsplit(" ", 1)[0]: m.value for m in at.metric})
        charts += len([c for c in at.get("plotly_chart")
                       if c.proto.id and "fig_" in str(c.proto.id)])
    at.session_state["metric_tab"] = TABS[0]
    _run(at)
    return labels, charts


def test_page_renders_every_core_metric_from_a_seeded_store(viewer: str) -> None:
    at = _run(AppTest.from_file(APP, default_timeout=90))
    labels, _ = tiles(at)
    assert set(CORE_METRICS) <= set(labels), set(CORE_METRICS) - set(labels)
    assert labels["system.memory_usage"].startswith("97")
    assert all(v != "—" for k, v in labels.items() if k in CORE_METRICS)
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
    assert set(tiles(at)[0]) >= set(CORE_METRICS)


@pytest.mark.postgres
def test_store_outage_shows_a_banner_and_the_page_recovers(
        proxied_pg: tuple, monkeypatch: pytest.MonkeyPatch, fresh_cache: None) -> None:
    proxy, url = proxied_pg
    seed(url)
    monkeypatch.setenv("PERFKIT_STORE_URL", url)
    monkeypatch.setenv("PERFKIT_EMBEDDED", "0")
    at = _run(AppTest.from_file(APP, default_timeout=90))
    assert not at.error and len(at.metric) >= 4  # the open tab's tiles
    proxy.close()
    _run(at)
    banner = " ".join(e.value for e in at.error)
    assert "Store unreachable" in banner and f"127.0.0.1:{proxy.port}" in banner, banner
    assert "OperationalError" in banner  # the error itself, not only "something failed"
    assert len(at.metric) >= 4  # the last data read stays on the page
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


def _viewer_of(url: str, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("PERFKIT_STORE_URL", url)
    monkeypatch.setenv("PERFKIT_EMBEDDED", "0")
    return _run(AppTest.from_file(APP, default_timeout=90))


def _text(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption] + \
        [i.value for i in at.info] + [s.value for s in at.success]
    return " ".join(str(p) for p in parts)


def test_a_first_visit_draws_svg_charts_and_the_next_run_the_interactive_ones(
        viewer: str) -> None:
    at = _run(AppTest.from_file(APP, default_timeout=90))
    system = [n for n in CORE_METRICS if n.startswith("system.")]
    svgs = [m.value for m in at.markdown if 'aria-label="system.' in m.value]
    assert [re.search(r'aria-label="([^"]+) chart"', v).group(1) for v in svgs] == system
    assert "<polyline" in svgs[0]  # the seeded samples are drawn
    assert any('aria-label="Alert timeline chart"' in m.value for m in at.markdown)
    assert not [c for c in at.get("plotly_chart")
                if "fig_system" in str(c.proto.id) or "fig_alert_timeline" in str(c.proto.id)]
    _run(at)  # the next run (a refresh, a control change) draws plotly's charts
    assert not [m for m in at.markdown if " chart\"" in m.value and "<svg" in m.value]
    drawn = [c for c in at.get("plotly_chart") if "fig_system" in str(c.proto.id)]
    assert len(drawn) == len(system)
    assert [c for c in at.get("plotly_chart") if "fig_alert_timeline" in str(c.proto.id)]


def test_a_store_with_one_sample_says_what_is_missing(
        sqlite_url: str, monkeypatch: pytest.MonkeyPatch, fresh_cache: None) -> None:
    with Store(sqlite_url) as store:
        store.write(pd.DataFrame({"ts": [pd.Timestamp.now(tz="UTC")], "host": [HOST],
                                  "metric": ["system.cpu_usage"], "labels": [""],
                                  "value": [42.0]}))
    at = _viewer_of(sqlite_url, monkeypatch)
    labels, _ = tiles(at)
    assert labels["system.cpu_usage"] == "42 %" and labels["cache.hit_rate"] == "—"
    text = _text(at)
    assert "No data yet: " in text and "cache.hit_rate" in text
    assert "Forecasts start at 2 min of data (has " in text
    charts = [c for c in at.get("plotly_chart") if "system.cpu_usage" in str(c.proto.spec)]
    assert charts and "forecast needs 2 min of data (has 0 s)" in str(charts[0].proto.spec)


def test_a_store_with_only_custom_metrics_renders_them_and_says_there_is_no_score(
        sqlite_url: str, monkeypatch: pytest.MonkeyPatch, fresh_cache: None) -> None:
    from perfkit.catalog import register_metric

    register_metric("shop.orders_per_minute", unit="1/s", group="shop")
    ts = pd.date_range(end=pd.Timestamp.now(tz="UTC"), periods=120, freq="2s")
    with Store(sqlite_url) as store:
        store.write(pd.DataFrame({"ts": ts, "host": HOST, "metric": "shop.orders_per_minute",
                                  "labels": "", "value": np.linspace(10, 20, 120)}))
    at = _viewer_of(sqlite_url, monkeypatch)
    assert "No score yet: none of the scored metrics" in _text(at)
    assert "shop.orders_per_minute" in _text(at)
    at.session_state["metric_tab"] = "Other"
    _run(at)
    assert [m.value for m in at.metric if m.label.startswith("shop.orders_per_minute")] == ["20/s"]
    notes = " ".join(str(c.proto.spec) for c in at.get("plotly_chart"))
    assert "no cache attached (Monitor.attach_cache)" not in notes  # only the open tab drawn
    at.session_state["metric_tab"] = "Cache"
    _run(at)
    notes = " ".join(str(c.proto.spec) for c in at.get("plotly_chart"))
    assert "no cache attached (Monitor.attach_cache)" in notes


def test_a_host_with_no_data_in_the_window_says_so(
        sqlite_url: str, monkeypatch: pytest.MonkeyPatch, fresh_cache: None) -> None:
    seed(sqlite_url)
    old = pd.date_range(end=pd.Timestamp.now(tz="UTC") - pd.Timedelta("3h"), periods=30,
                        freq="2s")
    with Store(sqlite_url) as store:
        store.write(pd.DataFrame({"ts": old, "host": "quiet:2", "metric": "system.cpu_usage",
                                  "labels": "", "value": 50.0}))
    at = _viewer_of(sqlite_url, monkeypatch)
    assert "quiet:2" in at.selectbox(key="host_choice").options
    _ok(at.selectbox(key="host_choice").set_value("quiet:2").run())
    assert "No samples from quiet:2 in the last 15min" in _text(at)
    notes = " ".join(str(c.proto.spec) for c in at.get("plotly_chart"))
    assert "no samples from quiet:2 in the last 15 min" in notes
    assert all(m.value == "—" for m in at.metric)


def test_a_window_longer_than_the_data_charts_the_data_it_has(viewer: str) -> None:
    at = _run(AppTest.from_file(APP, default_timeout=90))
    _ok(at.selectbox(key="window").set_value("24h").run())
    labels, _ = tiles(at)
    assert labels["system.memory_usage"].startswith("97")
    assert any("samples in the last 24h" in c.value for c in at.caption)


def test_beyond_localhost_nothing_acts_without_the_token(
        viewer: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PERFKIT_DASHBOARD_HOST", "0.0.0.0")
    monkeypatch.setenv("PERFKIT_DASHBOARD_TOKEN", "let-me-in")
    at = _run(AppTest.from_file(APP, default_timeout=90))
    run = at.button(key="rec_Run_memory_optimization_process")
    assert run.disabled and at.button(key="rec_Dry-run_memory_optimization_process").disabled
    assert at.toggle(key="ctl_monitoring").disabled
    assert "type the access token" in _text(at)
    assert not [t for t in at.text_input if t.key == "store_url"]  # the URL box is off
    _ok(at.text_input(key="access_token").input("wrong").run())
    assert at.button(key="rec_Run_memory_optimization_process").disabled
    assert any("not this server's token" in e.value for e in at.sidebar.error)
    _ok(at.text_input(key="access_token").input("let-me-in").run())
    run = at.button(key="rec_Run_memory_optimization_process")
    assert not run.disabled
    _ok(run.click().run())
    with Store(viewer) as store:
        assert list(store.actions(host=HOST)["action"]) == ["memory_optimization"]


def test_an_open_bind_without_a_token_never_acts(
        viewer: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PERFKIT_DASHBOARD_HOST", "0.0.0.0")
    at = _run(AppTest.from_file(APP, default_timeout=90))
    assert at.button(key="rec_Run_memory_optimization_process").disabled
    assert not [t for t in at.text_input if t.key == "access_token"]
    assert "no token is set" in _text(at)


def test_the_url_box_refuses_a_file_it_would_have_to_create(
        viewer: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PERFKIT_DASHBOARD_ALLOW_URL", "1")
    at = _run(AppTest.from_file(APP, default_timeout=90))
    target = tmp_path / "made" / "by-a-visitor.db"
    _ok(at.text_input(key="store_url").input(f"sqlite:///{target}").run())
    assert any("does not exist" in e.value for e in at.sidebar.error)
    assert not target.parent.exists()
    assert at.selectbox(key="host_choice").value == HOST  # still on the server's own store


def test_anomalies_a_monitor_stored_are_listed_and_shaded_on_their_chart(
        sqlite_url: str, monkeypatch: pytest.MonkeyPatch, fresh_cache: None) -> None:
    from perfkit.collectors import Reading

    rng = np.random.default_rng(0)
    values = (10 + rng.normal(0, 1, 190)).tolist()
    values[150] += 40  # one spike after 150 ordinary samples
    feed = iter(values)

    class Entries:
        name = "entries"

        def collect(self) -> list[Reading]:
            return [Reading("cache.entry_count", next(feed))]

    mon = Monitor(sqlite_url, host=HOST, interval=60, anomaly_min_score=0.5)
    mon.add_collector(Entries())
    for _ in range(151):
        mon.collect()
    mon.store.flush()
    at = _viewer_of(sqlite_url, monkeypatch)
    listed = [m.value for m in at.markdown if "`cache.entry_count` on" in m.value]
    assert listed and re.search(rf"`cache\.entry_count` on `{re.escape(HOST)}` · since "
                                r"\d\d:\d\d:\d\d · score (0\.[5-9]\d|1\.00) · spike",
                                listed[0]), listed

    def cache_charts() -> str:
        at.session_state["metric_tab"] = "Cache"
        _run(at)
        return " ".join(str(c.proto.spec) for c in at.get("plotly_chart")
                        if "cache.entry_count" in str(c.proto.spec))

    assert "unusual: spike" in cache_charts()
    for _ in range(39):  # ordinary samples again: the episode ends
        mon.collect()
    mon.store.flush()
    mon.store.close()
    assert "unusual: spike" in cache_charts()  # the ended episode keeps its band
    assert not [m.value for m in at.markdown if "`cache.entry_count` on" in m.value]
    with Store(sqlite_url) as store:
        ep = build_page(store, window="15min", host=HOST).anomalies
    ep = ep[ep["metric"] == "cache.entry_count"]
    assert ep[["pattern", "open"]].values.tolist() == [["spike", False]]
