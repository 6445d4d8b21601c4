"""Action parameter schemas: a small declarative format, validated without evaluating anything.

A schema maps each parameter name to a spec::

    {"apply": {"type": "bool", "default": False, "description": "create the index"},
     "top":   {"type": "int", "default": 3, "min": 1, "max": 20},
     "mode":  {"type": "str", "choices": ["fast", "full"]}}          # no default: required

``type`` is one of ``int``, ``float``, ``bool``, ``str``; ``min``/``max`` bound
numbers, ``choices`` lists the allowed values. Parameters arrive from the store
as JSON, so only those plain types are ever accepted: nothing is evaluated.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from perfkit.errors import InvalidInputError

__all__ = ["ParamsSchema", "check_schema", "describe_schema", "validate_params"]

ParamsSchema = Mapping[str, Mapping[str, Any]]
_TYPES: dict[str, tuple[type, ...]] = {"int": (int,), "float": (int, float), "bool": (bool,),
                                       "str": (str,)}
_SPEC_KEYS = {"type", "default", "min", "max", "choices", "description"}
_MAX_STR = 500


def check_schema(schema: ParamsSchema | None) -> dict[str, dict[str, Any]]:
    """Validate a schema definition itself; returns a plain-dict copy."""
    if schema is None:
        return {}
    if not isinstance(schema, Mapping):
        raise TypeError("params_schema must be a dict of {name: spec}, got "
                        f"{type(schema).__name__}")
    out: dict[str, dict[str, Any]] = {}
    for name, spec in schema.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"parameter name {name!r} must be a Python identifier")
        if not isinstance(spec, Mapping):
            raise TypeError(f"spec of parameter {name!r} must be a dict, got {type(spec).__name__}")
        extra = set(spec) - _SPEC_KEYS
        if extra:
            raise ValueError(f"spec of parameter {name!r} has unknown key(s) {sorted(extra)}; "
                             f"allowed: {sorted(_SPEC_KEYS)}")
        if spec.get("type") not in _TYPES:
            raise ValueError(f"parameter {name!r}: type must be one of {sorted(_TYPES)}, "
                             f"got {spec.get('type')!r}")
        spec = dict(spec)
        if "default" in spec and spec["default"] is not None:
            spec["default"] = _check_value(name, spec["default"], spec)
        out[name] = spec
    return out


def _check_value(name: str, value: Any, spec: Mapping[str, Any]) -> Any:
    kind = spec["type"]
    if (kind != "bool" and isinstance(value, bool)) or not isinstance(value, _TYPES[kind]):
        raise InvalidInputError(f"parameter {name!r} must be a {kind}, got {type(value).__name__} "
                         f"{value!r}")
    if kind == "float" and isinstance(value, (int, float)):
        value = float(value)
        if not math.isfinite(value):
            raise InvalidInputError(f"parameter {name!r} must be finite, got {value}")
    if kind == "str" and len(value) > _MAX_STR:
        raise InvalidInputError(f"parameter {name!r} is longer than {_MAX_STR} characters")
    if "min" in spec and value < spec["min"]:
        raise InvalidInputError(f"parameter {name!r} must be >= {spec['min']}, got {value}")
    if "max" in spec and value > spec["max"]:
        raise InvalidInputError(f"parameter {name!r} must be <= {spec['max']}, got {value}")
    if "choices" in spec and value not in spec["choices"]:
        raise InvalidInputError(f"parameter {name!r} must be one of {list(spec['choices'])}, "
                         f"got {value!r}")
    return value


def validate_params(action: str, schema: Mapping[str, Mapping[str, Any]],
                    params: Mapping[str, Any] | None) -> dict[str, Any]:
    """``params`` checked against ``schema`` with defaults filled in.

    Raises ``ValueError`` naming the action, the parameter and what is allowed.
    """
    params = dict(params or {})
    unknown = sorted(set(params) - set(schema))
    if unknown:
        allowed = ", ".join(sorted(schema)) or "none"
        raise InvalidInputError(f"action {action!r} has no parameter(s) {unknown}; "
                                f"accepted: {allowed}")
    out: dict[str, Any] = {}
    for name, spec in schema.items():
        if name in params:
            v = params[name]
            out[name] = None if v is None and spec.get("default", ...) is None \
                else _check_value(name, v, spec)
        elif "default" in spec:
            out[name] = spec["default"]
        else:
            raise InvalidInputError(f"action {action!r} needs parameter {name!r} ({spec['type']})")
    return out


def describe_schema(schema: Mapping[str, Mapping[str, Any]]) -> str:
    """One line per parameter: ``name (type, default x, min..max): description``."""
    lines = []
    for name, spec in schema.items():
        bits = [spec["type"]]
        if "default" in spec:
            bits.append(f"default {spec['default']!r}")
        if "min" in spec or "max" in spec:
            bits.append(f"{spec.get('min', '')}..{spec.get('max', '')}")
        if "choices" in spec:
            bits.append("one of " + "/".join(map(str, spec["choices"])))
        lines.append(f"{name} ({', '.join(bits)}): {spec.get('description', '')}".rstrip(": "))
    return "\n".join(lines)
