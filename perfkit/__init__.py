"""perfkit: watch a running Python service, forecast where its performance is heading, act on it.

The public names below are imported lazily: ``import perfkit`` stays cheap,
which matters because pytest loads ``perfkit.pytest_plugin`` (and so this
package) into every test session.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    # collection and storage
    "Monitor": "perfkit.monitor",
    "Store": "perfkit.store",
    "Recorder": "perfkit.recorder",
    "to_wide": "perfkit.frames",
    "as_samples": "perfkit.frames",
    "from_series": "perfkit.frames",
    "empty_samples": "perfkit.frames",
    # catalogue
    "Metric": "perfkit.catalog",
    "get_metric": "perfkit.catalog",
    "register_metric": "perfkit.catalog",
    "set_thresholds": "perfkit.catalog",
    "catalog_frame": "perfkit.catalog",
    "CORE_METRICS": "perfkit.catalog",
    # analysis (pure: frame in, frame out)
    "trends": "perfkit.analysis",
    "forecast": "perfkit.analysis",
    "time_to_threshold": "perfkit.analysis",
    "predicted_alerts": "perfkit.analysis",
    "alerts": "perfkit.analysis",
    "alert_transitions": "perfkit.analysis",
    "AlertRule": "perfkit.analysis",
    "score": "perfkit.analysis",
    "Score": "perfkit.analysis",
    "summary": "perfkit.analysis",
    # optimisation
    "recommend": "perfkit.optimize",
    "ActionResult": "perfkit.optimize",
    # cache
    "Cache": "perfkit.cache",
}

_SUBMODULES = ("actions", "analysis", "api", "catalog", "collectors", "demo", "frames",
               "integrations", "optimize", "plots", "prometheus", "store")

__all__ = [
    "CORE_METRICS", "ActionResult", "AlertRule", "Cache", "Metric", "Monitor", "Recorder",
    "Score", "Store", "__version__", "alert_transitions", "alerts", "as_samples",
    "catalog_frame", "empty_samples", "forecast", "from_series", "get_metric",
    "predicted_alerts", "recommend", "register_metric", "score", "set_thresholds", "summary",
    "time_to_threshold", "to_wide", "trends",
]

if TYPE_CHECKING:
    from perfkit.analysis import (AlertRule, Score, alert_transitions, alerts, forecast,
                                  predicted_alerts, score, summary, time_to_threshold, trends)
    from perfkit.cache import Cache
    from perfkit.catalog import (CORE_METRICS, Metric, catalog_frame, get_metric, register_metric,
                                 set_thresholds)
    from perfkit.frames import as_samples, empty_samples, from_series, to_wide
    from perfkit.monitor import Monitor
    from perfkit.optimize import ActionResult, recommend
    from perfkit.recorder import Recorder
    from perfkit.store import Store


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:  # `perfkit.actions.register(...)` after a bare `import perfkit`
        return importlib.import_module(f"perfkit.{name}")
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'perfkit' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(__all__) | set(_SUBMODULES))
