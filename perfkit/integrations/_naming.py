"""How a request is named in the recorder, and the caps that keep a stranger's URL out of it.

A raw path is attacker-controlled: one ``GET /<3000 random characters>`` must not
become a series key, and a scan of random paths must not become thousands of
endpoints. So the middleware names a request by its route template when the
framework resolved one (Starlette / FastAPI put it in ``scope["route"]``), folds
every request that matched no route (404) into one name per method, and cuts
any name to :data:`MAX_ENDPOINT_CHARS`.
"""

from __future__ import annotations

import re
from collections.abc import Callable

__all__ = [
    "MAX_ENDPOINT_CHARS",
    "UNMATCHED",
    "NameFunc",
    "cap_name",
    "default_name",
    "endpoint_name",
]

NameFunc = Callable[[str, str], str]

MAX_ENDPOINT_CHARS = 200
"""Longest endpoint name the middleware records (longer ones are cut, marked with '...')."""
UNMATCHED = "(unmatched)"
"""The path recorded for every request no route matched: ``"GET (unmatched)"``."""

_METHOD = re.compile(r"[A-Z]{1,16}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def default_name(method: str, path: str) -> str:
    """``"GET /markets"``: method and path without the query string."""
    return f"{method} {path}"


def cap_name(name: str) -> str:
    """``name`` without control characters and cut to :data:`MAX_ENDPOINT_CHARS`."""
    name = _CONTROL.sub("?", name)
    if len(name) > MAX_ENDPOINT_CHARS:
        name = name[:MAX_ENDPOINT_CHARS - 3] + "..."
    return name


def endpoint_name(name: NameFunc, method: str, path: str, *, template: str | None = None,
                  status: int | None = None) -> str:
    """The recorded name of one request.

    With the default ``name``: the route template when known, ``METHOD (unmatched)``
    for a 404 without one, else the raw path. A custom ``name`` sees the template
    (when known) instead of the raw path. Either way the result is capped.
    """
    method = method if _METHOD.fullmatch(method or "") else "OTHER"
    if template is not None:
        return cap_name(name(method, template))
    if status == 404 and name is default_name:
        return f"{method} {UNMATCHED}"
    return cap_name(name(method, path))
