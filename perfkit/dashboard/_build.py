"""Everything the dashboard page shows, computed by the same perfkit functions a notebook uses.

:func:`build_page` reads the shown window once and derives the health score,
per-metric overview, forecasts, predicted crossings, alerts, recommendations
and action history from it. A notebook gets the same numbers with::

    page = perfkit.dashboard.build_page(perfkit.Store(), window="1h", horizon="30min")
    page.overview, page.score.overall, page.recommendations

A section whose computation fails is reported in ``page.errors`` and left
empty; the rest of the page still renders.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from perfkit._anomaly_watch import ANOMALY_SEVERITY
from perfkit._downsample import DEFAULT_POINTS, downsample
from perfkit.catalog import CORE_METRICS
from perfkit.dashboard._crossings import crossings
from perfkit.dashboard._page import Page, fit_window
from perfkit.dashboard._state import (
    current_samples,
    metric_overview,
)
from perfkit.dashboard._unusual import anomaly_episodes, end_silent, stored_phases
from perfkit.dashboard._window import WindowLoader, parse_window
from perfkit.frames import empty_samples

__all__ = ["build_page", "thin"]

def thin(frame: pd.DataFrame, max_points: int = 720) -> pd.DataFrame:
    """Each (host, metric) series averaged into at most ``max_points`` equal time steps.

    Forecasting 7,200 one-second points per metric costs about a second each and
    says no more about the next half hour than 720 ten-second means do; a
    series that already has at most ``max_points`` points is left as it is.
    The step is a whole number of seconds; each bucket is stamped at its end.
    """
    if len(frame) == 0:
        return frame
    sizes = frame.groupby(["host", "metric"], sort=False, observed=True).size()
    if sizes.max() <= max_points:
        return frame
    span = (frame["ts"].max() - frame["ts"].min()).total_seconds()
    step = max(1, int(np.ceil(span / max_points)))
    bucket = frame["ts"].dt.floor(f"{step}s") + pd.Timedelta(seconds=step)
    out = (frame.assign(ts=bucket)
           .groupby(["host", "metric", "labels", "ts"], sort=False, observed=True)["value"]
           .mean().reset_index())
    return out.sort_values("ts", kind="stable", ignore_index=True)[list(frame.columns)]


def _contract(frame: pd.DataFrame) -> pd.DataFrame:
    # The loader keeps keys as categoricals; analysis functions get the contract's str.
    cats = [c for c in ("host", "metric", "labels") if isinstance(frame[c].dtype,
                                                                   pd.CategoricalDtype)]
    return frame.astype({c: str for c in cats}) if cats else frame


def _section(page: Page, name: str, fn: Callable[[], Any], default: Any) -> Any:
    t0 = time.perf_counter()
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001 - one failing section must not blank the page
        page.errors[name] = f"{type(exc).__name__}: {exc}"
        return default
    finally:
        page.timings[name] = time.perf_counter() - t0


def build_page(store: Any, *, window: str | pd.Timedelta = "1h",
               horizon: str | pd.Timedelta = "30min", host: str | Sequence[str] | None = None,
               loader: WindowLoader | None = None, max_points: int = DEFAULT_POINTS,
               now: pd.Timestamp | None = None, statements: pd.DataFrame | None = None,
               cache_stats: Mapping[str, Any] | None = None,
               phases: pd.DataFrame | None = None) -> Page:
    """Read ``window`` of ``host`` (None: all hosts) from ``store`` and compute every section.

    ``statements`` (a Monitor's ``database.statements()``) and ``cache_stats``
    (its cache's ``stats()``) let :func:`perfkit.recommend` name the slow
    statement and the cause of cache misses; a viewer has neither. ``phases``
    (``start, end, kind``: the demo's load phases) are drawn as bands on the charts, as
    are the anomaly episodes the Monitor stored (``Page.anomalies``). Without
    ``phases``, the phases a demo recorded in the store are drawn.

    ``loader`` (a :class:`WindowLoader` on the same store) makes repeated
    calls fetch only new samples. Reading the samples raises what the store
    raises (the caller shows the banner); an analysis section that fails is
    recorded in ``Page.errors``.
    """
    from perfkit.analysis import alerts, forecast, score, time_to_threshold, trends

    td, hz = parse_window(window), parse_window(horizon, "horizon")
    # whole microseconds: plotly's JSON drops nanoseconds (with a warning per figure)
    end = (now if now is not None else pd.Timestamp.now(tz="UTC")).floor("us")
    hosts = None if host is None else ((host,) if isinstance(host, str) else tuple(host))
    t0 = time.perf_counter()
    ld = loader if loader is not None else WindowLoader(store)
    frame = ld.frame(td, hosts, now=end)
    page = Page(hosts, td, hz, end, frame, empty_samples(), pd.DataFrame())
    page.timings["load"] = time.perf_counter() - t0
    page.display = _section(page, "display", lambda: downsample(frame, max_points), frame)
    # Per-endpoint and per-statement rows (labels) are for recommendations; the page's
    # charts and statistics are about the service as a whole.
    overall = frame[frame["labels"] == ""] if len(frame) else frame
    fit = _contract(overall[overall["ts"] >= end - fit_window(td, hz)]) if len(overall) \
        else overall
    shown = _section(page, "thin", lambda: thin(fit[fit["metric"].isin(CORE_METRICS)]), fit)
    tr = _section(page, "trends", lambda: trends(fit, window=min(td, pd.Timedelta("30min")),
                                                 labels=False), None)
    page.alerts = _section(page, "alerts", lambda: alerts(fit), pd.DataFrame())
    # One current state (see perfkit.dashboard._state): the tiles, the score, its
    # "costing" list and the alert texts all read this overview.
    page.overview = _section(page, "overview", lambda: metric_overview(
        frame, tr, page.metrics, alerts=page.alerts), metric_overview(empty_samples(), None))
    page.score = _section(page, "score", lambda: score(
        current_samples(page.overview, end), alerts=page.alerts), None)
    # no progress bar: the server's output is its one line with the URL, not a terminal
    page.forecasts = _section(page, "forecasts", lambda: forecast(
        shown, hz, labels=False, progress=False), pd.DataFrame())
    page.crossings = _section(page, "crossings", lambda: crossings(
        time_to_threshold(shown, hz, forecasts=page.forecasts, labels=False), shown, hz,
        page.overview), pd.DataFrame())
    since = end - td
    page.alert_events = _section(page, "alert_events", lambda: store.alert_events(
        since=since, host=list(hosts) if hosts else None), pd.DataFrame())
    # the demo's phases: from its own process when it runs here, else as it recorded them
    page.phases = phases if phases is not None else _section(
        page, "phases", lambda: stored_phases(page.alert_events, start=since, end=end),
        pd.DataFrame())
    page.anomalies = _section(page, "anomalies", lambda: end_silent(anomaly_episodes(
        page.alert_events, start=since, end=end, latest=_latest_episodes(store, hosts)),
        frame, end=end),
        anomaly_episodes(pd.DataFrame(), start=since, end=end))
    page.recommendations = _section(page, "recommendations", lambda: _recommend(
        _contract(frame[frame["ts"] >= end - fit_window(td, hz)]) if len(frame) else frame,
        page.active_alerts, statements, cache_stats), pd.DataFrame())
    page.actions = _section(page, "actions", lambda: store.actions(
        since=since, host=list(hosts) if hosts else None), pd.DataFrame())
    page.timings["total"] = time.perf_counter() - t0
    return page


def _latest_episodes(store: Any, hosts: tuple[str, ...] | None) -> pd.DataFrame | None:
    read = getattr(store, "latest_alert_events", None)  # a source without an alert history
    return read(ANOMALY_SEVERITY, host=list(hosts) if hosts else None) if read else None


def _recommend(frame: pd.DataFrame, active: pd.DataFrame, statements: pd.DataFrame | None,
               cache_stats: Mapping[str, Any] | None) -> pd.DataFrame:
    from perfkit.actions import recommend  # imported here: only this section needs it

    return _sorted_recs(recommend(frame, alerts=active, statements=statements,
                                  cache_stats=cache_stats))


def _sorted_recs(recs: pd.DataFrame) -> pd.DataFrame:
    return recs.sort_values("priority", kind="stable", ignore_index=True) if len(recs) else recs

