"""WSGI middleware: times each request until its body is fully sent."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from time import perf_counter
from typing import Any

from perfkit.integrations._naming import NameFunc, default_name, endpoint_name
from perfkit.recorder import Recorder

__all__ = ["PerfkitWSGIMiddleware"]


class PerfkitWSGIMiddleware:
    """Wrap a WSGI app: ``app.wsgi_app = PerfkitWSGIMiddleware(app.wsgi_app, monitor)``.

    The time runs until the response iterable is closed, so streamed bodies
    count in full; an exception or a 5xx status is an error. A request no route
    matched (404) counts as ``METHOD (unmatched)`` and names are capped, so random
    paths cannot become endpoints; ``name(method, path)`` may rename them.
    """

    def __init__(self, app: Callable[..., Iterable[bytes]], monitor: Any,
                 name: NameFunc = default_name) -> None:
        self.app = app
        self._recorder: Recorder = getattr(monitor, "recorder", monitor)
        self._name = name

    def __call__(self, environ: dict[str, Any],
                 start_response: Callable[..., Any]) -> Iterable[bytes]:
        start = perf_counter()
        method, path = str(environ.get("REQUEST_METHOD", "GET")), str(environ.get("PATH_INFO", ""))
        status = [500]

        def name(error: bool) -> str:
            return endpoint_name(self._name, method, path, status=None if error else status[0])

        def sr(status_line: str, headers: list[Any], exc_info: Any = None) -> Any:
            status[0] = int(status_line.split(" ", 1)[0])
            return start_response(status_line, headers, exc_info) if exc_info else \
                start_response(status_line, headers)

        try:
            body = self.app(environ, sr)
        except BaseException:
            self._recorder.observe(name(True), perf_counter() - start, True)
            raise
        return _Timed(body, self._recorder, name, start, status)


class _Timed:
    __slots__ = ("_body", "_done", "_name", "_rec", "_start", "_status")

    def __init__(self, body: Iterable[bytes], rec: Recorder, name: Callable[[bool], str],
                 start: float,
                 status: list[int]) -> None:
        self._body, self._rec, self._name = body, rec, name
        self._start, self._status, self._done = start, status, False

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self._body
        except BaseException:
            self._finish(True)
            raise

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            self._finish(False)

    def _finish(self, error: bool) -> None:
        if not self._done:
            self._done = True
            self._rec.observe(self._name(error), perf_counter() - self._start,
                              error or self._status[0] >= 500)
