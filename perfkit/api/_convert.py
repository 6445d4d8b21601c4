"""Frames and result objects to JSON-safe Python values.

JSON has no NaN or infinity and Starlette refuses to emit them, so every
non-finite float becomes ``None`` here rather than a 500 at serialisation.
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


def jsonable(value: Any) -> Any:
    """``value`` with frames, numpy scalars, timestamps and NaN made JSON-safe."""
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if value is pd.NaT or value is pd.NA:  # NaT passes isinstance(datetime): test it first
        return None
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, np.generic):
        return jsonable(value.item())
    if isinstance(value, pd.Timestamp):
        return None if pd.isna(value) else value.to_pydatetime(warn=False)
    if isinstance(value, pd.Timedelta):
        return None if pd.isna(value) else value.total_seconds()
    if isinstance(value, (dt.datetime, dt.date)):
        return value
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, pd.DataFrame):
        return records(value)
    if isinstance(value, pd.Series):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset, np.ndarray)):
        return [jsonable(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    return str(value)


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows of ``frame`` as JSON-safe dicts."""
    cols = [str(c) for c in frame.columns]
    return [{c: jsonable(v) for c, v in zip(cols, row)}
            for row in frame.itertuples(index=False, name=None)]
