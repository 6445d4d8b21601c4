"""Argument checks shared by the Cache constructor, its knobs and its methods."""

from __future__ import annotations

import math
from typing import Any


def int_arg(name: str, value: Any, lo: int, hi: int | None = None) -> int:
    """``value`` if it is an int (not a bool) in ``lo..hi``; TypeError/ValueError naming it."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if value < lo or (hi is not None and value > hi):
        rng = f">= {lo}" if hi is None else f"in {lo}..{hi}"
        raise ValueError(f"{name} must be {rng}, got {value}")
    return value


def seconds_arg(name: str, value: Any, allow_none: bool = True) -> float | None:
    """A positive, finite number of seconds as a float (None passes when ``allow_none``)."""
    alternative = " (or None for no expiry)" if allow_none else ""
    if value is None:
        if allow_none:
            return None
        raise TypeError(f"{name} must be a number of seconds > 0, not None")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds{alternative}, "
                        f"not {type(value).__name__}")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number of seconds > 0{alternative}, "
                         f"got {value!r}")
    return float(value)


def key_error(key: Any) -> TypeError:
    """The error for a key that is not a str."""
    return TypeError(f"cache keys must be str, not {type(key).__name__}; convert the key "
                     "(e.g. str(key)), or use Cache.cached(), which hashes any plain arguments")
