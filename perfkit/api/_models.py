"""Typed request and response bodies of the HTTP API (pydantic models).

The summary and health bodies are typed for the fields perfkit documents and
accept extra keys, so a field added to ``Monitor.summary()`` later reaches
clients without a release of the API layer.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool

__all__ = [
    "ActionRow", "ActionType", "ActionsResponse", "AnomaliesResponse", "AnomalyEvent",
    "AnomalyNow", "ForecastPoint", "HealthResponse", "HostsSummaryResponse",
    "MetricSummary", "MonitoringState", "OptimizationState", "PredictionSummary",
    "PredictionsResponse", "Sample", "SamplesResponse", "SummaryResponse", "TriggerRequest",
    "TriggerResponse",
]


class MonitoringState(BaseModel):
    """Whether the Monitor's collection thread runs, and whether this call changed that."""

    monitoring_active: bool
    changed: bool = Field(description="False when the Monitor was already in the asked state")
    host: str
    interval: float = Field(description="Seconds between collections")


class OptimizationState(BaseModel):
    """Whether the automatic optimisation loop runs, and whether this call changed that."""

    optimization_active: bool
    changed: bool = Field(description="False when the loop was already in the asked state")
    host: str


class MetricSummary(BaseModel):
    """One metric in the summary: latest value, window mean and trend."""

    model_config = ConfigDict(extra="allow")
    current: float | None = None
    average: float | None = None
    trend: str | None = None


class PredictionSummary(BaseModel):
    """One metric's forecast at the summary's horizon."""

    model_config = ConfigDict(extra="allow")
    predicted_value: float | None = None
    lower: float | None = None
    upper: float | None = None
    confidence: float | None = Field(None, description="The interval's level, e.g. 0.8")
    time_horizon: float | None = Field(None, description="Minutes ahead")
    trend: str | None = None


class SummaryResponse(BaseModel):
    """The performance summary, every value computed from stored samples."""

    model_config = ConfigDict(extra="allow")
    timestamp: datetime | str | None = None
    monitoring_active: bool
    optimization_active: bool
    metrics: dict[str, MetricSummary] = Field(default_factory=dict)
    predictions: dict[str, PredictionSummary] = Field(default_factory=dict)
    optimization_actions: Any = None
    performance_score: float | None = Field(None, description="Overall health 0-100; null "
                                                                 "without data")
    alerts: Any = Field(None, description="Current alert states")
    predicted_alerts: Any = Field(None, description="Critical crossings expected within the "
                                                    "horizon")
    score_breakdown: Any = Field(None, description="Per group and per metric points, and the "
                                                   "metrics with no data")
    host: str | None = Field(None, description="The host summarised")


class HostsSummaryResponse(BaseModel):
    """One summary per host, when several hosts (or ``all``) are asked for."""

    hosts: dict[str, SummaryResponse]


class Sample(BaseModel):
    """One stored measurement (a row of the samples frame)."""

    ts: datetime
    host: str
    metric: str
    value: float
    labels: str = Field(description="'k=v,k=v', empty when the sample has no labels")


class SamplesResponse(BaseModel):
    """Samples matching the filters, oldest first."""

    count: int
    truncated: bool = Field(description="True when more samples matched than `limit`; the "
                                        "most recent `limit` are returned")
    samples: list[Sample]


class ForecastPoint(BaseModel):
    """One step of a forecast with its prediction interval."""

    model_config = ConfigDict(extra="allow")
    metric: str
    ts: datetime
    mean: float | None
    lower: float | None
    upper: float | None
    model: str | None = None
    level: float | None = Field(None, description="Coverage of the [lower, upper] interval")
    reason: str | None = Field(None, description="Why this model was used")
    host: str | None = None


class PredictionsResponse(BaseModel):
    """Forecasts of the requested hosts' metrics over their recent history."""

    horizon: str
    level: float
    method: str
    window: str
    max_points: int = Field(description="Most steps returned per forecast series")
    downsampled: bool = Field(description="Whether a series had more steps than max_points "
                                          "and was downsampled")
    forecasts: list[ForecastPoint]
    skipped: dict[str, str] = Field(default_factory=dict,
                                    description="Series left out, with the reason (too few "
                                                "points for the method)")


class AnomalyNow(BaseModel):
    """A series that is anomalous now: since when, its peak score and the pattern it broke."""

    metric: str
    host: str
    labels: str
    since: datetime
    score: float = Field(description="Peak score of the open episode, in [0, 1)")
    pattern: str = Field(description="'spike', 'level', 'variance' or 'flat line'")


class AnomalyEvent(BaseModel):
    """The start ('firing') or end ('resolved') of an anomaly episode, from the store."""

    ts: datetime
    host: str
    metric: str
    labels: str
    state: str
    score: float | None
    min_score: float | None
    pattern: str


class AnomaliesResponse(BaseModel):
    """What is unusual now, and the anomaly episodes' history over ``since``."""

    now: list[AnomalyNow]
    events: list[AnomalyEvent]


class ActionRow(BaseModel):
    """One row of the actions table: a request or an executed action with its result."""

    model_config = ConfigDict(extra="allow")
    id: int
    host: str
    action: str
    params: Any = None
    requested_by: str | None = None
    dry_run: bool | None = None
    status: str
    requested_at: datetime | None = None
    finished_at: datetime | None = None
    before: Any = None
    after: Any = None
    verdict: str | None = None
    detail: Any = None
    error: str | None = None
    duration_s: float | None = None


class ActionsResponse(BaseModel):
    """The actions audit log split into what still waits and what ran."""

    pending: list[ActionRow]
    history: list[ActionRow]


class TriggerRequest(BaseModel):
    """Run one registered optimisation action now (or queue it for the Monitor)."""

    model_config = ConfigDict(extra="forbid")
    optimization_type: str = Field(max_length=100, description="A registered action name, "
                                                               "e.g. 'memory_optimization'")
    parameters: dict[str, Any] = Field(default_factory=dict,
                                       description="The action's parameters, checked against "
                                                   "its schema")
    dry_run: StrictBool = Field(False, description="Decide and report, change nothing "
                                                   "(true or false; 'yes' is refused)")
    queue: StrictBool = Field(False, description="Queue the request in the store for the Monitor's "
                                           "optimisation loop instead of running it now")


class TriggerResponse(BaseModel):
    """What happened to a triggered action."""

    model_config = ConfigDict(extra="allow")
    optimization_type: str
    queued: bool
    action_id: int | None = Field(None, description="Row id in the store's actions table")
    status: str = Field(description="done, failed, rejected, or pending when queued")
    dry_run: bool = False
    params: dict[str, Any] = Field(default_factory=dict)
    verdict: str | None = None
    verdict_reason: str | None = None
    before: Any = None
    after: Any = None
    detail: Any = None
    error: str | None = None
    duration_s: float | None = None


class ActionType(BaseModel):
    """A registered optimisation action a client may trigger."""

    name: str
    description: str
    parameters: dict[str, dict[str, Any]] = Field(description="Per parameter: type, default, "
                                                              "min, max, choices, description")
    watch: dict[str, str] = Field(description="Metrics that judge it, and the direction in "
                                              "which each gets worse")


class HealthResponse(BaseModel):
    """The Monitor's own health: collectors, store, loop state."""

    model_config = ConfigDict(extra="allow")
    status: str = Field(description="'ok' when the store is reachable and no collector fails, "
                                    "else 'degraded'")
    running: bool
    host: str
    interval: float
    collectors: dict[str, Any]
    store: dict[str, Any]
