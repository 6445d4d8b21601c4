"""Summary figures: the health gauge, group scores and a metric's spread across a fleet."""

from __future__ import annotations

import html
import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

try:
    import plotly.graph_objects as go
except ModuleNotFoundError as exc:  # pragma: no cover - depends on the install
    from perfkit.errors import extra_error

    raise extra_error(exc, "dashboard", "perfkit.plots") from exc

from perfkit.catalog import find_metric
from perfkit.plots._common import _LAYOUT, COLORS, _time_axis


def _gauge_color(value: float | None, worst: str | None) -> str:
    """The gauge bar's colour: by the score, but at least as bad as the worst metric."""
    color = (COLORS["ok"] if value is not None and value >= 80 else
             COLORS["warning"] if value is not None and value >= 60 else COLORS["critical"])
    if worst == "critical" or (worst == "warning" and color == COLORS["ok"]):
        color = COLORS[worst]
    return color


_BANDS = ((0, 60, "#fbe3e3"), (60, 80, "#fdf1d6"), (80, 100, "#e1f3e8"))


def _score(overall: float | None) -> float | None:
    return float(overall) if overall is not None and np.isfinite(overall) else None


def health_gauge(overall: float | None, *, title: str = "Health score", height: int = 220,
                 worst: str | None = None) -> go.Figure:
    """A 0–100 gauge for :func:`perfkit.score`'s overall value (None: no data yet).

    ``worst`` (``"warning"`` / ``"critical"``), the worst metric status, colours the
    bar at least that badly: an average of 95 with one critical metric is not green.
    """
    value = _score(overall)
    fig = go.Figure(go.Indicator(
        mode="gauge+number", value=value if value is not None else 0,
        number={"suffix": " / 100", "valueformat": ".0f"},
        title={"text": title if value is not None else f"{title} (no data yet)"},
        gauge={"axis": {"range": [0, 100]}, "bar": {"color": _gauge_color(value, worst)},
               "steps": [{"range": [lo, hi], "color": c} for lo, hi, c in _BANDS]}))
    # side margins wide enough for the "100" tick label at the end of the arc
    fig.update_layout(height=height, margin={"l": 35, "r": 35, "t": 50, "b": 10})
    return fig


def health_gauge_svg(overall: float | None, *, title: str = "Health score", height: int = 220,
                     worst: str | None = None) -> str:
    """:func:`health_gauge` as a self-contained SVG element (text), drawn without plotly.js.

    The same arc, bands, colours and "N / 100" number, for a page that must show
    the score before the browser has loaded plotly (several MB of script).
    """
    value = _score(overall)
    cx, cy, r, w = 150.0, 178.0, 105.0, 26.0

    def point(v: float, radius: float) -> tuple[float, float]:
        a = math.pi * (1 - v / 100)
        return cx + radius * math.cos(a), cy - radius * math.sin(a)

    def arc(lo: float, hi: float, color: str, width: float) -> str:
        (x0, y0), (x1, y1) = point(lo, r), point(hi, r)
        return (f'<path d="M{x0:.1f},{y0:.1f} A{r:.0f},{r:.0f} 0 0 1 {x1:.1f},{y1:.1f}" '
                f'fill="none" stroke="{color}" stroke-width="{width:.0f}"/>')

    parts = [arc(lo, hi, c, w) for lo, hi, c in _BANDS]
    if value is not None and value > 0:
        parts.append(arc(0, min(value, 100.0), _gauge_color(value, worst), w * 0.5))
    for tick in range(0, 101, 20):
        (x0, y0), (x1, y1) = point(tick, r + w / 2), point(tick, r + w / 2 + 5)
        tx, ty = point(tick, r + w / 2 + 16)
        parts.append(f'<line x1="{x0:.1f}" y1="{y0:.1f}" x2="{x1:.1f}" y2="{y1:.1f}" '
                     f'stroke="#444" stroke-width="1"/>'
                     f'<text x="{tx:.1f}" y="{ty + 4:.1f}" text-anchor="middle" '
                     f'font-size="13" fill="#444">{tick}</text>')
    label = title if value is not None else f"{title} (no data yet)"
    number = f"{value if value is not None else 0:.0f} / 100"
    parts.append(f'<text x="{cx:.0f}" y="17" text-anchor="middle" font-size="20" '
                 f'fill="#31333f">{html.escape(label)}</text>'
                 f'<text x="{cx:.0f}" y="{cy - 6:.0f}" text-anchor="middle" font-size="38" '
                 f'fill="#31333f">{number}</text>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 300 185" '
            f'height="{height}" width="100%" role="img" aria-label="{html.escape(label)}: '
            f'{number}" style="font-family:inherit">{"".join(parts)}</svg>')


def _group_bars(groups: Mapping[str, float | None], breakdown: pd.DataFrame | None
                ) -> list[tuple[str, float, str, str, list[str]]]:
    """Per group: name, bar length, colour, label and the metrics costing it points."""
    rows = []
    frame = breakdown if breakdown is not None and len(breakdown) and \
        {"group", "metric", "penalty"} <= set(breakdown.columns) else None
    for g, v in groups.items():
        costs = []
        if frame is not None:
            b = frame[(frame["group"] == g) & (frame["penalty"] > 0)] \
                .sort_values("penalty", ascending=False).head(3)
            costs = [f"{r.metric}: −{r.penalty:.1f}" for r in b.itertuples()]
        scored = v is not None and bool(np.isfinite(v))
        color = ("#cccccc" if v is None else COLORS["ok"] if v >= 80 else
                 COLORS["warning"] if v >= 60 else COLORS["critical"])
        rows.append((str(g), float(v) if scored and v is not None else 0.0, color,
                     f"{v:.0f}" if scored else "missing", costs or ["nothing costs points"]))
    return rows


def group_scores_figure(groups: Mapping[str, float | None],
                        breakdown: pd.DataFrame | None = None, *, height: int = 220) -> go.Figure:
    """Per-group scores as bars; hovering a bar names the metrics that cost it points.

    ``breakdown`` (optional) has ``group``, ``metric`` and ``penalty`` columns,
    as in :func:`perfkit.score`'s breakdown frame.
    """
    bars = _group_bars(groups, breakdown)
    names = [b[0] for b in bars]
    shown = [b[1] for b in bars]
    colors = [b[2] for b in bars]
    labels = [b[3] for b in bars]
    hover = ["<br>".join(b[4]) for b in bars]
    # a short bar (a group at 0) keeps its number beside it instead of losing it
    fig = go.Figure(go.Bar(x=shown, y=names, orientation="h", marker_color=colors, text=labels,
                           textposition=["inside" if v >= 15 else "outside" for v in shown],
                           cliponaxis=False, hovertext=hover, hoverinfo="text"))
    fig.update_layout(height=height, xaxis={"range": [0, 100], "title": "score"},
                      title={"text": "Scores by group", "font": {"size": 13}},
                      **{**_LAYOUT, "hovermode": "closest"})
    return fig


def group_scores_svg(groups: Mapping[str, float | None],
                     breakdown: pd.DataFrame | None = None, *, height: int = 220) -> str:
    """:func:`group_scores_figure` as a self-contained SVG element (text), drawn without
    plotly.js: a bar per group, top to bottom in ``groups``' order; hovering a bar
    names the metrics that cost it points."""
    bars = _group_bars(groups, breakdown)
    left, width, row = 96.0, 192.0, 36.0
    top = 30.0
    parts = ['<text x="4" y="18" font-size="16" font-weight="bold" fill="#31333f">'
             'Scores by group</text>']
    for i, (name, length, color, label, costs) in enumerate(bars):
        y = top + i * row
        bar = width * min(max(length, 0.0), 100.0) / 100
        inside = length >= 15
        tx = left + bar - 4 if inside else left + bar + 4
        parts.append(
            f'<g><title>{html.escape(name)}: {label}&#10;'
            f'{html.escape(chr(10).join(costs))}</title>'
            f'<text x="{left - 6:.0f}" y="{y + 19:.0f}" text-anchor="end" font-size="15" '
            f'fill="#31333f">{html.escape(name)}</text>'
            f'<rect x="{left:.0f}" y="{y + 2:.0f}" width="{width:.0f}" height="{row - 10:.0f}" '
            f'fill="#f0f2f6"/>'
            f'<rect x="{left:.0f}" y="{y + 2:.0f}" width="{bar:.1f}" height="{row - 10:.0f}" '
            f'fill="{color}"/>'
            f'<text x="{tx:.1f}" y="{y + 20:.0f}" text-anchor="{"end" if inside else "start"}" '
            f'font-size="15" fill="{"white" if inside else "#31333f"}">{label}</text></g>')
    axis = top + len(bars) * row
    for tick in (0, 50, 100):
        x = left + width * tick / 100
        parts.append(f'<text x="{x:.0f}" y="{axis + 12:.0f}" text-anchor="middle" '
                     f'font-size="12" fill="#666">{tick}</text>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 300 {axis + 18:.0f}" '
            f'width="100%" style="max-height:{height}px;font-family:inherit" role="img" '
            f'aria-label="Scores by group">{"".join(parts)}</svg>')


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

