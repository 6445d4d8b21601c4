"""Safe, self-describing value encoding for the cache.

Every stored entry is ``header byte + payload``. The header byte is
``0xA0 | compressed << 4 | format`` so it always lies in 0xA0..0xBF: UTF-8
continuation bytes, which never start valid UTF-8 text (JSON, plain strings,
numbers written by ``INCR``...) and are neither a pickle (0x80) nor a raw
``.npy`` file (0x93). A value under our namespace whose first byte is outside
that range, whose format is unknown, or whose payload does not decode is
*foreign* and read as a counted miss (:class:`ForeignEntry`). One byte cannot
authenticate an entry; it makes the common foreign values detectable and lets
the compression threshold change without breaking stored entries.

Formats (low nibble):

====  ==========  =====================================================
 0    BYTES       raw bytes
 1    STR         UTF-8 text
 2    INT         ``int`` as ASCII decimal (any size)
 3    JSON        float, bool, None and JSON containers (dict with str
                  keys, list) holding only JSON values; NaN/inf kept
 4    NPY         ``numpy.ndarray`` in ``.npy`` format, ``allow_pickle=False``
 5    NPSCALAR    numpy scalar (0-d ``.npy``), returned as the numpy scalar
 6    PANDAS      DataFrame / Series / Index, see :mod:`._frames`
 7    PICKLE      only written and read when the cache has ``allow_pickle=True``
 8    TAGGED      containers that plain JSON would change: tuples, sets,
                  frozensets, dicts with non-str keys, bytes / numpy /
                  pandas values inside containers. JSON in which every
                  dict and every non-JSON value is a one-key object
                  (``{"d": [[k, v], ...]}``, ``{"t": [...]}``, ``{"b":
                  base64}``...), so the encoding is unambiguous
 9    JSON64      JSON whose integers fit in 64 bits and whose floats are
                  finite, written by orjson when it is installed; read
                  with orjson (or the stdlib), which is exact for it. (orjson
                  reads a larger integer as a float, so format 3 entries are
                  always read with the stdlib.)
====  ==========  =====================================================

Nothing is ever unpickled unless the reading cache opted in.
"""

from __future__ import annotations

import base64
import io
import json
import pickle
from typing import Any

BYTES, STR, INT, JSON, NPY, NPSCALAR, PANDAS, PICKLE, TAGGED, JSON64 = range(10)
FORMAT_NAMES = ("bytes", "str", "int", "json", "npy", "npscalar", "pandas", "pickle", "tagged",
                "json64")
HEADER_BASE = 0xA0
COMPRESSED = 0x10
MAX_FORMAT = JSON64

# Pre-built one-byte headers (index = format) for the hot path.
RAW_HEADERS = tuple(bytes([HEADER_BASE | f]) for f in range(16))
ZSTD_HEADERS = tuple(bytes([HEADER_BASE | COMPRESSED | f]) for f in range(16))

_json_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=True).encode
_json_loads = json.loads
try:  # optional speed-up (about 10x on large containers); the entries are plain JSON either way
    import orjson as _orjson
except ImportError:  # pragma: no cover - depends on the environment
    _orjson = None  # type: ignore[assignment]


class ForeignEntry(ValueError):
    """The stored bytes are not an entry this cache can (or may) read."""


_INF = float("inf")
_MAX_DEPTH = 200


def _not_json(t: type) -> TypeError:
    return TypeError(
        f"cannot cache a value of type {t.__module__}.{t.__qualname__} inside a container")


def _check_json(value: Any) -> bool:
    """Raise TypeError unless ``value`` round-trips exactly through JSON.

    Returns True when every float is finite (orjson, when installed, may then encode it:
    it writes NaN/inf as null). Iterative, with leaves checked inline: about 10x faster
    than a recursive walk on market lists.
    """
    finite = True
    stack = [(value, 0)]
    pop, push = stack.pop, stack.append
    while stack:
        v, depth = pop()
        if depth > _MAX_DEPTH:
            raise TypeError("value nested too deeply to cache (or it contains itself)")
        if type(v) is dict:
            for k in v:
                if type(k) is not str:
                    raise TypeError(f"dict key of type {type(k).__name__}")
            items = v.values()
        else:
            items = v
        depth += 1
        for x in items:
            tx = type(x)
            if tx is str or tx is int or tx is bool or x is None:
                continue
            if tx is float:
                if not -_INF < x < _INF:
                    finite = False
                continue
            if tx is dict or tx is list:
                push((x, depth))
                continue
            raise _not_json(tx)
    return finite


def _dumps_json(value: Any) -> tuple[int, bytes]:
    """(format, JSON bytes) for a dict/list; TypeError when it is not plain JSON."""
    if _check_json(value) and _orjson is not None:
        try:
            return JSON64, _orjson.dumps(value)
        except TypeError:  # an int beyond 64 bits, a lone surrogate...
            pass
    return JSON, _json_dumps(value).encode("utf-8", "surrogatepass")


def _loads_json(payload: bytes) -> Any:
    return _json_loads(payload.decode("utf-8", "surrogatepass"))


def _loads_json64(payload: bytes) -> Any:
    if _orjson is not None:
        return _orjson.loads(payload)
    return _json_loads(payload)


def serialize(value: Any, allow_pickle: bool = False) -> tuple[int, bytes]:
    """Return ``(format, payload)`` for ``value``; TypeError names an unsupported type."""
    t = type(value)
    if t is str:
        return STR, value.encode("utf-8", "surrogatepass")
    if t is bytes:
        return BYTES, value
    if t is int:
        try:
            return INT, str(value).encode("ascii")
        except ValueError:  # more digits than sys.get_int_max_str_digits()
            return INT, _big(value)
    if t is float or t is bool or value is None:
        return JSON, _json_dumps(value).encode("utf-8")
    if t is dict or t is list:
        try:
            return _dumps_json(value)
        except TypeError:
            return _tagged_or_pickle(value, allow_pickle)
    if t is tuple or t is set or t is frozenset:
        return _tagged_or_pickle(value, allow_pickle)
    if t is bytearray or t is memoryview:
        return BYTES, bytes(value)
    mod = t.__module__
    if mod == "numpy" or mod.startswith("numpy."):
        import numpy as np

        if isinstance(value, np.ndarray) and t is np.ndarray:
            return NPY, _npy_dump(value, allow_pickle)
        if isinstance(value, np.generic):
            return NPSCALAR, _npy_dump(np.asarray(value), allow_pickle)
    if mod.startswith("pandas"):
        from perfkit.cache import _frames

        try:
            return PANDAS, _frames.dump(value)
        except TypeError:
            if allow_pickle:
                return PICKLE, pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
            raise
    if allow_pickle:
        return PICKLE, pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    raise TypeError(
        f"cannot cache a value of type {mod}.{t.__qualname__}: supported are str, bytes, int, "
        "float, bool, None, JSON containers, numpy arrays and pandas DataFrame/Series/Index; "
        "pass allow_pickle=True to cache arbitrary objects (never on a shared Redis)")


def _tagged_or_pickle(value: Any, allow_pickle: bool) -> tuple[int, bytes]:
    try:
        return TAGGED, _json_dumps(_to_tagged(value, 0)).encode("utf-8", "surrogatepass")
    except TypeError:
        if allow_pickle:
            return PICKLE, pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        raise


def _to_tagged(v: Any, depth: int) -> Any:
    if depth > 200:
        raise TypeError("value nested too deeply to cache")
    t = type(v)
    if t is str or t is int or t is float or t is bool or v is None:
        return v
    d = depth + 1
    if t is list:
        return [_to_tagged(x, d) for x in v]
    if t is dict:
        return {"d": [[_to_tagged(k, d), _to_tagged(x, d)] for k, x in v.items()]}
    if t is tuple:
        return {"t": [_to_tagged(x, d) for x in v]}
    if t is set:
        return {"s": [_to_tagged(x, d) for x in v]}
    if t is frozenset:
        return {"f": [_to_tagged(x, d) for x in v]}
    if t is bytes or t is bytearray:
        return {"b": base64.b64encode(v).decode("ascii")}
    try:
        fmt, payload = serialize(v, False)
    except TypeError:
        raise TypeError(
            f"cannot cache a value of type {t.__module__}.{t.__qualname__} inside a container: "
            "supported are str, bytes, int, float, bool, None, list, tuple, dict, set, "
            "frozenset, numpy arrays and pandas objects; pass allow_pickle=True to cache "
            "arbitrary objects") from None
    return {"x": [fmt, base64.b64encode(payload).decode("ascii")]}


def _from_tagged(v: Any) -> Any:
    t = type(v)
    if t is list:
        return [_from_tagged(x) for x in v]
    if t is not dict:
        return v
    ((tag, body),) = v.items()
    if tag == "d":
        return {_from_tagged(k): _from_tagged(x) for k, x in body}
    if tag == "t":
        return tuple(_from_tagged(x) for x in body)
    if tag == "s":
        return {_from_tagged(x) for x in body}
    if tag == "f":
        return frozenset(_from_tagged(x) for x in body)
    if tag == "b":
        return base64.b64decode(body, validate=True)
    if tag == "x":
        fmt, payload = body
        if fmt not in (NPY, NPSCALAR, PANDAS, INT, JSON, STR, BYTES):
            raise ValueError(f"format {fmt} not allowed inside a container")
        return deserialize(fmt, base64.b64decode(payload, validate=True), False)
    raise ValueError(f"unknown tag {tag!r}")


def _big(value: int) -> bytes:
    # str(int) is limited to 4300 digits by default; hex has no such limit.
    return (b"x-" if value < 0 else b"x") + format(abs(value), "x").encode("ascii")


def _npy_dump(arr: Any, allow_pickle: bool) -> bytes:
    import numpy as np

    if arr.dtype.hasobject and not allow_pickle:
        raise TypeError(
            f"cannot cache a numpy array of dtype {arr.dtype} (it holds Python objects); "
            "pass allow_pickle=True to cache it")
    buf = io.BytesIO()
    np.lib.format.write_array(buf, arr, allow_pickle=allow_pickle)
    return buf.getvalue()


def deserialize(fmt: int, payload: bytes, allow_pickle: bool = False) -> Any:
    """Inverse of :func:`serialize`; ForeignEntry when the payload does not decode."""
    try:
        if fmt == STR:
            return payload.decode("utf-8", "surrogatepass")
        if fmt == BYTES:
            return bytes(payload)
        if fmt == INT:
            if payload[:1] == b"x":
                if payload[:2] == b"x-":
                    return -int(payload[2:].decode("ascii"), 16)
                return int(payload[1:].decode("ascii"), 16)
            return int(payload)
        if fmt == JSON64:
            return _loads_json64(payload)
        if fmt == JSON:
            return _loads_json(payload)
        if fmt in (NPY, NPSCALAR):
            import numpy as np

            arr = np.lib.format.read_array(io.BytesIO(payload), allow_pickle=allow_pickle)
            return arr[()] if fmt == NPSCALAR else arr
        if fmt == PANDAS:
            from perfkit.cache import _frames

            return _frames.load(payload)
        if fmt == TAGGED:
            return _from_tagged(_loads_json(payload))
        if fmt == PICKLE:
            if not allow_pickle:
                raise ForeignEntry("pickled entry and allow_pickle=False: refusing to unpickle")
            return pickle.loads(payload)
    except ForeignEntry:
        raise
    except Exception as exc:
        raise ForeignEntry(f"cannot decode {FORMAT_NAMES[fmt]} entry: {exc}") from exc
    raise ForeignEntry(f"unknown entry format {fmt}")

