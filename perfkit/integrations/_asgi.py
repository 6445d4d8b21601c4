"""ASGI middleware: times each HTTP request; an exception or a 5xx is an error."""

from __future__ import annotations

from time import perf_counter
from typing import Any

from perfkit.integrations._naming import NameFunc, default_name
from perfkit.recorder import Recorder

__all__ = ["PerfkitASGIMiddleware"]


class PerfkitASGIMiddleware:
    """Wrap an ASGI app: ``app = PerfkitASGIMiddleware(app, monitor)``.

    ``name(method, path)`` names the endpoint; pass one that maps raw paths to
    route templates (``/markets/{id}``) so ids do not become endpoints.
    """

    def __init__(self, app: Any, monitor: Any, name: NameFunc = default_name) -> None:
        self.app = app
        self._recorder: Recorder = getattr(monitor, "recorder", monitor)
        self._name = name

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        start = perf_counter()

        async def send_wrapper(message: dict[str, Any]) -> None:
            nonlocal status
            if message.get("type") == "http.response.start":
                status = int(message.get("status", 500))
            await send(message)

        name = self._name(scope.get("method", "GET"), scope.get("path", ""))
        try:
            await self.app(scope, receive, send_wrapper)
        except BaseException:
            self._recorder.observe(name, perf_counter() - start, True)
            raise
        self._recorder.observe(name, perf_counter() - start, status >= 500)
