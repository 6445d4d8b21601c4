"""The wrappers made by ``Cache.cached``: look the call up, compute and store on a miss."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from perfkit.cache._keys import stable_key

if TYPE_CHECKING:
    from perfkit.cache import Cache

MISSING = object()  # "no value" where None is a legitimate cached value


def wrap(cache: Cache, fn: Callable[..., Any], ttl: float | None,
         key: Callable[..., str] | None) -> Callable[..., Any]:
    """``fn`` (sync or async) cached in ``cache`` under ``fn:<module>.<qualname>:<key>``.

    The wrapper has ``.cache`` and ``.cache_key(*args, **kwargs)`` for inspection.
    """
    prefix = f"fn:{fn.__module__}.{fn.__qualname__}:"

    def make_key(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        if key is not None:
            return prefix + key(*args, **kwargs)
        return prefix + stable_key(args, kwargs)

    if inspect.iscoroutinefunction(fn):
        @functools.wraps(fn)
        async def awrapper(*args: Any, **kwargs: Any) -> Any:
            k = make_key(args, kwargs)
            value = await cache.aget(k, MISSING)
            if value is MISSING:
                value = await fn(*args, **kwargs)
                await cache.aset(k, value, ttl)
            return value

        out: Callable[..., Any] = awrapper
    else:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            k = make_key(args, kwargs)
            value = cache.get(k, MISSING)
            if value is MISSING:
                value = fn(*args, **kwargs)
                cache.set(k, value, ttl)
            return value

        out = wrapper
    out.cache = cache  # type: ignore[attr-defined]
    out.cache_key = lambda *a, **kw: make_key(a, kw)  # type: ignore[attr-defined]
    return out
