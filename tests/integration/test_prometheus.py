"""Prometheus text exposition: parses with prometheus_client and matches the store's latest."""

from __future__ import annotations

import pandas as pd
import pytest

from perfkit.frames import parse_labels
from perfkit.prometheus import exposition, prometheus_name, render
from perfkit.store import Store

parser = pytest.importorskip("prometheus_client.parser")


def _parse(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in parser.text_string_to_metric_families(text):
        assert family.type == "gauge"
        for s in family.samples:
            key = (s.name, tuple(sorted(s.labels.items())))
            assert key not in out, f"series {key} exposed twice"
            out[key] = s.value
    return out


@pytest.fixture
def store(sqlite_url: str) -> Store:
    st = Store(sqlite_url)
    now = pd.Timestamp.now(tz="UTC")
    rows = []
    for i, dt in enumerate([pd.Timedelta("3min"), pd.Timedelta("2min"), pd.Timedelta("1min")]):
        t = now - dt
        rows += [
            (t, "web-1", "system.cpu_usage", 10.0 + i, ""),
            (t, "web-2", "system.cpu_usage", 50.0 + i, ""),
            (t, "web-1", "application.api_response_time.p95", 120.5 + i, "endpoint=GET /markets"),
            (t, "web-1", "application.api_response_time.p95", 80.25 + i,
             'endpoint=POST "orders" \\ x'),
            (t, "web-1", "orders.placed", 3.0 * i, "2fa=yes,__secret=1"),
        ]
    rows.append((now - pd.Timedelta("2h"), "old-host", "system.cpu_usage", 99.0, ""))
    st.write(pd.DataFrame(rows, columns=["ts", "host", "metric", "value", "labels"]))
    st.flush()
    return st


def test_exposition_parses_and_matches_latest(store: Store) -> None:
    parsed = _parse(exposition(store))
    latest = store.latest()
    assert len(parsed) == len(latest) == 6
    for metric, host, labels, value in zip(latest["metric"], latest["host"], latest["labels"],
                                           latest["value"]):
        want = {"host": host}
        for k, v in parse_labels(labels).items():
            want[{"2fa": "_2fa", "__secret": "label__secret"}.get(k, k)] = v
        assert parsed[(prometheus_name(metric), tuple(sorted(want.items())))] == value
    # the newest sample wins, per series
    assert parsed[("perfkit_system_cpu_usage", (("host", "web-2"),))] == 52.0
    quoted = ("perfkit_application_api_response_time_p95",
              (("endpoint", 'POST "orders" \\ x'), ("host", "web-1")))
    assert parsed[quoted] == 82.25


def test_host_filter_and_max_age(store: Store) -> None:
    only = _parse(exposition(store, host="web-2"))
    assert list(only) == [("perfkit_system_cpu_usage", (("host", "web-2"),))]
    fresh = _parse(exposition(store, max_age="15min"))
    assert {dict(k[1])["host"] for k in fresh} == {"web-1", "web-2"}
    assert "old-host" in exposition(store)


def test_help_and_type_lines_come_from_the_catalogue(store: Store) -> None:
    text = exposition(store)
    assert "# HELP perfkit_system_cpu_usage Host CPU utilisation (%)\n" in text
    assert "# TYPE perfkit_system_cpu_usage gauge\n" in text


def test_names_that_collide_stay_apart() -> None:
    t = pd.Timestamp.now(tz="UTC")
    frame = pd.DataFrame({"ts": [t, t], "host": ["h", "h"], "metric": ["app.a_b", "app_a.b"],
                          "value": [1.0, 2.0], "labels": ["", ""]})
    parsed = _parse(render(frame))
    assert parsed == {("perfkit_app_a_b", (("host", "h"), ("perfkit_metric", "app.a_b"))): 1.0,
                      ("perfkit_app_a_b", (("host", "h"), ("perfkit_metric", "app_a.b"))): 2.0}


def test_empty_store_exposes_nothing(sqlite_url: str) -> None:
    assert exposition(Store(sqlite_url)) == ""


@pytest.mark.postgres
def test_shared_postgres_store_exports_each_host(pg_url: str) -> None:
    pytest.importorskip("fastapi")
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    import perfkit.api
    from perfkit.monitor import Monitor

    web1, web2 = Monitor(pg_url, host="web-1"), Monitor(pg_url, host="web-2")
    try:
        for mon, value in ((web1, 10.0), (web2, 20.0)):
            mon.record("orders.placed", value)
            mon.collect()
        exporter = TestClient(perfkit.api.app(web1, token=""))
        everyone = _parse(exporter.get("/metrics").text)
        assert everyone[("perfkit_orders_placed", (("host", "web-1"),))] == 10.0
        assert everyone[("perfkit_orders_placed", (("host", "web-2"),))] == 20.0
        latest = web1.store.latest()
        assert len(everyone) == len(latest)
        own = FastAPI()
        own.include_router(perfkit.api.metrics_router(web2))
        mine = _parse(TestClient(own).get("/metrics").text)
        assert {dict(k[1])["host"] for k in mine} == {"web-2"}
        assert mine[("perfkit_orders_placed", (("host", "web-2"),))] == 20.0
    finally:
        web1.store.close()
        web2.store.close()


@pytest.mark.parametrize("bad", ["a while", "-5min", "0s"])
def test_a_bad_max_age_says_what_to_pass(store: Store, bad: str) -> None:
    with pytest.raises(ValueError, match="15min"):
        exposition(store, max_age=bad)


def test_the_api_refuses_a_bad_max_age_when_it_is_built(sqlite_url: str) -> None:
    pytest.importorskip("fastapi")
    import perfkit.api
    from perfkit.monitor import Monitor

    mon = Monitor(sqlite_url, host="h")
    try:
        with pytest.raises(ValueError, match="max_age='fortnight' is not a duration"):
            perfkit.api.metrics_router(mon, max_age="fortnight")
    finally:
        mon.store.close()
