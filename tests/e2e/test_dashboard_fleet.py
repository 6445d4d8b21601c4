"""The fleet section under Streamlit's AppTest, on a real PostgreSQL store with several hosts."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from perfkit.dashboard import SCRIPT, open_runtimes
from perfkit.store import Store

pytestmark = pytest.mark.postgres

LEVELS = {"system.cpu_usage": 30.0, "system.memory_usage": 50.0, "cache.hit_rate": 95.0,
          "application.error_rate": 0.1, "application.api_response_time.p95": 80.0}


def _seed(url: str) -> None:
    now = pd.Timestamp.now(tz="UTC")
    rng = np.random.default_rng(0)
    plan = {"web-1": ({}, now), "web-2": ({"system.cpu_usage": 97.0}, now),
            "old-1": ({}, now - pd.Timedelta("20min"))}
    parts = []
    for host, (override, end) in plan.items():
        ts = pd.date_range(end=end, periods=60, freq="5s")
        for m, v in {**LEVELS, **override}.items():
            parts.append(pd.DataFrame({"ts": ts, "host": host, "metric": m, "labels": "",
                                       "value": v + rng.normal(0, 0.3, len(ts))}))
    with Store(url) as store:
        store.write(pd.concat(parts, ignore_index=True))


@pytest.fixture
def fleet_url(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    _seed(pg_url)
    monkeypatch.setenv("PERFKIT_STORE_URL", pg_url)
    monkeypatch.setenv("PERFKIT_EMBEDDED", "0")
    st.cache_resource.clear()
    yield pg_url
    for rt in open_runtimes():
        rt.close()
    st.cache_resource.clear()


def test_a_store_with_several_hosts_opens_on_the_fleet(fleet_url: str) -> None:
    at = AppTest.from_file(str(SCRIPT), default_timeout=120)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox[0].value == "fleet overview"
    assert at.title[0].value == "perfkit · fleet"
    table = at.dataframe[0].value
    assert list(table["host"]) == ["web-2", "old-1", "web-1"]  # worst first, stale not healthy
    assert table["status"].tolist() == ["🔴 critical", "⚪ stale", "🟢 ok"]
    assert table.loc[0, "worst_metric"] == "system.cpu_usage"
    assert np.isnan(table.loc[1, "score"]) and table.loc[2, "score"] == 100.0
    assert len(at.get("plotly_chart")) == 2  # p95 latency and CPU across hosts
    # filter by status
    at.multiselect(key="fleet_status").set_value(["stale"]).run()
    assert list(at.dataframe[0].value["host"]) == ["old-1"]
    # a row chosen in the table opens that host's page on the next run
    at.session_state["fleet_open"] = "web-2"
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox[0].value == "web-2" and at.title[0].value == "perfkit · service health"
