"""perfkit's optional HTTP API (``pip install 'perfkit[api]'``).

``router(monitor)`` serves the advanced-performance API as a FastAPI router::

    app.include_router(perfkit.api.router(mon), prefix="/api/v1/advanced-performance")

``metrics_router(monitor)`` serves ``GET /metrics`` in the Prometheus text
format, and ``app(monitor)`` is a standalone application with both (what
``perfkit serve`` runs).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

try:
    from fastapi import APIRouter, FastAPI
    from fastapi.responses import PlainTextResponse
except ModuleNotFoundError as exc:  # pragma: no cover - depends on the install
    from perfkit.errors import extra_error

    raise extra_error(exc, "api", "perfkit.api") from exc

from perfkit.api._errors import store_errors
from perfkit.api._routes import TOKEN_ENV, router

if TYPE_CHECKING:
    from perfkit.monitor import Monitor

__all__ = ["PREFIX", "TOKEN_ENV", "app", "metrics_router", "router"]

PREFIX = "/api/v1/advanced-performance"
"""Where the endpoints live (the path existing API clients call); ``app()`` uses it too."""


def metrics_router(monitor: Monitor, *, all_hosts: bool = False,
                   max_age: str | None = None, token: str | None = None) -> APIRouter:
    """``GET /metrics``: the store's latest values for Prometheus to scrape.

    By default only this Monitor's host, so that every service of a shared
    store can expose its own series without duplicating the others';
    ``all_hosts=True`` exports every host (one exporter for the whole store).
    ``max_age`` (e.g. ``"15min"``) drops series that stopped reporting.
    ``token`` (``""`` or None: open) guards the endpoint when it exports
    other hosts' data (``all_hosts``): the scraper sends ``Authorization: Bearer``.
    """
    from fastapi import Depends

    from perfkit.api._routes import _auth_dependency
    from perfkit.prometheus import CONTENT_TYPE, exposition, parse_max_age

    if max_age is not None:
        parse_max_age(max_age)  # a typo in the server's settings fails at start, not per scrape
    r = APIRouter(tags=["prometheus"])

    guarded = [Depends(_auth_dependency(token or None))] if all_hosts else []

    @r.get("/metrics", response_class=PlainTextResponse, dependencies=guarded,
           summary="Latest values in the Prometheus text exposition format")
    def prometheus_metrics() -> PlainTextResponse:
        with store_errors(monitor):
            text = exposition(monitor.store, host=None if all_hosts else monitor.host,
                              max_age=max_age)
        return PlainTextResponse(text, media_type=CONTENT_TYPE)

    return r


def app(monitor: Monitor, *, token: str | None = None, all_hosts: bool = True,
        max_age: str | None = None) -> FastAPI:
    """A standalone FastAPI app: the API under :data:`PREFIX` and Prometheus at ``/metrics``.

    Request bodies over 1 MiB get 413 before they are read, and validation errors
    echo at most 100 characters of a value. As the standalone server is usually the
    one exporter of its store, it exports every host by default (``all_hosts``);
    ``token`` (default ``PERFKIT_API_TOKEN``) then guards ``/metrics`` too. The
    Monitor (and its optimisation loop) is stopped, and its store flushed, when the app
    shuts down.
    """
    from collections.abc import AsyncIterator
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        if monitor.optimization_active:
            await monitor.stop_optimization_async()
        await monitor.stop_monitoring()

    from perfkit import __version__

    application = FastAPI(title="perfkit", version=__version__, lifespan=lifespan,
                          description="Performance monitoring, forecasts and optimisation "
                                      "actions of one perfkit Monitor.")
    from fastapi.exceptions import RequestValidationError

    from perfkit.api._limits import validation_error

    application.add_exception_handler(RequestValidationError, validation_error)
    application.include_router(router(monitor, token=token), prefix=PREFIX)
    token = token if token is not None else (os.environ.get(TOKEN_ENV) or None)
    application.include_router(metrics_router(monitor, all_hosts=all_hosts, max_age=max_age,
                                              token=token))
    return application
