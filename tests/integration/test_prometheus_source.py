"""perfkit over a real Prometheus: Debian's binary scraping a perfkit demo service twice a second.

The service (a Monitor at 0.5 s, the demo workload and the API app's /metrics) runs in this
process; Prometheus runs as a plain process on a free port with its TSDB in a temporary
directory. Two scrape jobs read the same target, so every series arrives twice (the
"same series reported twice" fault) and the source must keep one.
"""

from __future__ import annotations

import json
import logging
import subprocess
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _procs import free_port, wait_until

pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")

import perfkit
import perfkit.api
from perfkit.errors import ReadOnlyStoreError, StoreUnavailableError
from perfkit.monitor import Monitor
from perfkit.store import Store
from perfkit.store._promhttp import PromQLError

# one worker: the live service and its 20 s of scrapes are set up once, not once per worker
pytestmark = [pytest.mark.prometheus, pytest.mark.slow,
              pytest.mark.xdist_group("prometheus-live")]

P95 = "application.api_response_time.p95"
CPU = "system.cpu_usage"
# The service collects, Prometheus scrapes and the source reads on one 0.5 s grid: 40 points
# of real, changing data take 20 s instead of 40 s at 1 s. (A scrape must end within the
# interval; at 0.25 s a busy machine's /metrics answers would miss it.)
TICK = "500ms"  # in Prometheus' duration syntax (no fractions)


class Prom:
    """Debian's prometheus binary as a plain process; stop() and start() keep its TSDB."""

    def __init__(self, binary: str, tmp: Path, target: str) -> None:
        self.binary, self.tmp, self.port = binary, tmp, free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        (tmp / "prometheus.yml").write_text(
            f"global: {{scrape_interval: {TICK}, scrape_timeout: {TICK}, "
            f"evaluation_interval: {TICK}}}\n"
            "scrape_configs:\n"
            f"  - job_name: perfkit\n    static_configs: [{{targets: ['{target}']}}]\n"
            f"  - job_name: perfkit-copy\n    static_configs: [{{targets: ['{target}']}}]\n")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with (self.tmp / "prometheus.log").open("ab") as log_file:
            self.proc = subprocess.Popen(
                [self.binary, f"--config.file={self.tmp / 'prometheus.yml'}",
                 f"--storage.tsdb.path={self.tmp / 'tsdb'}",
                 f"--web.listen-address=127.0.0.1:{self.port}"],
                stdout=log_file, stderr=subprocess.STDOUT)

        def ready() -> bool:
            assert self.proc is not None and self.proc.poll() is None, \
                (self.tmp / "prometheus.log").read_text()[-2000:]
            with urllib.request.urlopen(f"{self.base}/-/ready", timeout=2) as r:
                return r.status == 200
        wait_until(ready, 60, "Prometheus to be ready", every=0.1, retry_on=(OSError,))

    def scraped(self) -> bool:
        """True once both scrape jobs have scraped the target; an AssertionError quotes the
        jobs that have not (and their last scrape error)."""
        with urllib.request.urlopen(f"{self.base}/api/v1/targets?state=active", timeout=2) as r:
            targets = json.load(r)["data"]["activeTargets"]
        down = [(t["scrapePool"], t["health"], t["lastError"]) for t in targets
                if t["health"] != "up"]
        assert len(targets) == 2 and not down, f"targets not up: {down or targets}"
        return True

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=30)
        self.proc = None


@dataclass
class Live:
    mon: Monitor
    url: str           # prometheus://… source URL (0.5 s step)
    prom: Prom
    service_url: str


@pytest.fixture(scope="module")
def live(prometheus_binary: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    from perfkit.demo import Demo

    tmp = tmp_path_factory.mktemp("prom")
    mon = Monitor(f"sqlite:///{tmp}/service.db", interval=0.5, host="svc-1")
    demo = Demo(mon, rate=20.0)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(perfkit.api.app(mon), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    mon.start()
    demo.start()
    thread.start()
    target = f"127.0.0.1:{port}"
    prom = Prom(prometheus_binary, tmp, target)
    try:
        wait_until(lambda: server.started, 60, "the service to listen")
        prom.start()
        url = f"prometheus://127.0.0.1:{prom.port}?step={TICK}"
        src = Store(url)
        wait_until(prom.scraped, 120, "the first scrape of both jobs", every=0.1,
                   retry_on=(OSError, AssertionError))
        # 20 s of scrapes of the latency percentile: enough points to forecast and score
        wait_until(lambda: len(src.samples(metric=P95, since="10min", labels="")) >= 40, 240,
                   "40 scraped points of p95 latency", every=0.5)
        yield Live(mon, url, prom, f"http://{target}")
    finally:
        prom.stop()
        server.should_exit = True
        thread.join(timeout=30)
        demo.close()
        mon.stop()
        mon.store.close()


def test_values_read_back_are_the_values_the_service_recorded(live: Live) -> None:
    src = Store(live.url)
    got = src.samples(metric=[CPU, P95], since="10min", labels="")
    assert list(got.columns) == ["ts", "host", "metric", "value", "labels"]
    assert str(got["ts"].dtype) == "datetime64[ns, UTC]" and got["ts"].is_monotonic_increasing
    assert set(got["host"]) == {"svc-1"} and set(got["metric"]) == {CPU, P95}
    recorded = live.mon.store.samples(metric=[CPU, P95], host="svc-1", labels="")
    for metric in (CPU, P95):
        ours = set(recorded.loc[recorded["metric"] == metric, "value"])
        theirs = got.loc[got["metric"] == metric, "value"]
        # every value Prometheus holds was scraped from /metrics, i.e. was recorded by us
        assert len(theirs) >= 20
        assert set(theirs) <= ours, set(theirs) - ours
    # the scrapes followed the service: the latency changed and more than one value came through
    assert got.loc[got["metric"] == P95, "value"].nunique() > 1
    # both scrape jobs hold the series; the source keeps one sample per (series, ts)
    assert not got.duplicated(["host", "metric", "labels", "ts"]).any()
    assert src.health()["duplicates_dropped"] > 0


def test_names_hosts_and_latest(live: Live) -> None:
    src = Store(live.url)
    names = src.metric_names()
    assert {CPU, P95, "application.requests_per_second", "process.rss"} <= set(names)
    assert not [n for n in names if n.startswith("perfkit_")]
    assert src.hosts() == ["svc-1"]
    last = src.latest()
    assert not last.duplicated(["host", "metric", "labels"]).any()
    assert set(last["metric"]) >= {CPU, P95}
    # per-endpoint labels survive the round trip (job and instance do not leak in)
    labelled = set(last.loc[last["metric"] == P95, "labels"]) - {""}
    assert labelled and all(lab.startswith("endpoint=") for lab in labelled), labelled


def test_forecast_and_score_run_on_the_prometheus_frame(live: Live) -> None:
    src = Store(live.url)
    frame = src.samples(metric=[P95, CPU], since="10min", labels="")
    fc = perfkit.forecast(frame, "5min")
    assert set(fc["metric"]) == {P95, CPU} and np.isfinite(fc["mean"]).all()
    # each series' forecast starts after its own last point (a missed scrape may leave one
    # series a step or two behind the other)
    last = frame.groupby("metric")["ts"].max()
    assert (fc["ts"] > fc["metric"].map(last)).all()
    sc = perfkit.score(frame)
    assert 0 <= sc.overall <= 100


def test_step_keeps_points_per_series_bounded_and_pages_stitch(live: Live) -> None:
    src = Store(live.url)
    end = pd.Timestamp.now(tz="UTC").floor("s")
    start = end - pd.Timedelta("20s")     # the fixture waited for 20 s of scrapes
    # 20 s in at most 7 points: a 4 s step (20 s / 6 intervals, rounded up to whole seconds)
    coarse = Store(live.url + "&max_points=7").samples(metric=CPU, since=start, until=end)
    assert 2 <= len(coarse) <= 7
    assert (coarse["ts"].diff().dropna() % pd.Timedelta("4s") == pd.Timedelta(0)).all()
    whole = src.samples(metric=CPU, since=start, until=end)
    paged = Store(live.url + "&page_points=7").samples(metric=CPU, since=start, until=end)
    pd.testing.assert_frame_equal(whole, paged)
    assert whole["ts"].is_unique and len(whole) >= 20


def test_too_many_series_are_capped_with_a_warning(live: Live,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    src = Store(live.url + "&max_series=3")
    with caplog.at_level(logging.WARNING, logger="perfkit.store"):
        got = src.samples(since="1min")
    assert got.groupby(["metric", "labels"]).ngroups <= 3
    assert "kept the first 3 (max_series)" in caplog.text
    assert src.health()["series_capped"] > 0


def test_user_mapping_and_non_finite_samples(live: Live) -> None:
    # half the evaluation points are 0/0 (NaN): they are dropped, the finite half is kept
    nan_half = 'label_replace(vector(0) / (vector(time()) % 2), "instance", "h-nan", "", "")'
    rss_mb = 'max by (instance) (perfkit_process_rss) * 1'
    # on a 1 s grid, so that time() % 2 is 0 at every other point
    one_s = live.url.replace(f"step={TICK}", "step=1s")
    src = Store(one_s, metrics={"custom.nan_half": nan_half, "custom.rss": rss_mb})
    assert {"custom.nan_half", "custom.rss"} <= set(src.metric_names())
    end = pd.Timestamp.now(tz="UTC").floor("s")
    got = src.samples(metric="custom.nan_half", since=end - pd.Timedelta("20s"), until=end)
    assert 8 <= len(got) <= 12 and (got["value"] == 0).all() and set(got["host"]) == {"h-nan"}
    assert src.health()["non_finite_dropped"] >= 8
    rss = src.samples(metric="custom.rss", since="30s")
    assert len(rss) and set(rss["host"]) == {live.service_url.removeprefix("http://")}
    assert "h-nan" in src.hosts()


def test_promql_error_and_unreachable_server_are_clear(live: Live) -> None:
    bad = Store(live.url, metrics={"custom.bad": "rate(perfkit_process_rss[1m]"})
    with pytest.raises(PromQLError, match=r"bad_data") as err:
        bad.samples(metric="custom.bad", since="1min")
    assert "rate(perfkit_process_rss[1m]" in str(err.value)
    with pytest.raises(ValueError, match=r"unknown metric 'system.cpu_usge'.*system.cpu_usage"):
        Store(live.url).samples(metric="system.cpu_usge")
    down = Store(f"prometheus://127.0.0.1:{free_port()}?timeout=2")
    with pytest.raises(StoreUnavailableError, match=r"does not answer.*check that it runs"):
        down.hosts()
    assert down.health()["reachable"] is False


def test_writes_need_a_sql_store_beside_it(live: Live, tmp_path: Path) -> None:
    src = Store(live.url)
    frame = src.samples(metric=CPU, since="30s")
    with pytest.raises(ReadOnlyStoreError, match=r"read-only.*scraping"):
        src.write(frame)
    with pytest.raises(ReadOnlyStoreError, match=r"actions_store="):
        src.request_action("gc_tuning", {}, host="svc-1")
    assert src.actions().empty and src.alert_events().empty
    with Store(live.url, actions_store=f"sqlite:///{tmp_path}/actions.db") as both:
        aid = both.request_action("memory_optimization", {}, host="svc-1")
        assert list(both.actions()["id"]) == [aid]
        assert both.claim_actions("svc-1", "test")[0]["id"] == aid


def test_dashboard_renders_on_the_prometheus_source(live: Live,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from perfkit.dashboard import SCRIPT, open_runtimes

    st.cache_resource.clear()
    monkeypatch.setenv("PERFKIT_STORE_URL", live.url)
    monkeypatch.setenv("PERFKIT_EMBEDDED", "0")
    try:
        at = AppTest.from_file(str(SCRIPT), default_timeout=120)
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        assert not at.error, [e.value for e in at.error]
        shown = {m.label.rsplit(" ", 1)[0]: m.value for m in at.metric}
        at.session_state["metric_tab"] = "Application"  # only the open tab is drawn
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        shown.update({m.label.rsplit(" ", 1)[0]: m.value for m in at.metric})
        assert shown[CPU] != "—" and shown["application.api_response_time"] != "—"
        assert at.selectbox[0].value == "svc-1"
        at.session_state["metric_tab"] = "System"
        # Prometheus goes away: the banner says so and the page keeps what it had
        live.prom.stop()
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        banner = " ".join(e.value for e in at.error)
        assert "Store unreachable" in banner and "does not answer" in banner, banner
        # a build already under way when Prometheus stopped may still bring a newer value,
        # so the check is that the tile keeps a value rather than blanking out
        kept = {m.label.rsplit(" ", 1)[0]: m.value for m in at.metric}[CPU]
        assert kept != "—" and kept.endswith("%"), kept
        live.prom.start()
        wait_until(lambda: not at.run().error, 120, "the page to recover", every=0.5)
    finally:
        for rt in open_runtimes():
            rt.close()
        st.cache_resource.clear()


def test_window_means_and_rollups_on_the_prometheus_source(live: Live) -> None:
    from perfkit.store._reads import window_means_of

    src = Store(live.url)
    end = pd.Timestamp.now(tz="UTC").floor("s")
    raw = src.samples(metric=CPU, since=end - pd.Timedelta("2min"), until=end, labels="")
    got = src.rollups(metric=CPU, since=end - pd.Timedelta("2min"), until=end, labels="")
    assert len(raw) and int(got["count"].sum()) == len(raw)
    assert got["min"].min() == raw["value"].min() and got["max"].max() == raw["value"].max()
    means = src.window_means(since=end - pd.Timedelta("2min"), until=end)
    assert CPU in set(means["metric"])
    ref = window_means_of(src.samples(since=end - pd.Timedelta("2min"), until=end,
                                           labels=""), pd.Timedelta("5min"))
    assert sorted(means["metric"]) == sorted(ref["metric"])
    src.close()
