"""How a request is named in the recorder."""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["default_name", "NameFunc"]

NameFunc = Callable[[str, str], str]


def default_name(method: str, path: str) -> str:
    """``"GET /markets"``: method and path without the query string."""
    return f"{method} {path}"
