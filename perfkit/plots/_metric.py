"""Time-series figures of metrics: one metric with thresholds, forecast and bands; percentiles."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

try:
    import plotly.graph_objects as go
except ModuleNotFoundError as exc:  # pragma: no cover - depends on the install
    from perfkit.errors import extra_error

    raise extra_error(exc, "dashboard", "perfkit.plots") from exc

from perfkit._downsample import DEFAULT_POINTS, downsample
from perfkit.catalog import PERCENTILES, find_metric
from perfkit.plots._common import (
    _LAYOUT,
    COLORS,
    _band_limits,
    _line,
    _mode,
    _suffix,
    _thresholds,
    _time_axis,
    _utc,
    _with_gaps,
    _y_range,
)


def metric_figure(frame: pd.DataFrame, metric: str, *, forecast: pd.DataFrame | None = None,
                  thresholds: bool = True, title: str | None = None,
                  max_points: int = DEFAULT_POINTS, height: int = 260,
                  x_range: tuple[pd.Timestamp, pd.Timestamp] | None = None,
                  note: str = "no data in this window", forecast_note: str = "",
                  phases: pd.DataFrame | None = None, now: pd.Timestamp | None = None,
                  anomalies: pd.DataFrame | None = None) -> go.Figure:
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
    ``now`` as a thin vertical line between history and forecast. ``anomalies``
    (``metric, labels, host, start, end, pattern``: anomaly episodes) shade where this
    metric's unlabelled series was anomalous, labelled with the pattern that broke.
    """
    m = find_metric(metric)
    unit = m.unit if m else ""
    f = _series(frame, metric, max_points)
    fig = go.Figure()
    for host, g in (f.groupby("host", sort=True, observed=True) if len(f) else []):
        ts, v = _with_gaps(g["ts"].reset_index(drop=True), g["value"].to_numpy())
        fig.add_trace(_line(len(v))(x=ts, y=v, mode=_mode(len(v)), name=str(host),
                                    connectgaps=False, line={"width": 1.5}))
    fc = _forecast_rows(forecast, metric, f, x_range)
    band = _band(f, fc, m) if fc is not None and len(fc) else None
    if band is not None:
        bt, mean, lower, upper = band
        fig.add_trace(go.Scatter(x=bt.append(bt[::-1]), y=np.r_[upper, lower[::-1]],
                                 fill="toself", fillcolor=_BAND_FILL, mode="lines",
                                 line={"width": 0}, name="forecast interval",
                                 hoverinfo="skip", showlegend=False))
        fig.add_trace(go.Scatter(x=bt, y=mean, mode="lines", name="forecast", showlegend=False,
                                 line={"dash": "dash", "width": 1.5,
                                       "color": COLORS["forecast"]}))
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
    _anomaly_bands(fig, anomalies, metric, x_range, several=f["host"].nunique() > 1
                   if len(f) else False)
    if forecast_note and len(f):
        fig.add_annotation(text=forecast_note, showarrow=False, x=1, y=1, xref="paper",
                           yref="paper", xanchor="right", yanchor="bottom",
                           font={"size": 10, "color": "#8c8c8c"})
    return _time_axis(fig, x_range, empty=not len(f), note=note)


_BAND_FILL = "rgba(108,92,231,0.16)"


def _series(frame: pd.DataFrame, metric: str, max_points: int) -> pd.DataFrame:
    """``metric``'s unlabelled samples, cut to ``max_points`` per host for display."""
    f = frame[(frame["metric"] == metric) & (frame["labels"] == "")] if len(frame) else frame
    return downsample(f, max_points) if len(f) else f


def _forecast_rows(forecast: pd.DataFrame | None, metric: str, f: pd.DataFrame,
                   x_range: tuple[Any, Any] | None) -> pd.DataFrame | None:
    """``metric``'s forecast rows to draw (None without data or forecast), up to the
    first point past the axis end, so that the band reaches the edge."""
    if forecast is None or not len(forecast) or not len(f):
        return None
    fc = forecast[forecast["metric"] == metric].sort_values("ts")
    if x_range is not None:
        end = _utc(x_range[1])
        fc = fc.iloc[:int(fc["ts"].searchsorted(end, side="right")) + 1]
    return fc


def _band(f: pd.DataFrame, fc: pd.DataFrame, m: Any
          ) -> tuple[pd.DatetimeIndex, np.ndarray, np.ndarray, np.ndarray] | None:
    """The forecast as drawn: times, mean, lower and upper, starting at the last sample so
    history and forecast meet without a gap, with ``lower <= mean <= upper`` and clipped to
    the metric's physical range and the data's widened range (None: nothing to draw)."""
    fc = fc.dropna(subset=["mean"])
    if not len(fc):
        return None
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
    last = f.sort_values("ts").groupby("host", sort=False, observed=True).tail(1)
    t0 = last["ts"].max()
    if len(last) and t0 < ts[0]:
        v0 = float(last["value"].mean())
        ts = ts.insert(0, t0)
        mean, lower, upper = (np.r_[v0, a] for a in (mean, lower, upper))
    return ts, mean, lower, upper


def _marks(fig: go.Figure, phases: pd.DataFrame | None, now: pd.Timestamp | None,
           x_range: tuple[Any, Any] | None, *, forecast: bool) -> None:
    """Phase bands behind the data and the "now" line between history and forecast."""
    for a, b, kind in _phase_spans(phases, now, x_range):
        fig.add_vrect(x0=a, x1=b, fillcolor=_PHASE_COLOR, opacity=0.10, line_width=0,
                      layer="below", annotation_text=kind, annotation_position="top left",
                      annotation_font={"size": 9, "color": "#6b6b6b"})
    if now is not None and forecast:
        fig.add_vline(x=_utc(now), line={"color": "#9e9e9e", "width": 1})
        fig.add_annotation(text="forecast", x=_utc(now), xref="x", y=0, yref="paper",
                           xanchor="left", yanchor="bottom", xshift=3, showarrow=False,
                           font={"size": 9, "color": COLORS["forecast"]})


_PHASE_COLOR = "#7f7f7f"


def _phase_spans(phases: pd.DataFrame | None, now: pd.Timestamp | None,
                 x_range: tuple[Any, Any] | None
                 ) -> list[tuple[pd.Timestamp, pd.Timestamp, str]]:
    """The non-steady phases (start, end, kind in words), cut to the history's part of the axis."""
    if phases is None or not len(phases):
        return []
    lo = _utc(x_range[0]) if x_range is not None else None
    hi = _utc(now) if now is not None else (_utc(x_range[1]) if x_range is not None else None)
    spans = []
    for r in phases[phases["kind"] != "steady"].itertuples():
        a, b = _utc(r.start), _utc(r.end)
        if (lo is not None and b <= lo) or (hi is not None and a >= hi):
            continue
        spans.append((max(a, lo) if lo is not None else a, min(b, hi) if hi is not None else b,
                      str(r.kind).replace("_", " ")))
    return spans


def _anomaly_bands(fig: go.Figure, episodes: pd.DataFrame | None, metric: str,
                   x_range: tuple[Any, Any] | None, *, several: bool) -> None:
    """Shade each anomaly episode of ``metric``'s unlabelled series."""
    for a, b, text in _anomaly_spans(episodes, metric, x_range, several=several):
        fig.add_vrect(x0=a, x1=b, fillcolor=COLORS["anomaly"], opacity=0.22, line_width=0,
                      layer="below", annotation_text=text, annotation_position="bottom left",
                      annotation_font={"size": 9, "color": COLORS["anomaly"]})


def _anomaly_spans(episodes: pd.DataFrame | None, metric: str, x_range: tuple[Any, Any] | None,
                   *, several: bool) -> list[tuple[pd.Timestamp, pd.Timestamp, str]]:
    """``metric``'s anomaly episodes (start, end, label) cut to the axis, each at least a
    200th of the axis wide so that a one-sample spike still shows."""
    if episodes is None or not len(episodes):
        return []
    e = episodes[(episodes["metric"] == metric) & (episodes["labels"] == "")]
    lo = _utc(x_range[0]) if x_range is not None else None
    hi = _utc(x_range[1]) if x_range is not None else None
    least = (hi - lo) / 200 if lo is not None and hi is not None else pd.Timedelta(0)
    spans = []
    for r in e.itertuples():
        a, b = _utc(r.start), _utc(r.end)
        if (lo is not None and b < lo) or (hi is not None and a > hi):
            continue
        a = max(a, lo) if lo is not None else a
        b = max(min(b, hi) if hi is not None else b, a + least)
        spans.append((a, b, f"unusual: {r.pattern}" + (f" ({r.host})" if several else "")))
    return spans


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
        for host, h in (g.groupby("host", sort=True, observed=True) if len(g) else []):
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

