"""Health score: all-healthy is 100 and drops by the documented amounts."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from perfkit.analysis import score, summary
from perfkit.analysis._score import metric_points

TS = pd.date_range("2026-01-01", periods=6, freq="1min", tz="UTC")
HEALTHY = {"system.cpu_usage": 30, "system.memory_usage": 40, "system.disk_usage": 50,
           "system.memory_available": 8, "cache.hit_rate": 95, "database.query_time": 10,
           "application.api_response_time": 40, "application.error_rate": 0.1}


def _frame(values: dict) -> pd.DataFrame:
    return pd.concat([pd.DataFrame({"ts": TS, "metric": k, "value": float(v)})
                      for k, v in values.items()], ignore_index=True)


def test_all_healthy_scores_100():
    s = score(_frame(HEALTHY))
    assert s.overall == 100 and all(v == 100 for v in s.groups.values())
    assert s.missing == [] and s.worst.empty


def test_documented_drops():
    s = score(_frame(dict(HEALTHY, **{"system.cpu_usage": 70})))   # exactly at warning
    assert s.groups["system"] == pytest.approx(93.75)
    assert s.overall == pytest.approx(98.4375)
    assert s.worst["metric"].tolist() == ["system.cpu_usage"]
    assert s.worst["cost"].iloc[0] == pytest.approx(1.5625)
    s = score(_frame(dict(HEALTHY, **{"cache.hit_rate": 60})))     # exactly at critical (lower)
    assert s.groups["cache"] == pytest.approx(25) and s.overall == pytest.approx(81.25)
    s = score(_frame(dict(HEALTHY, **{"cache.hit_rate": 70})))     # half way warning→critical
    assert s.groups["cache"] == pytest.approx(50)
    s = score(_frame(dict(HEALTHY, **{"application.error_rate": 50})))   # far past critical
    assert s.groups["application"] == pytest.approx(50)


def test_direction_aware_points():
    assert metric_points(99, 80, 60, "lower") == (100.0, "ok")     # high hit rate is good
    assert metric_points(99, 80, 90, "higher") == (2.5, "critical")
    assert metric_points(100, 80, 90, "higher") == (0.0, "critical")
    assert metric_points(85, 80, 90, "higher") == (50.0, "warning")


def test_missing_metrics_are_not_perfect():
    vals = {k: v for k, v in HEALTHY.items() if k != "cache.hit_rate"}
    s = score(_frame(vals))
    assert s.groups["cache"] is None and "cache.hit_rate" in s.missing
    assert s.breakdown.set_index("metric").loc["cache.hit_rate", "status"] == "missing"
    assert s.overall == 100                                         # mean of the groups with data
    assert score(_frame({"orders.custom": 1})).overall is None
    assert "Health score" in s._repr_html_()
    assert set(s.to_frame()["group"]) == {"system", "cache", "database", "application", "overall"}


def test_score_uses_recent_window():
    f = _frame(HEALTHY)
    late = pd.DataFrame({"ts": [TS[-1] + pd.Timedelta("10min")], "metric": ["system.cpu_usage"],
                         "value": [95.0]})
    s = score(pd.concat([f, late], ignore_index=True))
    assert s.breakdown.set_index("metric").loc["system.cpu_usage", "status"] == "critical"


def test_summary_structure_and_json():
    rng = np.random.default_rng(0)
    ts = pd.date_range("2026-01-01", periods=120, freq="1min", tz="UTC")
    parts = [pd.DataFrame({"ts": ts, "metric": k, "value": v + rng.normal(0, 0.5, 120)})
             for k, v in HEALTHY.items()]
    parts.append(pd.DataFrame({"ts": ts, "metric": "system.disk_usage",
                               "labels": "mount=/data", "value": 99.0}))
    frame = pd.concat(parts, ignore_index=True).fillna({"labels": ""})
    actions = pd.DataFrame({"id": [1], "action": ["gc_collect"], "status": ["done"],
                            "ts": [ts[-1]], "gain": [np.nan]})
    d = summary(frame, monitoring_active=True, optimization_active=False, actions=actions)
    json.dumps(d, allow_nan=False)
    for key in ("timestamp", "monitoring_active", "optimization_active", "metrics", "predictions",
                "optimization_actions", "performance_score", "alerts", "score_breakdown"):
        assert key in d
    assert set(d["metrics"]["system.cpu_usage"]) == {"current", "average", "trend"}
    p = d["predictions"]["system.cpu_usage"]
    assert {"predicted_value", "lower", "upper", "confidence", "time_horizon", "trend"} <= set(p)
    assert p["lower"] <= p["predicted_value"] <= p["upper"] and p["confidence"] == 0.8
    assert d["performance_score"] == 100.0
    assert d["optimization_actions"][0]["action"] == "gc_collect"
    assert d["optimization_actions"][0]["gain"] is None
    assert isinstance(d["metrics"]["system.cpu_usage"]["current"], float)
    empty = summary(frame.iloc[:0], monitoring_active=False, optimization_active=False)
    json.dumps(empty, allow_nan=False)
    assert empty["performance_score"] is None


def test_a_firing_anomaly_alert_does_not_change_the_score():
    frame = _frame(HEALTHY)
    firing = pd.DataFrame({"metric": ["cache.hit_rate", "system.cpu_usage"], "labels": "",
                           "severity": ["anomaly", "warning"], "state": "firing"})
    s = score(frame, alerts=firing)
    assert s.breakdown.set_index("metric").loc["cache.hit_rate", "points"] == 100
    assert s.breakdown.set_index("metric").loc["system.cpu_usage", "points"] == 75
