"""The data behind one render of the dashboard page (:class:`Page`) and the page's constants.

:func:`perfkit.dashboard.build_page` fills a :class:`Page`; its properties say what
each chart shows and, when it shows nothing, why.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from perfkit.catalog import CORE_METRICS, GROUPS, find_metric
from perfkit.dashboard._window import parse_window
from perfkit.dashboard._words import fmt_age

__all__ = ["GROUP_ORDER", "HORIZONS", "MIN_HISTORY", "Page", "crossing_reach", "fit_window",
           "forecast_basis"]

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
    anomalies: pd.DataFrame = field(default_factory=pd.DataFrame)
    errors: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    _figures: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def figure(self, key: str, build: Callable[[], Any]) -> Any:
        """``build()``'s figure, built once per page and ``key``: every session and timed
        refresh shown this page reuses it (a figure costs tens of milliseconds to build,
        a page shows a dozen, and the page cache shares one page between sessions)."""
        fig = self._figures.get(key)
        return fig if fig is not None else self._figures.setdefault(key, build())

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
        return max(pd.Timedelta(0), MIN_HISTORY - self.history)

    @property
    def crossing_reach(self) -> pd.Timedelta:
        """How far ahead this page's crossings are looked for (:func:`crossing_reach`)."""
        return crossing_reach(self.history, self.horizon)

    @property
    def forecast_basis(self) -> str:
        """What the forecasts stand on, in words ("" once the history carries the horizon)."""
        return forecast_basis(self.history, self.horizon)

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


def crossing_reach(history: pd.Timedelta, horizon: pd.Timedelta) -> pd.Timedelta:
    """How far ahead crossings are predicted for a metric with ``history`` of data.

    Nothing below :data:`MIN_HISTORY`; then four times the history, at most the
    horizon: a forecast reaching further than that past its data cries wolf. So
    2 min of data look 8 min ahead, and the 30 min horizon is whole from 7 min 30 s.
    """
    if history < MIN_HISTORY:
        return pd.Timedelta(0)
    return min(horizon, _REACH * history)


def forecast_basis(history: pd.Timedelta, horizon: pd.Timedelta) -> str:
    """How much data the forecasts stand on, in words for the page ("" when it is enough
    for the whole ``horizon``): said while :func:`crossing_reach` is shorter than it."""
    if history < MIN_HISTORY:
        return (f"Forecasts start at {fmt_age(MIN_HISTORY)} of data (has {fmt_age(history)}); "
                "nothing is drawn or predicted before that.")
    reach = crossing_reach(history, horizon)
    if reach >= horizon:
        return ""
    return (f"Forecast from {fmt_age(history)} of data: a short history, so crossings are "
            f"looked for only {fmt_age(reach)} ahead ({_REACH}× the history), the whole "
            f"{fmt_age(horizon)} from {fmt_age(horizon / _REACH)} of data.")


