"""perfkit: watch a running Python service, forecast where its performance is heading, act on it.

The public names are imported lazily: ``import perfkit`` stays cheap, which matters because
pytest loads ``perfkit.pytest_plugin`` (and so this package) into every test session.

The ``TYPE_CHECKING`` block below is the one table of public names: type checkers read it as
written, and at run time :func:`_exports` reads the same block (with :mod:`ast`) to build the
lazy-import table and ``__all__``, so the three cannot drift apart.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from perfkit.actions import ActionResult as ActionResult
    from perfkit.actions import recommend as recommend
    from perfkit.analysis import AlertRule as AlertRule
    from perfkit.analysis import Score as Score
    from perfkit.analysis import alert_transitions as alert_transitions
    from perfkit.analysis import alerts as alerts
    from perfkit.analysis import anomalies as anomalies
    from perfkit.analysis import anomaly_scores as anomaly_scores
    from perfkit.analysis import fit_summary as fit_summary
    from perfkit.analysis import forecast as forecast
    from perfkit.analysis import predicted_alerts as predicted_alerts
    from perfkit.analysis import score as score
    from perfkit.analysis import summary as summary
    from perfkit.analysis import time_to_threshold as time_to_threshold
    from perfkit.analysis import trends as trends
    from perfkit.cache import Cache as Cache
    from perfkit.catalog import CORE_METRICS as CORE_METRICS
    from perfkit.catalog import Metric as Metric
    from perfkit.catalog import catalog_frame as catalog_frame
    from perfkit.catalog import get_metric as get_metric
    from perfkit.catalog import register_metric as register_metric
    from perfkit.catalog import set_thresholds as set_thresholds
    from perfkit.frames import as_samples as as_samples
    from perfkit.frames import empty_samples as empty_samples
    from perfkit.frames import from_series as from_series
    from perfkit.frames import to_wide as to_wide
    from perfkit.monitor import Monitor as Monitor
    from perfkit.recorder import Recorder as Recorder
    from perfkit.store import Store as Store

#: Subpackages reachable as attributes after a bare ``import perfkit``.
_SUBMODULES = ("actions", "analysis", "api", "cache", "catalog", "collectors", "dashboard", "demo",
               "errors", "frames", "integrations", "plots", "prometheus", "store")


def _exports() -> dict[str, str]:
    """Public name -> module, read from this file's ``if TYPE_CHECKING:`` block."""
    tree = ast.parse(Path(__file__).read_text(encoding="utf-8"))
    block = next(n for n in tree.body if isinstance(n, ast.If)
                 and isinstance(n.test, ast.Name) and n.test.id == "TYPE_CHECKING")
    return {alias.asname or alias.name: node.module
            for node in block.body if isinstance(node, ast.ImportFrom) and node.module
            for alias in node.names}


_EXPORTS = _exports()
__all__ = sorted([*_EXPORTS, "__version__"])


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
