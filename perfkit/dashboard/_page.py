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

import logging
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from perfkit._downsample import DEFAULT_POINTS, downsample
from perfkit.catalog import CORE_METRICS, GROUPS, find_metric
from perfkit.dashboard._state import (
    current_samples,
    metric_overview,
)
from perfkit.dashboard._window import WindowLoader, parse_window
from perfkit.dashboard._words import fmt, fmt_age, typed_rows
from perfkit.frames import empty_samples

__all__ = [
    "GROUP_ORDER",
    "HORIZONS",
    "MIN_HISTORY",
    "Page",
    "PageCache",
    "already_past",
    "build_page",
    "crossing_text",
    "fit_window",
    "thin",
]

HORIZONS = ("15min", "30min", "1h", "2h", "6h")
"""Forecast horizons the dashboard offers."""

_MAX_FIT = pd.Timedelta("2h")
_REACH = 4             # crossings are predicted at most this many times as far as the history
MIN_HISTORY = pd.Timedelta("2min")
"""History a metric needs before the page draws its forecast or predicts its crossings."""
_SOURCES = {
    "cache": "no cache attached (Monitor.attach_cache)",
    "database": "no database engine instrumented (Monitor.instrument_engine)",
    "application": "no requests tracked yet (Monitor.track or the middleware)",
}
_PERCENTILE = re.compile(r"\.p\d+$")  # latency percentiles have their own chart

log = logging.getLogger("perfkit.dashboard")

GROUP_ORDER = tuple(g for g in GROUPS if g != "process")
"""Groups in the order the page shows them."""


def fit_window(window: str | pd.Timedelta, horizon: str | pd.Timedelta) -> pd.Timedelta:
    """How much trailing history trends, forecasts and alert states are computed on: four
    horizons, at least 30 min, at most 2 h and never more than the window shown.

    Older history says little about the next half hour and would make a
    24-hour window cost 12 times the analysis time of a 2-hour one. Alert
    states come from the same span, so an alert firing for longer than that
    shows "since" the span's start; the Monitor's alert events in the store
    (the timeline) keep the full history.
    """
    w, h = parse_window(window), parse_window(horizon, "horizon")
    return min(w, max(pd.Timedelta("30min"), min(_MAX_FIT, 4 * h)))


@dataclass
class Page:
    """The data behind one render of the page, for one host selection, window and horizon."""

    hosts: tuple[str, ...] | None
    window: pd.Timedelta
    horizon: pd.Timedelta
    generated_at: pd.Timestamp
    frame: pd.DataFrame
    display: pd.DataFrame
    overview: pd.DataFrame
    score: Any = None
    forecasts: pd.DataFrame = field(default_factory=pd.DataFrame)
    crossings: pd.DataFrame = field(default_factory=pd.DataFrame)
    alerts: pd.DataFrame = field(default_factory=pd.DataFrame)
    alert_events: pd.DataFrame = field(default_factory=pd.DataFrame)
    recommendations: pd.DataFrame = field(default_factory=pd.DataFrame)
    actions: pd.DataFrame = field(default_factory=pd.DataFrame)
    phases: pd.DataFrame = field(default_factory=pd.DataFrame)
    errors: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def metrics(self) -> list[str]:
        """Catalogue metrics to chart: the fourteen core ones, then any other unlabelled metric."""
        seen = set(self.frame["metric"].unique()) if len(self.frame) else set()
        extra = sorted(m for m in seen - set(CORE_METRICS)
                       if find_metric(m) is not None and not _PERCENTILE.search(m))
        return list(CORE_METRICS) + extra

    @property
    def data_start(self) -> pd.Timestamp | None:
        """The oldest sample, alert event or action in the window (None: nothing yet)."""
        firsts = [f[c].min() for f, c in ((self.frame, "ts"), (self.alert_events, "ts"),
                                          (self.actions, "requested_at"))
                  if len(f) and c in f]
        firsts = [t for t in firsts if pd.notna(t)]
        return min(firsts) if firsts else None

    @property
    def history(self) -> pd.Timedelta:
        """How much of the window has data: from :attr:`data_start` to now (0 when empty)."""
        start = self.data_start
        return max(pd.Timedelta(0), self.generated_at - start) if start is not None \
            else pd.Timedelta(0)

    @property
    def forecast_reach(self) -> pd.Timedelta:
        """How far ahead charts draw forecasts: the horizon, but at most half the history
        shown, so the past always takes at least two thirds of a chart's width (the
        predicted crossings still look the whole horizon ahead)."""
        start, now = self.history_range()
        return min(self.horizon, (now - start) / 2)

    @property
    def crossings_wait(self) -> pd.Timedelta:
        """How much longer history must grow before crossings are predicted (0: it is enough)."""
        return max(pd.Timedelta(0), _history_needed(self.horizon) - self.history)

    def history_range(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        """Time axis of charts about the past: window start (or, while the data covers
        less than the window, the first data) to now, so a young window is not mostly blank."""
        start = self.generated_at - self.window
        first = self.data_start
        return (max(start, first) if first is not None else start), self.generated_at

    def span(self, metric: str) -> pd.Timedelta:
        """How much history ``metric`` has in the window (0 without samples)."""
        f = self.frame
        if not len(f):
            return pd.Timedelta(0)
        ts = f.loc[(f["metric"] == metric) & (f["labels"] == ""), "ts"]
        return ts.max() - ts.min() if len(ts) else pd.Timedelta(0)

    def drawn_forecast(self, metric: str) -> bool:
        """Whether ``metric``'s chart draws a forecast: the page has one and the metric
        has the history forecasts need on this page (:data:`MIN_HISTORY`)."""
        fc = self.forecasts
        has = bool(len(fc)) and "metric" in fc and bool((fc["metric"] == metric).any())
        return has and self.span(metric) >= MIN_HISTORY

    def chart_range(self, metric: str | None = None) -> tuple[pd.Timestamp, pd.Timestamp]:
        """Time axis of a metric chart: :meth:`history_range`, then :attr:`forecast_reach`
        (only :meth:`history_range` for a ``metric`` whose forecast is not drawn)."""
        start, now = self.history_range()
        if metric is not None and not self.drawn_forecast(metric):
            return start, now
        return start, now + self.forecast_reach

    def chart_note(self, metric: str) -> str:
        """Why ``metric``'s chart is empty ("" when it has data)."""
        f = self.frame
        if len(f) and bool(((f["metric"] == metric) & (f["labels"] == "")).any()):
            return ""
        who = "these hosts" if self.hosts is None or len(self.hosts) != 1 else self.hosts[0]
        if not len(f):
            return f"no samples from {who} in the last {fmt_age(self.window)}"
        group = metric.split(".", 1)[0]
        present = f["metric"].astype(str).str.startswith(group + ".").any()
        if not present and group in _SOURCES:
            return _SOURCES[group]
        return f"no {metric} samples in the last {fmt_age(self.window)}"

    def forecast_note(self, metric: str) -> str:
        """Why ``metric``'s chart draws no forecast ("" when it does, or has no data)."""
        span = self.span(metric)
        if self.chart_note(metric) or self.drawn_forecast(metric):
            return ""
        if span < MIN_HISTORY:
            return f"forecast needs {fmt_age(MIN_HISTORY)} of data (has {fmt_age(span)})"
        return "no forecast: too few distinct samples"

    @property
    def changed(self) -> tuple[pd.Timestamp, str, str] | None:
        """The latest change of any metric's status: (when, metric, new status)."""
        ov = self.overview
        if not len(ov) or "since" not in ov:
            return None
        o = ov[ov["status"] != "missing"].dropna(subset=["since"])
        if not len(o):
            return None
        r: Any = o.sort_values("since", kind="stable").iloc[-1]
        return r["since"], str(r["metric"]), str(r["status"])

    @property
    def active_alerts(self) -> pd.DataFrame:
        """Alerts in state ``firing`` now."""
        a = self.alerts
        return a[a["state"] == "firing"] if len(a) and "state" in a else a


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
    (``start, end, kind``: the demo's load phases) are drawn as bands on the charts.

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
    if phases is not None:
        page.phases = phases
    page.alerts = _section(page, "alerts", lambda: alerts(fit), pd.DataFrame())
    # One current state (see perfkit.dashboard._state): the tiles, the score, its
    # "costing" list and the alert texts all read this overview.
    page.overview = _section(page, "overview", lambda: metric_overview(
        frame, tr, page.metrics, alerts=page.alerts), metric_overview(empty_samples(), None))
    page.score = _section(page, "score", lambda: score(
        current_samples(page.overview, end), alerts=page.alerts), None)
    page.forecasts = _section(page, "forecasts",
                              lambda: forecast(shown, hz, labels=False), pd.DataFrame())
    page.crossings = _section(page, "crossings", lambda: _crossings(
        time_to_threshold(shown, hz, forecasts=page.forecasts, labels=False), shown, hz,
        page.overview), pd.DataFrame())
    since = end - td
    page.alert_events = _section(page, "alert_events", lambda: store.alert_events(
        since=since, host=list(hosts) if hosts else None), pd.DataFrame())
    page.recommendations = _section(page, "recommendations", lambda: _recommend(
        _contract(frame[frame["ts"] >= end - fit_window(td, hz)]) if len(frame) else frame,
        page.active_alerts, statements, cache_stats), pd.DataFrame())
    page.actions = _section(page, "actions", lambda: store.actions(
        since=since, host=list(hosts) if hosts else None), pd.DataFrame())
    page.timings["total"] = time.perf_counter() - t0
    return page


def _recommend(frame: pd.DataFrame, active: pd.DataFrame, statements: pd.DataFrame | None,
               cache_stats: Mapping[str, Any] | None) -> pd.DataFrame:
    from perfkit.actions import recommend  # imported here: only this section needs it

    return _sorted_recs(recommend(frame, alerts=active, statements=statements,
                                  cache_stats=cache_stats))


def _crossings(ttt: pd.DataFrame, frame: pd.DataFrame, horizon: pd.Timedelta,
               overview: pd.DataFrame | None = None) -> pd.DataFrame:
    """Future crossings some path of the interval reaches within the horizon.

    Thresholds already passed are the alerts' business and left out: by the
    forecast's own start and by the page's current state (``overview``), so a
    metric already below its threshold is never "expected to fall" to it. So is a
    metric with less history than a quarter of the horizon (at least 2 min):
    a forecast reaching four times further than its data cries wolf.
    ``expected`` is True when the mean path crosses, False when only the
    pessimistic bound does.
    """
    if not len(ttt):
        return ttt.assign(expected=pd.Series(dtype=bool))
    zero = pd.Timedelta(0)
    future = (ttt["eta_expected"].isna() | (ttt["eta_expected"] > zero)) & \
        (ttt["eta_earliest"].notna() | ttt["eta_expected"].notna())
    if len(frame):
        span = frame.groupby("metric")["ts"].agg(lambda t: t.max() - t.min())
        future &= ttt["metric"].map(span).fillna(zero) >= _history_needed(horizon)
    if overview is not None and len(overview):
        rank = {"ok": 0, "missing": 0, "warning": 1, "critical": 2}
        now = ttt["metric"].map(dict(zip(overview["metric"], overview["status"]))).map(rank)
        future &= ~(now.fillna(0) >= ttt["severity"].map(rank))
    out = ttt[future]
    out = out.assign(expected=out["eta_expected"].notna())
    out = out.assign(text=[crossing_text(r) for r in typed_rows(out)])
    return out.sort_values(["expected", "eta_earliest"], ascending=[False, True],
                           na_position="last", ignore_index=True)


def crossing_text(r: Any) -> str:
    """A predicted crossing in words, from its own columns."""
    m = find_metric(r.metric)
    unit = m.unit if m is not None else ""
    verb = "rise above" if r.direction == "higher" else "fall below"
    where = f"its {r.severity} threshold ({fmt(r.threshold, unit)})"
    if pd.notna(r.eta_expected):
        lo = r.eta_earliest if pd.notna(r.eta_earliest) else r.eta_expected
        hi = f"{fmt_age(r.eta_latest)}" if pd.notna(r.eta_latest) else "later"
        return (f"{r.metric} is expected to {verb} {where} in about {fmt_age(r.eta_expected)} "
                f"(between {fmt_age(lo)} and {hi})")
    return f"{r.metric} could {verb} {where} in {fmt_age(r.eta_earliest)} (pessimistic edge)"


def already_past(overview: pd.DataFrame) -> list[str]:
    """"cache.hit_rate is already below its warning threshold (80 %) since 21:40:12" lines."""
    out: list[str] = []
    if not len(overview) or "status" not in overview:
        return out
    for r in typed_rows(overview[overview["status"].isin(["warning", "critical"])]):
        m = find_metric(r.metric)
        if m is None:
            continue
        thr = getattr(m, r.status)
        side = "above" if m.direction == "higher" else "below"
        when = f" since {r.since:%H:%M:%S}" if pd.notna(r.since) else ""
        level = f" ({fmt(thr, m.unit)})" if thr is not None else ""
        out.append(f"{r.metric} is already {side} its {r.status} threshold{level}{when}")
    return out


def _history_needed(horizon: pd.Timedelta) -> pd.Timedelta:
    """History a metric needs before its crossings are predicted (see :func:`_crossings`)."""
    return max(MIN_HISTORY, horizon / _REACH)


def _sorted_recs(recs: pd.DataFrame) -> pd.DataFrame:
    return recs.sort_values("priority", kind="stable", ignore_index=True) if len(recs) else recs


class PageCache:
    """One :class:`Page` per (hosts, window, horizon) and refresh tick, shared by all sessions.

    Every browser session of a server asks for the same page in the same tick;
    it is computed once (under a per-key lock, so concurrent sessions wait for
    the first instead of repeating it) and reused until the tick ends.
    """

    def __init__(self, store: Any, loader: WindowLoader | None = None, *,
                 max_entries: int = 8) -> None:
        self.store = store
        self.loader = loader if loader is not None else WindowLoader(store)
        self.max_entries = max_entries
        self._lock = threading.Lock()
        self._pages: dict[tuple[Any, ...], Page] = {}
        self._building: dict[tuple[Any, ...], threading.Lock] = {}

    def get(self, *, window: str, horizon: str, host: str | Sequence[str] | None,
            refresh_s: float, now: float | None = None,
            context: Callable[[], dict[str, Any]] | None = None,
            stale_ok: bool = False) -> Page:
        """The page for this tick (``floor(now / refresh_s)``), computed on first request.

        ``context`` returns extra :func:`build_page` arguments (``statements``,
        ``cache_stats``, ``phases``); it is called only when the page is computed.
        ``stale_ok`` (timed refreshes): while this tick's page is not built yet,
        return the previous tick's and build the new one in the background, so a
        refresh never waits for the analysis (the page says when it was built).
        """
        if not refresh_s > 0:
            raise ValueError(f"refresh_s must be positive, got {refresh_s!r}")
        tick = int((time.time() if now is None else now) // refresh_s)
        hosts = None if host is None else ((host,) if isinstance(host, str) else tuple(host))
        key = (hosts, str(window), str(horizon), float(refresh_s), tick)
        with self._lock:
            page = self._pages.get(key)
            if page is not None:
                return page
            previous = self._pages.get((*key[:-1], tick - 1)) if stale_ok else None
            if previous is not None:
                if key not in self._building:
                    self._building[key] = threading.Lock()
                    threading.Thread(target=self._build_quietly, daemon=True,
                                     name="perfkit-dashboard-page",
                                     args=(key, window, horizon, hosts, context)).start()
                return previous
            build_lock = self._building.setdefault(key, threading.Lock())
        with build_lock:
            with self._lock:
                page = self._pages.get(key)
            if page is None:
                page = self._build(key, window, horizon, hosts, context)
        return page

    def _build(self, key: tuple[Any, ...], window: str, horizon: str,
               hosts: tuple[str, ...] | None,
               context: Callable[[], dict[str, Any]] | None) -> Page:
        try:
            page = build_page(self.store, window=window, horizon=horizon, host=hosts,
                              loader=self.loader, **(context() if context else {}))
        finally:
            with self._lock:
                self._building.pop(key, None)
        tick = key[-1]
        with self._lock:
            self._pages[key] = page
            for old in [k for k in self._pages if k[-1] < tick - 1]:
                del self._pages[old]
            while len(self._pages) > self.max_entries:
                del self._pages[next(iter(self._pages))]
        return page

    def _build_quietly(self, *args: Any) -> None:
        build_lock = self._building.get(args[0])
        if build_lock is None:
            return
        with build_lock:
            try:
                self._build(*args)
            except Exception:
                log.debug("background page build failed", exc_info=True)

    def invalidate(self) -> None:
        """Drop every cached page (after an action or a control change)."""
        with self._lock:
            self._pages.clear()

