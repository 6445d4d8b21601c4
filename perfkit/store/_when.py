"""``since`` / ``until`` arguments: a moment, or a duration meaning "that long before now"."""

from __future__ import annotations

import datetime as dt
import re
import time

import numpy as np
import pandas as pd

ACCEPTED_WHEN = ("a pandas Timestamp or datetime (naive means UTC), an ISO date/time string "
                 "such as '2026-11-27T10:00', or a positive duration meaning that long before "
                 "now: a string such as '15min', '90s', '2h', '7d', '1 day', or a timedelta")
_ISO = re.compile(r"^\s*\d{4}-\d{2}-\d{2}")
# pandas 3 deprecates the lower-case day unit ("7d") that ACCEPTED_WHEN advertises
_DAY_UNIT = re.compile(r"(?<=\d)\s*d(?![a-z])", re.IGNORECASE)


def now_ns() -> int:
    return time.time_ns()


def to_ns(when: object, field: str = "since") -> int | None:
    """``when`` as int64 nanoseconds since the epoch (UTC); None stays None."""
    if when is None:
        return None
    if isinstance(when, (bool, int, float, np.integer, np.floating)):
        raise ValueError(f"{field}={when!r} is ambiguous; use {ACCEPTED_WHEN}")
    if isinstance(when, (dt.timedelta, np.timedelta64)):
        return _ago(pd.Timedelta(when), when, field)
    if isinstance(when, str):
        text = when.strip()
        if _ISO.match(text):
            try:
                return _stamp(pd.Timestamp(text))
            except (ValueError, TypeError):
                pass
        else:
            try:
                td = pd.Timedelta(_DAY_UNIT.sub("D", text))
            except (ValueError, TypeError):
                td = None
            if td is not None and not pd.isna(td):
                return _ago(td, when, field)
        raise ValueError(f"{field}={when!r} is not understood; use {ACCEPTED_WHEN}")
    if isinstance(when, (dt.datetime, dt.date, np.datetime64, pd.Timestamp)):
        ts = pd.Timestamp(when)
        if pd.isna(ts):
            raise ValueError(f"{field} is NaT; use {ACCEPTED_WHEN}")
        return _stamp(ts)
    raise ValueError(f"{field} has type {type(when).__name__}; use {ACCEPTED_WHEN}")


def _ago(td: pd.Timedelta, original: object, field: str) -> int:
    if td <= pd.Timedelta(0):
        raise ValueError(f"{field}={original!r}: a duration must be positive "
                         f"(it means that long before now); use {ACCEPTED_WHEN}")
    return now_ns() - int(td.value)


def _stamp(ts: pd.Timestamp) -> int:
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return int(ts.as_unit("ns").value)
