"""What the SVG charts share: the page's colours, round ticks, a time axis, the element."""

from __future__ import annotations

import html
import math
from typing import Any

import numpy as np
import pandas as pd

from perfkit.plots._common import _utc

TEXT = "#2a3f5f"
GRID = "#EBF0F8"
Box = tuple[float, float, float, float]
"""A plot area: left, top, right, bottom in the SVG's coordinates."""


def epoch_ns(t: Any) -> np.ndarray:
    """Times (a timestamp, an index or a column; naive ones are UTC) as epoch nanoseconds."""
    if isinstance(t, pd.Timestamp):
        return np.array([float(_utc(t).value)])
    idx = pd.DatetimeIndex(t)
    idx = idx.tz_localize("UTC") if idx.tz is None else idx
    return idx.as_unit("ns").asi8.astype(float)


def x_of(t: Any, box: Box, x0: float, x1: float) -> np.ndarray:
    """Where times fall on a time axis spanning [x0, x1] (epoch ns) across ``box``."""
    return box[0] + (epoch_ns(t) - x0) / max(x1 - x0, 1.0) * (box[2] - box[0])


def nice_ticks(lo: float, hi: float, count: int = 4) -> list[float]:
    """About ``count`` round values (1, 2 or 5 times a power of ten apart) within [lo, hi]."""
    span = hi - lo
    if not (math.isfinite(span) and span > 0):
        return [lo]
    raw = span / count
    step = 10 ** math.floor(math.log10(raw))
    step *= next(k for k in (1, 2, 5, 10) if raw <= k * step)
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]


def time_labels(box: Box, x0: float, x1: float) -> list[str]:
    """Three to six time labels (UTC) under ``box``, on round seconds or minutes."""
    seconds = (x1 - x0) / 1e9
    step_s = next((s for s in (5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200,
                               21600, 43200) if seconds / s <= 5), 86400)
    fmt = "%H:%M:%S" if step_s < 60 else "%H:%M"
    step = step_s * 1e9
    out = []
    t = math.ceil(x0 / step) * step
    while t <= x1:
        x = box[0] + (t - x0) / max(x1 - x0, 1.0) * (box[2] - box[0])
        out.append(f'<text x="{x:.1f}" y="{box[3] + 16:.0f}" text-anchor="middle" '
                   f'font-size="11" fill="{TEXT}">{pd.Timestamp(int(t), tz="UTC"):{fmt}}</text>')
        t += step
    return out


def time_limits(times: list[Any], x_range: tuple[Any, Any] | None,
                now: pd.Timestamp | None = None) -> tuple[float, float]:
    """A time axis in epoch ns: ``x_range``, else the span of ``times`` (the hour to
    ``now`` when there are none), never empty."""
    if x_range is not None:
        lo, hi = float(_utc(x_range[0]).value), float(_utc(x_range[1]).value)
    else:
        ns = np.concatenate([epoch_ns(t) for t in times]) if times else np.array([])
        if not ns.size:
            end = float(_utc(now if now is not None else pd.Timestamp.now(tz="UTC")).value)
            return end - 3_600e9, end
        lo, hi = float(ns.min()), float(ns.max())
    return lo, hi if hi > lo else lo + 60e9


def text(x: float, y: float, content: str, *, size: int = 11, color: str = TEXT,
         anchor: str = "start") -> str:
    """One escaped text element."""
    return (f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{size}" '
            f'fill="{color}">{html.escape(content)}</text>')


def element(width: float, height: float, label: str, body: list[str]) -> str:
    """The ``<svg>`` element: as wide as its column, at most ``height`` px high."""
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:.0f} {height:.0f}" '
            f'width="100%" style="max-height:{height:.0f}px;font-family:inherit" role="img" '
            f'aria-label="{html.escape(label)}">{"".join(body)}</svg>')
