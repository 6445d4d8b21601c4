"""The endpoints of the "advanced performance" API, over a real Monitor.

Every handler is a plain ``def``: FastAPI runs it in its thread pool, so the
blocking work (joining the Monitor's thread, reading the store, fitting
forecasts) never stalls the event loop. Request values reach the store only
as bound parameters and reach actions only through their registered schema;
nothing is evaluated.
"""

from __future__ import annotations

import hmac
import os
from typing import TYPE_CHECKING, Annotated, Any

import pandas as pd
from fastapi import APIRouter, Body, Depends, HTTPException, Query
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import StringConstraints

from perfkit._format import format_duration
from perfkit._json import jsonable, records
from perfkit._time import Duration, as_timedelta
from perfkit.api import _models as m
from perfkit.api import _ops
from perfkit.api._errors import store_errors, unprocessable
from perfkit.api._hosts import resolve_hosts
from perfkit.api._limits import LimitedRoute
from perfkit.errors import InvalidInputError

if TYPE_CHECKING:
    from perfkit.monitor import Monitor

__all__ = ["TOKEN_ENV", "router"]

TOKEN_ENV = "PERFKIT_API_TOKEN"
"""Environment variable holding the bearer token that POST endpoints require."""

MAX_HORIZON = pd.Timedelta(hours=24)
MAX_WINDOW = pd.Timedelta(days=7)
MAX_SAMPLES = 100_000
FORECAST_POINTS = 500
"""Steps per forecast series that ``/predictions`` returns unless ``max_points`` says otherwise."""
MAX_FORECAST_POINTS = 5_000
"""The largest ``max_points`` ``/predictions`` accepts (a 24 h horizon at 1 s has 86,400 steps)."""
_Name = Annotated[str, StringConstraints(min_length=1, max_length=300)]
_Hosts = Annotated[list[_Name] | None, Query(
    max_length=50, description="Host(s); repeat the parameter for several, or 'all' for every "
                               "host of the store. Unknown names are a 422 listing the known "
                               "ones.")]
_Since = Annotated[str | None, Query(max_length=64, description=(
    "Start of the history: an ISO time, or a duration before now such as '15min'. Overrides "
    "window."))]
_Window = Annotated[str | None, Query(max_length=32, description=(
    "History to read, a duration such as '15min' or '2h' (at most 7 days); default the "
    "Monitor's window (1h unless the server set another)"))]
_bearer = HTTPBearer(auto_error=False, description=f"Set by the server's {TOKEN_ENV}")


def _auth_dependency(token: str | None) -> Any:
    """A dependency that checks ``Authorization: Bearer <token>`` when a token is set."""
    expected = token.encode() if token else None

    def check(cred: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> None:
        if expected is None:
            return
        # compare_digest on bytes: constant time, and no TypeError on non-ASCII input
        if cred is None or not hmac.compare_digest(cred.credentials.encode(), expected):
            raise HTTPException(status_code=401, detail="missing or wrong bearer token; send "
                                "'Authorization: Bearer <token>' with the server's "
                                f"{TOKEN_ENV}", headers={"WWW-Authenticate": "Bearer"})

    return check


def _duration(text: Duration, field: str, maximum: pd.Timedelta) -> pd.Timedelta:
    try:
        td = as_timedelta(text, field)
    except InvalidInputError as exc:
        raise unprocessable(f"{exc}; at most {format_duration(maximum)}") from None
    if td > maximum:
        raise unprocessable(f"{field}={text!r} is too long: at most {format_duration(maximum)}")
    return td


def router(monitor: Monitor, *, token: str | None = None) -> APIRouter:
    """The HTTP API of ``monitor`` as a FastAPI router.

    Mount it with ``app.include_router(router(mon), prefix="/api/v1/advanced-performance")``.
    ``token`` (default: the ``PERFKIT_API_TOKEN`` environment variable, read
    now; ``""`` turns it off) makes every POST endpoint, and every GET endpoint
    that reads stored samples or the action history (``summary``, ``metrics``,
    ``predictions``, ``optimization-actions``), require
    ``Authorization: Bearer <token>``; ``health`` and ``optimization-types``
    stay open. Without a token everything is open, so bind the server to localhost.
    A request body over 1 MiB gets 413 before it is read, in any application
    that mounts the router.
    """
    token = token if token is not None else (os.environ.get(TOKEN_ENV) or None)
    guarded = [Depends(_auth_dependency(token))]

    def span(since: str | None, window: str | None) -> str | pd.Timedelta:
        if since is not None:
            return since
        win = window or monitor.window
        return _duration(str(win), "window", MAX_WINDOW)
    r = APIRouter(tags=["perfkit"], route_class=LimitedRoute)

    @r.post("/start-monitoring", response_model=m.MonitoringState, dependencies=guarded,
            summary="Start the Monitor's collection thread (idempotent)")
    def start_monitoring() -> m.MonitoringState:
        was = monitor.running
        monitor.start()
        return m.MonitoringState(monitoring_active=monitor.running, changed=not was,
                                 host=monitor.host, interval=monitor.interval)

    @r.post("/stop-monitoring", response_model=m.MonitoringState, dependencies=guarded,
            summary="Stop the Monitor's collection thread and flush the store (idempotent)")
    def stop_monitoring() -> m.MonitoringState:
        was = monitor.running
        monitor.stop()
        return m.MonitoringState(monitoring_active=monitor.running, changed=was,
                                 host=monitor.host, interval=monitor.interval)

    @r.post("/start-optimization", response_model=m.OptimizationState, dependencies=guarded,
            summary="Start the automatic optimisation loop (idempotent)")
    def start_optimization() -> m.OptimizationState:
        was = monitor.optimization_active
        monitor.start_optimization()
        return m.OptimizationState(optimization_active=monitor.optimization_active,
                                   changed=not was, host=monitor.host)

    @r.post("/stop-optimization", response_model=m.OptimizationState, dependencies=guarded,
            summary="Stop the automatic optimisation loop (idempotent)")
    def stop_optimization() -> m.OptimizationState:
        was = monitor.optimization_active
        monitor.stop_optimization()
        return m.OptimizationState(optimization_active=monitor.optimization_active,
                                   changed=was, host=monitor.host)

    @r.get("/summary", response_model=m.SummaryResponse | m.HostsSummaryResponse,
           dependencies=guarded,
           summary="Current values, trends, forecasts, alerts and the health score",
           description="Default: this Monitor's host over the Monitor's window. With several "
                       "hosts (or host=all) the answer is {hosts: {name: summary}}.")
    def summary(host: _Hosts = None, window: _Window = None, since: _Since = None) -> Any:
        start = span(since, window)
        try:
            with store_errors(monitor):
                hosts = resolve_hosts(monitor, host)
                if hosts is None:
                    hosts = monitor.store.hosts()
                    many = True
                else:
                    many = len(hosts) > 1
                out = {h: jsonable(_ops.host_summary(monitor, h, since=start)) for h in hosts}
        except (ValueError, TypeError) as exc:
            raise unprocessable(str(exc)) from exc
        return {"hosts": out} if many else out[hosts[0]]

    @r.get("/metrics", response_model=m.SamplesResponse, dependencies=guarded,
           summary="Stored samples",
           description="Default: every host of the store, over the Monitor's window when "
                       "neither since nor until is given.")
    def metrics(
        metric: Annotated[list[_Name] | None, Query(
            max_length=50, description="Metric name(s) such as 'system.cpu_usage'; repeat "
                                       "the parameter for several")] = None,
        host: _Hosts = None,
        since: _Since = None,
        until: Annotated[str | None, Query(max_length=64)] = None,
        window: _Window = None,
        labels: Annotated[str | None, Query(max_length=500,
                                            description="Only samples with exactly these "
                                                        "labels, 'k=v,k=v'")] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_SAMPLES)] = 10_000,
    ) -> m.SamplesResponse:
        start: Any = since
        if since is None and (until is None or window is not None):
            start = span(None, window)
        try:
            with store_errors(monitor):
                hosts = resolve_hosts(monitor, host, default_all=True)
                frame = monitor.store.samples(metric=metric, host=hosts, since=start,
                                              until=until, labels=labels)
        except (ValueError, TypeError) as exc:
            raise unprocessable(str(exc)) from exc
        frame = frame.sort_values("ts", kind="stable")
        truncated = len(frame) > limit
        frame = frame.tail(limit)
        rows = records(frame[["ts", "host", "metric", "value", "labels"]])
        return m.SamplesResponse(count=len(rows), truncated=truncated,
                                 samples=[m.Sample(**row) for row in rows])

    @r.get("/predictions", response_model=m.PredictionsResponse, dependencies=guarded,
           summary="Forecasts with prediction intervals",
           description="Default: this Monitor's host, fitted on the Monitor's window.")
    def predictions(
        horizon: Annotated[str, Query(max_length=32)] = "30min",
        level: Annotated[float, Query(gt=0, lt=1, description="Interval coverage, e.g. "
                                                              "0.8")] = 0.8,
        method: Annotated[str, Query(max_length=32, description="'auto' or a method name of "
                                                                "perfkit.forecast")] = "auto",
        metric: Annotated[str | None, Query(max_length=200)] = None,
        window: _Window = None,
        host: _Hosts = None,
        since: _Since = None,
        max_points: Annotated[int, Query(
            ge=12, le=MAX_FORECAST_POINTS,
            description="Most steps returned per forecast series; a longer forecast is "
                        "downsampled to this many (its first and last steps and the mean's "
                        "extremes kept)")] = FORECAST_POINTS,
    ) -> m.PredictionsResponse:
        _duration(horizon, "horizon", MAX_HORIZON)
        start = span(since, window)
        win = since if since is not None else (window or monitor.window)
        try:
            with store_errors(monitor):
                hosts = resolve_hosts(monitor, host)
                frame = _ops.forecast(monitor, horizon=horizon, level=level, method=method,
                                      metric=metric, since=start, hosts=hosts)
        except (ValueError, TypeError) as exc:
            raise unprocessable(str(exc)) from exc
        too_long = [f"{k}: {v}" for k, v in frame.attrs.get("skipped", {}).items()
                    if "MAX_HORIZON_STEPS" in v]
        if too_long:
            raise unprocessable(too_long[0])
        frame, downsampled = _ops.thin_forecasts(frame, max_points)
        return m.PredictionsResponse(horizon=horizon, level=level, method=method,
                                     window=str(win), max_points=max_points,
                                     downsampled=downsampled,
                                     forecasts=[m.ForecastPoint(**r) for r in records(frame)],
                                     skipped=dict(frame.attrs.get("skipped", {})))

    @r.get("/anomalies", response_model=m.AnomaliesResponse,
           summary="Series behaving unlike their own past now, and the anomaly history")
    def anomalies(
        since: Annotated[str | None, Query(max_length=64, description=(
            "ISO time or a duration before now such as '2h' for the history; default the "
            "Monitor's window"))] = None,
        limit: Annotated[int, Query(ge=1, le=10_000, description="Most recent events")] = 500,
    ) -> m.AnomaliesResponse:
        try:
            with store_errors(monitor):
                events = _ops.anomaly_events(monitor, since or monitor.window)
        except (ValueError, TypeError) as exc:
            raise unprocessable(str(exc)) from exc
        return m.AnomaliesResponse(
            now=[m.AnomalyNow(**row) for row in records(monitor.anomalies())],
            events=[m.AnomalyEvent(**row) for row in records(events.tail(limit))])

    @r.get("/optimization-actions", response_model=m.ActionsResponse, dependencies=guarded,
           summary="Pending requests and the history of executed actions")
    def optimization_actions(
        since: Annotated[str | None, Query(max_length=64)] = None,
        action: Annotated[str | None, Query(max_length=100)] = None,
        all_hosts: Annotated[bool, Query(description="Every host of the store, not only this "
                                                     "Monitor's")] = False,
        limit: Annotated[int, Query(ge=1, le=10_000, description="Most recent history "
                                                                 "rows")] = 100,
    ) -> m.ActionsResponse:
        try:
            with store_errors(monitor):
                frame = monitor.store.actions(since=since,
                                              host=None if all_hosts else monitor.host,
                                              action=action)
        except (ValueError, TypeError) as exc:
            raise unprocessable(str(exc)) from exc
        waiting = frame["status"].isin(["pending", "running"])
        pending = frame[waiting].sort_values("id")
        history = frame[~waiting].sort_values("id", ascending=False).head(limit)
        return m.ActionsResponse(pending=[m.ActionRow(**r) for r in records(pending)],
                                 history=[m.ActionRow(**r) for r in records(history)])

    @r.post("/trigger-optimization", response_model=m.TriggerResponse, dependencies=guarded,
            summary="Run (or queue) one registered optimisation action",
            responses={422: {"description": "Unknown optimization_type or invalid parameters; "
                                            "the body lists the valid types"}})
    def trigger_optimization(
        body: Annotated[m.TriggerRequest, Body(examples=[
            {"optimization_type": "memory_optimization", "parameters": {"generation": 1}},
            {"optimization_type": "database_optimization", "parameters": {}, "dry_run": True},
        ])],
    ) -> m.TriggerResponse:
        valid = _ops.action_names()
        if body.optimization_type not in valid:
            raise unprocessable(f"unknown optimization_type {body.optimization_type!r}; use one "
                                f"of {', '.join(valid)} (GET optimization-types lists their "
                                "parameters)", valid_types=valid)
        try:
            with store_errors(monitor):
                out = _ops.trigger(monitor, body.optimization_type, body.parameters,
                                   dry_run=body.dry_run, queue=body.queue)
        except (ValueError, TypeError) as exc:
            raise unprocessable(f"invalid parameters for {body.optimization_type!r}: {exc} "
                                "(GET optimization-types lists each action's parameters)",
                                valid_types=valid) from exc
        return m.TriggerResponse(**jsonable(out))

    @r.get("/optimization-types", response_model=list[m.ActionType],
           summary="The registered optimisation actions and their parameters")
    def optimization_types() -> list[m.ActionType]:
        return [m.ActionType(**row) for row in _ops.action_types()]

    @r.get("/health", response_model=m.HealthResponse, summary="The Monitor's own health")
    async def health() -> m.HealthResponse:
        # async on purpose: health() does no I/O, and on the event loop it still answers
        # when every worker thread is stuck on a hung database

        h = jsonable(monitor.health())
        failing = any(not c.get("ok", True) and c.get("runs", 0) > 0
                      for c in h.get("collectors", {}).values())
        ok = h.get("store", {}).get("reachable", True) and not failing
        return m.HealthResponse(**{**h, "status": "ok" if ok else "degraded"})

    return r
