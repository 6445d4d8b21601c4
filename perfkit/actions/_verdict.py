"""Before/after values and the verdict rule (pure).

Rule: the verdict is decided by the **first** watched metric of the action that was
measured both before and after. Its relative change ``(after − before) / |before|``
is read in the metric's bad direction: past ``+tolerance`` the wrong way →
``worse``, past it the right way → ``improved``, otherwise ``no change``. Nothing
measured on both sides → ``inconclusive``. Watched metrics are ordered with the
action's own direct measurement (e.g. RSS around a GC, the statement's time around
an index) before the interval metrics, because it isolates the action's effect.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import pandas as pd

__all__ = ["verdict", "window_means", "window_series"]


def window_means(frame: pd.DataFrame, metrics: list[str]) -> dict[str, float]:
    """Mean value per metric over ``frame`` (all labels and hosts pooled)."""
    if frame.empty:
        return {}
    f = frame[frame["metric"].isin(metrics)]
    return {str(m): float(v) for m, v in f.groupby("metric")["value"].mean().items()
            if math.isfinite(v)}


def window_series(frame: pd.DataFrame, metrics: list[str]) -> dict[str, list[float]]:
    """Per-interval values of each metric in time order (the hit rate after a change…)."""
    if frame.empty:
        return {}
    f = frame[frame["metric"].isin(metrics)].sort_values("ts")
    return {str(m): [float(x) for x in g["value"]] for m, g in f.groupby("metric")}


def verdict(before: Mapping[str, float], after: Mapping[str, float],
            watch: Mapping[str, str], tolerance: float = 0.05) -> tuple[str, str]:
    """``(verdict, reason)`` by the rule in the module docstring."""
    for metric, direction in watch.items():
        b, a = before.get(metric), after.get(metric)
        if b is None or a is None or not (math.isfinite(b) and math.isfinite(a)):
            continue
        rel = (a - b) / max(abs(b), 1e-9)
        better = -rel if direction == "higher" else rel
        if better >= tolerance:
            v = "improved"
        elif better <= -tolerance:
            v = "worse"
        else:
            v = "no change"
        return v, (f"{metric} {b:.4g} → {a:.4g} ({rel:+.1%}; {direction} is worse; "
                   f"±{tolerance:.0%} counts as no change)")
    names = ", ".join(watch) or "none declared"
    return "inconclusive", f"no watched metric ({names}) was measured both before and after"
