"""Actions: recommendations by priority, the registry, the built-ins and the runner.

``recommend(frame)`` is pure and says what to do first; :class:`Optimizer` runs registered
actions for a Monitor (``Monitor.run_action`` / ``request_action`` / ``start_optimization``),
each with validated parameters, dry run, timeout, cooldown and an audit row with the metrics
before and after. Register your own::

    import perfkit.actions
    perfkit.actions.names()        # the built-ins plus your own
    perfkit.actions.register("flush_sessions", flush,
                             {"older_than_s": {"type": "int", "default": 3600}},
                             "Drop stale sessions", watch=["process.rss"])

An action is ``func(monitor, *, dry_run, **params) -> Outcome | dict``, where ``monitor``
is an :class:`ActionContext` (what a Monitor offers the actions); see :func:`register`
for the schema format. The built-ins live in :mod:`perfkit.actions.builtin`.
"""

from perfkit.actions._context import ActionContext
from perfkit.actions._recommend import RECOMMENDATION_COLUMNS, recommend
from perfkit.actions._registry import (
                                       Action,
                                       Outcome,
                                       actions_frame,
                                       get,
                                       names,
                                       register,
                                       unregister,
                                       validate,
)
from perfkit.actions._result import ActionResult
from perfkit.actions._runner import Optimizer
from perfkit.actions._verdict import verdict

__all__ = ["RECOMMENDATION_COLUMNS", "Action", "ActionContext", "ActionResult", "Optimizer",
           "Outcome", "actions_frame", "get", "names", "recommend", "register", "unregister",
           "validate", "verdict"]
