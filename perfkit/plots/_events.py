"""Event figures: alert firing periods and the action history over time."""

from __future__ import annotations

import html
from typing import Any

import numpy as np
import pandas as pd

try:
    import plotly.graph_objects as go
except ModuleNotFoundError as exc:  # pragma: no cover - depends on the install
    from perfkit.errors import extra_error

    raise extra_error(exc, "dashboard", "perfkit.plots") from exc

from perfkit.plots import _svg as svg
from perfkit.plots._common import _LAYOUT, COLORS, _time_axis

_DRAWN = ("warning", "critical", "anomaly")
"""Severities drawn: threshold alerts and anomaly rules (``AlertRule(kind="anomaly")``);
the raw anomaly episodes ('anomaly-episode') are the chart bands, demo phases are not alerts."""


def alert_timeline_figure(events: pd.DataFrame, *, until: pd.Timestamp | None = None,
                          height: int = 240,
                          x_range: tuple[pd.Timestamp, pd.Timestamp] | None = None) -> go.Figure:
    """Firing periods per metric as bars coloured by severity, from alert events.

    ``events`` has ``ts, metric, severity, state`` (``Store.alert_events()``): a
    ``firing`` event opens a bar, the next ``resolved`` of that metric and
    severity closes it; a bar still open runs to ``until`` (default now).
    Warning, critical and anomaly-rule alerts are drawn (anomaly episodes without
    a rule are the metric charts' bands instead).
    ``x_range`` fixes the time axis.
    """
    rows = _periods(events, until)
    fig = go.Figure()
    for sev in _DRAWN:
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


def _periods(events: pd.DataFrame, until: pd.Timestamp | None) -> list[dict[str, Any]]:
    """Firing periods (metric, severity, start, end, open) of the drawn severities."""
    end = until if until is not None else pd.Timestamp.now(tz="UTC")
    rows: list[dict[str, Any]] = []
    # anomaly episodes and demo phases share the alert history
    if len(events) and "severity" in events:
        events = events[events["severity"].isin(_DRAWN)]
    if not len(events):
        return rows
    keys = ["metric", "severity"] + (["labels"] if "labels" in events else []) + \
        (["host"] if "host" in events else [])
    for key, g in events.sort_values("ts").groupby(keys, sort=False, observed=True):
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
    return rows


def alert_timeline_svg(events: pd.DataFrame, *, until: pd.Timestamp | None = None,
                       height: int = 240,
                       x_range: tuple[pd.Timestamp, pd.Timestamp] | None = None) -> str:
    """:func:`alert_timeline_figure` as a self-contained SVG element (text), drawn without
    plotly.js: a row per metric, a bar per firing period coloured by severity, hovering a
    bar gives its times."""
    rows = _periods(events, until)
    names = list(dict.fromkeys(str(r["metric"]) for r in rows))
    width, h = 900.0, float(height)
    left = min(260.0, 16 + 6.5 * max((len(n) for n in names), default=0))
    box = (left, 36.0, width - 16, h - 24)
    x0, x1 = svg.time_limits([pd.DatetimeIndex([r["start"] for r in rows])] if rows else [],
                             x_range, until)
    step = (box[3] - box[1]) / max(len(names), 1)
    parts = [svg.text(width * 0.05, 22, "Alert timeline", size=13)]
    parts += svg.time_labels(box, x0, x1)
    for i, name in enumerate(names):
        y = box[3] - (i + 1) * step
        parts.append(svg.text(left - 6, y + step / 2 + 4, name, anchor="end"))
    for r in rows:
        a, b = (float(v) for v in svg.x_of(pd.DatetimeIndex([r["start"], r["end"]]), box, x0, x1))
        a, b = max(a, box[0]), min(b, box[2])
        if b < a:
            continue
        y = box[3] - (names.index(str(r["metric"])) + 1) * step + step * 0.15
        until_text = "now" if r.get("open") else format(r["end"], "%H:%M:%S")
        parts.append(f'<rect x="{a:.1f}" y="{y:.1f}" width="{max(b - a, 2.0):.1f}" '
                     f'height="{step * 0.7:.1f}" fill="{COLORS[r["severity"]]}" '
                     f'fill-opacity="0.85"><title>{html.escape(str(r["metric"]))} '
                     f'{r["severity"]}: {r["start"]:%H:%M:%S} → {until_text}</title></rect>')
    if not rows:
        parts.append(svg.text((box[0] + box[2]) / 2, (box[1] + box[3]) / 2,
                              "no alert events recorded in this window (a Monitor records them)",
                              size=12, anchor="middle"))
    return svg.element(width, h, "Alert timeline chart", parts)


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

