"""Alert state machine: for, hysteresis, keep_firing_for, direction, rules."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from perfkit.analysis import AlertRule, alert_transitions, alerts

T = pd.date_range("2026-01-01", periods=20, freq="1min", tz="UTC")


def _s(values, name="system.cpu_usage"):
    return pd.Series(np.asarray(values, float), T[:len(values)], name=name)


def _events(tr, severity):
    t = tr[tr["severity"] == severity]
    return [(int((ts - T[0]) / pd.Timedelta("1min")), st) for ts, st in zip(t["ts"], t["state"])]


def test_for_duration_pending_then_firing_at_the_exact_sample():
    s = _s([50, 95, 95, 95, 95, 50, 50])
    tr = alert_transitions(s, [AlertRule("system.cpu_usage", for_="2min")])
    assert _events(tr, "critical") == [(1, "pending"), (3, "firing"), (5, "resolved")]


def test_pending_cancelled_when_condition_clears_early():
    s = _s([50, 95, 95, 50, 95, 95, 95])
    tr = alert_transitions(s, [AlertRule("system.cpu_usage", for_="2min")])
    assert _events(tr, "critical") == [(1, "pending"), (3, "resolved"), (4, "pending"),
                                       (6, "firing")]


def test_hysteresis_resolves_only_below_threshold_minus_margin():
    #            0   1   2   3   4   5   6   7
    s = _s([50, 92, 89, 86, 91, 84, 90, 50])
    tr = alert_transitions(s, {"system.cpu_usage": {"hysteresis": 5, "warning": 200}})
    # fires at 1; 89 and 86 stay within the 5-point margin (>= 85); 84 resolves at 5; 90 refires
    assert _events(tr, "critical") == [(1, "firing"), (5, "resolved"), (6, "firing"),
                                       (7, "resolved")]
    assert _events(tr, "warning") == []


def test_keep_firing_for_holds_then_resolves():
    #            0   1   2   3   4   5   6   7   8   9
    s = _s([50, 95, 50, 50, 95, 50, 50, 50, 50, 50])
    rule = AlertRule("system.cpu_usage", warning=200, keep_firing_for="2min")
    tr = alert_transitions(s, [rule])
    # cleared at 2, would resolve at 4 but the condition is back at 4; cleared again at 5 → 7
    assert _events(tr, "critical") == [(1, "firing"), (7, "resolved")]


def test_all_three_combined():
    #            0   1   2   3   4   5   6   7   8   9  10  11
    s = _s([50, 95, 95, 95, 88, 86, 80, 80, 95, 80, 80, 80])
    rule = AlertRule("system.cpu_usage", warning=200, for_="1min", keep_firing_for="1min",
                     hysteresis=5)
    tr = alert_transitions(s, [rule])
    assert _events(tr, "critical") == [(1, "pending"), (2, "firing"), (7, "resolved"),
                                       (8, "pending"), (9, "resolved")]


def test_falling_hit_rate_fires_rising_does_not():
    falling = _s(np.linspace(95, 50, 10), "cache.hit_rate")
    rising = _s(np.linspace(50, 95, 10), "cache.hit_rate")
    a = alerts(falling).set_index("severity")
    assert a.loc["warning", "state"] == "firing" and a.loc["critical", "state"] == "firing"
    # rising from a bad level: fires at the start (50 <= 60), then resolves
    r = alerts(rising).set_index("severity")
    assert set(r["state"]) == {"resolved"}
    clean = _s(np.linspace(85, 99, 10), "cache.hit_rate")
    assert alerts(clean).empty


def test_low_available_memory_fires():
    s = _s([4, 3, 2, 0.9, 0.2], "system.memory_available")
    a = alerts(s).set_index("severity")
    assert a.loc["critical", "state"] == "firing" and a.loc["critical", "since"] == T[4]
    assert a.loc["warning", "since"] == T[3]


def test_current_state_and_now():
    s = _s([50, 95, 95, 50])
    assert alerts(s).set_index("severity").loc["critical", "state"] == "resolved"
    a = alerts(s, now=T[2]).set_index("severity")
    assert a.loc["critical", "state"] == "firing" and a.loc["critical", "value"] == 95
    assert "system.cpu_usage" in a.loc["critical", "message"]


def test_rules_validation_and_labels():
    with pytest.raises(ValueError, match=r"system.cpu_usage"):
        AlertRule("system.cpu_usag")
    with pytest.raises(ValueError, match=r"hysteresis"):
        AlertRule("system.cpu_usage", hysteresis=-1)
    frame = pd.DataFrame({
        "ts": list(T[:3]) * 2, "metric": "application.api_response_time",
        "labels": [""] * 3 + ["endpoint=GET /slow"] * 3,
        "value": [20, 20, 20, 300, 300, 300]})
    assert alerts(frame).empty                                  # only the aggregate by default
    rules = [AlertRule("application.api_response_time", warning=250, critical=1000,
                       labels={"endpoint": "GET /slow"})]
    a = alerts(frame, rules)
    assert list(a["labels"]) == ["endpoint=GET /slow"] and a["state"].iloc[0] == "firing"
    assert a["threshold"].iloc[0] == 250


def test_unknown_metrics_have_no_default_rules():
    s = _s([1, 1e9, 1e9], "orders.custom_thing")
    assert alerts(s).empty


def test_since_returns_only_new_transitions_with_history_state():
    s = _s([50, 95, 95, 95, 95, 50, 50])
    rule = [AlertRule("system.cpu_usage", for_="2min")]
    new = alert_transitions(s, rule, since=T[2])
    assert _events(new, "critical") == [(3, "firing"), (5, "resolved")]
    assert alert_transitions(s, rule, since=T[6]).empty
