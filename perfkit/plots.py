"""Plotly figures shared by the dashboard (``app.py``) and the notebooks.

Every function takes perfkit frames (samples, forecast, alert events, actions)
and returns a ``plotly.graph_objects.Figure``; none reads a store or computes a
statistic of its own beyond what is drawn. Long series are cut for display
with :func:`perfkit._downsample.downsample` (min/max-preserving), so a
day of one-second samples draws as fast as an hour.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

try:
    import plotly.graph_objects as go
except ModuleNotFoundError as exc:  # pragma: no cover - depends on the install
    from perfkit.errors import extra_error

    raise extra_error(exc, "dashboard", "perfkit.plots") from exc

from perfkit._downsample import DEFAULT_POINTS, downsample
from perfkit._format import format_value
from perfkit.catalog import PERCENTILES, find_metric
from perfkit.pytest_plugin._plot import benchmark_history_figure

__all__ = [
    "COLORS",
    "action_history_figure",
    "alert_timeline_figure",
    "benchmark_history_figure",
    "fleet_spread_figure",
    "group_scores_figure",
    "health_gauge",
    "metric_figure",
    "percentiles_figure",
]

COLORS = {"ok": "#2e9d5b", "warning": "#f0a30a", "critical": "#d62728", "forecast": "#6c5ce7",
          "improved": "#2e9d5b", "no change": "#8c8c8c", "worse": "#d62728", "failed": "#7f0000",
          "pending": "#1f77b4", "running": "#1f77b4", "rejected": "#7f7f7f", "dry run": "#17becf"}
"""Colours by severity / verdict, the same on every figure."""

_LAYOUT: dict[str, Any] = {"margin": {"l": 10, "r": 10, "t": 36, "b": 10},
                           "template": "plotly_white", "hovermode": "x unified"}


def _line(points: int) -> Any:
    # SVG for display-sized series: a page of charts would need one WebGL context each,
    # and browsers cap those (Chrome: 16) and draw them slowly without a GPU.
    return go.Scatter if points <= 5_000 else go.Scattergl


def _mode(points: int) -> str:
    # a line needs two points: the first sample of a fresh window is drawn as a dot
    return "lines" if points > 2 else "lines+markers"


def _with_gaps(ts: pd.Series, values: np.ndarray) -> tuple[pd.Series, np.ndarray]:
    # A break in collection (monitoring stopped) must show as a break, not a straight line.
    if len(ts) < 3:
        return ts, values
    dt = np.diff(ts.to_numpy(dtype="datetime64[ns]").view("int64"))
    cut = np.flatnonzero(dt > 10 * max(float(np.median(dt)), 1.0))
    if cut.size == 0:
        return ts, values
    t = ts.to_numpy(dtype="datetime64[ns]")
    t = np.insert(t, cut + 1, t[cut] + 1)
    v = np.insert(values.astype(float), cut + 1, np.nan)
    return pd.Series(pd.DatetimeIndex(t, tz="UTC")), v


def _suffix(unit: str) -> str:
    """The tick suffix that puts ``unit`` on a y axis (a count has none)."""
    if not unit or unit == "count":
        return ""
    return "/s" if unit == "1/s" else f" {unit}"


def metric_figure(frame: pd.DataFrame, metric: str, *, forecast: pd.DataFrame | None = None,
                  thresholds: bool = True, title: str | None = None,
                  max_points: int = DEFAULT_POINTS, height: int = 260,
                  x_range: tuple[pd.Timestamp, pd.Timestamp] | None = None,
                  note: str = "no data in this window", forecast_note: str = "",
                  phases: pd.DataFrame | None = None, now: pd.Timestamp | None = None
                  ) -> go.Figure:
    """One metric over time (one line per host), its warning/critical lines and forecast band.

    ``frame`` is a samples frame (other metrics and labelled rows are ignored);
    ``forecast`` a :func:`perfkit.forecast` frame (``metric, ts, mean, lower,
    upper``), drawn from the last sample as a dashed mean inside one closed band
    with ``lower <= mean <= upper`` everywhere, clipped to the metric's physical
    range and to the data's range widened by that range on each side (so a wide
    interval after a level shift cannot draw 240 GB free on a 24 GB machine).
    ``x_range`` fixes the time axis; forecast points past its end are not drawn.
    Threshold labels sit in the right margin, beside their lines, never on the
    data; the y axis carries the unit. ``note`` says why an empty chart is
    empty, ``forecast_note`` why a chart with data has no forecast. ``phases``
    (``kind, start, end``) are drawn as labelled bands (``steady`` is not);
    ``now`` as a thin vertical line between history and forecast.
    """
    m = find_metric(metric)
    unit = m.unit if m else ""
    f = frame[(frame["metric"] == metric) & (frame["labels"] == "")] if len(frame) else frame
    f = downsample(f, max_points) if len(f) else f
    fig = go.Figure()
    for host, g in (f.groupby("host", sort=True) if len(f) else []):
        ts, v = _with_gaps(g["ts"].reset_index(drop=True), g["value"].to_numpy())
        fig.add_trace(_line(len(v))(x=ts, y=v, mode=_mode(len(v)), name=str(host),
                                    connectgaps=False, line={"width": 1.5}))
    fc = forecast[forecast["metric"] == metric].sort_values("ts") \
        if forecast is not None and len(forecast) and len(f) else None
    if fc is not None and x_range is not None:
        # keep the first point past the edge, so the band reaches the axis end
        end = _utc(x_range[1])
        fc = fc.iloc[:int(fc["ts"].searchsorted(end, side="right")) + 1]
    if fc is not None and len(fc):
        _add_band(fig, f, fc, m)
    fig.update_layout(title={"text": title or metric, "font": {"size": 13}}, height=height,
                      showlegend=f["host"].nunique() > 1 if len(f) else False,
                      legend={"orientation": "h", "y": -0.25}, uirevision=metric,
                      **{**_LAYOUT, "margin": {**_LAYOUT["margin"], "r": 86}})
    fig.update_yaxes(ticksuffix=_suffix(unit), title=None if _suffix(unit) else unit or None)
    y_range = _y_range(f["value"] if len(f) else pd.Series(dtype=float), m,
                       fc["mean"] if fc is not None and len(fc) else None)
    if y_range is not None:
        fig.update_yaxes(range=y_range)
    if thresholds and m is not None:
        _thresholds(fig, m, y_range, height)
    _marks(fig, phases, now, x_range, forecast=fc is not None and len(fc) > 0)
    if forecast_note and len(f):
        fig.add_annotation(text=forecast_note, showarrow=False, x=1, y=1, xref="paper",
                           yref="paper", xanchor="right", yanchor="bottom",
                           font={"size": 10, "color": "#8c8c8c"})
    return _time_axis(fig, x_range, empty=not len(f), note=note)


def _utc(t: Any) -> pd.Timestamp:
    ts = pd.Timestamp(t)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts  # perfkit's times are UTC
    return ts.floor("us")  # plotly's JSON keeps microseconds (and warns about dropping ns)


def _add_band(fig: go.Figure, f: pd.DataFrame, fc: pd.DataFrame, m: Any) -> None:
    """The forecast: one closed band polygon (upper out, lower back) and the dashed mean,
    both starting at the last sample so history and forecast meet without a gap."""
    fc = fc.dropna(subset=["mean"])
    if not len(fc):
        return
    lo_m = m.lower_bound if m is not None else None
    hi_m = m.upper_bound if m is not None else None
    mean = fc["mean"].clip(lo_m, hi_m).to_numpy(float)
    lo_b, hi_b = _band_limits(f["value"])
    lo_b = max(lo_b, lo_m) if lo_b is not None and lo_m is not None else lo_b
    hi_b = min(hi_b, hi_m) if hi_b is not None and hi_m is not None else hi_b
    lower = fc["lower"].fillna(fc["mean"]).clip(lo_b, hi_b).to_numpy(float)
    upper = fc["upper"].fillna(fc["mean"]).clip(lo_b, hi_b).to_numpy(float)
    lower, upper = np.minimum(lower, mean), np.maximum(upper, mean)
    ts = pd.DatetimeIndex(fc["ts"])
    last = f.sort_values("ts").groupby("host", sort=False).tail(1)
    t0 = last["ts"].max()
    if len(last) and t0 < ts[0]:
        v0 = float(last["value"].mean())
        ts = ts.insert(0, t0)
        mean, lower, upper = (np.r_[v0, a] for a in (mean, lower, upper))
    fig.add_trace(go.Scatter(x=ts.append(ts[::-1]), y=np.r_[upper, lower[::-1]],
                             fill="toself", fillcolor="rgba(108,92,231,0.16)", mode="lines",
                             line={"width": 0}, name="forecast interval", hoverinfo="skip",
                             showlegend=False))
    fig.add_trace(go.Scatter(x=ts, y=mean, mode="lines", name="forecast", showlegend=False,
                             line={"dash": "dash", "width": 1.5, "color": COLORS["forecast"]}))


def _thresholds(fig: go.Figure, m: Any, y_range: list[float] | None, height: int) -> None:
    """Dotted threshold lines, labelled in the right margin beside each line."""
    levels = [(sev, lv) for sev, lv in (("warning", m.warning), ("critical", m.critical))
              if lv is not None]
    shift = {sev: 0 for sev, _ in levels}
    if len(levels) == 2 and y_range is not None and y_range[1] > y_range[0]:
        px = abs(levels[0][1] - levels[1][1]) / (y_range[1] - y_range[0]) * (height - 46)
        if px < 13:  # labels would overlap: push them apart, the worse one outward
            up = "critical" if (m.direction == "higher") else "warning"
            shift = {s: (7 if s == up else -7) for s, _ in levels}
    for sev, level in levels:
        fig.add_hline(y=level, line={"dash": "dot", "color": COLORS[sev], "width": 1})
        fig.add_annotation(text=f"{sev} {format_value(level, m.unit)}", x=1, xref="paper",
                           y=level, yref="y", xanchor="left", xshift=4, yshift=shift[sev],
                           showarrow=False, font={"size": 10, "color": COLORS[sev]})


def _marks(fig: go.Figure, phases: pd.DataFrame | None, now: pd.Timestamp | None,
           x_range: tuple[Any, Any] | None, *, forecast: bool) -> None:
    """Phase bands behind the data and the "now" line between history and forecast."""
    lo = _utc(x_range[0]) if x_range is not None else None
    hi = _utc(now) if now is not None else (_utc(x_range[1]) if x_range is not None else None)
    if phases is not None and len(phases):
        for r in phases[phases["kind"] != "steady"].itertuples():
            a, b = _utc(r.start), _utc(r.end)
            if (lo is not None and b <= lo) or (hi is not None and a >= hi):
                continue
            a = max(a, lo) if lo is not None else a
            b = min(b, hi) if hi is not None else b
            fig.add_vrect(x0=a, x1=b, fillcolor=_PHASE_COLOR, opacity=0.10, line_width=0,
                          layer="below", annotation_text=str(r.kind).replace("_", " "),
                          annotation_position="top left",
                          annotation_font={"size": 9, "color": "#6b6b6b"})
    if now is not None and forecast:
        fig.add_vline(x=_utc(now), line={"color": "#9e9e9e", "width": 1})
        fig.add_annotation(text="forecast", x=_utc(now), xref="x", y=0, yref="paper",
                           xanchor="left", yanchor="bottom", xshift=3, showarrow=False,
                           font={"size": 9, "color": COLORS["forecast"]})


_PHASE_COLOR = "#7f7f7f"


def _band_limits(values: pd.Series) -> tuple[float | None, float | None]:
    """The range a forecast band is drawn in: the data's range widened by its span on
    each side (by a tenth of the level for a flat series); no limit without data."""
    v = values.to_numpy(dtype=float)
    v = v[np.isfinite(v)]
    if not v.size:
        return None, None
    lo, hi = float(v.min()), float(v.max())
    span = hi - lo if hi > lo else max(abs(hi) * 0.1, 1e-9)
    return lo - span, hi + span


def _y_range(values: pd.Series, m: Any, mean: pd.Series | None) -> list[float] | None:
    """The y axis spans the data, its thresholds and the forecast's mean path.

    The interval band may reach further (a wide interval on a short history) and
    is then cut at the edge, rather than squeezing the measured line flat.
    """
    parts = [values.to_numpy(dtype=float)]
    if mean is not None:
        # a mean path running away from the data leaves through the edge instead of
        # squeezing the measured line flat
        parts.append(mean.clip(*_band_limits(values)).to_numpy(dtype=float))
    if m is not None:
        parts.append(np.array([v for v in (m.warning, m.critical) if v is not None], float))
    allv = np.concatenate(parts) if parts else np.array([])
    allv = allv[np.isfinite(allv)]
    if not allv.size:
        return None
    lo, hi = float(allv.min()), float(allv.max())
    pad = 0.08 * (hi - lo) if hi > lo else max(abs(hi) * 0.1, 1.0)
    lo, hi = lo - pad, hi + pad
    if m is not None and m.lower_bound is not None:
        lo = max(lo, m.lower_bound - pad / 2)
    if m is not None and m.upper_bound is not None:
        hi = min(hi, m.upper_bound + pad / 2)
    return [lo, hi]


def health_gauge(overall: float | None, *, title: str = "Health score", height: int = 220,
                 worst: str | None = None) -> go.Figure:
    """A 0–100 gauge for :func:`perfkit.score`'s overall value (None: no data yet).

    ``worst`` (``"warning"`` / ``"critical"``), the worst metric status, colours the
    bar at least that badly: an average of 95 with one critical metric is not green.
    """
    value = float(overall) if overall is not None and np.isfinite(overall) else None
    color = (COLORS["ok"] if value is not None and value >= 80 else
             COLORS["warning"] if value is not None and value >= 60 else COLORS["critical"])
    if worst == "critical" or (worst == "warning" and color == COLORS["ok"]):
        color = COLORS[worst]
    fig = go.Figure(go.Indicator(
        mode="gauge+number", value=value if value is not None else 0,
        number={"suffix": " / 100", "valueformat": ".0f"},
        title={"text": title if value is not None else f"{title} (no data yet)"},
        gauge={"axis": {"range": [0, 100]}, "bar": {"color": color},
               "steps": [{"range": [0, 60], "color": "#fbe3e3"},
                         {"range": [60, 80], "color": "#fdf1d6"},
                         {"range": [80, 100], "color": "#e1f3e8"}]}))
    # side margins wide enough for the "100" tick label at the end of the arc
    fig.update_layout(height=height, margin={"l": 35, "r": 35, "t": 50, "b": 10})
    return fig


def group_scores_figure(groups: Mapping[str, float | None],
                        breakdown: pd.DataFrame | None = None, *, height: int = 220) -> go.Figure:
    """Per-group scores as bars; hovering a bar names the metrics that cost it points.

    ``breakdown`` (optional) has ``group``, ``metric`` and ``penalty`` columns,
    as in :func:`perfkit.score`'s breakdown frame.
    """
    names = [g for g in groups]
    vals = [groups[g] for g in names]
    hover = []
    for g in names:
        text = ""
        if breakdown is not None and len(breakdown) and {"group", "metric", "penalty"} <= set(
                breakdown.columns):
            b = breakdown[(breakdown["group"] == g) & (breakdown["penalty"] > 0)] \
                .sort_values("penalty", ascending=False).head(3)
            text = "<br>".join(f"{r.metric}: −{r.penalty:.1f}" for r in b.itertuples())
        hover.append(text or "nothing costs points")
    shown = [v if v is not None and np.isfinite(v) else 0.0 for v in vals]
    colors = [COLORS["ok"] if v is not None and v >= 80 else COLORS["warning"]
              if v is not None and v >= 60 else COLORS["critical"] if v is not None
              else "#cccccc" for v in vals]
    labels = [f"{v:.0f}" if v is not None and np.isfinite(v) else "missing" for v in vals]
    # a short bar (a group at 0) keeps its number beside it instead of losing it
    fig = go.Figure(go.Bar(x=shown, y=names, orientation="h", marker_color=colors, text=labels,
                           textposition=["inside" if v >= 15 else "outside" for v in shown],
                           cliponaxis=False, hovertext=hover, hoverinfo="text"))
    fig.update_layout(height=height, xaxis={"range": [0, 100], "title": "score"},
                      title={"text": "Scores by group", "font": {"size": 13}},
                      **{**_LAYOUT, "hovermode": "closest"})
    return fig


def percentiles_figure(frame: pd.DataFrame, metric: str, *, max_points: int = DEFAULT_POINTS,
                       height: int = 260,
                       x_range: tuple[pd.Timestamp, pd.Timestamp] | None = None) -> go.Figure:
    """p50 / p95 / p99 of a latency metric over time (``<metric>.p50`` etc. in ``frame``).

    ``x_range`` fixes the time axis (the dashboard aligns it with the metric charts).
    """
    names = [f"{metric}.p{p}" for p in PERCENTILES]
    f = frame[frame["metric"].isin(names) & (frame["labels"] == "")] if len(frame) else frame
    f = downsample(f, max_points) if len(f) else f
    fig = go.Figure()
    for name, dash in zip(names, ("solid", "dash", "dot")):
        g = f[f["metric"] == name] if len(f) else f
        for host, h in (g.groupby("host", sort=True) if len(g) else []):
            ts, v = _with_gaps(h["ts"].reset_index(drop=True), h["value"].to_numpy())
            label = name.rsplit(".", 1)[1] + (f" {host}" if f["host"].nunique() > 1 else "")
            fig.add_trace(_line(len(v))(x=ts, y=v, mode=_mode(len(v)), name=label,
                                        line={"dash": dash, "width": 1.5}))
    m = find_metric(metric)
    fig.update_layout(title={"text": f"{metric} percentiles", "font": {"size": 13}},
                      height=height, legend={"orientation": "h", "y": -0.25},
                      uirevision=f"{metric}.pct",
                      **{**_LAYOUT, "margin": {**_LAYOUT["margin"], "r": 86}})
    unit = m.unit if m else ""
    fig.update_yaxes(ticksuffix=_suffix(unit))
    if m is not None:
        vals = f["value"] if len(f) else pd.Series(dtype=float)
        y_range = _y_range(vals, m, None)
        if y_range is not None:
            fig.update_yaxes(range=y_range)
        _thresholds(fig, m, y_range, height)
    return _time_axis(fig, x_range, empty=not len(f), note="no percentiles in this window")


def fleet_spread_figure(spread: pd.DataFrame, metric: str, *, height: int = 260,
                        x_range: tuple[pd.Timestamp, pd.Timestamp] | None = None) -> go.Figure:
    """A metric across the hosts of a fleet over time: the median host and the worst one
    (a :func:`perfkit.dashboard.fleet_spread` frame; the worst host's name is in the hover)."""
    fig = go.Figure()
    if len(spread):
        fig.add_trace(go.Scatter(x=spread["ts"], y=spread["median"], mode="lines",
                                 name="median host", line={"width": 2}))
        fig.add_trace(go.Scatter(x=spread["ts"], y=spread["worst"], mode="lines",
                                 name="worst host", line={"width": 1.5, "dash": "dash",
                                                          "color": COLORS["critical"]},
                                 customdata=spread["worst_host"],
                                 hovertemplate="%{y:.4g} (%{customdata})"))
    m = find_metric(metric)
    if m is not None:
        for sev, level in (("warning", m.warning), ("critical", m.critical)):
            if level is not None:
                fig.add_hline(y=level, line={"dash": "dot", "color": COLORS[sev], "width": 1})
    fig.update_layout(title={"text": f"{metric} across hosts", "font": {"size": 13}},
                      height=height, yaxis_title=m.unit if m else "",
                      legend={"orientation": "h", "y": -0.25}, **_LAYOUT)
    return _time_axis(fig, x_range, empty=not len(spread), note="no samples in this window")


def alert_timeline_figure(events: pd.DataFrame, *, until: pd.Timestamp | None = None,
                          height: int = 240,
                          x_range: tuple[pd.Timestamp, pd.Timestamp] | None = None) -> go.Figure:
    """Firing periods per metric as bars coloured by severity, from alert events.

    ``events`` has ``ts, metric, severity, state`` (``Store.alert_events()``): a
    ``firing`` event opens a bar, the next ``resolved`` of that metric and
    severity closes it; a bar still open runs to ``until`` (default now).
    ``x_range`` fixes the time axis.
    """
    end = until if until is not None else pd.Timestamp.now(tz="UTC")
    rows: list[dict[str, Any]] = []
    if len(events):
        keys = ["metric", "severity"] + (["labels"] if "labels" in events else []) + \
            (["host"] if "host" in events else [])
        for key, g in events.sort_values("ts").groupby(keys, sort=False):
            opened = None
            for ev in g.itertuples():
                if ev.state == "firing" and opened is None:
                    opened = ev.ts
                elif ev.state == "resolved" and opened is not None:
                    rows.append({"metric": key[0], "severity": key[1], "start": opened,
                                 "end": ev.ts})
                    opened = None
            if opened is not None:
                rows.append({"metric": key[0], "severity": key[1], "start": opened, "end": end,
                             "open": True})
    fig = go.Figure()
    for sev in ("warning", "critical"):
        b = [r for r in rows if r["severity"] == sev]
        if not b:
            continue
        fig.add_trace(go.Bar(
            base=[r["start"] for r in b],
            x=[(r["end"] - r["start"]).total_seconds() * 1000 for r in b],
            y=[r["metric"] for r in b], orientation="h", name=sev,
            marker_color=COLORS[sev], opacity=0.85,
            hovertext=[f"{r['metric']} {sev}<br>{r['start']:%H:%M:%S} → "
                       f"{'now' if r.get('open') else format(r['end'], '%H:%M:%S')}" for r in b],
            hoverinfo="text"))
    fig.update_layout(title={"text": "Alert timeline", "font": {"size": 13}}, height=height,
                      barmode="overlay", xaxis={"type": "date"},
                      **{**_LAYOUT, "hovermode": "closest"})
    return _time_axis(fig, x_range, empty=not rows,
                      note="no alert events recorded in this window (a Monitor records them)")


def action_history_figure(actions: pd.DataFrame, *, height: int = 240,
                          x_range: tuple[pd.Timestamp, pd.Timestamp] | None = None) -> go.Figure:
    """Executed and requested actions over time, one row per action, coloured by verdict.

    ``actions`` is ``Store.actions()``: ``id, requested_at, action, status,
    verdict, dry_run, requested_by``. ``x_range`` fixes the time axis.
    """
    fig = go.Figure()
    if len(actions):
        a = actions.copy()
        outcome = np.where(a["status"].isin(["done"]), a["verdict"].fillna("no change"),
                           a["status"])
        outcome = np.where(a["dry_run"].fillna(False).astype(bool) & (a["status"] == "done"),
                           "dry run", outcome)
        a["outcome"] = outcome
        for name, g in a.groupby("outcome", sort=True):
            fig.add_trace(go.Scatter(
                x=g["requested_at"], y=g["action"], mode="markers", name=str(name),
                marker={"size": 11, "color": COLORS.get(str(name), "#444"),
                        "symbol": "diamond" if name == "dry run" else "circle"},
                hovertext=[f"#{r.id} {r.action}: {r.outcome}<br>by {r.requested_by}"
                           for r in g.itertuples()], hoverinfo="text"))
    fig.update_layout(title={"text": "Action history", "font": {"size": 13}}, height=height,
                      **{**_LAYOUT, "hovermode": "closest"})
    return _time_axis(fig, x_range, empty=not len(actions), note="no actions yet")


def _time_axis(fig: go.Figure, x_range: tuple[Any, Any] | None, *, empty: bool,
               note: str) -> go.Figure:
    """Pin the x axis to ``x_range`` and say so when the figure has no data."""
    if x_range is not None:
        # type "date" too: an empty figure would otherwise read the range as numbers
        fig.update_xaxes(range=[_utc(x) for x in x_range], type="date")
    if empty:
        fig.add_annotation(text=note, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    return fig
