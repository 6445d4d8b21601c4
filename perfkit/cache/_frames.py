"""A safe, self-describing encoding of pandas DataFrame / Series / Index.

Layout: ``b"PKF1" + u32 little-endian header length + JSON header + blobs``.
The JSON header describes the object (kind, names, index, one spec per
column); numeric, boolean, datetime64 and timedelta64 data are ``.npy`` blobs
(``allow_pickle=False``) referenced by offset. Supported column / index
dtypes, each restored exactly:

* any numpy dtype without Python objects (``.npy``);
* ``object`` columns holding str, int, float (NaN kept), bool or None (JSON);
* tz-aware datetimes (int64 ``.npy`` + unit + time zone);
* categoricals (codes ``.npy`` + categories as an index + ordered);
* the other extension dtypes whose values are JSON scalars: ``str``/``string``
  (storage and NA kind kept), ``Int64``..., ``Float64``, ``boolean``.

Index kinds: RangeIndex (start/stop/step), MultiIndex (one array per level),
any other Index (its array, name and ``freq``). Anything else raises a
TypeError naming the dtype. No pickle, no pyarrow needed.
"""

from __future__ import annotations

import io
import json
import struct
from typing import Any

import numpy as np

MAGIC = b"PKF1"
_FIX = "; convert it first (for example .astype(str)) or pass allow_pickle=True to Cache()"
_JSON_SCALARS = (str, int, float, bool, type(None))


def _npy(arr: np.ndarray, blobs: list[bytes]) -> int:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.ascontiguousarray(arr), allow_pickle=False)
    blobs.append(buf.getvalue())
    return len(blobs) - 1


def _enc_name(name: Any) -> Any:
    if isinstance(name, tuple):
        return {"tuple": [_enc_name(n) for n in name]}
    if type(name) in _JSON_SCALARS:
        return name
    if isinstance(name, np.generic):
        return name.item()
    raise TypeError(f"cannot cache a pandas label of type {type(name).__name__}: labels must "
                    "be str, int, float, bool, None or tuples of them; rename it or pass "
                    "allow_pickle=True to Cache()")


def _dec_name(name: Any) -> Any:
    if isinstance(name, dict):
        return tuple(_dec_name(n) for n in name["tuple"])
    return name


def _json_values(values: list[Any], dtype: Any) -> list[Any]:
    for v in values:
        if type(v) not in _JSON_SCALARS:
            raise TypeError(
                f"cannot cache a pandas column of dtype {dtype} holding "
                f"{type(v).__module__}.{type(v).__qualname__} values{_FIX}")
    return values


def _enc_array(values: Any, dtype: Any, blobs: list[bytes]) -> dict[str, Any]:
    import pandas as pd

    if isinstance(dtype, np.dtype):
        arr = np.asarray(values)
        if not dtype.hasobject:
            return {"k": "npy", "b": _npy(arr, blobs)}
        return {"k": "obj", "v": _json_values(arr.tolist(), dtype)}
    if isinstance(dtype, pd.DatetimeTZDtype):
        idx = pd.DatetimeIndex(values)
        return {"k": "dttz", "unit": dtype.unit, "tz": str(dtype.tz),
                "b": _npy(idx.asi8, blobs)}
    if isinstance(dtype, pd.CategoricalDtype):
        cat = pd.Categorical(values, dtype=dtype)
        return {"k": "cat", "codes": _npy(np.asarray(cat.codes), blobs),
                "cats": _enc_index(dtype.categories, blobs), "ordered": bool(dtype.ordered)}
    ext = pd.array(values, dtype=dtype)
    na = pd.isna(ext)
    vals = [None if m else v for v, m in zip(ext.tolist(), np.asarray(na).tolist())]
    spec: dict[str, Any] = {"k": "ext", "dtype": str(dtype), "v": _json_values(vals, dtype)}
    if isinstance(dtype, pd.StringDtype):
        spec["storage"] = dtype.storage
        spec["na"] = "nan" if dtype.na_value is not pd.NA else "NA"
    return spec


def _dec_array(spec: dict[str, Any], blobs: list[memoryview]) -> Any:
    import pandas as pd

    k = spec["k"]
    if k == "npy":
        return _read_npy(blobs[spec["b"]])
    if k == "obj":
        arr = np.empty(len(spec["v"]), dtype=object)
        arr[:] = spec["v"]
        return arr
    if k == "dttz":
        i8 = _read_npy(blobs[spec["b"]])
        naive = pd.DatetimeIndex(i8.view(f"M8[{spec['unit']}]"))
        return naive.tz_localize("UTC").tz_convert(spec["tz"]).array
    if k == "cat":
        cats = _dec_index(spec["cats"], blobs)
        cat = pd.CategoricalDtype(cats, ordered=spec["ordered"])
        return pd.Categorical.from_codes(_read_npy(blobs[spec["codes"]]), dtype=cat)
    if k == "ext":
        dtype: Any
        if "storage" in spec:
            storage = spec["storage"]
            if storage == "pyarrow":
                try:
                    import pyarrow  # noqa: F401
                except ImportError:
                    storage = "python"
            dtype = pd.StringDtype(storage=storage,
                                   na_value=np.nan if spec["na"] == "nan" else pd.NA)
        else:
            dtype = pd.api.types.pandas_dtype(spec["dtype"])
        return pd.array(spec["v"], dtype=dtype)
    raise ValueError(f"unknown array kind {k!r}")


def _read_npy(blob: memoryview) -> np.ndarray:
    return np.lib.format.read_array(io.BytesIO(blob), allow_pickle=False)


def _enc_index(idx: Any, blobs: list[bytes]) -> dict[str, Any]:
    import pandas as pd

    if type(idx) is pd.RangeIndex:
        return {"k": "range", "start": idx.start, "stop": idx.stop, "step": idx.step,
                "name": _enc_name(idx.name)}
    if isinstance(idx, pd.MultiIndex):
        levels = [idx.get_level_values(i) for i in range(idx.nlevels)]
        return {"k": "multi", "levels": [_enc_array(lv, lv.dtype, blobs) for lv in levels],
                "names": [_enc_name(n) for n in idx.names]}
    spec = {"k": "index", "a": _enc_array(idx.array if not isinstance(idx.dtype, np.dtype)
                                          else idx.to_numpy(), idx.dtype, blobs),
            "name": _enc_name(idx.name)}
    freq = getattr(idx, "freqstr", None)
    if freq is not None:
        spec["freq"] = freq
    return spec


def _dec_index(spec: dict[str, Any], blobs: list[memoryview]) -> Any:
    import pandas as pd

    k = spec["k"]
    if k == "range":
        return pd.RangeIndex(spec["start"], spec["stop"], spec["step"],
                             name=_dec_name(spec["name"]))
    if k == "multi":
        arrays = [_dec_array(a, blobs) for a in spec["levels"]]
        return pd.MultiIndex.from_arrays(arrays, names=[_dec_name(n) for n in spec["names"]])
    arr = _dec_array(spec["a"], blobs)
    name = _dec_name(spec["name"])
    if "freq" in spec:
        if isinstance(arr, np.ndarray) and arr.dtype.kind == "m":
            return pd.TimedeltaIndex(arr, name=name, freq=spec["freq"])
        return pd.DatetimeIndex(arr, name=name, freq=spec["freq"])
    return pd.Index(arr, name=name, dtype=getattr(arr, "dtype", None), copy=False)


def dump(obj: Any) -> bytes:
    """Encode a DataFrame, Series or Index; TypeError for anything else."""
    import pandas as pd

    blobs: list[bytes] = []
    if isinstance(obj, pd.DataFrame):
        cols = []
        for i in range(obj.shape[1]):
            ser = obj.iloc[:, i]
            vals = ser.to_numpy() if isinstance(ser.dtype, np.dtype) else ser.array
            cols.append(_enc_array(vals, ser.dtype, blobs))
        head: dict[str, Any] = {"kind": "frame", "index": _enc_index(obj.index, blobs),
                                "columns": _enc_index(obj.columns, blobs), "data": cols}
    elif isinstance(obj, pd.Series):
        vals = obj.to_numpy() if isinstance(obj.dtype, np.dtype) else obj.array
        head = {"kind": "series", "index": _enc_index(obj.index, blobs),
                "name": _enc_name(obj.name), "data": _enc_array(vals, obj.dtype, blobs)}
    elif isinstance(obj, pd.Index):
        head = {"kind": "index", "index": _enc_index(obj, blobs)}
    else:
        t = type(obj)
        raise TypeError(f"cannot cache a value of type {t.__module__}.{t.__qualname__}: only "
                        "DataFrame, Series and Index; pass allow_pickle=True to Cache() for others")
    offsets = []
    pos = 0
    for b in blobs:
        offsets.append([pos, len(b)])
        pos += len(b)
    head["blobs"] = offsets
    try:
        hjson = json.dumps(head, separators=(",", ":"), allow_nan=True).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise TypeError(f"cannot cache this {type(obj).__name__}: {exc}{_FIX}") from exc
    return b"".join([MAGIC, struct.pack("<I", len(hjson)), hjson, *blobs])


def load(payload: bytes) -> Any:
    import pandas as pd

    mv = memoryview(payload)
    if bytes(mv[:4]) != MAGIC:
        raise ValueError("not a perfkit frame")
    (hlen,) = struct.unpack_from("<I", mv, 4)
    head = json.loads(bytes(mv[8:8 + hlen]))
    base = 8 + hlen
    blobs = [mv[base + off: base + off + n] for off, n in head["blobs"]]
    kind = head["kind"]
    if kind == "index":
        return _dec_index(head["index"], blobs)
    index = _dec_index(head["index"], blobs)
    if kind == "series":
        return pd.Series(_dec_array(head["data"], blobs), index=index,
                         name=_dec_name(head["name"]), copy=False)
    columns = _dec_index(head["columns"], blobs)
    arrays = [_dec_array(c, blobs) for c in head["data"]]
    df = pd.DataFrame(dict(enumerate(arrays)), index=index, copy=False)
    if not arrays:
        df = pd.DataFrame(index=index)
    df.columns = columns
    return df
