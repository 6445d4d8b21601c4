"""The catalogue: the seed's fourteen, direction-aware thresholds, loud typos."""

from __future__ import annotations

import math

import pandas as pd
import pytest

import perfkit
from perfkit.catalog import CORE_METRICS, find_metric, get_metric, register_metric, set_thresholds
from perfkit.frames import as_samples, empty_samples, to_wide


def test_core_fourteen_are_catalogued_with_seed_thresholds():
    assert len(CORE_METRICS) == 14
    assert all(find_metric(n) is not None for n in CORE_METRICS)
    cpu = get_metric("system.cpu_usage")
    assert (cpu.warning, cpu.critical, cpu.direction) == (70, 90, "higher")
    hit = get_metric("cache.hit_rate")
    assert (hit.warning, hit.critical, hit.direction) == (80, 60, "lower")
    assert get_metric("application.api_response_time.p95").unit == "ms"


def test_direction_decides_severity():
    hit = get_metric("cache.hit_rate")
    assert hit.severity(95) is None
    assert hit.severity(75) == "warning"
    assert hit.severity(50) == "critical"
    cpu = get_metric("system.cpu_usage")
    assert cpu.severity(50) is None and cpu.severity(91) == "critical"


def test_unknown_name_lists_close_matches():
    with pytest.raises(ValueError, match=r"system.cpu_usage"):
        get_metric("system.cpu_usge")


def test_register_and_override(monkeypatch):
    m = register_metric("orders.placed", unit="count", direction="lower", thresholds=(10, 2))
    assert get_metric("orders.placed") is m and m.group == "orders"
    with pytest.raises(ValueError, match=r"finite"):
        register_metric("orders.bad", thresholds=(math.nan, 1))
    with pytest.raises(ValueError, match=r"group.name"):
        register_metric("Orders Placed")
    old = get_metric("system.cpu_usage")
    try:
        assert set_thresholds("system.cpu_usage", 60, 85).warning == 60
    finally:
        set_thresholds("system.cpu_usage", old.warning, old.critical)


def test_samples_contract_dtypes_and_bad_values():
    frame = pd.DataFrame({"ts": ["2026-01-01 00:00:00", "2026-01-01 00:00:05"],
                          "metric": ["a.b", "a.b"], "value": [1, 2]})
    out = as_samples(frame)
    assert list(out.columns) == ["ts", "host", "metric", "value", "labels"]
    assert out.dtypes.to_dict() == empty_samples().dtypes.to_dict()
    assert str(out["ts"].dt.tz) == "UTC" and out["labels"].tolist() == ["", ""]
    bad = frame.assign(value=[1.0, math.inf])
    with pytest.raises(ValueError, match=r"a.b"):
        as_samples(bad)
    assert len(as_samples(bad, drop_invalid=True)) == 1


def test_to_wide_pivots_unlabelled_rows():
    ts = pd.Timestamp("2026-01-01", tz="UTC")
    frame = as_samples(pd.DataFrame({
        "ts": [ts, ts, ts], "metric": ["x.a", "x.b", "x.a"], "value": [1.0, 2.0, 9.0],
        "labels": ["", "", "endpoint=e"]}))
    wide = perfkit.to_wide(frame)
    assert wide.loc[ts, "x.a"] == 1.0 and wide.loc[ts, "x.b"] == 2.0
    assert to_wide(frame, labels=True).loc[ts, "x.a{endpoint=e}"] == 9.0


def test_missing_metric_or_host_is_rejected_not_stringified():
    frame = pd.DataFrame({"ts": [pd.Timestamp("2026-01-01", tz="UTC")] * 2,
                          "host": ["a", None], "metric": ["x.y", "x.y"], "value": [1.0, 2.0]})
    with pytest.raises(ValueError, match=r"missing ts, host or metric"):
        as_samples(frame)
    assert as_samples(frame, drop_invalid=True)["host"].tolist() == ["a"]
