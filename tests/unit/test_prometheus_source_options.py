"""The Prometheus source without a server: URL dispatch, options, steps and pages, faults."""

from __future__ import annotations

import pytest
from _procs import free_port

from perfkit.errors import ConfigError, ReadOnlyStoreError, StoreUnavailableError
from perfkit.store import Store
from perfkit.store._prometheus import PrometheusStore
from perfkit.store._promhttp import MAX_POINTS, base_url, pages, step_for


def test_store_dispatches_on_the_url_scheme(monkeypatch: pytest.MonkeyPatch) -> None:
    src = Store("prometheus://127.0.0.1:9/prom?step=5s&host_label=node")
    assert isinstance(src, PrometheusStore) and isinstance(src, Store)
    assert src.client.base == "http://127.0.0.1:9/prom"
    assert (src.step_s, src.host_label) == (5.0, "node")
    assert base_url("prometheus+https://p.example:443") == "https://p.example:443"
    monkeypatch.setenv("PERFKIT_STORE_URL", "prometheus://127.0.0.1:9")
    assert isinstance(Store(), PrometheusStore)
    with pytest.raises(TypeError, match="only a prometheus:// source takes"):
        Store("sqlite://", actions_store="sqlite://")


@pytest.mark.parametrize(("url", "fragment"), [
    ("prometheus://h:9?stepp=1s", "unknown Prometheus option"),
    ("prometheus://h:9?step=-1s", "step='-1s' is not a duration; use a positive"),
    ("prometheus://h:9?page_points=20000", "at most 11,000"),
    ("prometheus://h:9?max_series=0", "positive whole number"),
])
def test_bad_options_say_what_to_write(url: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        Store(url)


def test_step_never_asks_more_than_max_points() -> None:
    assert step_for(3600, 15, MAX_POINTS) == 15
    day = step_for(86_400, 1, MAX_POINTS)
    assert day == 8 and 86_400 / day + 1 <= MAX_POINTS
    month = 30 * 86_400
    assert month / step_for(month, 15, MAX_POINTS) + 1 <= MAX_POINTS


@pytest.mark.parametrize(("start", "end", "step", "per"), [
    (0, 100, 1, 11), (0, 100, 7, 3), (10, 10, 1, 5), (0, 1e6, 15, MAX_POINTS)])
def test_pages_cover_the_grid_once(start: float, end: float, step: float, per: int) -> None:
    got = pages(start, end, step, per)
    points = [s + k * step for s, e in got for k in range(int((e - s) // step) + 1)]
    want = [start + k * step for k in range(int((end - start) // step) + 1)]
    assert points == want
    assert all((e - s) / step + 1 <= per for s, e in got)


def test_unreachable_prometheus_is_a_clear_error_and_writes_are_refused() -> None:
    src = Store(f"prometheus://127.0.0.1:{free_port()}?timeout=2")
    with pytest.raises(StoreUnavailableError, match=r"does not answer .*prometheus://HOST:PORT"):
        src.samples(metric="system.cpu_usage", since="5min")
    assert src.health()["reachable"] is False and src.health()["last_error"]
    with pytest.raises(ReadOnlyStoreError, match="read-only"):
        src.prune("7d")
    with pytest.raises(ReadOnlyStoreError, match="alert events needs a SQL store"):
        src.write_alert_events(src.alert_events())
    with pytest.raises(ConfigError, match="not another Prometheus"):
        Store("prometheus://h:9", actions_store="prometheus://h:9")


def test_dashboard_command_takes_an_actions_store() -> None:
    from perfkit.cli import _parser

    args = _parser().parse_args(["dashboard", "--store", "prometheus://127.0.0.1:9090",
                                 "--actions-store", "postgresql://perf@db/perf"])
    assert args.actions_store == "postgresql://perf@db/perf"


def test_actions_store_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch,
                                                  tmp_path: object) -> None:
    monkeypatch.setenv("PERFKIT_ACTIONS_STORE_URL", f"sqlite:///{tmp_path}/a.db")
    src = Store("prometheus://127.0.0.1:9")
    assert src.actions_store is not None and src.actions_store.dialect == "sqlite"
    aid = src.request_action("memory_optimization", {}, host="h")
    assert list(src.actions()["id"]) == [aid]
    src.close()


def test_a_mapping_file_in_the_url(tmp_path) -> None:
    good = tmp_path / "map.json"
    good.write_text('{"system.cpu_usage": "avg by (instance) (rate(x[1m]))", "a.b": "y"}')
    src = Store(f"prometheus://127.0.0.1:9?map={good}", metrics={"a.b": "z"})
    assert src.mapping == {"system.cpu_usage": "avg by (instance) (rate(x[1m]))", "a.b": "z"}
    (tmp_path / "bad.json").write_text("[1, 2]")
    with pytest.raises(ConfigError, match="must hold a JSON object"):
        Store(f"prometheus://127.0.0.1:9?map={tmp_path / 'bad.json'}")
    with pytest.raises(ConfigError, match="cannot read it"):
        Store(f"prometheus://127.0.0.1:9?map={tmp_path / 'missing.json'}")
    (tmp_path / "odd.json").write_text('{"a.b": 3}')
    with pytest.raises(ConfigError, match=r"not: \['a\.b'\]"):
        Store(f"prometheus://127.0.0.1:9?map={tmp_path / 'odd.json'}")
