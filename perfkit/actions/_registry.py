"""The registry of executable actions: only a registered action can ever run.

Built-in actions (``cache_optimization``, ``memory_optimization``,
``connection_optimization``, ``query_optimization``, ``database_optimization``)
are registered the first time the registry is read. Users add their own with
:func:`register`; each process registers its own (a request names an action,
it never carries code).

An action is a function ``func(monitor, *, dry_run: bool, **params)`` that
returns an :class:`Outcome` (or a plain dict, taken as its ``detail``). In a
dry run it must change nothing and describe what it would do.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from perfkit.actions._schema import ParamsSchema, check_schema, describe_schema, validate_params
from perfkit.catalog import find_metric
from perfkit.errors import InvalidInputError, UnknownNameError

if TYPE_CHECKING:
    from perfkit.store import Store

__all__ = [
    "Action",
    "Outcome",
    "actions_frame",
    "get",
    "names",
    "register",
    "unregister",
    "validate",
]

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_DIRECTIONS = ("higher", "lower")


@dataclass(frozen=True)
class Outcome:
    """What an action did: ``detail`` for people, ``before``/``after`` for its own direct
    measurements (e.g. RSS in MB around a GC), ``changed`` whether it changed anything."""

    detail: dict[str, Any] = field(default_factory=dict)
    before: dict[str, float] = field(default_factory=dict)
    after: dict[str, float] = field(default_factory=dict)
    changed: bool | None = None


@dataclass(frozen=True)
class Action:
    """A registered action.

    ``watch`` maps the metrics that judge it (catalogue names or names of its own
    direct measurements) to the direction in which they get worse; ``target`` is the
    default cooldown target when a caller names none.
    """

    name: str
    func: Callable[..., Outcome | Mapping[str, Any] | None]
    params_schema: dict[str, dict[str, Any]]
    description: str
    watch: dict[str, str]
    target: str

    def validate(self, params: Mapping[str, Any] | None) -> dict[str, Any]:
        """``params`` checked against the schema, with defaults filled in."""
        return validate_params(self.name, self.params_schema, params)


_lock = threading.RLock()
_registry: dict[str, Action] = {}
_builtins_loaded = False


def _ensure_builtins() -> None:
    global _builtins_loaded
    if _builtins_loaded:
        return
    with _lock:
        if _builtins_loaded:
            return
        _builtins_loaded = True
        from perfkit.actions.builtin import register_builtins

        register_builtins()


def _watch(watch: Mapping[str, str] | Iterable[str] | None) -> dict[str, str]:
    if watch is None:
        return {}
    if isinstance(watch, str):
        watch = [watch]
    out: dict[str, str] = {}
    items = watch.items() if isinstance(watch, Mapping) else ((w, None) for w in watch)
    for metric, direction in items:
        if direction is None:
            m = find_metric(metric)
            if m is None or m.direction not in _DIRECTIONS:
                raise ValueError(f"watch metric {metric!r} is not a catalogued metric with a "
                                 "direction; pass watch={name: 'higher'|'lower'}")
            direction = m.direction
        if direction not in _DIRECTIONS:
            raise ValueError(f"watch direction for {metric!r} must be 'higher' or 'lower' (the "
                             f"way it gets worse), got {direction!r}")
        out[str(metric)] = direction
    return out


def register(name: str, func: Callable[..., Any], params_schema: ParamsSchema | None = None,
             description: str = "", *, watch: Mapping[str, str] | Iterable[str] | None = None,
             target: str | None = None, replace: bool = False) -> Action:
    """Register ``func`` as the action ``name`` (see the module docstring for its signature).

    ``params_schema`` is ``{param: {type, default, min, max, choices, description}}``;
    ``watch`` lists the metrics whose before/after values decide the verdict.
    Registering an existing name raises unless ``replace=True``.
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"action name {name!r} must be lower case letters, digits and "
                         "underscores, starting with a letter (at most 64 characters)")
    if not callable(func):
        raise TypeError(f"func for action {name!r} must be callable, got {type(func).__name__}")
    if not isinstance(description, str):
        raise TypeError("description must be a str")
    action = Action(name, func, check_schema(params_schema), description.strip(), _watch(watch),
                    target or name.removesuffix("_optimization"))
    _ensure_builtins()
    with _lock:
        if name in _registry and not replace:
            raise ValueError(f"action {name!r} is already registered; pass replace=True to "
                             "replace it")
        _registry[name] = action
    return action


def unregister(name: str) -> None:
    """Remove a registered action (a no-op for an unknown name)."""
    with _lock:
        _registry.pop(name, None)


def names() -> list[str]:
    """The registered action names, sorted."""
    _ensure_builtins()
    with _lock:
        return sorted(_registry)


def get(name: str) -> Action:
    """The registered action ``name``; ``ValueError`` listing the valid names otherwise."""
    _ensure_builtins()
    with _lock:
        action = _registry.get(name) if isinstance(name, str) else None
    if action is None:
        raise UnknownNameError(f"unknown action {name!r}; registered actions: {', '.join(names())} "
                         "(add your own with perfkit.actions.register)")
    return action


def validate(name: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Check that ``name`` is registered and ``params`` fit its schema; returns the
    params with defaults. Raises ``ValueError`` saying what is wrong."""
    return get(name).validate(params)


def request(store: Store, name: str, params: Mapping[str, Any] | None = None, *, host: str,
            requested_by: str, dry_run: bool = False) -> int:
    """Validate ``name`` / ``params`` and queue them for ``host``'s Monitor; the request id.

    The one way a request row is written (``Monitor.request_action`` and a dashboard
    without its own Monitor call it), so every queued request was validated first.
    """
    checked = validate(name, params)
    if not isinstance(host, str) or not host:
        raise InvalidInputError("choose one host to run the action on")
    return store.request_action(name, checked, host=host, requested_by=requested_by,
                                dry_run=bool(dry_run))


def actions_frame() -> pd.DataFrame:
    """The registered actions as a frame: name, description, params, watch."""
    rows = [{"name": a.name, "description": a.description,
             "params": describe_schema(a.params_schema), "watch": ", ".join(a.watch)}
            for a in (get(n) for n in names())]
    return pd.DataFrame(rows, columns=["name", "description", "params", "watch"])
