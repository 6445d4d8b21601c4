"""One metric's chart as SVG text, for a page that must show charts before plotly.js loads."""

from __future__ import annotations

import html
import math
import re
from typing import Any

import numpy as np
import pandas as pd

from perfkit._format import format_value
from perfkit.catalog import find_metric
from perfkit.plots._common import COLORS, STYLE, _utc, _with_gaps, _y_range
from perfkit.plots._metric import (
    _BAND_FILL,
    _PHASE_COLOR,
    _anomaly_spans,
    _band,
    _forecast_rows,
    _phase_spans,
    _series,
)

_W = 640.0
_LEFT, _RIGHT, _TOP, _BOTTOM = 58.0, 86.0, 36.0, 24.0
_TEXT = "#2a3f5f"
_GRID = "#EBF0F8"


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
    x0, x1 = _x_limits(f, band, x_range)
    y_range = _y_range(f["value"] if len(f) else pd.Series(dtype=float), m,
                       fc["mean"] if fc is not None and len(fc) else None)
    y0, y1 = y_range if y_range is not None else (0.0, 1.0)

    def px(t: Any) -> np.ndarray:
        ns = (np.array([float(_utc(t).value)]) if isinstance(t, pd.Timestamp)
              else pd.DatetimeIndex(t).as_unit("ns").asi8.astype(float))
        return plot[0] + (ns - x0) / max(x1 - x0, 1.0) * (plot[2] - plot[0])

    def py(v: np.ndarray) -> np.ndarray:
        return plot[3] - (np.asarray(v, float) - y0) / max(y1 - y0, 1e-300) * (plot[3] - plot[1])

    # ids are page-wide: one clip path per metric's chart
    clip = "pk-clip-" + re.sub(r"[^A-Za-z0-9_-]", "-", metric)
    parts = [f'<rect x="0" y="0" width="{_W:.0f}" height="{h:.0f}" fill="white"/>',
             f'<text x="{_W * 0.05:.0f}" y="22" font-size="13" fill="{_TEXT}">'
             f'{html.escape(title or metric)}</text>']
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
                         f'stroke="#9e9e9e" stroke-width="1"/><text x="{x + 3:.1f}" '
                         f'y="{plot[3] - 3:.0f}" font-size="9" fill="{COLORS["forecast"]}">'
                         f'forecast</text>')
    if m is not None:
        parts += _threshold_lines(m, plot, py, y0, y1)
    if not len(f):
        parts.append(f'<text x="{(plot[0] + plot[2]) / 2:.0f}" y="{(plot[1] + plot[3]) / 2:.0f}" '
                     f'text-anchor="middle" font-size="12" fill="{_TEXT}">'
                     f'{html.escape(note)}</text>')
    elif forecast_note:
        parts.append(f'<text x="{plot[2]:.0f}" y="{plot[1] - 4:.0f}" text-anchor="end" '
                     f'font-size="10" fill="#8c8c8c">{html.escape(forecast_note)}</text>')
    label = html.escape(f"{title or metric} chart")
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_W:.0f} {h:.0f}" '
            f'width="100%" style="max-height:{h:.0f}px;font-family:inherit" role="img" '
            f'aria-label="{label}"><clipPath id="{clip}"><rect x="{plot[0]:.0f}" y="{plot[1]:.0f}" '
            f'width="{plot[2] - plot[0]:.0f}" height="{plot[3] - plot[1]:.0f}"/></clipPath>'
            f'{"".join(parts)}</svg>')


def _x_limits(f: pd.DataFrame, band: Any, x_range: tuple[Any, Any] | None
              ) -> tuple[float, float]:
    """The time axis in epoch nanoseconds: ``x_range``, else the data and forecast."""
    if x_range is not None:
        return float(_utc(x_range[0]).value), float(_utc(x_range[1]).value)
    times = [pd.DatetimeIndex(f["ts"])] if len(f) else []
    if band is not None:
        times.append(band[0])
    if not times:
        now = pd.Timestamp.now(tz="UTC").value
        return float(now - 3_600 * 10**9), float(now)
    ns = np.concatenate([t.as_unit("ns").asi8 for t in times])
    lo, hi = float(ns.min()), float(ns.max())
    return lo, hi if hi > lo else lo + 60 * 10**9


def _nice_ticks(lo: float, hi: float, count: int = 4) -> list[float]:
    """About ``count`` round values (1, 2 or 5 times a power of ten apart) within [lo, hi]."""
    span = hi - lo
    if not (math.isfinite(span) and span > 0):
        return [lo]
    raw = span / count
    step = 10 ** math.floor(math.log10(raw))
    step *= next(k for k in (1, 2, 5, 10) if raw <= k * step)
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step) + 1)]


def _grid(plot: tuple[float, float, float, float], x0: float, x1: float, y0: float,
          y1: float, unit: str, py: Any) -> list[str]:
    """Horizontal grid lines with y labels, and about five time labels (UTC)."""
    out = []
    for v in _nice_ticks(y0, y1):
        y = float(py(np.array([v]))[0])
        out.append(f'<line x1="{plot[0]:.0f}" y1="{y:.1f}" x2="{plot[2]:.0f}" y2="{y:.1f}" '
                   f'stroke="{_GRID}"/><text x="{plot[0] - 4:.0f}" y="{y + 4:.1f}" '
                   f'text-anchor="end" font-size="11" fill="{_TEXT}">'
                   f'{html.escape(_tick_label(v, unit))}</text>')
    minutes = (x1 - x0) / 60e9
    step = next((s for s in (1, 2, 5, 10, 15, 30, 60, 120, 360, 720, 1440) if minutes / s <= 6),
                1440) * 60e9
    t = math.ceil(x0 / step) * step
    while t <= x1:
        x = plot[0] + (t - x0) / max(x1 - x0, 1.0) * (plot[2] - plot[0])
        stamp = pd.Timestamp(int(t), tz="UTC")
        out.append(f'<text x="{x:.1f}" y="{plot[3] + 16:.0f}" text-anchor="middle" '
                   f'font-size="11" fill="{_TEXT}">{stamp:%H:%M}</text>')
        t += step
    return out


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


def _vband(a: float, b: float, plot: tuple[float, float, float, float], color: str,
           opacity: float, text: str, text_color: str, *, top: bool) -> str:
    y = plot[1] + 10 if top else plot[3] - 4
    return (f'<rect x="{a:.1f}" y="{plot[1]:.0f}" width="{max(b - a, 1.0):.1f}" '
            f'height="{plot[3] - plot[1]:.0f}" fill="{color}" fill-opacity="{opacity}"/>'
            f'<text x="{a + 2:.1f}" y="{y:.0f}" font-size="9" fill="{text_color}">'
            f'{html.escape(text)}</text>')


def _threshold_lines(m: Any, plot: tuple[float, float, float, float], py: Any, y0: float,
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
                   f'<text x="{plot[2] + 4:.0f}" y="{label_y[sev] + 4:.1f}" font-size="10" '
                   f'fill="{COLORS[sev]}">{html.escape(f"{sev} {format_value(lv, m.unit)}")}'
                   f'</text>')
    return out

