"""Plotly figures shared by the dashboard (``app.py``) and the notebooks.

Every function takes perfkit frames (samples, forecast, alert events, actions)
and returns a ``plotly.graph_objects.Figure`` (the ``*_svg`` functions: the same
as SVG text, drawn without plotly.js); none reads a store or computes a
statistic of its own beyond what is drawn. Long series are cut for display with
:func:`perfkit._downsample.downsample` (min/max-preserving), so a day of
one-second samples draws as fast as an hour.
"""

from perfkit.plots._benchmarks import benchmark_history_figure
from perfkit.plots._common import COLORS
from perfkit.plots._events import action_history_figure, alert_timeline_figure, alert_timeline_svg
from perfkit.plots._metric import metric_figure, percentiles_figure
from perfkit.plots._metric_svg import metric_svg
from perfkit.plots._scores import (
    fleet_spread_figure,
    group_scores_figure,
    group_scores_svg,
    health_gauge,
    health_gauge_svg,
)

__all__ = [
    "COLORS",
    "action_history_figure",
    "alert_timeline_figure",
    "alert_timeline_svg",
    "benchmark_history_figure",
    "fleet_spread_figure",
    "group_scores_figure",
    "group_scores_svg",
    "health_gauge",
    "health_gauge_svg",
    "metric_figure",
    "metric_svg",
    "percentiles_figure",
]
