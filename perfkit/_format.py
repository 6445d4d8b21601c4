"""The one formatter for values with units and the one for durations (messages, pages, reports).

Stdlib only: the pytest plugin's report uses it while pytest runs.
"""

from __future__ import annotations

import datetime as dt
import math
import numbers

__all__ = ["format_duration", "format_value"]


def format_value(value: object, unit: str = "", *, missing: str = "n/a") -> str:
    """``value`` with 4 significant digits and its unit: ``"71.5 %"``, ``"1,250,000 B"``.

    Numbers from 10,000 up are written whole with thousands separators (a byte count reads
    better than ``1.25e+06``). None, NaN and infinity give ``missing``.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return missing
    v = float(value)
    if not math.isfinite(v):
        return missing
    text = f"{v:,.0f}" if 1e4 <= abs(v) < 1e15 else f"{v:.4g}"
    return f"{text} {unit}" if unit else text


def format_duration(value: object, *, missing: str = "-") -> str:
    """Seconds (a number) or a timedelta as a short human string.

    Under a minute, 3 significant digits in the fitting unit (``"450 ms"``, ``"1.5 s"``,
    ``"820 ns"``); under ten minutes, minutes and seconds (``"2 min 5 s"``); longer, whole
    minutes, hours and days (``"45 min"``, ``"3 h 10 min"``, ``"2 d 3 h"``). None, NaN and NaT
    give ``missing``.
    """
    if isinstance(value, dt.timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, numbers.Real) and not isinstance(value, bool):
        seconds = float(value)
    else:  # None, NaT
        return missing
    if math.isnan(seconds):
        return missing
    if seconds < 0:
        return "-" + format_duration(-seconds)
    if seconds < 59.95:
        if seconds == 0:
            return "0 s"
        for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
            if seconds >= scale:
                return f"{seconds / scale:.3g} {unit}"
        return f"{seconds / 1e-9:.3g} ns"
    if math.isinf(seconds):
        return "forever"
    whole = round(seconds)
    if whole < 600:
        m, s = divmod(whole, 60)
        return f"{m} min {s} s" if s else f"{m} min"
    d, rem = divmod(round(whole / 60), 1440)
    h, m = divmod(rem, 60)
    parts = [f"{d} d"] if d else []
    if h:
        parts.append(f"{h} h")
    if m and not d:
        parts.append(f"{m} min")
    return " ".join(parts)
