"""The one duration parser: every ``window``, ``horizon``, ``for_``, ``max_age`` and budget.

Stdlib only at import (the pytest plugin reads its marker durations while pytest collects);
pandas is imported only by :func:`as_timedelta`, whose callers already hold frames.
"""

from __future__ import annotations

import datetime as dt
import math
import numbers
import re
from typing import TYPE_CHECKING

from perfkit.errors import InvalidInputError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ACCEPTED_DURATIONS", "Duration", "as_timedelta", "duration_ns", "duration_seconds"]

Duration = str | dt.timedelta | float
"""What every duration argument takes: ``"90s"``, ``"15min"``, ``"7d"``, ``"1h30min"``, a
``timedelta`` / ``pandas.Timedelta`` (or ``numpy.timedelta64``), or a number of seconds."""

ACCEPTED_DURATIONS = ("a string such as '90s', '15min', '2h', '7d', '1h30min', '250ms' or "
                      "'00:15:00', a timedelta or pandas Timedelta, or a number of seconds")

_NS = {"ns": 1, "us": 10**3, "ms": 10**6, "s": 10**9, "min": 60 * 10**9, "h": 3600 * 10**9,
       "d": 86400 * 10**9, "w": 7 * 86400 * 10**9}
_ALIASES = {
    "ns": "ns", "nanos": "ns", "nanosecond": "ns", "nanoseconds": "ns",
    "us": "us", "µs": "us", "μs": "us", "micros": "us", "microsecond": "us",
    "microseconds": "us",
    "ms": "ms", "millis": "ms", "millisecond": "ms", "milliseconds": "ms",
    "s": "s", "sec": "s", "secs": "s", "second": "s", "seconds": "s",
    # "m" is minutes, as pandas reads it ("15m"); months are never a duration here
    "m": "min", "min": "min", "mins": "min", "minute": "min", "minutes": "min",
    "h": "h", "hr": "h", "hrs": "h", "hour": "h", "hours": "h",
    "d": "d", "day": "d", "days": "d",
    "w": "w", "week": "w", "weeks": "w",
}
_NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)(?:e[-+]?\d+)?"
_PART = re.compile(rf"\s*({_NUMBER})\s*([a-zµμ]*)")
# pandas' own str(Timedelta) form, "1 days 02:00:00", and a plain clock "00:15:00"
_CLOCK = re.compile(r"^\s*(?:(\d+)\s*days?\s*,?\s*)?(\d+):(\d{2})(?::(\d{2}(?:\.\d+)?))?\s*$")
_INT64_MAX = 2**63 - 1
_NAME = re.compile(r"[\w.\-]+")


def _error(value: object, what: str, allow_zero: bool) -> InvalidInputError:
    sign = "non-negative" if allow_zero else "positive"
    # "window='x'" for an argument name; "budget p95: 'x'" when `what` is a phrase
    subject = f"{what}={value!r}" if _NAME.fullmatch(what) else f"{what}: {value!r}"
    return InvalidInputError(f"{subject} is not a duration; use a {sign} duration: "
                             f"{ACCEPTED_DURATIONS}")


def _parse_text(text: str) -> int | None:
    """Nanoseconds of a duration string, or None when it is not one."""
    text = text.strip().lower()
    clock = _CLOCK.match(text)
    if clock:
        days, h, m, s = clock.groups()
        secs = (int(days or 0) * 86400 + int(h) * 3600 + int(m) * 60) * 10**9
        return secs + round(float(s or 0) * 1e9)
    if re.fullmatch(_NUMBER, text):
        return round(float(text) * 1e9)
    total, pos, parts = 0, 0, 0
    while pos < len(text):
        part = _PART.match(text, pos)
        if not part or part.end() == pos:
            return None
        unit = _ALIASES.get(part.group(2))
        if unit is None:
            return None
        total += round(float(part.group(1)) * _NS[unit])
        pos, parts = part.end(), parts + 1
        while pos < len(text) and text[pos] in " ,":
            pos += 1
    return total if parts else None


def duration_ns(value: object, what: str = "duration", *, allow_zero: bool = False) -> int:
    """``value`` as a whole number of nanoseconds (> 0, or >= 0 with ``allow_zero``).

    Accepts ``"90s"``, ``"15min"``, ``"7d"``, ``"1h30min"``, ``"2 days"``, ``"00:15:00"``, a
    ``timedelta``/``Timedelta``/``numpy.timedelta64``, or a number of seconds. Anything else,
    NaN/NaT, a negative or (unless ``allow_zero``) zero duration raises
    :class:`perfkit.errors.InvalidInputError` (a ``ValueError``) naming ``what`` and listing
    the accepted forms.

    Example: ``duration_ns("1h30min") == 5_400_000_000_000``.
    """
    ns: int | None
    if isinstance(value, bool) or value is None:
        ns = None
    elif isinstance(value, str):
        try:
            ns = _parse_text(value)
        except (ValueError, OverflowError):  # "1e999s"
            ns = None
    elif isinstance(value, dt.timedelta):
        raw = getattr(value, "value", None)  # pandas.Timedelta keeps nanoseconds
        ns = int(raw) if isinstance(raw, int) else (
            (value.days * 86400 + value.seconds) * 10**9 + value.microseconds * 1000)
    elif type(value).__name__ == "timedelta64":
        raw = int(value.astype("timedelta64[ns]").astype("int64"))  # type: ignore[attr-defined]
        ns = None if raw == -_INT64_MAX - 1 else raw                  # NaT
    elif isinstance(value, numbers.Real):
        f = float(value)
        ns = round(f * 1e9) if math.isfinite(f) else None
    else:
        ns = None
    if ns is None or ns < 0 or (ns == 0 and not allow_zero) or ns > _INT64_MAX:
        raise _error(value, what, allow_zero)
    return ns


def duration_seconds(value: object, what: str = "duration", *, allow_zero: bool = False
                     ) -> float:
    """:func:`duration_ns` in seconds (a float): ``duration_seconds("2ms") == 0.002``."""
    return duration_ns(value, what, allow_zero=allow_zero) / 1e9


def as_timedelta(value: object, what: str = "duration", *, allow_zero: bool = False
                 ) -> pd.Timedelta:
    """:func:`duration_ns` as a ``pandas.Timedelta``.

    Example: ``as_timedelta("7d") == pd.Timedelta(days=7)``.
    """
    import pandas as pd

    return pd.Timedelta(duration_ns(value, what, allow_zero=allow_zero), unit="ns")
