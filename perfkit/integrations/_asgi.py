"""ASGI middleware: times each HTTP request; an exception or a 5xx is an error."""

from __future__ import annotations

from time import perf_counter
from typing import Any

from perfkit.integrations._naming import NameFunc, default_name, endpoint_name
from perfkit.recorder import Recorder

__all__ = ["PerfkitASGIMiddleware"]


class PerfkitASGIMiddleware:
    """Wrap an ASGI app: ``app = PerfkitASGIMiddleware(app, monitor)``.

    A request is named by its route template when the framework resolved one
    (Starlette / FastAPI: ``GET /markets/{id}``); a request no route matched (404)
    counts as ``GET (unmatched)``; names are capped (see ``perfkit.integrations._naming``).
    ``name(method, path)`` may rename them (it gets the template when there is one).
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

        try:
            await self.app(scope, receive, send_wrapper)
        except BaseException:
            self._recorder.observe(self._named(scope, None), perf_counter() - start, True)
            raise
        self._recorder.observe(self._named(scope, status), perf_counter() - start, status >= 500)

    def _named(self, scope: dict[str, Any], status: int | None) -> str:
        route = scope.get("route")
        template = getattr(route, "path", None)
        method, path = str(scope.get("method", "GET")), str(scope.get("path", ""))
        return endpoint_name(self._name, method, path,
                             template=template if isinstance(template, str) else None,
                             status=status)
