"""One current state per metric, the page's words, and who may act: without Streamlit."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from perfkit.analysis import alerts, score
from perfkit.dashboard import Access, build_page, metric_overview
from perfkit.dashboard._access import access_from_env
from perfkit.dashboard._words import change_table, compare, evidence_table, verdict_sentence
from perfkit.store import Store


def _cpu(values, end=None, step="2s", metric="system.cpu_usage") -> pd.DataFrame:
    end = end if end is not None else pd.Timestamp("2026-01-01 01:00", tz="UTC")
    ts = pd.date_range(end=end, periods=len(values), freq=step)
    return pd.DataFrame({"ts": ts, "host": "h", "metric": metric, "labels": "",
                         "value": np.asarray(values, float)})


def test_score_alerts_and_tiles_read_the_same_latest_sample(sqlite_url: str) -> None:
    # five calm minutes, then the last minute at 99.5 %: a 5-minute mean would say "ok"
    frame = _cpu(np.r_[np.full(150, 30.0), np.full(30, 99.5)])
    end = frame["ts"].max()
    with Store(sqlite_url) as store:
        store.write(frame)
        page = build_page(store, window="15min", horizon="15min", now=end)
    ov = page.overview.set_index("metric").loc["system.cpu_usage"]
    assert ov["current"] == 99.5 and ov["status"] == "critical"
    assert ov["since"] == frame["ts"].iloc[150]  # when it entered the critical state
    b = page.score.breakdown.set_index("metric").loc["system.cpu_usage"]
    assert b["value"] == 99.5 and b["status"] == "critical"
    assert page.score.groups["system"] < 25
    firing = page.active_alerts
    assert set(firing.loc[firing.metric == "system.cpu_usage", "severity"]) == {"warning",
                                                                                "critical"}
    assert page.changed == (frame["ts"].iloc[150], "system.cpu_usage", "critical")
    assert "system.cpu_usage" not in set(page.crossings.get("metric", []))


def test_a_firing_critical_alert_never_scores_as_healthy() -> None:
    # hysteresis keeps the alert firing at 85 % although 85 is below the critical 90
    frame = _cpu([95.0] * 10 + [85.0] * 3)
    rules = {"system.cpu_usage": {"hysteresis": 10.0}}
    a = alerts(frame, rules)
    assert set(a.loc[a.state == "firing", "severity"]) == {"warning", "critical"}
    plain = score(frame, window="1s")
    assert plain.breakdown.set_index("metric").loc["system.cpu_usage", "status"] == "warning"
    held = score(frame, window="1s", alerts=a).breakdown.set_index("metric")
    assert held.loc["system.cpu_usage", "status"] == "critical"
    assert held.loc["system.cpu_usage", "points"] == 25.0
    # resolved alerts and per-label alerts do not hold a metric down
    other = a.assign(state="resolved")
    assert score(frame, window="1s", alerts=other).breakdown.set_index("metric").loc[
        "system.cpu_usage", "points"] == plain.breakdown.set_index("metric").loc[
        "system.cpu_usage", "points"]


def test_overview_status_follows_a_firing_alert_and_its_since() -> None:
    frame = _cpu([95.0] * 10 + [85.0] * 3)
    a = alerts(frame, {"system.cpu_usage": {"hysteresis": 10.0}})
    ov = metric_overview(frame, None, ["system.cpu_usage", "cache.hit_rate"], alerts=a)
    cpu, hit = ov.iloc[0], ov.iloc[1]
    assert cpu["status"] == "critical" and cpu["since"] == frame["ts"].iloc[0]
    assert hit["status"] == "missing" and pd.isna(hit["current"])


def test_words_agree_with_the_numbers() -> None:
    assert compare("cache.hit_rate", 80.0, 80.0, "warning") == "80 %, at its warning threshold"
    # rounds to the threshold's text: never "80 %, below 80 %"
    assert compare("cache.hit_rate", 79.99996, 80.0, "warning") == \
        "80 %, at its warning threshold"
    assert compare("cache.hit_rate", 74.0, 80.0, "warning") == \
        "74 %, below its warning threshold of 80 %"
    assert compare("system.cpu_usage", 97.25, 90.0, "critical") == \
        "97.25 %, above its critical threshold of 90 %"


def test_action_results_read_as_tables_and_sentences() -> None:
    t = change_table({"process.rss": 200.0, "gc.collected": 0, "note": "x"},
                     {"process.rss": 150.0, "gc.collected": 12})
    assert list(t.columns) == ["measure", "before", "after", "change"]
    assert t.set_index("measure").loc["process.rss"].tolist() == ["200 MB", "150 MB", "-25.0%"]
    assert "note" not in set(t["measure"])
    dry = change_table({"process.rss": 245.8}, {}, dry_run=True)
    assert dry.iloc[0].tolist() == ["process.rss", "245.8 MB", "unchanged (dry run)", "—"]
    ev = evidence_table({"metric": "cache.hit_rate", "value": 74.0, "threshold": 80.0,
                         "labels": "", "share": 0.51})
    assert ev.set_index("what")["value"].to_dict() == {
        "metric": "cache.hit_rate", "value": "74 %", "threshold": "80 %", "share": "51%"}
    row = {"action": "memory_optimization", "host": "h", "status": "done", "verdict": "improved",
           "dry_run": False, "duration_s": 0.5}
    assert verdict_sentence(row) == ("Running memory_optimization on h improved what it set "
                                     "out to change in 500 ms.")
    failed = {**row, "status": "failed", "error": "boom"}
    assert verdict_sentence(failed) == "Running memory_optimization on h failed: boom."
    dry = {**row, "dry_run": True}
    assert verdict_sentence(dry).startswith("A dry run of memory_optimization on h changed "
                                            "nothing")


def test_acting_beyond_localhost_needs_the_token() -> None:
    assert Access("127.0.0.1").can_act(None) and Access("localhost").can_act(None)
    assert Access("::1").can_act(None)
    open_ = Access("0.0.0.0")
    assert open_.needs_token and not open_.can_act(None) and not open_.can_act("anything")
    assert "no token is set" in open_.locked_reason()
    assert Access("").needs_token  # Streamlit's default: every interface
    guarded = Access("10.0.0.5", token="s3cret")
    assert not guarded.can_act(None) and not guarded.can_act("wrong")
    assert not guarded.can_act("s3cret" * 100)  # over the size limit
    assert guarded.can_act("s3cret")


def test_access_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for k in ("PERFKIT_DASHBOARD_HOST", "PERFKIT_DASHBOARD_TOKEN", "PERFKIT_DASHBOARD_ALLOW_URL"):
        monkeypatch.delenv(k, raising=False)
    a = access_from_env(None)
    assert a.bind == "" and a.needs_token and not a.url_box  # safe by default
    assert access_from_env("127.0.0.1").local
    monkeypatch.setenv("PERFKIT_DASHBOARD_HOST", "0.0.0.0")
    monkeypatch.setenv("PERFKIT_DASHBOARD_TOKEN", "t")
    monkeypatch.setenv("PERFKIT_DASHBOARD_ALLOW_URL", "1")
    a = access_from_env("127.0.0.1")  # the CLI's variable wins over the server option
    assert a.bind == "0.0.0.0" and a.token == "t" and a.url_patterns == ("local",)


def test_the_url_box_opens_only_existing_perfkit_stores_the_operator_allows(
        tmp_path: Path, sqlite_url: str) -> None:
    Store(sqlite_url).close()  # a real perfkit store
    real = sqlite_url
    local = Access("127.0.0.1", url_patterns=("local",))
    assert local.check_url(real) == real
    missing = tmp_path / "nope" / "new.db"
    with pytest.raises(ValueError, match="does not exist"):
        local.check_url(f"sqlite:///{missing}")
    assert not missing.parent.exists()  # nothing created on the server
    foreign = tmp_path / "app.db"
    with sqlite3.connect(foreign) as con:
        con.execute("CREATE TABLE users (id INTEGER)")
    before = foreign.read_bytes()
    with pytest.raises(ValueError, match="not a perfkit store"):
        local.check_url(f"sqlite:///{foreign}")
    assert foreign.read_bytes() == before  # untouched: no WAL switch, no tables added
    with pytest.raises(ValueError, match="not on this machine"):
        local.check_url("postgresql://postgres@db.example.com/test")
    assert local.check_url("postgresql://postgres@127.0.0.1/test")
    with pytest.raises(ValueError, match="box is off"):
        Access("127.0.0.1").check_url(real)
    listed = Access("127.0.0.1", url_patterns=("postgresql://*@db.internal/*",))
    assert listed.check_url("postgresql://u:pw@db.internal/metrics")
    with pytest.raises(ValueError, match="not among the stores"):
        listed.check_url(real)
    with pytest.raises(ValueError, match="at most"):
        local.check_url("sqlite:///" + "a" * 3000)
