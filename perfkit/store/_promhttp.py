"""The Prometheus HTTP API client behind the ``prometheus://`` source: requests, errors, frames.

The standard library's ``urllib`` is enough here: a few form-encoded POSTs per
read, each with a timeout and a response size limit, and no new runtime
dependency for users who only point perfkit at a Prometheus.
"""

from __future__ import annotations

import logging
import math
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from typing import Any

import orjson

from perfkit.errors import InvalidInputError, StoreUnavailableError

__all__ = ["MAX_POINTS", "PromClient", "PromQLError", "base_url", "pages", "step_for"]

log = logging.getLogger("perfkit.store")

MAX_POINTS = 11_000
"""Prometheus refuses a range query asking for more points than this per series."""

_MAX_BYTES = 256 * 1024 * 1024


class PromQLError(InvalidInputError):
    """Prometheus refused a query (bad PromQL, bad parameters); the message quotes both."""


def base_url(url: str) -> str:
    """``prometheus://h:9090/prefix?opts`` → ``http://h:9090/prefix``
    (``prometheus+https``: https)."""
    parts = urllib.parse.urlsplit(url)
    scheme = {"prometheus": "http", "prometheus+http": "http",
              "prometheus+https": "https"}.get(parts.scheme)
    if scheme is None or not parts.netloc:
        raise InvalidInputError(f"{url!r} is not a Prometheus URL; write "
                                "prometheus://HOST:PORT (or prometheus+https://HOST:PORT)")
    return urllib.parse.urlunsplit((scheme, parts.netloc, parts.path.rstrip("/"), "", ""))


class PromClient:
    """POSTs to one Prometheus server's ``/api/v1`` and returns the ``data`` of the answer.

    Unreachable, timing out or answering 5xx: :class:`~perfkit.errors.StoreUnavailableError`;
    a query Prometheus refuses (4xx, ``status: error``): :class:`PromQLError`.
    """

    def __init__(self, base: str, timeout: float) -> None:
        self.base = base
        self.timeout = timeout
        self.last_error: str | None = None
        self.reachable = True

    def call(self, path: str, params: Sequence[tuple[str, str]]) -> Any:
        """``data`` of ``POST {base}/api/v1/{path}`` with form ``params`` (label values, which
        Prometheus serves to GET only: a GET with a query string)."""
        form = urllib.parse.urlencode(list(params))
        if path.startswith("label/"):
            req = urllib.request.Request(f"{self.base}/api/v1/{path}?{form}",
                                         headers={"Accept": "application/json"})
        else:
            req = urllib.request.Request(
                f"{self.base}/api/v1/{path}", data=form.encode(), method="POST",
                headers={"Content-Type": "application/x-www-form-urlencoded",
                         "Accept": "application/json"})
        query = dict(params).get("query") or dict(params).get("match[]") or ""
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                body = resp.read(_MAX_BYTES + 1)
        except urllib.error.HTTPError as exc:
            body = exc.read(64 * 1024)
            msg = _error_text(body) or exc.reason
            if exc.code >= 500:  # the server (or a proxy before it) is in trouble, not the query
                self._down(f"HTTP {exc.code}: {msg}")
            raise PromQLError(f"Prometheus at {self.base} refused {path} {query!r}: "
                              f"HTTP {exc.code}: {msg}") from None
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            self._down(f"{type(exc).__name__}: {reason}")
        if len(body) > _MAX_BYTES:
            raise PromQLError(f"Prometheus answer to {query!r} is larger than "
                              f"{_MAX_BYTES // 2**20} MiB; read a shorter window or fewer series")
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError:
            self._down(f"the answer to {path} is not JSON (is {self.base} a Prometheus server?)")
        if doc.get("status") != "success":
            raise PromQLError(f"Prometheus refused {path} {query!r}: "
                              f"{doc.get('errorType', '')}: {doc.get('error', doc)}")
        for w in doc.get("warnings") or ():
            log.warning("Prometheus %s: %s (query %r)", self.base, w, query)
        self.reachable, self.last_error = True, None
        return doc.get("data")

    def _down(self, why: str) -> Any:
        self.reachable, self.last_error = False, why
        raise StoreUnavailableError(
            f"Prometheus at {self.base} does not answer ({why}); check that it runs and the "
            f"URL (prometheus://HOST:PORT), or raise the timeout (?timeout=30, now "
            f"{self.timeout:g} s)") from None


def _error_text(body: bytes) -> str:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body[:300].decode("utf-8", "replace").strip()
    return f"{doc.get('errorType', '')}: {doc.get('error', '')}".strip(": ")


def step_for(span_s: float, min_step_s: float, max_points: int) -> float:
    """The coarsest of ``min_step_s`` and the step that keeps ``span_s`` within ``max_points``
    evaluation points per series; whole seconds from 1 s up, so reads stay on one grid."""
    need = span_s / max(1, max_points - 1)
    step = max(min_step_s, need)
    return float(math.ceil(step)) if step >= 1 else step


def pages(start_s: float, end_s: float, step_s: float, page_points: int
          ) -> list[tuple[float, float]]:
    """``[start, end]`` cut into ranges of at most ``page_points`` evaluation points each,
    on the grid ``start + k * step`` (no point twice, none skipped)."""
    out = []
    span = step_s * (max(1, page_points) - 1)
    s = start_s
    while s <= end_s:
        e = min(end_s, s + span)
        out.append((s, e))
        s = s + step_s * (math.floor((e - s) / step_s + 1e-9) + 1)
    return out
