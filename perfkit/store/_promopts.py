"""The Prometheus source's settings: URL query options and the ``?map=FILE`` mapping file."""

from __future__ import annotations

import json
from typing import Any

from perfkit._time import duration_seconds
from perfkit.errors import ConfigError, InvalidInputError

__all__ = ["positive_int", "read_map", "seconds"]

_MAX_MAP_BYTES = 1 << 20


def seconds(value: Any, what: str) -> float:
    """A positive duration option in seconds (``15s``, ``1min``, a number of seconds)."""
    try:
        return duration_seconds(value, what)
    except InvalidInputError as exc:  # a URL option: the setting is what is wrong
        raise ConfigError(str(exc)) from None


def positive_int(value: object, what: str, most: int | None = None) -> int:
    """A whole-number option, at least 1 and at most ``most``."""
    try:
        n = int(str(value))
    except ValueError:
        n = 0
    if n < 1 or (most is not None and n > most):
        top = f" at most {most:,}" if most else ""
        raise ConfigError(f"{what}={value!r} must be a positive whole number{top}")
    return n


def read_map(path: str) -> dict[str, str]:
    """The ``?map=FILE`` option: a JSON object of catalogue name → PromQL expression."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read(_MAX_MAP_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"map={path!r}: cannot read it ({exc.strerror}); give a JSON file "
                          'such as {"system.cpu_usage": "<PromQL>"}') from None
    if len(raw) > _MAX_MAP_BYTES:
        raise ConfigError(f"map={path!r} is larger than 1 MiB; it should hold a few names")
    try:
        doc = json.loads(raw)
    except ValueError as exc:
        raise ConfigError(f"map={path!r} is not JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"map={path!r} must hold a JSON object of name → PromQL")
    return doc
