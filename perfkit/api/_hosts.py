"""Which hosts and which stretch of history a read endpoint covers.

``host`` is repeated for several hosts; ``all`` (or ``*``) means every host
of the store. Names are checked against the store, so a typo is an error
that lists the known hosts rather than an empty answer.
"""

from __future__ import annotations

import difflib
from typing import Any

from perfkit.api._errors import unprocessable

__all__ = ["ALL_HOSTS", "resolve_hosts"]

ALL_HOSTS = ("all", "*")
"""Values of ``host`` that mean every host of the store."""


def resolve_hosts(monitor: Any, requested: list[str] | None, *,
                  default_all: bool = False) -> list[str] | None:
    """The hosts to read: ``None`` means every host (no filter); unknown names are a 422.

    Without ``requested``: this Monitor's host, or every host when ``default_all``.
    """
    if not requested:
        return None if default_all else [monitor.host]
    if any(h in ALL_HOSTS for h in requested):
        return None
    known = monitor.store.hosts()
    if monitor.host not in known:
        known = sorted([*known, monitor.host])
    unknown = [h for h in requested if h not in known]
    if unknown:
        close = difflib.get_close_matches(unknown[0], known, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise unprocessable(f"unknown host {', '.join(map(repr, unknown))}.{hint} Known hosts: "
                            f"{', '.join(known)} (or 'all')", known_hosts=known)
    return list(dict.fromkeys(requested))
