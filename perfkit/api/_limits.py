"""Limits at the HTTP boundary: request body size (413) and short error echoes (422).

A client may send any number of bytes; a handler that parses them first would read
a 300 MB body before the token check says 401. :class:`BodyLimit` refuses a body
over the limit from its ``Content-Length`` without reading it, and stops reading a
chunked body at the limit. Validation errors never echo more than a short excerpt
of what was sent.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

__all__ = ["EXCERPT_CHARS", "MAX_BODY_BYTES", "BodyLimit", "excerpt", "validation_error"]

MAX_BODY_BYTES = 1 << 20
"""Largest request body the API reads (1 MiB); bigger ones get 413."""
EXCERPT_CHARS = 100
"""Most characters of a client's value an error response repeats."""


def excerpt(value: object, n: int = EXCERPT_CHARS) -> str:
    """``repr(value)`` cut to ``n`` characters (with the full length when cut)."""
    text = repr(value)
    return text if len(text) <= n else f"{text[:n]}... ({len(text)} characters)"


class BodyLimit:
    """ASGI middleware: 413 for a request body over ``limit`` bytes."""

    def __init__(self, app: Any, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None:
            try:
                too_big = int(length) > self.limit
            except ValueError:
                too_big = True
            if too_big:
                await self._refuse(send)
                return
            await self.app(scope, receive, send)
            return
        # no length given (chunked): read up to the limit, then replay to the app
        chunks: list[bytes] = []
        size = 0
        while True:
            msg = await receive()
            if msg["type"] != "http.request":
                break
            size += len(msg.get("body", b""))
            if size > self.limit:
                await self._refuse(send)
                return
            chunks.append(msg.get("body", b""))
            if not msg.get("more_body", False):
                break
        body = b"".join(chunks)
        sent = False

        async def replay() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, send: Any) -> None:
        body = json.dumps({"detail": {"message": f"request body over {self.limit} bytes; "
                                                 "send less (the API takes small JSON bodies)",
                                      "limit_bytes": self.limit}}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})


async def validation_error(_request: Request, exc: Exception) -> JSONResponse:
    """422 for a request FastAPI could not validate, echoing only excerpts of the input."""
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    short = [{"loc": list(e.get("loc", ()))[:10], "msg": str(e.get("msg", ""))[:200],
              "type": e.get("type"), **({"input": excerpt(e["input"])} if "input" in e else {})}
             for e in errors[:20]]
    return JSONResponse(status_code=422, content={"detail": short})
