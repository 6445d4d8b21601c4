"""The fleet overview: per-host scores equal perfkit.score, stale hosts, firing alerts, spread."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from perfkit.analysis import score, score_hosts
from perfkit.catalog import CORE_METRICS
from perfkit.dashboard import fleet_crossings, fleet_overview, fleet_spread

NOW = pd.Timestamp("2026-12-01 12:00", tz="UTC")
CPU, P95 = "system.cpu_usage", "application.api_response_time.p95"


def _host(host: str, levels: dict[str, float], *, end: pd.Timestamp = NOW, minutes: int = 10,
          slope: dict[str, float] | None = None, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = minutes * 6
    ts = pd.date_range(end=end, periods=n, freq="10s")
    k = np.arange(n)
    return pd.concat([pd.DataFrame({"ts": ts, "host": host, "metric": m, "labels": "",
                                    "value": v + (slope or {}).get(m, 0.0) * k
                                    + rng.normal(0, 0.5, n)})
                      for m, v in levels.items()], ignore_index=True)


BASE = {CPU: 30.0, "system.memory_usage": 50.0, "cache.hit_rate": 95.0,
        "application.error_rate": 0.1, P95: 80.0, "database.query_time": 5.0}


@pytest.fixture
def fleet() -> pd.DataFrame:
    parts = [_host("web-1", BASE, seed=1),
             _host("web-2", {**BASE, CPU: 97.0}, seed=2),                 # CPU critical
             _host("web-3", {**BASE, "cache.hit_rate": 72.0}, seed=3),    # hit rate warning
             _host("old-1", BASE, end=NOW - pd.Timedelta("30min"), seed=4),  # stopped reporting
             _host("skew-1", BASE, end=NOW + pd.Timedelta("10min"), seed=5)]  # clock ahead
    # a labelled per-endpoint series must not change any host's score
    parts.append(_host("web-1", {P95: 5000.0}).assign(labels="endpoint=GET /slow"))
    return pd.concat(parts, ignore_index=True).sort_values("ts", ignore_index=True)


def test_score_hosts_equals_score_of_each_host_alone(fleet: pd.DataFrame) -> None:
    got = score_hosts(fleet).set_index("host")
    for host, hf in fleet.groupby("host"):
        want = score(hf)
        row = got.loc[host]
        assert row["overall"] == pytest.approx(want.overall)
        for g, v in want.groups.items():
            assert (np.isnan(row[g]) if v is None else row[g] == pytest.approx(v)), (host, g)
        worst = want.worst
        assert row["worst_metric"] == (worst["metric"].iloc[0] if len(worst) else "")
        assert row["worst_cost"] == pytest.approx(worst["cost"].iloc[0] if len(worst) else 0.0)


def test_overview_one_row_per_host_worst_first_stale_not_healthy(fleet: pd.DataFrame) -> None:
    events = pd.DataFrame({
        "ts": [NOW - pd.Timedelta("5min"), NOW - pd.Timedelta("4min"), NOW - pd.Timedelta("3min"),
               NOW - pd.Timedelta("2min")],
        "host": ["web-1", "web-1", "web-2", "web-2"],
        "metric": ["application.error_rate", "application.error_rate", CPU, CPU],
        "labels": "", "severity": ["warning", "warning", "critical", "warning"],
        "state": ["firing", "resolved", "firing", "firing"], "value": 1.0, "threshold": 1.0,
        "message": ""})
    ov = fleet_overview(fleet, events, now=NOW, hosts=["web-1", "never-1"])
    assert list(ov["host"]) == ["web-2", "web-3", "never-1", "old-1", "skew-1", "web-1"]
    by = ov.set_index("host")
    assert by.loc["web-2", "status"] == "critical" and by.loc["web-2", "worst_metric"] == CPU
    assert by.loc["web-2", "firing"] == 1        # warning + critical of one series count once
    assert by.loc["web-1", "firing"] == 0        # its alert resolved
    # an open anomaly episode and a demo phase share the alert history but are not rules
    others = pd.DataFrame({"ts": [NOW - pd.Timedelta("1min")] * 2, "host": "web-1",
                           "metric": [CPU, "demo.phase"], "labels": "",
                           "severity": ["anomaly-episode", "demo-phase"], "state": "firing",
                           "value": 0.9, "threshold": 0.5, "message": ["spike", "cpu_heavy"]})
    again = fleet_overview(fleet, pd.concat([events, others]), now=NOW).set_index("host")
    assert again.loc["web-1", "firing"] == 0 and again.loc["web-2", "firing"] == 1
    assert by.loc["web-3", "status"] == "warning"
    assert by.loc["web-3", "worst_metric"] == "cache.hit_rate"
    assert by.loc["old-1", "status"] == "stale" and np.isnan(by.loc["old-1", "score"])
    assert by.loc["old-1", "age_s"] == pytest.approx(1800)
    assert by.loc["skew-1", "clock"] == "ahead" and by.loc["skew-1", "status"] == "ok"
    assert by.loc["web-1", "score"] == 100.0 and by.loc["web-1", "status"] == "ok"
    assert by.loc["never-1", "status"] == "stale" and pd.isna(by.loc["never-1", "last_seen"])


def test_overview_of_nothing_is_an_empty_frame() -> None:
    ov = fleet_overview(pd.DataFrame(columns=["ts", "host", "metric", "value", "labels"]))
    assert ov.empty and "status" in ov


def test_spread_gives_median_and_worst_host_per_bucket(fleet: pd.DataFrame) -> None:
    sp = fleet_spread(fleet[fleet["host"].isin(["web-1", "web-2", "web-3"])], CPU, every="5min")
    assert len(sp) >= 2 and (sp["hosts"] == 3).all()
    assert (sp["worst_host"] == "web-2").all() and (sp["worst"] > 90).all()
    assert ((sp["median"] > 25) & (sp["median"] < 35)).all()
    # lower is worse for the hit rate: the worst host is the lowest one
    hit = fleet_spread(fleet[fleet["host"].isin(["web-1", "web-3"])], "cache.hit_rate", "5min")
    assert (hit["worst_host"] == "web-3").all()


def test_crossings_rank_the_host_heading_for_its_threshold_first() -> None:
    flat = [_host(f"flat-{i}", {CPU: 30.0}, seed=i, minutes=20) for i in range(30)]
    rising = _host("rising-1", {CPU: 40.0}, slope={CPU: 0.2}, minutes=20, seed=99)
    frame = pd.concat([*flat, rising], ignore_index=True).sort_values("ts", ignore_index=True)
    cr = fleet_crossings(frame, "1h", metrics=[CPU], n=5)
    assert len(cr) and cr["host"].iloc[0] == "rising-1"
    assert not (cr["host"].str.startswith("flat")).any()
    assert cr["eta_expected"].iloc[0] > pd.Timedelta(0)
    assert set(CORE_METRICS) >= {CPU}


def test_build_fleet_reads_a_store_and_fills_every_section(sqlite_url: str) -> None:
    from perfkit.dashboard import build_fleet
    from perfkit.store import Store

    now = pd.Timestamp.now(tz="UTC").floor("s")
    frame = pd.concat([_host("web-1", BASE, end=now, seed=1),
                       _host("web-2", {**BASE, CPU: 97.0}, end=now, seed=2)], ignore_index=True)
    with Store(sqlite_url) as store:
        store.write(frame)
        page = build_fleet(store, window="15min", horizon="1h", now=now)
    assert not page.errors, page.errors
    assert list(page.overview["host"]) == ["web-2", "web-1"]
    for metric in (CPU, P95):
        sp = page.spread[metric]
        assert len(sp) and (sp["hosts"] == 2).all()
    assert (page.spread[CPU]["worst_host"] == "web-2").all()
    assert {"load", "total"} <= set(page.timings)
