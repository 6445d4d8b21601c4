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

import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from perfkit._downsample import DEFAULT_POINTS, downsample
from perfkit.catalog import CORE_METRICS, GROUPS, find_metric
from perfkit.dashboard._window import WindowLoader, parse_window
from perfkit.frames import empty_samples

__all__ = [
    "ARROWS",
    "GROUP_ORDER",
    "HORIZONS",
    "Page",
    "PageCache",
    "action_rows",
    "alert_table",
    "build_page",
    "costly_metrics",
    "fit_window",
    "metric_overview",
    "thin",
]

HORIZONS = ("15min", "30min", "1h", "2h", "6h")
"""Forecast horizons the dashboard offers."""

ARROWS = {"increasing": "↑", "decreasing": "↓", "stable": "→"}
"""Trend label → arrow shown next to a metric."""

_MAX_FIT = pd.Timedelta("2h")
_REACH = 4             # a forecast is shown at most this many times as far as its history
_MIN_HISTORY = pd.Timedelta("2min")  # and predicts crossings only after this much history
_PERCENTILE = re.compile(r"\.p\d+$")  # latency percentiles have their own chart

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
        """How far ahead charts draw forecasts: the horizon, but at most four times the
        history, the limit predicted crossings use too, so a minute of data after a
        start-up does not draw half an hour of forecast."""
        return min(self.horizon, _REACH * self.history)

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

    def chart_range(self, metric: str | None = None) -> tuple[pd.Timestamp, pd.Timestamp]:
        """Time axis of a metric chart: :meth:`history_range`, then :attr:`forecast_reach`
        (only :meth:`history_range` for a ``metric`` the page has no forecast of)."""
        start, now = self.history_range()
        fc = self.forecasts
        drawn = len(fc) and "metric" in fc and bool((fc["metric"] == metric).any())
        if metric is not None and not drawn:
            return start, now
        return start, now + self.forecast_reach

    @property
    def active_alerts(self) -> pd.DataFrame:
        """Alerts in state ``firing`` now."""
        a = self.alerts
        return a[a["state"] == "firing"] if len(a) and "state" in a else a


def metric_overview(frame: pd.DataFrame, trends: pd.DataFrame | None = None,
                    metrics: Sequence[str] = CORE_METRICS) -> pd.DataFrame:
    """Per metric: group, unit, current (last value), average over the frame, trend and arrow.

    ``trends`` is a :func:`perfkit.trends` frame; ``bad_trend`` is True when
    the trend moves the way the catalogue calls worse (rising CPU, falling hit
    rate). ``severity`` is the current value's threshold level. A metric
    without samples has NaN values and ``missing`` True. Several hosts: current
    is the mean of each host's last value, average the mean of all samples.
    ``frame`` must be in time order (as the store returns it).
    """
    f = frame[frame["labels"] == ""] if len(frame) else frame
    tr: dict[str, str] = {}
    if trends is not None and len(trends):
        t = trends[trends["labels"] == ""] if "labels" in trends else trends
        tr = dict(zip(t["metric"], t["trend"]))
    if len(f):
        g = f.groupby(["metric", "host"], sort=False, observed=True)["value"]
        current = g.last().groupby(level="metric").mean().to_dict()
        average = f.groupby("metric", sort=False, observed=True)["value"].mean().to_dict()
    else:
        current, average = {}, {}
    rows = []
    for name in metrics:
        m = find_metric(name)
        cur = float(current.get(name, np.nan))
        trend = tr.get(name, "stable")
        direction = m.direction if m else "none"
        bad = (direction == "higher" and trend == "increasing") or \
              (direction == "lower" and trend == "decreasing")
        rows.append({"metric": name, "group": m.group if m else name.split(".")[0],
                     "unit": m.unit if m else "", "current": cur,
                     "average": float(average.get(name, np.nan)),
                     "trend": trend, "arrow": ARROWS.get(trend, "→"), "bad_trend": bad,
                     "severity": (m.severity(cur) if m and np.isfinite(cur) else None),
                     "missing": not np.isfinite(cur)})
    return pd.DataFrame(rows)


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


def alert_table(alerts: pd.DataFrame, recent: int = 3) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The alerts to show: one active row per series, and the latest resolutions.

    ``alerts`` is a :func:`perfkit.alerts` frame. A metric past its critical
    threshold is also past its warning one; both rules fire, but the page
    shows the series once, at its worst state (firing before pending, critical
    before warning), with a ``text`` column reading ``system.cpu_usage{labels}
    97.2 % ≥ 90 %`` (the latest value against the threshold). The second
    frame holds the ``recent`` series resolved
    most recently, newest first, each once (its warning when both resolved
    together: that is the one saying it is back below every threshold).
    """
    if not len(alerts) or "state" not in alerts:
        return alerts, alerts
    state = alerts["state"].map({"firing": 0, "pending": 1})
    sev = alerts["severity"].map({"critical": 0, "warning": 1}).fillna(2)
    keys = ["metric", "labels"] if "labels" in alerts else ["metric"]
    active = (alerts.assign(_o=state, _s=sev)[state.notna()]
              .sort_values(["_o", "_s"], kind="stable")
              .drop_duplicates(keys).drop(columns=["_o", "_s"]).reset_index(drop=True))
    active["text"] = [_alert_text(r.metric, getattr(r, "labels", ""), r.value, r.threshold)
                      for r in typed_rows(active)]
    done = alerts["state"] == "resolved"
    resolved = (alerts.assign(_s=sev)[done]
                .sort_values(["since", "_s"], ascending=False, kind="stable")
                .drop_duplicates(keys).drop(columns="_s").head(recent).reset_index(drop=True))
    return active, resolved


def typed_rows(frame: pd.DataFrame) -> Iterator[Any]:
    """``frame.itertuples()`` with rows typed ``Any``: the stubs type every field as a scalar
    union, so each access would need a cast."""
    return iter(frame.itertuples())


def _alert_text(metric: str, labels: str, value: float, threshold: float) -> str:
    m = find_metric(metric)
    unit = f" {m.unit}" if m is not None and m.unit else ""
    op = "≤" if m is not None and m.direction == "lower" else "≥"
    name = metric + (f"{{{labels}}}" if labels else "")
    return f"{name} {value:.4g}{unit} {op} {threshold:.4g}{unit}"


def costly_metrics(score: Any, n: int = 5) -> pd.DataFrame:
    """The ``n`` metrics costing a :func:`perfkit.score` the most points, most expensive first.

    Columns ``metric, value, unit, status, cost``: ``value`` is the mean the
    score judged, ``status`` its threshold level, ``cost`` the points it takes
    off the overall score.
    """
    cols = ["metric", "value", "unit", "status", "cost"]
    w = score.worst.head(n) if score is not None else pd.DataFrame(columns=cols)
    units = [m.unit if (m := find_metric(name)) is not None else "" for name in w["metric"]]
    return w.assign(unit=units)[cols].reset_index(drop=True)


def action_rows(actions: pd.DataFrame) -> pd.DataFrame:
    """The actions audit log for display, newest first, before/after as one readable column.

    ``change`` reads ``"process.rss: 212 → 187; gc.collected: 0 → 1.2e+04"`` (the
    metrics measured on both sides); ``outcome`` is the verdict of a finished
    action, else its status (``pending``, ``running``, ``failed``, ``rejected``).
    """
    cols = ["id", "requested_at", "host", "action", "dry_run", "requested_by", "status",
            "outcome", "change", "error", "duration_s"]
    if not len(actions):
        return pd.DataFrame({c: [] for c in cols})
    a = actions.sort_values("id", ascending=False, ignore_index=True)

    def change(before: Any, after: Any) -> str:
        b = before if isinstance(before, dict) else {}
        f = after if isinstance(after, dict) else {}
        parts = [f"{k}: {b[k]:.4g} → {f[k]:.4g}" for k in b
                 if k in f and isinstance(b[k], (int, float)) and isinstance(f[k], (int, float))]
        return "; ".join(parts)

    out = a.assign(
        outcome=[v if isinstance(v, str) and st == "done" else st
                 for v, st in zip(a["verdict"], a["status"])],
        change=[change(b, f) for b, f in zip(a["before"], a["after"])],
        error=a["error"].where(a["error"].notna(), ""))
    return out[cols]


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
               cache_stats: Mapping[str, Any] | None = None) -> Page:
    """Read ``window`` of ``host`` (None: all hosts) from ``store`` and compute every section.

    ``statements`` (a Monitor's ``database.statements()``) and ``cache_stats``
    (its cache's ``stats()``) let :func:`perfkit.recommend` name the slow
    statement and the cause of cache misses; a viewer has neither.

    ``loader`` (a :class:`WindowLoader` on the same store) makes repeated
    calls fetch only new samples. Reading the samples raises what the store
    raises (the caller shows the banner); an analysis section that fails is
    recorded in ``Page.errors``.
    """
    from perfkit.analysis import alerts, forecast, score, time_to_threshold, trends

    td, hz = parse_window(window), parse_window(horizon, "horizon")
    end = now if now is not None else pd.Timestamp.now(tz="UTC")
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
    page.overview = _section(page, "overview", lambda: metric_overview(frame, tr, page.metrics),
                             metric_overview(empty_samples(), None))
    # The score reads the last 5 minutes (perfkit.analysis.score); hand it no more.
    page.score = _section(page, "score", lambda: score(
        fit[fit["ts"] >= end - pd.Timedelta("10min")] if len(fit) else fit), None)
    page.forecasts = _section(page, "forecasts",
                              lambda: forecast(shown, hz, labels=False), pd.DataFrame())
    page.crossings = _section(page, "crossings", lambda: _crossings(
        time_to_threshold(shown, hz, forecasts=page.forecasts, labels=False), shown, hz),
        pd.DataFrame())
    page.alerts = _section(page, "alerts", lambda: alerts(fit), pd.DataFrame())
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


def _crossings(ttt: pd.DataFrame, frame: pd.DataFrame, horizon: pd.Timedelta) -> pd.DataFrame:
    """Future crossings some path of the interval reaches within the horizon.

    Thresholds already passed are the alerts' business and left out. So is a
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
    out = ttt[future]
    out = out.assign(expected=out["eta_expected"].notna())
    return out.sort_values(["expected", "eta_earliest"], ascending=[False, True],
                           na_position="last", ignore_index=True)


def _history_needed(horizon: pd.Timedelta) -> pd.Timedelta:
    """History a metric needs before its crossings are predicted (see :func:`_crossings`)."""
    return max(_MIN_HISTORY, horizon / _REACH)


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
            context: Callable[[], dict[str, Any]] | None = None) -> Page:
        """The page for this tick (``floor(now / refresh_s)``), computed on first request.

        ``context`` returns extra :func:`build_page` arguments (``statements``,
        ``cache_stats``); it is called only when the page is computed.
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
            build_lock = self._building.setdefault(key, threading.Lock())
        with build_lock:
            with self._lock:
                page = self._pages.get(key)
            if page is None:
                page = build_page(self.store, window=window, horizon=horizon, host=hosts,
                                  loader=self.loader, **(context() if context else {}))
                with self._lock:
                    self._pages[key] = page
                    self._building.pop(key, None)
                    for old in [k for k in self._pages if k[-1] < tick - 1][:]:
                        del self._pages[old]
                    while len(self._pages) > self.max_entries:
                        del self._pages[next(iter(self._pages))]
        return page

    def invalidate(self) -> None:
        """Drop every cached page (after an action or a control change)."""
        with self._lock:
            self._pages.clear()

