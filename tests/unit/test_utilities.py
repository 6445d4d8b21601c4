"""The shared small utilities: the duration parser, the formatters and the JSON sanitiser."""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from perfkit._format import format_duration, format_value
from perfkit._json import jsonable, records
from perfkit._time import ACCEPTED_DURATIONS, as_timedelta, duration_ns, duration_seconds
from perfkit.errors import InvalidInputError

S = 10**9


@pytest.mark.parametrize("value, ns", [
    ("90s", 90 * S), ("15min", 900 * S), ("7d", 7 * 86400 * S), ("1h30min", 5400 * S),
    ("1h 30min", 5400 * S), ("2 days", 2 * 86400 * S), ("1 day", 86400 * S),
    ("15m", 900 * S), ("1H", 3600 * S), ("2ms", 2_000_000), ("150us", 150_000),
    ("150µs", 150_000), ("800ns", 800), ("1.5s", 1_500_000_000), ("90", 90 * S),
    ("2w", 14 * 86400 * S), ("00:15:00", 900 * S), ("1 days 02:00:00", 26 * 3600 * S),
    (str(pd.Timedelta("1h30min")), 5400 * S),
    (pd.Timedelta("1ns"), 1), (pd.Timedelta(hours=2), 7200 * S),
    (dt.timedelta(seconds=2, microseconds=5), 2 * S + 5000), (np.timedelta64(5, "s"), 5 * S),
    (3600, 3600 * S), (0.25, 250_000_000), (np.float64(2.0), 2 * S), (np.int64(3), 3 * S),
])
def test_every_accepted_form_parses_to_nanoseconds(value: object, ns: int) -> None:
    assert duration_ns(value) == ns
    assert duration_seconds(value) == pytest.approx(ns / 1e9)
    assert as_timedelta(value) == pd.Timedelta(ns, unit="ns")


@pytest.mark.parametrize("value", [
    "fortnight", "-1ms", "-5min", "0s", "", "   ", "ms", "1h 30", "2 parsecs", "5 months",
    "1e999s", True, False, None, math.nan, math.inf, -1, 0, 1e30, pd.NaT,
    np.timedelta64("NaT"), pd.Timedelta(-1, unit="s"), [1], {"s": 1},
])
def test_anything_else_raises_one_message_listing_the_accepted_forms(value: object) -> None:
    with pytest.raises(InvalidInputError) as err:
        duration_ns(value, "window")
    msg = str(err.value)
    assert msg.startswith(f"window={value!r} is not a duration; use a positive duration")
    assert ACCEPTED_DURATIONS in msg
    assert isinstance(err.value, ValueError)


def test_zero_is_accepted_only_when_asked_for() -> None:
    assert duration_ns(0, "for_", allow_zero=True) == 0
    assert as_timedelta("0s", "for_", allow_zero=True) == pd.Timedelta(0)
    with pytest.raises(ValueError, match="for_='-1s' is not a duration; use a non-negative"):
        duration_ns("-1s", "for_", allow_zero=True)


def test_callers_all_accept_the_same_forms() -> None:
    from perfkit.analysis import AlertRule
    from perfkit.dashboard import parse_window
    from perfkit.prometheus import parse_max_age
    from perfkit.pytest_plugin._options import PerfUsageError, parse_duration

    week = pd.Timedelta(days=7)
    assert parse_window("7d") == parse_max_age("7d") == week
    assert AlertRule("system.cpu_usage", for_="1h30min").for_ == "1h30min"
    assert parse_duration("7d") == week.total_seconds()
    with pytest.raises(PerfUsageError, match="max_time='soon' is not a duration"):
        parse_duration("soon", "max_time")
    with pytest.raises(PerfUsageError, match="budget p95: '2 parsecs' is not a duration; use"):
        parse_duration("2 parsecs", "budget p95")
    with pytest.raises(InvalidInputError, match="max_age='soon' is not a duration"):
        parse_max_age("soon")


@pytest.mark.parametrize("value, unit, text", [
    (71.46, "%", "71.46 %"), (70.0, "%", "70 %"), (0.000123, "s", "0.000123 s"),
    (1_250_000, "B", "1,250,000 B"), (12345.6, "", "12,346"), (-3.14159, "ms", "-3.142 ms"),
    (np.float64(2.5), "x", "2.5 x"), (np.int64(7), "", "7"), (1e20, "B", "1e+20 B"),
])
def test_format_value(value: float, unit: str, text: str) -> None:
    assert format_value(value, unit) == text


@pytest.mark.parametrize("value", [None, math.nan, math.inf, -math.inf, "12", True])
def test_format_value_missing(value: object) -> None:
    assert format_value(value, "%") == "n/a"
    assert format_value(value, missing="—") == "—"


@pytest.mark.parametrize("value, text", [
    (0, "0 s"), (1.5, "1.5 s"), (0.45, "450 ms"), (2e-3, "2 ms"), (150e-6, "150 µs"),
    (820e-9, "820 ns"), (30, "30 s"), (59.96, "1 min"), (90, "1 min 30 s"), (125, "2 min 5 s"),
    (2700, "45 min"), (3 * 3600 + 600, "3 h 10 min"), (2 * 86400 + 3 * 3600 + 60, "2 d 3 h"),
    (pd.Timedelta("1h30min"), "1 h 30 min"), (dt.timedelta(minutes=5), "5 min"),
    (-0.002, "-2 ms"), (None, "-"), (math.nan, "-"), (pd.NaT, "-"),
])
def test_format_duration(value: object, text: str) -> None:
    assert format_duration(value) == text


def test_jsonable_makes_every_perfkit_value_json_safe() -> None:
    @dataclass
    class Point:
        at: pd.Timestamp
        value: float

    t = pd.Timestamp("2026-11-27T10:00", tz="UTC")
    given = {
        "t": t, "naive": dt.datetime(2026, 1, 1), "day": dt.date(2026, 1, 2),
        "nat": pd.NaT, "na": pd.NA, "nan": math.nan, "inf": np.float64("inf"),
        "i": np.int64(3), "b": np.bool_(True), "f": np.float32(0.5),
        "td": pd.Timedelta("90s"), "py_td": dt.timedelta(minutes=1),
        "np_td": np.timedelta64(2, "s"), "np_dt": np.datetime64("2026-01-01T00:00"),
        "arr": np.array([1.0, np.nan]), "set": {1}, "tuple": (1, "a"),
        "frame": pd.DataFrame({"a": [1, 2], "b": [np.nan, 3.0]}),
        "series": pd.Series({"x": 1.5}), 7: "int key", "point": Point(t, math.nan),
        "other": object,
    }
    out = jsonable(given)
    json.dumps(out, allow_nan=False)  # raises on anything JSON cannot hold
    assert out["t"] == "2026-11-27T10:00:00+00:00"
    assert out["naive"] == "2026-01-01T00:00:00" and out["day"] == "2026-01-02"
    assert out["nat"] is out["na"] is out["nan"] is out["inf"] is None
    assert out["i"] == 3 and out["b"] is True and out["f"] == 0.5
    assert out["td"] == 90.0 and out["py_td"] == 60.0 and out["np_td"] == 2.0
    assert out["np_dt"] == "2026-01-01T00:00:00"
    assert out["arr"] == [1.0, None] and out["set"] == [1] and out["tuple"] == [1, "a"]
    assert out["frame"] == [{"a": 1, "b": None}, {"a": 2, "b": 3.0}]
    assert out["series"] == {"x": 1.5} and out["7"] == "int key"
    assert out["point"] == {"at": "2026-11-27T10:00:00+00:00", "value": None}
    assert out["other"] == str(object)
    assert records(given["frame"]) == out["frame"]


def test_jsonable_strict_refuses_what_would_not_read_back() -> None:
    assert jsonable({"a": [np.int64(1)]}, strict=True) == {"a": [1]}
    with pytest.raises(TypeError, match="object is not JSON serialisable"):
        jsonable({"a": object()}, strict=True)
