"""Each error family perfkit raises is caught both as itself and as the builtin callers used."""

from __future__ import annotations

import pandas as pd
import pytest

import perfkit.actions
from perfkit import errors
from perfkit.analysis import forecast
from perfkit.catalog import get_metric
from perfkit.dashboard import parse_window
from perfkit.store import InvalidSamplesError, Store


def _raised(fn, *args, **kwargs) -> BaseException:
    with pytest.raises(errors.PerfkitError) as err:
        fn(*args, **kwargs)
    return err.value


def _series() -> pd.Series:
    idx = pd.date_range("2026-01-01", periods=30, freq="1min", tz="UTC")
    return pd.Series(range(30), index=idx, name="system.cpu_usage", dtype=float)


@pytest.mark.parametrize("call", [
    lambda: get_metric("system.cpu_usag"),
    lambda: perfkit.actions.get("cache_optimisation"),
    lambda: forecast(_series(), "10min", method="crystal_ball"),
], ids=["metric", "action", "forecast method"])
def test_unknown_names_are_value_and_lookup_errors(call) -> None:
    exc = _raised(call)
    assert isinstance(exc, errors.UnknownNameError)
    assert isinstance(exc, errors.InvalidInputError)
    assert isinstance(exc, ValueError) and isinstance(exc, LookupError)
    with pytest.raises(LookupError):
        call()
    with pytest.raises(ValueError):
        call()


@pytest.mark.parametrize("call", [
    lambda: parse_window("fortnight"),
    lambda: perfkit.actions.validate("memory_optimization", {"generation": 7}),
    lambda: perfkit.actions.validate("memory_optimization", {"colour": "red"}),
], ids=["duration", "param range", "unknown param"])
def test_bad_values_are_invalid_input_and_value_errors(call) -> None:
    exc = _raised(call)
    assert isinstance(exc, errors.InvalidInputError) and isinstance(exc, ValueError)
    assert not isinstance(exc, LookupError)


def test_rejected_samples_are_invalid_input_and_keep_the_good_rows(tmp_path) -> None:
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    try:
        now = pd.Timestamp.now(tz="UTC")
        frame = pd.DataFrame({"ts": [now, now], "host": "h", "metric": "system.cpu_usage",
                              "value": [50.0, float("nan")], "labels": ""})
        with pytest.raises(errors.InvalidInputError) as err:
            store.write(frame)
        assert isinstance(err.value, InvalidSamplesError) and isinstance(err.value, ValueError)
        store.flush()
        assert store.samples(host="h")["value"].tolist() == [50.0]
    finally:
        store.close()


def test_a_source_that_is_down_is_a_connection_error() -> None:
    source = Store("prometheus://127.0.0.1:9?timeout=2s")  # nothing listens on port 9
    with pytest.raises(errors.StoreUnavailableError) as err:
        source.samples(since="5min")
    assert isinstance(err.value, ConnectionError)
