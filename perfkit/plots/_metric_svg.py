"""One metric's chart as SVG text, for a page that must show charts before plotly.js loads."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

from perfkit._format import format_value
from perfkit.catalog import find_metric
from perfkit.plots import _svg as svg
from perfkit.plots._common import COLORS, STYLE, _with_gaps, _y_range
from perfkit.plots._metric import (
    _BAND_FILL,
    _PHASE_COLOR,
    _anomaly_spans,
    _band,
    _forecast_rows,
    _phase_spans,
    _series,
)

_W = 440.0  # about a half-width column's pixels: text at its own size
_LEFT, _RIGHT, _TOP, _BOTTOM = 58.0, 86.0, 36.0, 24.0


def metric_svg(frame: pd.DataFrame, metric: str, *, forecast: pd.DataFrame | None = None,
               title: str | None = None, max_points: int = 400, height: int = 260,
               x_range: tuple[pd.Timestamp, pd.Timestamp] | None = None,
               note: str = "no data in this window", forecast_note: str = "",
               phases: pd.DataFrame | None = None, now: pd.Timestamp | None = None,
               anomalies: pd.DataFrame | None = None) -> str:
    """:func:`~perfkit.plots.metric_figure` as a self-contained SVG element (text).

    The same lines per host, warning/critical lines, forecast band and dashed mean,
    phase and anomaly bands and notes, from the same data preparation, drawn
    without plotly.js and without hover or zoom: the dashboard shows it while a
    first visit's browser is still loading plotly, then the interactive figure.
    """
    m = find_metric(metric)
    unit = m.unit if m else ""
    f = _series(frame, metric, max_points)
    fc = _forecast_rows(forecast, metric, f, x_range)
    band = _band(f, fc, m) if fc is not None and len(fc) else None
    h = float(height)
    plot = (_LEFT, _TOP, _W - _RIGHT, h - _BOTTOM)
    times = ([f["ts"]] if len(f) else []) + ([band[0]] if band is not None else [])
    x0, x1 = svg.time_limits(times, x_range, now)
    y_range = _y_range(f["value"] if len(f) else pd.Series(dtype=float), m,
                       fc["mean"] if fc is not None and len(fc) else None)
    y0, y1 = y_range if y_range is not None else (0.0, 1.0)

    def px(t: Any) -> np.ndarray:
        return svg.x_of(t, plot, x0, x1)

    def py(v: np.ndarray) -> np.ndarray:
        return plot[3] - (np.asarray(v, float) - y0) / max(y1 - y0, 1e-300) * (plot[3] - plot[1])

    # ids are page-wide: one clip path per metric's chart
    clip = "pk-clip-" + re.sub(r"[^A-Za-z0-9_-]", "-", metric)
    parts = [f'<clipPath id="{clip}"><rect x="{plot[0]:.0f}" y="{plot[1]:.0f}" '
             f'width="{plot[2] - plot[0]:.0f}" height="{plot[3] - plot[1]:.0f}"/></clipPath>',
             f'<rect x="0" y="0" width="{_W:.0f}" height="{h:.0f}" fill="white"/>',
             svg.text(_W * 0.05, 22, title or metric, size=13)]
    parts += _grid(plot, x0, x1, y0, y1, unit, py)
    for a, b, kind in _phase_spans(phases, now, x_range):
        parts.append(_vband(px(a)[0], px(b)[0], plot, _PHASE_COLOR, 0.10, kind, "#6b6b6b",
                            top=True))
    several = bool(len(f)) and f["host"].nunique() > 1
    for a, b, text in _anomaly_spans(anomalies, metric, x_range, several=several):
        parts.append(_vband(px(a)[0], px(b)[0], plot, COLORS["anomaly"], 0.22, text,
                            COLORS["anomaly"], top=False))
    colors = STYLE["colorway"]
    for i, (_, g) in enumerate(f.groupby("host", sort=True, observed=True) if len(f) else []):
        ts, v = _with_gaps(g["ts"].reset_index(drop=True), g["value"].to_numpy())
        parts += _polylines(px(ts), py(v), colors[i % len(colors)], 1.5, clip=clip)
    if band is not None:
        bt, mean, lower, upper = band
        xs, lo_b, hi_b = px(bt), py(lower), py(upper)
        pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in
                       zip(np.r_[xs, xs[::-1]], np.r_[hi_b, lo_b[::-1]]))
        parts.append(f'<polygon points="{pts}" fill="{_BAND_FILL}" clip-path="url(#{clip})"/>')
        parts += _polylines(xs, py(mean), COLORS["forecast"], 1.5, clip=clip, dash="6,4")
        if now is not None:
            x = px(now)[0]
            parts.append(f'<line x1="{x:.1f}" y1="{plot[1]:.0f}" x2="{x:.1f}" y2="{plot[3]:.0f}" '
                         f'stroke="#9e9e9e" stroke-width="1"/>'
                         + svg.text(x + 3, plot[3] - 3, "forecast", size=9,
                                    color=COLORS["forecast"]))
    if m is not None:
        parts += _threshold_lines(m, plot, py, y0, y1)
    if not len(f):
        parts.append(svg.text((plot[0] + plot[2]) / 2, (plot[1] + plot[3]) / 2, note, size=12,
                              anchor="middle"))
    elif forecast_note:
        parts.append(svg.text(plot[2], plot[1] - 4, forecast_note, size=10, color="#8c8c8c",
                              anchor="end"))
    return svg.element(_W, h, f"{title or metric} chart", parts)


def _grid(plot: svg.Box, x0: float, x1: float, y0: float, y1: float, unit: str,
          py: Any) -> list[str]:
    """Horizontal grid lines with y labels, and the time labels."""
    out = []
    for v in svg.nice_ticks(y0, y1):
        y = float(py(np.array([v]))[0])
        out.append(f'<line x1="{plot[0]:.0f}" y1="{y:.1f}" x2="{plot[2]:.0f}" y2="{y:.1f}" '
                   f'stroke="{svg.GRID}"/>' + svg.text(plot[0] - 4, y + 4, _tick_label(v, unit),
                                                      anchor="end"))
    return out + svg.time_labels(plot, x0, x1)


def _tick_label(v: float, unit: str) -> str:
    text = format_value(round(v, 12), "")
    return text + ("/s" if unit == "1/s" else f" {unit}" if unit and unit != "count" else "")


def _polylines(xs: np.ndarray, ys: np.ndarray, color: str, width: float, *, clip: str,
               dash: str | None = None) -> list[str]:
    """One polyline per unbroken run of finite points (a gap is a break, not a line);
    a run of one point is drawn as a dot."""
    ok = np.isfinite(xs) & np.isfinite(ys)
    runs = np.split(np.arange(len(xs)), np.flatnonzero(~ok))
    out = []
    style = f' stroke-dasharray="{dash}"' if dash else ""
    for run in runs:
        run = run[ok[run]]
        if len(run) == 1:
            out.append(f'<circle cx="{xs[run[0]]:.1f}" cy="{ys[run[0]]:.1f}" r="2.5" '
                       f'fill="{color}" clip-path="url(#{clip})"/>')
        elif len(run) > 1:
            pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs[run], ys[run]))
            out.append(f'<polyline points="{pts}" fill="none" stroke="{color}" '
                       f'stroke-width="{width}"{style} clip-path="url(#{clip})"/>')
    return out


def _vband(a: float, b: float, plot: svg.Box, color: str,
           opacity: float, text: str, text_color: str, *, top: bool) -> str:
    y = plot[1] + 10 if top else plot[3] - 4
    return (f'<rect x="{a:.1f}" y="{plot[1]:.0f}" width="{max(b - a, 1.0):.1f}" '
            f'height="{plot[3] - plot[1]:.0f}" fill="{color}" fill-opacity="{opacity}"/>'
            + svg.text(a + 2, y, text, size=9, color=text_color))


def _threshold_lines(m: Any, plot: svg.Box, py: Any, y0: float,
                     y1: float) -> list[str]:
    """Dotted warning/critical lines, labelled in the right margin (pushed apart when close)."""
    levels = [(sev, lv) for sev, lv in (("warning", m.warning), ("critical", m.critical))
              if lv is not None and y0 <= lv <= y1]
    ys = {sev: float(py(np.array([lv]))[0]) for sev, lv in levels}
    if len(levels) == 2 and abs(ys["warning"] - ys["critical"]) < 13:
        up = "critical" if m.direction == "higher" else "warning"
        mid = (ys["warning"] + ys["critical"]) / 2
        label_y = {s: mid + (-7 if s == up else 7) for s in ys}
    else:
        label_y = ys
    out = []
    for sev, lv in levels:
        out.append(f'<line x1="{plot[0]:.0f}" y1="{ys[sev]:.1f}" x2="{plot[2]:.0f}" '
                   f'y2="{ys[sev]:.1f}" stroke="{COLORS[sev]}" stroke-dasharray="2,3"/>'
                   + svg.text(plot[2] + 4, label_y[sev] + 4, f"{sev} {format_value(lv, m.unit)}",
                              size=10, color=COLORS[sev]))
    return out

