"""The HTTP API against a real Monitor and a real SQLite store: every endpoint, values checked."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator

import numpy as np
import pandas as pd
import pytest
from _procs import free_port, wait_until

pytest.importorskip("fastapi")


from fastapi import FastAPI
from fastapi.testclient import TestClient

import perfkit.api
from perfkit.frames import from_series
from perfkit.monitor import Monitor

P = perfkit.api.PREFIX


@pytest.fixture
def mon(make_monitor: Callable[..., Monitor]) -> Monitor:
    """A Monitor with three collections of requests and a business metric in its store."""
    m = make_monitor(interval=0.2, host="api-test")
    for i in range(3):
        with m.track("GET /markets"):
            pass
        m.record("orders.placed", float(10 + i), {"market": "btc"})
        m.collect()
    return m


@pytest.fixture
def client(mon: Monitor) -> Iterator[TestClient]:
    with TestClient(perfkit.api.app(mon, token="")) as c:
        yield c


def test_start_and_stop_monitoring_are_idempotent(client: TestClient, mon: Monitor) -> None:
    first = client.post(f"{P}/start-monitoring").json()
    assert first == {"monitoring_active": True, "changed": True, "host": "api-test",
                     "interval": 0.2}
    assert mon.running
    again = client.post(f"{P}/start-monitoring").json()
    assert again["monitoring_active"] is True and again["changed"] is False
    stopped = client.post(f"{P}/stop-monitoring").json()
    assert stopped["monitoring_active"] is False and stopped["changed"] is True
    assert not mon.running
    assert client.post(f"{P}/stop-monitoring").json()["changed"] is False


def test_metrics_returns_the_stored_samples(client: TestClient, mon: Monitor) -> None:
    r = client.get(f"{P}/metrics", params={"metric": "system.cpu_usage"})
    assert r.status_code == 200
    body = r.json()
    stored = mon.store.samples(metric="system.cpu_usage", since=mon.window)
    assert body["count"] == len(stored) >= 2 and body["truncated"] is False
    assert [s["value"] for s in body["samples"]] == stored["value"].tolist()
    assert [pd.Timestamp(s["ts"]) for s in body["samples"]] == stored["ts"].tolist()
    assert {s["host"] for s in body["samples"]} == {"api-test"}


def test_metrics_filters_by_labels_host_and_time(client: TestClient, mon: Monitor) -> None:
    labelled = client.get(f"{P}/metrics", params={"metric": "orders.placed",
                                                   "labels": "market=btc"}).json()
    assert [s["value"] for s in labelled["samples"]] == [10.0, 11.0, 12.0]
    assert {s["labels"] for s in labelled["samples"]} == {"market=btc"}
    unknown = client.get(f"{P}/metrics", params={"host": "elsewhere"})
    assert unknown.status_code == 422
    assert unknown.json()["detail"]["known_hosts"] == ["api-test"]
    cut = mon.store.samples(metric="orders.placed")["ts"].iloc[1]
    later = client.get(f"{P}/metrics", params={"metric": "orders.placed",
                                                "since": cut.isoformat()}).json()
    assert [s["value"] for s in later["samples"]] == [11.0, 12.0]
    earlier = client.get(f"{P}/metrics", params={"metric": "orders.placed",
                                                  "until": cut.isoformat()}).json()
    assert [s["value"] for s in earlier["samples"]] == [10.0, 11.0]


def test_metrics_limit_keeps_the_most_recent(client: TestClient, mon: Monitor) -> None:
    body = client.get(f"{P}/metrics", params={"metric": "orders.placed", "limit": 2}).json()
    assert body["truncated"] is True
    assert [s["value"] for s in body["samples"]] == [11.0, 12.0]


@pytest.mark.parametrize("params, fragment", [
    ({"metric": "system.cpu_usag"}, "system.cpu_usage"),      # close match suggested
    ({"since": "yesterday-ish"}, "since="),
    ({"until": "-5min"}, "until="),
    ({"labels": "no-equals-sign"}, "labels="),
    ({"limit": 0}, "limit"),
    ({"limit": "many"}, "limit"),
])
def test_bad_metrics_queries_are_422(client: TestClient, params: dict, fragment: str) -> None:
    r = client.get(f"{P}/metrics", params=params)
    assert r.status_code == 422, r.text
    assert fragment in r.text


def test_health_reports_the_monitor(client: TestClient, mon: Monitor) -> None:
    body = client.get(f"{P}/health").json()
    h = mon.health()
    assert body["status"] == "ok"
    assert body["host"] == "api-test" and body["running"] is False
    assert set(body["collectors"]) == set(h["collectors"]) >= {"system", "application"}
    assert body["collectors"]["system"]["runs"] == 3
    assert body["store"]["reachable"] is True


def test_health_degraded_when_a_collector_fails(client: TestClient, mon: Monitor) -> None:
    class Broken:
        name = "broken"

        def collect(self) -> list:
            raise RuntimeError("sensor unplugged")

    mon.add_collector(Broken())
    mon.collect()
    body = client.get(f"{P}/health").json()
    assert body["status"] == "degraded"
    assert "sensor unplugged" in body["collectors"]["broken"]["last_error"]


def test_optimization_actions_split_pending_and_history(client: TestClient,
                                                        mon: Monitor) -> None:
    st = mon.store
    done = st.record_action("memory_optimization", {}, host="api-test", requested_by="user")
    st.finish_action(done, status="done", before={"process.rss": 120.0},
                     after={"process.rss": 100.0}, verdict="improved", duration_s=0.25)
    waiting = st.request_action("database_optimization", {}, host="api-test")
    st.request_action("database_optimization", {}, host="other-host")
    body = client.get(f"{P}/optimization-actions").json()
    assert [a["id"] for a in body["pending"]] == [waiting]
    assert body["pending"][0]["status"] == "pending"
    assert [a["id"] for a in body["history"]] == [done]
    h = body["history"][0]
    assert (h["verdict"], h["before"], h["after"], h["duration_s"]) == \
        ("improved", {"process.rss": 120.0}, {"process.rss": 100.0}, 0.25)
    everyone = client.get(f"{P}/optimization-actions", params={"all_hosts": True}).json()
    assert len(everyone["pending"]) == 2
    only = client.get(f"{P}/optimization-actions",
                      params={"action": "memory_optimization"}).json()
    assert only["pending"] == [] and [a["id"] for a in only["history"]] == [done]
    assert client.get(f"{P}/optimization-actions", params={"since": "soon"}).status_code == 422


def test_prometheus_endpoint_is_mounted_at_root(client: TestClient, mon: Monitor) -> None:
    r = client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    cpu = mon.store.latest(host="api-test").query("metric == 'system.cpu_usage'")["value"].iloc[0]
    assert f'perfkit_system_cpu_usage{{host="api-test"}} {float(cpu)!r}\n' in r.text


def test_token_guards_post_endpoints_and_stored_data(mon: Monitor) -> None:
    app = FastAPI()
    app.include_router(perfkit.api.router(mon, token="s3cret"), prefix=P)
    with TestClient(app) as c:
        r = c.post(f"{P}/start-monitoring")
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        assert c.post(f"{P}/start-monitoring",
                      headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert c.post(f"{P}/start-monitoring",
                      headers={"Authorization": "Bearer sécret".encode()}).status_code == 401
        assert not mon.running
        ok = c.post(f"{P}/start-monitoring", headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200 and mon.running
        assert c.post(f"{P}/trigger-optimization",
                      json={"optimization_type": "memory_optimization"}).status_code == 401
        assert c.get(f"{P}/health").status_code == 200
        assert c.get(f"{P}/optimization-types").status_code == 200
        # other hosts' samples and the action history follow the same token
        for path in ("summary", "metrics", "predictions", "optimization-actions"):
            assert c.get(f"{P}/{path}").status_code == 401, path
        assert c.get(f"{P}/metrics", headers={"Authorization": "Bearer s3cret"}).status_code \
            == 200


def test_token_from_environment(mon: Monitor, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PERFKIT_API_TOKEN", "from-env")
    with TestClient(perfkit.api.app(mon)) as c:
        assert c.post(f"{P}/stop-monitoring").status_code == 401
        assert c.post(f"{P}/stop-monitoring",
                      headers={"Authorization": "Bearer from-env"}).status_code == 200


def test_import_perfkit_does_not_import_fastapi() -> None:
    code = ("import sys, perfkit; perfkit.Monitor; import perfkit.prometheus; "
            "assert 'fastapi' not in sys.modules, 'fastapi imported'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_perfkit_serve_runs_the_api(tmp_path: object) -> None:
    import httpx

    port = free_port()
    env = {**os.environ, "PERFKIT_API_TOKEN": "t0k"}
    proc = subprocess.Popen([sys.executable, "-m", "perfkit.cli", "serve", "--port", str(port),
                             "--store", f"sqlite:///{tmp_path}/serve.db", "--interval", "0.2",
                             "--log-level", "warning"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        auth = {"Authorization": "Bearer t0k"}

        def cpu_served() -> bool:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            return "perfkit_system_cpu_usage{" in httpx.get(f"{base}/metrics", timeout=2,
                                                            headers=auth).text

        wait_until(cpu_served, 120, "a CPU sample on /metrics", every=0.2,
                   retry_on=(httpx.TransportError,))
        # every host's series: the scrape needs the token once one is set
        assert httpx.get(f"{base}/metrics", timeout=5).status_code == 401
        health = httpx.get(f"{base}{P}/health", timeout=5).json()
        assert health["running"] is True
        assert httpx.post(f"{base}{P}/stop-monitoring", timeout=5).status_code == 401
        r = httpx.post(f"{base}{P}/stop-monitoring", timeout=10,
                       headers={"Authorization": "Bearer t0k"})
        assert r.json()["monitoring_active"] is False
        proc.terminate()
        assert proc.wait(timeout=60) == 0      # SIGTERM: a clean stop, not a kill
    finally:
        proc.kill()
        proc.wait(timeout=20)


def test_predictions_forecast_the_recent_window(client: TestClient, mon: Monitor) -> None:
    from perfkit.analysis._forecast import forecast

    # orders.placed is only recorded with labels: the API forecasts unlabelled series
    r = client.get(f"{P}/predictions", params={"metric": "orders.placed"})
    assert r.status_code == 422 and "no unlabelled samples of 'orders.placed'" in r.text
    r = client.get(f"{P}/predictions", params={"horizon": "1s", "method": "linear", "level": 0.9,
                                               "metric": "system.memory_usage"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["horizon"], body["level"], body["method"]) == ("1s", 0.9, "linear")
    got = body["forecasts"]
    want = forecast(mon.recent().query("metric == 'system.memory_usage' and labels == ''"),
                    horizon="1s", level=0.9, method="linear")
    assert len(got) == len(want) > 0
    assert [p["mean"] for p in got] == pytest.approx(want["mean"].tolist())
    assert all(p["lower"] <= p["mean"] <= p["upper"] for p in got)
    assert all(p["level"] == 0.9 and p["model"] and p["reason"] for p in got)


@pytest.mark.parametrize("params, fragment", [
    ({"horizon": "soon"}, "horizon="),
    ({"horizon": "-5min"}, "horizon="),
    ({"horizon": "400h"}, "at most"),
    ({"level": 1.5}, "level"),
    ({"level": "nan"}, "level"),
    ({"method": "crystal_ball"}, "crystal_ball"),
    ({"metric": "system.cpu_usag"}, "system.cpu_usage"),
    ({"window": "0s"}, "window="),
])
def test_bad_prediction_queries_are_422(client: TestClient, params: dict, fragment: str) -> None:
    r = client.get(f"{P}/predictions", params=params)
    assert r.status_code == 422, r.text
    assert fragment in r.text


def test_a_horizon_of_too_many_steps_is_422(client: TestClient, mon: Monitor) -> None:
    # samples 10 ms apart, written with their timestamps: 2 h ahead is 720,000 steps
    ts = pd.Timestamp.now(tz="UTC").floor("s") - pd.Timedelta(seconds=2) + \
        pd.to_timedelta(np.arange(100) * 10, unit="ms")
    mon.store.write(from_series(pd.Series(np.linspace(1.0, 2.0, 100), index=ts),
                                metric="orders.fast", host="api-test"))
    r = client.get(f"{P}/predictions", params={"metric": "orders.fast", "horizon": "2h"})
    assert r.status_code == 422, r.text
    assert "MAX_HORIZON_STEPS=20,000" in r.text
    r = client.get(f"{P}/predictions", params={"metric": "orders.fast", "horizon": "100s",
                                               "max_points": 5000})
    assert r.status_code == 200 and 4900 <= len(r.json()["forecasts"]) <= 5000, r.text[:300]


def test_long_forecasts_are_downsampled_to_max_points(client: TestClient, mon: Monitor) -> None:
    from perfkit.analysis._forecast import forecast

    # samples 10 ms apart: 100 s ahead is 10,000 steps, a trend with noise on top
    rng = np.random.default_rng(4)
    ts = pd.Timestamp.now(tz="UTC").floor("s") - pd.Timedelta(seconds=2) + \
        pd.to_timedelta(np.arange(200) * 10, unit="ms")
    mon.store.write(from_series(pd.Series(np.linspace(1.0, 3.0, 200) + rng.normal(0, 0.05, 200),
                                          index=ts), metric="orders.fast", host="api-test"))
    params = {"metric": "orders.fast", "horizon": "100s", "method": "linear"}
    full = forecast(mon.store.samples(metric="orders.fast"), horizon="100s", method="linear")
    assert len(full) == 10_000
    by_ts = full.set_index(full["ts"].map(pd.Timestamp.isoformat))

    body = client.get(f"{P}/predictions", params=params).json()
    got = body["forecasts"]
    assert (body["max_points"], body["downsampled"]) == (500, True)
    assert 400 <= len(got) <= 500
    stamps = [pd.Timestamp(p["ts"]) for p in got]
    assert stamps == sorted(stamps) and stamps[0] == full["ts"].iloc[0] \
        and stamps[-1] == full["ts"].iloc[-1]
    # every step returned is one the model forecast, interval included
    for p, t in zip(got, stamps):
        row = by_ts.loc[t.isoformat()]
        assert (p["mean"], p["lower"], p["upper"]) == pytest.approx(
            (row["mean"], row["lower"], row["upper"]))
    assert max(p["mean"] for p in got) == pytest.approx(full["mean"].max())

    small = client.get(f"{P}/predictions", params={**params, "max_points": 12}).json()
    assert len(small["forecasts"]) <= 12 and small["downsampled"] is True
    whole = client.get(f"{P}/predictions", params={**params, "horizon": "1s"}).json()
    assert len(whole["forecasts"]) == 100 and whole["downsampled"] is False
    # a downsampled step carries the same fields as a whole forecast's
    assert set(got[0]) == set(whole["forecasts"][0])
    for bad in (5001, 11, 0):
        r = client.get(f"{P}/predictions", params={**params, "max_points": bad})
        assert r.status_code == 422 and "max_points" in r.text, r.text
    schema = client.get("/openapi.json").json()
    param = next(q for q in schema["paths"][f"{P}/predictions"]["get"]["parameters"]
                 if q["name"] == "max_points")
    assert param["schema"]["default"] == 500 and param["schema"]["maximum"] == 5000


def test_start_and_stop_optimization_are_idempotent(client: TestClient, mon: Monitor) -> None:
    try:
        first = client.post(f"{P}/start-optimization").json()
        assert first == {"optimization_active": True, "changed": True, "host": "api-test"}
        assert mon.optimization_active
        assert client.post(f"{P}/start-optimization").json()["changed"] is False
        stopped = client.post(f"{P}/stop-optimization").json()
        assert stopped == {"optimization_active": False, "changed": True, "host": "api-test"}
        assert not mon.optimization_active
        assert client.post(f"{P}/stop-optimization").json()["changed"] is False
    finally:
        mon.stop_optimization()


def test_trigger_unknown_type_lists_the_valid_ones(client: TestClient, mon: Monitor) -> None:
    import perfkit.actions

    r = client.post(f"{P}/trigger-optimization", json={"optimization_type": "turbo_mode"})
    assert r.status_code == 422
    detail = r.json()["detail"]
    assert detail["valid_types"] == sorted(perfkit.actions.names())
    assert "memory_optimization" in detail["valid_types"] and "turbo_mode" in detail["message"]
    assert mon.store.actions().empty  # refused before anything ran or was recorded


@pytest.mark.parametrize("parameters, fragment", [
    ({"generation": 7}, "generation"),                  # out of range
    ({"generation": "2; DROP TABLE samples"}, "generation"),  # wrong type, never evaluated
    ({"bogus": 1}, "bogus"),                            # unknown parameter
])
def test_trigger_invalid_parameters_are_422(client: TestClient, mon: Monitor,
                                            parameters: dict, fragment: str) -> None:
    r = client.post(f"{P}/trigger-optimization",
                    json={"optimization_type": "memory_optimization", "parameters": parameters})
    assert r.status_code == 422, r.text
    assert fragment in r.json()["detail"]["message"]
    assert "memory_optimization" in r.json()["detail"]["valid_types"]
    assert mon.store.actions().empty
    assert len(mon.store.samples(metric="system.cpu_usage")) >= 2  # the store is intact


def test_trigger_runs_the_action_and_audits_it(client: TestClient, mon: Monitor) -> None:
    r = client.post(f"{P}/trigger-optimization",
                    json={"optimization_type": "memory_optimization",
                          "parameters": {"generation": 2, "trim": False}})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["queued"] is False and body["status"] == "done"
    assert body["params"] == {"generation": 2, "trim": False}
    row = mon.store.actions().set_index("id").loc[body["action_id"]]
    assert (row["action"], row["requested_by"], row["status"]) == \
        ("memory_optimization", "api", "done")
    assert row["verdict"] == body["verdict"]
    assert body["detail"].items() <= row["detail"].items()
    assert body["detail"]["collected"] == row["detail"]["collected"]
    assert (body["before"], body["after"]) == (row["before"], row["after"])


def test_trigger_can_queue_for_the_monitor(client: TestClient, mon: Monitor) -> None:
    r = client.post(f"{P}/trigger-optimization",
                    json={"optimization_type": "database_optimization", "queue": True,
                          "dry_run": True})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["queued"] is True and body["status"] == "pending"
    pending = client.get(f"{P}/optimization-actions").json()["pending"]
    assert [(a["id"], a["action"], a["requested_by"], a["dry_run"]) for a in pending] == \
        [(body["action_id"], "database_optimization", "api", True)]


def test_summary_matches_the_store(client: TestClient, mon: Monitor) -> None:
    r = client.get(f"{P}/summary")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["monitoring_active"] is False and body["optimization_active"] is False
    latest = mon.store.latest(host="api-test")
    latest = latest[latest["labels"] == ""].set_index("metric")["value"]
    assert set(body["metrics"]) == set(latest.index)
    for metric, value in latest.items():
        assert body["metrics"][metric]["current"] == pytest.approx(value)
    window = mon.recent()
    mem = window[(window["metric"] == "system.memory_usage") & (window["labels"] == "")]
    assert body["metrics"]["system.memory_usage"]["average"] == pytest.approx(mem["value"].mean())
    assert body["performance_score"] is None or 0 <= body["performance_score"] <= 100


def test_optimization_types_lists_the_registry(client: TestClient) -> None:
    import perfkit.actions

    body = client.get(f"{P}/optimization-types").json()
    assert [t["name"] for t in body] == sorted(perfkit.actions.names())
    mem = next(t for t in body if t["name"] == "memory_optimization")
    assert mem["parameters"]["generation"]["type"] == "int"
    assert mem["watch"] == {"process.rss": "higher"}


def test_a_store_that_is_down_answers_503(tmp_path: object) -> None:
    # Nothing listens on port 1: the connection is refused at once.
    down = Monitor("postgresql+psycopg://postgres@127.0.0.1:1/test?connect_timeout=2",
                   host="down")
    with TestClient(perfkit.api.app(down, token="")) as c:
        for path in (f"{P}/metrics", f"{P}/optimization-actions", f"{P}/predictions", "/metrics"):
            r = c.get(path)
            assert r.status_code == 503, (path, r.text)
            assert "127.0.0.1:1" in r.json()["detail"]["message"]
        assert c.get(f"{P}/health").json()["status"] == "degraded"


def test_request_text_never_reaches_sql(client: TestClient, mon: Monitor) -> None:
    before = len(mon.store.samples())
    hostile = "system.cpu_usage'; DROP TABLE samples; --"
    assert client.get(f"{P}/metrics", params={"metric": hostile}).status_code == 422
    assert client.get(f"{P}/metrics", params={"host": hostile}).status_code == 422
    assert client.get(f"{P}/metrics", params={"labels": "a=1' OR '1'='1"}).json()["count"] == 0
    assert len(mon.store.samples()) == before > 0


def test_metrics_accepts_several_metrics(client: TestClient, mon: Monitor) -> None:
    body = client.get(f"{P}/metrics", params=[("metric", "orders.placed"),
                                              ("metric", "system.disk_usage")]).json()
    stored = mon.store.samples(metric=["orders.placed", "system.disk_usage"], since=mon.window)
    assert body["count"] == len(stored) == 6
    assert {s["metric"] for s in body["samples"]} == {"orders.placed", "system.disk_usage"}
    assert client.get(f"{P}/metrics", params={"metric": ""}).status_code == 422


def test_anomalies_lists_unusual_now_and_the_stored_episodes(client: TestClient,
                                                              mon: Monitor) -> None:
    import numpy as np

    v = np.random.default_rng(0).normal(10, 1, 152)
    v[150] += 40
    ts = pd.date_range(pd.Timestamp.now(tz="UTC") - pd.Timedelta(minutes=10), periods=152,
                       freq="s")
    # the frame a collection would hand the Monitor's hooks
    mon._score_anomalies(pd.DataFrame({"ts": ts, "host": mon.host, "metric": "custom.value",
                                       "value": v, "labels": ""}))
    mon.store.flush()
    body = client.get(f"{P}/anomalies").json()
    now = [r for r in body["now"] if r["metric"] == "custom.value"]
    assert len(now) == 1 and now[0]["pattern"] == "spike" and now[0]["score"] >= 0.5
    assert pd.Timestamp(now[0]["since"]) == ts[150]
    ev = [e for e in body["events"] if e["metric"] == "custom.value"]
    assert [(e["state"], e["pattern"], e["min_score"]) for e in ev] == [("firing", "spike", 0.5)]
    assert client.get(f"{P}/anomalies", params={"since": "soon"}).status_code == 422
