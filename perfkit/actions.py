"""The public action registry: ``perfkit.actions.register(name, func, params_schema, description)``.

>>> import perfkit.actions
>>> perfkit.actions.names()        # the built-ins plus your own
>>> perfkit.actions.register("flush_sessions", flush,
...                          {"older_than_s": {"type": "int", "default": 3600}},
...                          "Drop stale sessions", watch=["process.rss"])

See :mod:`perfkit.optimize.registry` for the function signature and the schema format.
"""

from perfkit.optimize.registry import (Action, Outcome, actions_frame, get, names, register,
                                       unregister, validate)

__all__ = ["Action", "Outcome", "actions_frame", "get", "names", "register", "unregister",
           "validate"]
