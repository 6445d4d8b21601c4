"""The read endpoints see the whole store: any host, several, or all, over a chosen window."""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
import pytest

pytest.importorskip("fastapi")

from fastapi.testclient import TestClient

import perfkit.api
from perfkit.monitor import Monitor

P = perfkit.api.PREFIX


@pytest.fixture
def client(sqlite_url: str) -> Iterator[tuple[TestClient, Monitor]]:
    """A server whose Monitor is 'api-self'; the store also holds 'web-1' and 'web-2'."""
    mon = Monitor(sqlite_url, interval=0.2, host="api-self")
    now = pd.Timestamp.now(tz="UTC").floor("s")
    rows = []
    for host, base in (("web-1", 40.0), ("web-2", 70.0)):
        for i in range(60):   # 30 min of one sample every 30 s, rising slowly
            rows.append({"ts": now - pd.Timedelta(seconds=30 * (59 - i)), "host": host,
                         "metric": "system.memory_usage", "value": base + 0.1 * i,
                         "labels": ""})
    mon.store.write(pd.DataFrame(rows))
    mon.store.flush()
    mon.collect()
    with TestClient(perfkit.api.app(mon, token="")) as c:
        yield c, mon
    mon.stop()
    mon.store.close()


def test_summary_of_another_host_and_of_all(client: tuple[TestClient, Monitor]) -> None:
    c, _ = client
    own = c.get(f"{P}/summary").json()
    assert own["host"] == "api-self" and "system.memory_usage" in own["metrics"]
    other = c.get(f"{P}/summary", params={"host": "web-2"}).json()
    assert other["host"] == "web-2"
    assert other["metrics"]["system.memory_usage"]["current"] == pytest.approx(75.9)
    assert other["monitoring_active"] is True          # its latest sample is fresh
    both = c.get(f"{P}/summary", params=[("host", "web-1"), ("host", "web-2")]).json()
    assert sorted(both["hosts"]) == ["web-1", "web-2"]
    assert both["hosts"]["web-1"]["metrics"]["system.memory_usage"]["current"] == \
        pytest.approx(45.9)
    every = c.get(f"{P}/summary", params={"host": "all"}).json()
    assert sorted(every["hosts"]) == ["api-self", "web-1", "web-2"]


def test_window_and_since_narrow_the_history(client: tuple[TestClient, Monitor]) -> None:
    c, _ = client
    full = c.get(f"{P}/summary", params={"host": "web-1", "window": "1h"}).json()
    short = c.get(f"{P}/summary", params={"host": "web-1", "window": "5min"}).json()
    # the mean over the last 5 minutes is higher than over the whole rising half hour
    assert short["metrics"]["system.memory_usage"]["average"] > \
        full["metrics"]["system.memory_usage"]["average"]
    got = c.get(f"{P}/metrics", params={"host": "web-1", "since": "5min"}).json()
    assert 9 <= got["count"] <= 11 and {s["host"] for s in got["samples"]} == {"web-1"}
    assert c.get(f"{P}/metrics", params={"host": "web-1", "window": "5min"}).json()["count"] \
        == got["count"]
    bad = c.get(f"{P}/summary", params={"window": "forever"})
    assert bad.status_code == 422 and "window='forever'" in bad.text


def test_predictions_for_several_hosts(client: tuple[TestClient, Monitor]) -> None:
    c, _ = client
    r = c.get(f"{P}/predictions", params=[("host", "web-1"), ("host", "web-2"),
                                          ("metric", "system.memory_usage"),
                                          ("method", "linear"), ("horizon", "10min")])
    assert r.status_code == 200, r.text
    points = pd.DataFrame(r.json()["forecasts"])
    assert set(points["host"]) == {"web-1", "web-2"}
    last = points.sort_values("ts").groupby("host")["mean"].last()
    assert last["web-2"] - last["web-1"] == pytest.approx(30.0, abs=1.0)
    assert (last > [45.9, 75.9]).all()      # the rising trend continues


def test_unknown_host_lists_the_known_ones(client: tuple[TestClient, Monitor]) -> None:
    c, _ = client
    for path in ("summary", "metrics", "predictions"):
        r = c.get(f"{P}/{path}", params={"host": "web-3"})
        assert r.status_code == 422, path
        detail = r.json()["detail"]
        assert detail["known_hosts"] == ["api-self", "web-1", "web-2"]
        assert "unknown host 'web-3'" in detail["message"] and "web-1" in detail["message"]


def test_defaults_are_stated_in_the_schema(client: tuple[TestClient, Monitor]) -> None:
    c, _ = client
    paths = c.get("/openapi.json").json()["paths"]
    for name in ("summary", "metrics", "predictions"):
        op = paths[f"{P}/{name}"]["get"]
        assert "Default:" in op["description"], name
        params = {p["name"]: p for p in op["parameters"]}
        assert {"host", "since", "window"} <= set(params), name
        assert "'all'" in params["host"]["description"]
        assert "default the Monitor's window" in params["window"]["description"]
