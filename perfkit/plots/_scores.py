"""Summary figures: the health gauge, group scores and a metric's spread across a fleet."""

from __future__ import annotations

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

