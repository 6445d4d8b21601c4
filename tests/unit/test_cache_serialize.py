"""Safe serialisation: exact type-preserving round trips, no pickle unless asked."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pandas as pd
import pytest

from perfkit.cache import Cache
from perfkit.cache._compress import Codec
from perfkit.cache._serialize import ForeignEntry

SCALARS = [
    "", "text", "ünïcödé ✓ 🚀", "x" * 5000, b"", b"\x00\xff" * 10, b"b" * 5000,
    0, 1, -7, 2**63, -(2**100), 10**5000, 0.0, -0.0, 1.5, 1e300, math.inf, -math.inf,
    True, False, None,
]
CONTAINERS = [
    [], {}, [1, "a", None, 2.5, True], {"a": {"b": [1, {"c": None}]}, "d": []},
    {"markets": [{"id": i, "price": i / 7, "ts": "2024-01-01T00:00:00Z"} for i in range(100)]},
    (1, 2), (), ((1, "a"), [2, (3,)]), {1: "a", (2, 3): b"b", None: 1.5}, {"d": 1},
    {"d": [[1, 2]]}, [{"t": [1]}], {1, 2, 3}, frozenset({"a"}), {"k": {1, 2}},
    {"arr": np.arange(3), "b": b"x"},
]


def _same(a, b) -> None:
    assert type(a) is type(b), (a, b)
    if isinstance(a, float) and math.isnan(a):
        assert math.isnan(b)
    elif isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            _same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _same(x, y)
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)
    else:
        assert a == b


@pytest.mark.parametrize("value", SCALARS + CONTAINERS, ids=lambda v: type(v).__name__)
@pytest.mark.parametrize("threshold", [0, 1024, 10**9])
def test_round_trip_exact(value, threshold) -> None:
    codec = Codec(3, threshold, allow_pickle=False)
    entry, _ = codec.encode(value)
    assert 0xA0 <= entry[0] <= 0xBF
    _same(value, codec.decode(entry))


def test_nan_and_str_vs_bytes() -> None:
    c = Cache()
    c.set("n", math.nan)
    assert math.isnan(c.get("n"))
    c.set("s", "abc")
    c.set("b", b"abc")
    assert c.get("s") == "abc" and type(c.get("s")) is str
    assert c.get("b") == b"abc" and type(c.get("b")) is bytes
    c.set("l", [math.nan, {"x": -math.inf}])
    got = c.get("l")
    assert math.isnan(got[0]) and got[1] == {"x": -math.inf}


@pytest.mark.parametrize("arr", [
    np.arange(12, dtype=np.int16).reshape(3, 4),
    np.linspace(0, 1, 7, dtype=np.float32),
    np.array([[1 + 2j]], dtype=np.complex128),
    np.array([True, False]),
    np.array(["a", "bcd"]),
    np.array(["2024-01-01", "NaT"], dtype="datetime64[ms]"),
    np.zeros((0, 3)),
    np.asfortranarray(np.arange(6).reshape(2, 3)),
    np.arange(10_000, dtype=np.float64),
    np.zeros(3, dtype=[("a", "i4"), ("b", "f8")]),
], ids=lambda a: str(a.dtype))
def test_numpy_round_trip(arr) -> None:
    c = Cache()
    c.set("a", arr)
    got = c.get("a")
    assert type(got) is np.ndarray and got.dtype == arr.dtype and got.shape == arr.shape
    np.testing.assert_array_equal(got, arr)


def test_numpy_scalars_and_object_arrays() -> None:
    c = Cache()
    for s in (np.float32(1.5), np.int64(-3), np.bool_(True), np.datetime64("2024-01-01")):
        c.set("s", s)
        got = c.get("s")
        assert type(got) is type(s) and got == s
    with pytest.raises(TypeError, match=r"object"):
        c.set("o", np.array([{"a": 1}], dtype=object))


def _frames() -> list[pd.DataFrame]:
    idx = pd.date_range("2024-01-01", periods=4, freq="15min", tz="UTC", name="ts")
    return [
        pd.DataFrame({
            "i64": np.arange(4), "f32": np.arange(4, dtype=np.float32) / 3,
            "f": [1.0, math.nan, 3.0, 4.0], "b": [True, False, True, False],
            "s": pd.Series(["a", None, "c", "d"], dtype="str"),
            "obj": pd.Series(["a", 1, None, 2.5], dtype=object),
            "cat": pd.Categorical(["x", "y", "x", None], categories=["y", "x"], ordered=True),
            "I": pd.array([1, None, 3, 4], dtype="Int64"),
            "bool": pd.array([True, None, False, True], dtype="boolean"),
            "ts": pd.to_datetime(["2024-01-01", None, "2024-03-01", "2024-04-01"], utc=True),
            "tz": pd.date_range("2024-01-01", periods=4, tz="Europe/Paris"),
            "naive": pd.date_range("2024-01-01", periods=4, freq="D"),
            "td": pd.to_timedelta([1, 2, 3, 4], unit="s"),
        }, index=idx),
        pd.DataFrame({"value": [1.0, 2.0]},
                     index=pd.MultiIndex.from_tuples([("a", 1), ("b", 2)], names=["k", "n"])),
        pd.DataFrame([[1, 2], [3, 4]], columns=pd.MultiIndex.from_tuples([("a", "x"), ("a", "y")]),
                     index=pd.Index([10, 20], dtype="int32", name=("tuple", "name"))),
        pd.DataFrame({1: [1], 2.5: ["x"]}),  # non-str column labels
        pd.DataFrame([[1, 2]], columns=["dup", "dup"]),
        pd.DataFrame(index=pd.RangeIndex(5, 15, 2)),
        pd.DataFrame({"a": pd.Series([], dtype="float64")}),
        pd.DataFrame({"s": pd.array(["p", None], dtype=pd.StringDtype("python"))}),
        pd.DataFrame({"s": pd.array(["p", None], dtype=pd.StringDtype("python", na_value=np.nan))},
                     index=pd.Index(["r1", "r2"], dtype=object)),
    ]


@pytest.mark.parametrize("df", _frames(), ids=lambda d: f"frame{d.shape}")
def test_pandas_frame_round_trip(df) -> None:
    c = Cache(compress_threshold=64)
    c.set("df", df)
    got = c.get("df")
    pd.testing.assert_frame_equal(got, df, check_exact=True, check_dtype=True,
                                  check_index_type=True, check_column_type=True,
                                  check_categorical=True, check_freq=True, check_flags=True)
    assert got.index.names == df.index.names


def test_pandas_series_and_index_round_trip() -> None:
    c = Cache()
    s = pd.Series([1.5, 2.5], index=pd.Index(["a", "b"], name="k"), name="v")
    c.set("s", s)
    pd.testing.assert_series_equal(c.get("s"), s, check_exact=True)
    s2 = pd.Series(pd.Categorical(["a", "b"]), name=("multi", 1))
    c.set("s2", s2)
    pd.testing.assert_series_equal(c.get("s2"), s2, check_exact=True)
    idx = pd.date_range("2024", periods=3, freq="h", tz="UTC")
    c.set("i", idx)
    pd.testing.assert_index_equal(c.get("i"), idx, exact=True)
    assert c.get("i").freq == idx.freq


def test_samples_frame_contract_round_trip() -> None:
    """perfkit's own samples frame (ts UTC, host, metric, value, labels) survives."""
    df = pd.DataFrame({
        "ts": pd.date_range("2024-01-01", periods=3, freq="s",
                            tz="UTC").astype("datetime64[ns, UTC]"),
        "host": ["h1", "h1", "h2"], "metric": ["cache.hit_rate"] * 3,
        "value": [90.0, 91.5, 88.0], "labels": ["", "", "a=b"],
    })
    c = Cache()
    c.set("samples", df)
    pd.testing.assert_frame_equal(c.get("samples"), df, check_exact=True)


def test_unsupported_pandas_dtype_is_type_error() -> None:
    c = Cache()
    df = pd.DataFrame({"p": pd.period_range("2024-01", periods=2, freq="M")})
    with pytest.raises(TypeError, match=r"[Pp]eriod"):
        c.set("p", df)
    df2 = pd.DataFrame({"o": pd.Series([object()], dtype=object)})
    with pytest.raises(TypeError, match=r"object"):
        c.set("o", df2)


class Custom:
    def __init__(self, x):
        self.x = x

    def __eq__(self, other):
        return isinstance(other, Custom) and other.x == self.x


def test_unserialisable_names_the_type_and_pickle_is_opt_in() -> None:
    c = Cache()
    with pytest.raises(TypeError, match=r"Custom"):
        c.set("k", Custom(1))
    with pytest.raises(TypeError, match=r"Custom"):
        c.set("k", {"nested": [Custom(1)]})
    with pytest.raises(TypeError, match=r"complex"):
        c.set("k", 1j)
    p = Cache(allow_pickle=True)
    p.set("k", Custom(1))
    assert p.get("k") == Custom(1)
    p.set("k2", {"nested": [Custom(2)]})
    assert p.get("k2") == {"nested": [Custom(2)]}


def test_pickled_entry_is_never_unpickled_without_opt_in() -> None:
    writer = Codec(3, 1024, allow_pickle=True)
    entry, _ = writer.encode(Custom(1))
    reader = Codec(3, 1024, allow_pickle=False)
    with pytest.raises(ForeignEntry, match=r"pickle"):
        reader.decode(entry)
    # a raw pickle (what another program might write) is foreign too
    with pytest.raises(ForeignEntry):
        reader.decode(pickle.dumps({"a": 1}))


def test_json_without_orjson(monkeypatch) -> None:
    """orjson is an optional speed-up: entries written with it are read without it, and
    the stdlib path alone round-trips the same values."""
    from perfkit.cache import _serialize as ser

    codec = Codec(3, 1024, allow_pickle=False)
    value = {"markets": [{"id": i, "p": i / 3, "ok": i % 2 == 0, "n": None} for i in range(50)]}
    written, _ = codec.encode(value)
    monkeypatch.setattr(ser, "_orjson", None)
    assert codec.decode(written) == value
    for v in (value, [2**70, 1.5], [math.inf], {"s": "\ud800"}):
        entry, _ = codec.encode(v)
        assert entry[0] & 0x0F == ser.JSON
        got = codec.decode(entry)
        assert repr(got) == repr(v)


def test_big_ints_in_containers_stay_ints() -> None:
    c = Cache()
    v = {"big": 2**64, "neg": -(2**63) - 1, "list": [2**100, 1]}
    c.set("k", v)
    got = c.get("k")
    assert got == v and all(type(x) is int for x in (got["big"], got["neg"], *got["list"]))


def test_cyclic_container_is_type_error() -> None:
    c = Cache()
    a: list = []
    a.append(a)
    with pytest.raises(TypeError, match=r"nested too deeply"):
        c.set("k", a)
