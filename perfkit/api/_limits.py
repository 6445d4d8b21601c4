"""Limits at the HTTP boundary: request body size (413) and short error echoes (422).

A client may send any number of bytes; a handler that parses them first would read
a 300 MB body before the token check says 401. :class:`LimitedRoute` refuses a body
over the limit from its ``Content-Length`` without reading it, and stops reading a
chunked body at the limit. Validation errors never echo more than a short excerpt
of what was sent.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute

__all__ = ["EXCERPT_CHARS", "MAX_BODY_BYTES", "LimitedRoute", "excerpt", "validation_error"]

MAX_BODY_BYTES = 1 << 20
"""Largest request body the API reads (1 MiB); bigger ones get 413."""
EXCERPT_CHARS = 100
"""Most characters of a client's value an error response repeats."""


def excerpt(value: object, n: int = EXCERPT_CHARS) -> str:
    """``repr(value)`` cut to ``n`` characters (with the full length when cut)."""
    text = repr(value)
    return text if len(text) <= n else f"{text[:n]}... ({len(text)} characters)"


class _TooLarge(Exception):
    """A request body passed the limit while it was being read."""


class _LimitedRequest(Request):
    """A request whose body is read at most ``limit`` bytes far."""

    limit = MAX_BODY_BYTES

    async def body(self) -> bytes:
        if not hasattr(self, "_body"):
            chunks: list[bytes] = []
            size = 0
            async for chunk in self.stream():
                size += len(chunk)
                if size > self.limit:
                    raise _TooLarge
                chunks.append(chunk)
            self._body = b"".join(chunks)
        return self._body


class LimitedRoute(APIRoute):
    """A route that answers 413 to a request body over :data:`MAX_BODY_BYTES`.

    A route class rather than a middleware, so that the limit travels with
    :func:`perfkit.api.router` into whatever application mounts it. A declared
    ``Content-Length`` over the limit is refused unread; a chunked body is read
    only up to the limit. Both happen before the token check.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def limited(request: Request) -> Response:
            length = request.headers.get("content-length")
            if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
                return _refusal()
            limited_request = _LimitedRequest(request.scope, request.receive)
            try:  # read here: FastAPI turns any error while it reads a body into a 400
                await limited_request.body()
            except _TooLarge:
                return _refusal()
            return await handler(limited_request)

        return limited


def _refusal() -> JSONResponse:
    return JSONResponse(status_code=413, headers={"connection": "close"}, content={"detail": {
        "message": f"request body over {MAX_BODY_BYTES} bytes; "
                   "send less (the API takes small JSON bodies)",
        "limit_bytes": MAX_BODY_BYTES}})


async def validation_error(_request: Request, exc: Exception) -> JSONResponse:
    """422 for a request FastAPI could not validate, echoing only excerpts of the input."""
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    short = [{"loc": list(e.get("loc", ()))[:10], "msg": str(e.get("msg", ""))[:200],
              "type": e.get("type"), **({"input": excerpt(e["input"])} if "input" in e else {})}
             for e in errors[:20]]
    return JSONResponse(status_code=422, content={"detail": short})
