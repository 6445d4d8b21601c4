"""What every perfkit figure shares: colours, layout, line kinds, gaps, axes, thresholds."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

try:
    import plotly.graph_objects as go
except ModuleNotFoundError as exc:  # pragma: no cover - depends on the install
    from perfkit.errors import extra_error

    raise extra_error(exc, "dashboard", "perfkit.plots") from exc

from perfkit._format import format_value

COLORS = {"ok": "#2e9d5b", "warning": "#f0a30a", "critical": "#d62728", "forecast": "#6c5ce7",
          "improved": "#2e9d5b", "no change": "#8c8c8c", "worse": "#d62728", "failed": "#7f0000",
          "pending": "#1f77b4", "running": "#1f77b4", "rejected": "#7f7f7f", "dry run": "#17becf",
          "anomaly": "#c2185b"}
"""Colours by severity / verdict (and anomaly episodes), the same on every figure."""

_AXIS = {"gridcolor": "#EBF0F8", "linecolor": "#EBF0F8", "zerolinecolor": "#EBF0F8",
         "zerolinewidth": 2, "ticks": "", "automargin": True, "title_standoff": 15}
STYLE: dict[str, Any] = {
    "template": "none", "plot_bgcolor": "white", "paper_bgcolor": "white",
    "font_color": "#2a3f5f", "hoverlabel_align": "left", "title_x": 0.05,
    "colorway": ["#636efa", "#EF553B", "#00cc96", "#ab63fa", "#FFA15A", "#19d3f3", "#FF6692",
                 "#B6E880", "#FF97FF", "#FECB52"],
    **{f"{axis}_{k}": v for axis in ("xaxis", "yaxis") for k, v in _AXIS.items()}}
"""The look of plotly's ``plotly_white``, as layout properties of each figure (``template``
``"none"``): naming ``"plotly_white"`` makes plotly copy and validate the whole template,
trace defaults of every trace type included, for each figure (most of a chart's build
time) and send it along (most of a small figure's JSON). Flat ``xaxis_...`` keys, so a
figure's own ``xaxis={...}`` merges with them."""

_LAYOUT: dict[str, Any] = {"margin": {"l": 10, "r": 10, "t": 36, "b": 10},
                           "hovermode": "x unified", **STYLE}


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


def _utc(t: Any) -> pd.Timestamp:
    ts = pd.Timestamp(t)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts  # perfkit's times are UTC
    return ts.floor("us")  # plotly's JSON keeps microseconds (and warns about dropping ns)


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


def _time_axis(fig: go.Figure, x_range: tuple[Any, Any] | None, *, empty: bool,
               note: str) -> go.Figure:
    """Pin the x axis to ``x_range`` and say so when the figure has no data."""
    if x_range is not None:
        # type "date" too: an empty figure would otherwise read the range as numbers
        fig.update_xaxes(range=[_utc(x) for x in x_range], type="date")
    if empty:
        fig.add_annotation(text=note, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    return fig
