"""Recommendations by priority and actions that really act, each with before/after metrics.

``recommend(frame, alerts=None)`` is pure; :class:`Optimizer` runs registered actions
for a Monitor (``Monitor.run_action`` / ``request_action`` / ``start_optimization``);
:mod:`perfkit.actions` is the public registry.
"""

from perfkit.optimize.recommend import RECOMMENDATION_COLUMNS, recommend
from perfkit.optimize.registry import Action, Outcome
from perfkit.optimize.result import ActionResult
from perfkit.optimize.runner import Optimizer
from perfkit.optimize.verdict import verdict

__all__ = [
           "RECOMMENDATION_COLUMNS",
           "Action",
           "ActionResult",
           "Optimizer",
           "Outcome",
           "recommend",
           "verdict",
]
