"""``since`` / ``until`` arguments: a moment, or a duration meaning "that long before now"."""

from __future__ import annotations

import datetime as dt
import re
import time

import numpy as np
import pandas as pd

from perfkit._time import ACCEPTED_DURATIONS, duration_ns
from perfkit.errors import InvalidInputError

ACCEPTED_WHEN = ("a pandas Timestamp or datetime (naive means UTC), an ISO date/time string "
                 "such as '2026-11-27T10:00', or a positive duration meaning that long before "
                 f"now: {ACCEPTED_DURATIONS}")
_ISO = re.compile(r"^\s*\d{4}-\d{2}-\d{2}")


def now_ns() -> int:
    return time.time_ns()


def to_ns(when: object, field: str = "since") -> int | None:
    """``when`` as int64 nanoseconds since the epoch (UTC); None stays None."""
    if when is None:
        return None
    if isinstance(when, (bool, int, float, np.integer, np.floating)):
        # a bare number could be seconds ago or an epoch time: refuse to guess
        raise InvalidInputError(f"{field}={when!r} is ambiguous; use {ACCEPTED_WHEN}")
    if isinstance(when, str) and _ISO.match(when):
        try:
            return _stamp(pd.Timestamp(when.strip()))
        except (ValueError, TypeError):
            raise InvalidInputError(f"{field}={when!r} is not understood; use {ACCEPTED_WHEN}") \
                from None
    if isinstance(when, (str, dt.timedelta, np.timedelta64)):
        try:
            return now_ns() - duration_ns(when, field)
        except InvalidInputError:
            raise InvalidInputError(f"{field}={when!r} is not understood; use {ACCEPTED_WHEN}") \
                from None
    if isinstance(when, (dt.datetime, dt.date, np.datetime64, pd.Timestamp)):
        ts = pd.Timestamp(when)
        if pd.isna(ts):
            raise InvalidInputError(f"{field} is NaT; use {ACCEPTED_WHEN}")
        return _stamp(ts)
    raise InvalidInputError(f"{field} has type {type(when).__name__}; use {ACCEPTED_WHEN}")


def _stamp(ts: pd.Timestamp) -> int:
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return int(ts.as_unit("ns").value)
