"""Stable cache keys for ``Cache.cached``: equal arguments give equal keys in every process.

Arguments are written in a canonical, type-tagged text form (``1``, ``1.0``,
``True`` and ``"1"`` differ; dict and set order does not matter; arrays and
pandas objects are hashed by content), then hashed with BLAKE2b.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any


def _canon(obj: Any, out: list[str], depth: int = 0) -> None:
    if depth > 100:
        raise TypeError("arguments nested too deeply to build a cache key (or they contain "
                        "themselves); pass key=callable(*args, **kwargs) -> str to Cache.cached()")
    t = type(obj)
    if t is str:
        out.append("s" + repr(obj))
    elif t is bool:
        out.append("b1" if obj else "b0")
    elif t is int:
        out.append(f"i{obj:x}")
    elif t is float:
        out.append("f" + obj.hex())
    elif obj is None:
        out.append("n")
    elif t is bytes:
        out.append("y" + obj.hex())
    elif t is tuple or t is list:
        out.append("t(" if t is tuple else "l(")
        for item in obj:
            _canon(item, out, depth + 1)
            out.append(",")
        out.append(")")
    elif t is dict:
        items = []
        for k, v in obj.items():
            kk: list[str] = []
            vv: list[str] = []
            _canon(k, kk, depth + 1)
            _canon(v, vv, depth + 1)
            items.append(("".join(kk), "".join(vv)))
        out.append("d(" + ",".join(f"{k}:{v}" for k, v in sorted(items)) + ")")
    elif t is set or t is frozenset:
        parts = []
        for item in obj:
            p: list[str] = []
            _canon(item, p, depth + 1)
            parts.append("".join(p))
        out.append("S(" + ",".join(sorted(parts)) + ")")
    else:
        mod = t.__module__
        if mod == "numpy" or mod.startswith("numpy."):
            import numpy as np

            if isinstance(obj, (np.ndarray, np.generic)):
                arr = np.ascontiguousarray(obj)
                if arr.dtype.hasobject:
                    raise TypeError("cannot build a cache key from a numpy object array; pass "
                                    "key=callable(*args, **kwargs) -> str to Cache.cached()")
                digest = hashlib.blake2b(arr.tobytes(), digest_size=16).hexdigest()
                out.append(f"a{t.__name__}{arr.dtype.str}{arr.shape}{digest}")
                return
        if mod.startswith("pandas"):
            from perfkit.cache import _frames

            digest = hashlib.blake2b(_frames.dump(obj), digest_size=16).hexdigest()
            out.append(f"p{t.__name__}{digest}")
            return
        import datetime
        import decimal
        import enum
        import uuid

        if isinstance(obj, enum.Enum):
            out.append(f"e{t.__module__}.{t.__qualname__}.{obj.name}")
        elif isinstance(obj, (datetime.date, datetime.time, datetime.timedelta,
                              decimal.Decimal, uuid.UUID)):
            out.append(f"o{t.__qualname__}:{obj!r}")
        else:
            raise TypeError(
                f"cannot build a cache key from an argument of type {mod}.{t.__qualname__}: "
                "arguments must be str, bytes, numbers, None, tuples, lists, dicts, sets, "
                "numpy arrays, pandas objects, dates, Decimals, UUIDs or enums; for anything "
                "else pass key=callable(*args, **kwargs) -> str to Cache.cached()")


def stable_key(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> str:
    """A short key that is equal for equal arguments, across processes and runs."""
    out: list[str] = []
    _canon(args, out)
    _canon(dict(kwargs), out)
    return hashlib.blake2b("".join(out).encode("utf-8", "surrogatepass"),
                           digest_size=16).hexdigest()
