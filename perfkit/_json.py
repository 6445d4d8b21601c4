"""The one JSON sanitiser: what perfkit returns from the API, summaries and audit rows.

JSON has no NaN or infinity (Starlette and PostgreSQL refuse them), so every non-finite
number becomes ``None`` here rather than an error at serialisation.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["jsonable", "records"]


def jsonable(value: Any, *, strict: bool = False) -> Any:
    """``value`` made of JSON types only, recursively.

    numpy scalars become Python numbers; NaN, infinity, NaT and NA become ``None``;
    timestamps and dates ISO 8601 strings; timedeltas seconds; frames lists of records;
    Series, mappings and dataclasses dicts; lists, tuples, sets and arrays lists. Anything
    else becomes ``str(value)``, or raises ``TypeError`` with ``strict=True`` (for data
    that must read back as it was written).

    Example: ``jsonable({"t": pd.Timestamp(0, tz="UTC"), "v": np.float64("nan")})`` is
    ``{"t": "1970-01-01T00:00:00+00:00", "v": None}``.
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if value is pd.NaT or value is pd.NA:  # NaT passes isinstance(datetime): test it first
        return None
    # numpy's timedelta64 is an integer type: convert it before the integers
    if isinstance(value, (dt.timedelta, np.timedelta64)):
        td = pd.Timedelta(value)
        return None if pd.isna(td) else td.total_seconds()
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        f = float(value)
        return f if math.isfinite(f) else None
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, np.datetime64):
        return None if np.isnat(value) else pd.Timestamp(value).isoformat()
    if isinstance(value, pd.DataFrame):
        return records(value, strict=strict)
    if isinstance(value, (pd.Series, Mapping)):
        return {str(k): jsonable(v, strict=strict) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset, np.ndarray)):
        return [jsonable(v, strict=strict) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name), strict=strict)
                for f in dataclasses.fields(value)}
    if strict:
        raise TypeError(f"{type(value).__name__} is not JSON serialisable")
    return str(value)


def records(frame: pd.DataFrame, *, strict: bool = False) -> list[dict[str, Any]]:
    """The rows of ``frame`` as JSON-safe dicts (column name -> :func:`jsonable` cell)."""
    cols = [str(c) for c in frame.columns]
    return [{c: jsonable(v, strict=strict) for c, v in zip(cols, row)}
            for row in frame.itertuples(index=False, name=None)]
