"""The calls the API makes into the Monitor, the analysis and the optimisation registry.

Kept apart from the routes so each endpoint stays a thin translation of HTTP
to one perfkit call, and so the notebooks' code path is the API's code path.
"""

from __future__ import annotations

import difflib
from typing import Any

import pandas as pd

from perfkit._time import Duration

__all__ = ["action_names", "action_types", "anomaly_events", "forecast", "host_summary",
           "trigger"]


def action_names() -> list[str]:
    """The registered optimisation actions, sorted."""
    import perfkit.actions

    return sorted(perfkit.actions.names())


def action_types() -> list[dict[str, Any]]:
    """Each registered action: name, description, parameter schema, watched metrics."""
    import perfkit.actions

    out = []
    for name in action_names():
        a = perfkit.actions.get(name)
        out.append({"name": a.name, "description": a.description,
                    "parameters": {k: dict(spec) for k, spec in a.params_schema.items()},
                    "watch": dict(a.watch)})
    return out


def anomaly_events(monitor: Any, since: Any) -> pd.DataFrame:
    """This Monitor's stored anomaly episode starts and ends since ``since``, oldest first."""
    from perfkit._anomaly_watch import ANOMALY_SEVERITY

    ev = monitor.store.alert_events(since=since, host=monitor.host)
    ev = ev[ev["severity"] == ANOMALY_SEVERITY]
    # an open episode's start is repeated (same ts) each time its peak rises: keep the last
    ev = ev.drop_duplicates(["host", "metric", "labels", "ts", "state"], keep="last")
    return ev.rename(columns={"value": "score", "threshold": "min_score", "message": "pattern"})[
        ["ts", "host", "metric", "labels", "state", "score", "min_score", "pattern"]]


def forecast(monitor: Any, *, horizon: str, level: float, method: str, metric: str | None,
             since: Duration, hosts: list[str] | None) -> pd.DataFrame:
    """Forecast the unlabelled series of ``hosts`` (None: every host) since ``since``.

    Labelled breakdowns (per endpoint, per statement) are left out: they can be
    many, and the API's forecasts answer "where is this service heading".
    Each host's series are fitted on their own; the result has a ``host`` column.
    """
    from perfkit.analysis._forecast import forecast as _forecast
    frame = monitor.store.samples(host=hosts, since=since)
    frame = frame[frame["labels"] == ""]
    where = f"host {hosts[0]!r}" if hosts and len(hosts) == 1 else "the requested hosts"
    if metric is not None:
        known = sorted(set(frame["metric"]))
        if metric not in known:
            close = difflib.get_close_matches(metric, known, n=3, cutoff=0.5)
            hint = f" Did you mean: {', '.join(close)}?" if close else ""
            raise ValueError(f"no unlabelled samples of {metric!r} on {where} since {since}."
                             f"{hint} Metrics with samples: {', '.join(known)}")
        frame = frame[frame["metric"] == metric]
    parts, skipped = [], {}
    for host, part in frame.groupby("host", sort=True):
        out = _forecast(part, horizon=horizon, level=level, method=method, progress=False)
        skipped.update({(k if hosts and len(hosts) == 1 else f"{host}/{k}"): v
                        for k, v in out.attrs.get("skipped", {}).items()})
        parts.append(out.assign(host=host))
    if not parts:
        out = pd.DataFrame(columns=["metric", "ts", "mean", "lower", "upper", "model", "host"])
    else:
        out = pd.concat(parts, ignore_index=True)
    out.attrs["skipped"] = skipped
    return out


def thin_forecasts(frame: pd.DataFrame, max_points: int) -> tuple[pd.DataFrame, bool]:
    """At most ``max_points`` (>= 12) steps per (host, metric) forecast; whether any was cut.

    The display downsampler chooses the steps on the mean (MinMaxLTTB: its shape, and its
    minimum and maximum always); rows are kept whole, so each step returned is one the
    model forecast, with its own interval.
    """
    if frame.empty or int(frame.groupby(["host", "metric"]).size().max()) <= max_points:
        return frame, False
    from perfkit._downsample import downsample

    # the downsampler keys series by labels too (the API's forecasts are unlabelled) and
    # picks on ``value``: add what it needs and take off only what was added
    keyed = frame.assign(value=frame["mean"].astype(float))
    added = ["value"]
    if "labels" not in keyed:
        keyed["labels"], added = "", ["value", "labels"]
    # it adds the minimum and maximum to the points it picks: two fewer here
    out = downsample(keyed, max_points - 2).drop(columns=added)
    out.attrs = dict(frame.attrs)
    return out, True


def host_summary(monitor: Any, host: str, *, since: Duration, horizon: str = "30min") -> dict:
    """The summary of ``host``'s samples since ``since`` (the Monitor's own host or another).

    For another host, ``monitoring_active`` means "its latest sample is recent"
    (within three of this Monitor's intervals, at least a minute), and
    ``optimization_active`` is only known for this Monitor's own host.
    """
    from perfkit.analysis import summary

    frame = monitor.store.samples(host=host, since=since)
    if host == monitor.host:
        active, optimizing = monitor.running, bool(monitor.optimization_active)
    else:
        fresh = pd.Timedelta(seconds=max(60.0, 3 * monitor.interval))
        active = bool(len(frame)) and frame["ts"].max() >= pd.Timestamp.now(tz="UTC") - fresh
        optimizing = False
    out = summary(frame, monitoring_active=active, optimization_active=optimizing,
                  actions=monitor.store.actions(host=host, since=since), horizon=horizon)
    out["host"] = host
    return out


def trigger(monitor: Any, action: str, params: dict[str, Any], *, dry_run: bool,
            queue: bool) -> dict[str, Any]:
    """Run ``action`` now through the Monitor, or queue it in the store for its loop.

    The parameters are checked against the action's schema first, so a bad
    request is refused (``ValueError``) before anything runs or is queued.
    """
    import perfkit.actions

    checked = perfkit.actions.validate(action, params)
    # The params travel as a dict, never as **kwargs, so a parameter called "host" or
    # "dry_run" cannot collide with the call's own arguments.
    if queue:
        action_id = monitor.request_action(action, dry_run=dry_run, requested_by="api",
                                           params=checked)
        return {"optimization_type": action, "queued": True, "action_id": action_id,
                "status": "pending", "dry_run": dry_run, "params": checked}
    result = monitor.optimizer.run(action, params, dry_run=dry_run, requested_by="api")
    return {"optimization_type": action, "queued": False, **_result_fields(result)}


def _result_fields(result: Any) -> dict[str, Any]:
    fields = ("status", "dry_run", "params", "verdict", "verdict_reason", "before", "after",
              "detail", "error", "duration_s")
    out = {f: getattr(result, f) for f in fields if hasattr(result, f)}
    out["action_id"] = getattr(result, "id", None)
    return out
