"""Parsing of user-facing values: durations, percentages, marker arguments.

Stdlib only: imported while pytest collects, so it must stay cheap.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from perfkit._time import duration_seconds
from perfkit.errors import InvalidInputError

#: statistics a budget may be put on (all over the per-round samples)
BUDGET_STATS = ("min", "median", "mean", "p95", "p99", "max")


class PerfUsageError(InvalidInputError):
    """A perf marker, budget or option was given a value it cannot take."""


def parse_duration(value: Any, what: str = "duration", *, allow_zero: bool = False) -> float:
    """``"2ms"``, ``"150us"``, ``"1.5s"``, ``"800ns"`` or a number of seconds -> seconds."""
    try:
        return duration_seconds(value, what, allow_zero=allow_zero)
    except InvalidInputError as exc:
        raise PerfUsageError(str(exc)) from None


def parse_fraction(value: Any, what: str = "max_regression") -> float:
    """``"10%"`` or ``0.1`` -> 0.1 (a relative slowdown; must be > 0)."""
    if isinstance(value, bool):
        raise PerfUsageError(f"{what}: expected a percentage such as '10%', got {value!r}")
    try:
        if isinstance(value, str):
            text = value.strip()
            frac = float(text[:-1]) / 100.0 if text.endswith("%") else float(text)
        elif isinstance(value, (int, float)):
            frac = float(value)
        else:
            raise TypeError
    except (TypeError, ValueError):
        raise PerfUsageError(
            f"{what}: cannot read {value!r}; use a percentage such as '10%' or a fraction "
            "such as 0.1") from None
    if not 0 < frac <= 10:
        raise PerfUsageError(f"{what}: must be between 0% and 1000%, got {value!r}")
    return frac


@dataclass(frozen=True)
class PerfSettings:
    """Measurement and decision settings of one test (defaults, then the marker)."""

    max_regression: float = 0.10   # allowed slowdown of the median (0.10 = 10 %)
    rounds: int | None = None       # None: as many as fit in max_time (within min/max_rounds)
    min_rounds: int = 15
    max_rounds: int = 400
    max_time: float = 0.5           # seconds of timed rounds when rounds is automatic
    min_round_time: float = 250e-6  # one round lasts at least this long (calibration target)
    iterations: int | None = None   # None: calibrated
    warmup: float = 0.1             # seconds of untimed calls before calibration
    gc: bool = False                # True: leave the garbage collector enabled in rounds
    confidence: float = 0.99        # of the ratio's confidence interval
    repeat: int = 1                 # extra measurements when the first looks like a regression
    normalize: bool = True          # divide out the interleaved reference workload's speed
    budget: dict[str, float] = field(default_factory=dict)


# marker keyword -> (parser, human description)
def _pos_int(minimum: int) -> Callable[[Any, str], int]:
    def parse(value: Any, what: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise PerfUsageError(f"{what}: expected an integer >= {minimum}, got {value!r}")
        return value
    return parse


def _bool(value: Any, what: str) -> bool:
    if not isinstance(value, bool):
        raise PerfUsageError(f"{what}: expected True or False, got {value!r}")
    return value


def _confidence(value: Any, what: str) -> float:
    if isinstance(value, str) and value.strip().endswith("%"):
        value = float(value.strip()[:-1]) / 100
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.5 <= value < 1:
        raise PerfUsageError(f"{what}: expected a level between 0.5 and 1 such as 0.99, "
                             f"got {value!r}")
    return float(value)


def _warmup(value: Any, what: str) -> float:
    return parse_duration(value, what, allow_zero=True)


def parse_budget(spec: Any, what: str = "budget") -> dict[str, float]:
    if not isinstance(spec, dict):
        raise PerfUsageError(f"{what}: expected a dict such as {{'p95': '2ms'}}, got {spec!r}")
    out = {}
    for key, value in spec.items():
        if key not in BUDGET_STATS:
            raise PerfUsageError(
                f"{what}: unknown statistic {key!r}; choose from {', '.join(BUDGET_STATS)}")
        out[key] = parse_duration(value, f"{what} {key}")
    return out


_MARKER_ARGS: dict[str, tuple[Any, str]] = {
    "max_regression": (parse_fraction, "allowed slowdown of the median, e.g. '10%'"),
    "rounds": (_pos_int(5), "number of timed rounds (>= 5); default: as many as fit in max_time"),
    "min_rounds": (_pos_int(5), "lower bound of automatic rounds"),
    "max_rounds": (_pos_int(5), "upper bound of automatic rounds"),
    "max_time": (parse_duration, "time budget of the timed rounds, e.g. '0.5s'"),
    "min_round_time": (parse_duration, "calibration target for one round, e.g. '250us'"),
    "iterations": (_pos_int(1), "calls per round; default: calibrated"),
    "warmup": (_warmup, "untimed warm-up, e.g. '100ms' (0 for none)"),
    "gc": (_bool, "keep the garbage collector enabled during rounds"),
    "confidence": (_confidence, "confidence level of the ratio's interval, e.g. 0.99"),
    "repeat": (_pos_int(0), "re-measurements allowed when the first looks like a regression"),
    "budget": (parse_budget, "absolute budgets, e.g. {'p95': '2ms'}"),
    "normalize": (_bool, "compare relative to the interleaved reference workload"),
}

MARKER_USAGE = (
    "@pytest.mark.perf(max_regression='10%', rounds=200, ...); accepted keywords: "
    + ", ".join(_MARKER_ARGS))


def settings_from_marker(base: PerfSettings, args: tuple, kwargs: dict) -> PerfSettings:
    """Apply ``@pytest.mark.perf(...)`` arguments to ``base``; PerfUsageError on misuse."""
    if args:
        raise PerfUsageError(
            f"@pytest.mark.perf takes keyword arguments only, got positional {args!r}. "
            f"Usage: {MARKER_USAGE}")
    changes: dict[str, Any] = {}
    for key, value in kwargs.items():
        if key not in _MARKER_ARGS:
            import difflib
            close = difflib.get_close_matches(key, _MARKER_ARGS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise PerfUsageError(
                f"@pytest.mark.perf: unknown argument {key!r}{hint}. Usage: {MARKER_USAGE}")
        parser, _ = _MARKER_ARGS[key]
        changes[key] = parser(value, f"@pytest.mark.perf({key}=...)")
    settings = replace(base, **changes)
    if settings.min_rounds > settings.max_rounds:
        raise PerfUsageError(
            f"@pytest.mark.perf: min_rounds ({settings.min_rounds}) > max_rounds "
            f"({settings.max_rounds})")
    return settings
