"""ASGI and WSGI middleware feed the recorder; exceptions and 5xx are errors."""

from __future__ import annotations

import asyncio

import pytest

from perfkit.integrations import PerfkitASGIMiddleware, PerfkitWSGIMiddleware
from perfkit.recorder import Recorder


async def _asgi_app(scope, receive, send):
    if scope["path"] == "/boom":
        raise RuntimeError("boom")
    status = 503 if scope["path"] == "/down" else 200
    await send({"type": "http.response.start", "status": status, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def _call_asgi(app, path):
    sent = []

    async def receive():
        return {"type": "http.request", "body": b""}

    async def send(msg):
        sent.append(msg)

    asyncio.run(app({"type": "http", "method": "GET", "path": path}, receive, send))
    return sent


def test_asgi_counts_requests_and_errors():
    rec = Recorder()
    app = PerfkitASGIMiddleware(_asgi_app, rec)
    for _ in range(3):
        _call_asgi(app, "/ok")
    _call_asgi(app, "/down")
    with pytest.raises(RuntimeError):
        _call_asgi(app, "/boom")
    iv = rec.drain()
    assert iv.endpoints["GET /ok"].count == 3 and iv.endpoints["GET /ok"].errors == 0
    assert iv.endpoints["GET /down"].errors == 1
    assert iv.endpoints["GET /boom"].errors == 1


def _wsgi_app(environ, start_response):
    if environ["PATH_INFO"] == "/boom":
        raise RuntimeError("boom")
    status = "500 Internal Server Error" if environ["PATH_INFO"] == "/err" else "200 OK"
    start_response(status, [("Content-Type", "text/plain")])
    return [b"a", b"b"]


def _call_wsgi(app, path):
    body = app({"REQUEST_METHOD": "POST", "PATH_INFO": path}, lambda s, h, e=None: None)
    try:
        return b"".join(body)
    finally:
        body.close()


def test_wsgi_counts_requests_and_errors():
    rec = Recorder()
    app = PerfkitWSGIMiddleware(_wsgi_app, rec)
    assert _call_wsgi(app, "/x") == b"ab"
    _call_wsgi(app, "/err")
    with pytest.raises(RuntimeError):
        _call_wsgi(app, "/boom")
    iv = rec.drain()
    assert (iv.endpoints["POST /x"].count, iv.endpoints["POST /x"].errors) == (1, 0)
    assert iv.endpoints["POST /err"].errors == 1
    assert iv.endpoints["POST /boom"].errors == 1
