"""Reading a samples frame's columns as codes: every layout gives pandas' own answer."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from perfkit.analysis._columns import factorize, frame_columns

N = 3 * 5_000


def _names(kind: str) -> np.ndarray:
    """Metric names in long runs, or interleaved, with missing names among them."""
    if kind == "runs":
        a = np.repeat(np.array(["cpu", "mem", "disk"], dtype=object), N // 3)
        a[N // 3 + 10: N // 3 + 20] = None       # a run of missing names inside a run
        a[-1] = np.nan
    else:
        a = np.array(["cpu", "mem", "disk"] * (N // 3), dtype=object)
        a[7] = None
    return a


@pytest.mark.parametrize("kind", ["runs", "interleaved"])
@pytest.mark.parametrize("dtype", [object, "string[pyarrow]", "category"])
def test_codes_and_kept_rows_equal_pandas_for_every_layout(kind: str, dtype: object) -> None:
    names = _names(kind)
    frame = pd.DataFrame({"ts": pd.date_range("2026-01-01", periods=N, freq="s", tz="UTC"),
                          "metric": pd.Series(names).astype(dtype), "value": 1.0,
                          "labels": ""})
    cols = frame_columns(frame)
    codes, uniques = pd.factorize(pd.Series(names), sort=False)
    assert list(cols.metric.uniques) == list(uniques)
    np.testing.assert_array_equal(cols.metric.codes(), codes)
    assert cols.ok is not None
    np.testing.assert_array_equal(cols.ok, pd.notna(names))
    # an all-empty labels column is one run of ''
    assert list(cols.labels.uniques) == [""] and cols.labels.starts is not None
    np.testing.assert_array_equal(cols.labels.codes(), np.zeros(N, dtype=np.intp))


def test_object_runs_are_found_without_hashing_every_row_and_match_pandas() -> None:
    col = pd.Series(np.repeat(np.array(["a", "b", "a"], dtype=object), 2_000))
    coded = factorize(col)
    assert coded.starts is not None and list(coded.starts) == [0, 2_000, 4_000]
    assert list(coded.uniques) == ["a", "b"] and list(coded.run_codes) == [0, 1, 0]
    np.testing.assert_array_equal(coded.codes(), pd.factorize(col)[0])
    assert not coded.missing()


def test_a_non_empty_label_in_an_object_column_is_kept() -> None:
    labels = np.full(N, "", dtype=object)
    labels[N // 2] = "db=main"
    frame = pd.DataFrame({"ts": pd.date_range("2026-01-01", periods=N, freq="s", tz="UTC"),
                          "metric": "cpu", "value": 1.0, "labels": labels})
    cols = frame_columns(frame)
    assert cols.ok is None
    assert sorted(cols.labels.uniques) == ["", "db=main"]
    assert cols.labels.uniques[cols.labels.codes()[N // 2]] == "db=main"


def test_runs_of_equal_strings_held_as_separate_objects_are_runs_too() -> None:
    # a store's rows: every value its own str object, equal within a run
    values = np.array(["".join(["sys", "tem"]) if i < 3_000 else "".join(["d", "b"])
                       for i in range(6_000)], dtype=object)
    assert values[0] is not values[1]
    coded = factorize(pd.Series(values))
    assert coded.starts is not None and list(coded.starts) == [0, 3_000]
    assert list(coded.uniques) == ["system", "db"]
