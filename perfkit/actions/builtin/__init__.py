"""The built-in actions, one module each; :func:`register_builtins` adds them to the registry."""

from __future__ import annotations

__all__ = ["register_builtins"]


def register_builtins() -> None:
    """Register the five built-in actions (their names are the HTTP API's
    ``optimization_type`` values)."""
    from perfkit.actions._registry import register
    from perfkit.actions.builtin import _cache as cache
    from perfkit.actions.builtin import _connection as connection
    from perfkit.actions.builtin import _database as database
    from perfkit.actions.builtin import _memory as memory
    from perfkit.actions.builtin import _query as query

    register("cache_optimization", cache.cache_optimization, cache.PARAMS, cache.DESCRIPTION,
             watch=cache.WATCH, target="cache", replace=True)
    register("memory_optimization", memory.memory_optimization, memory.PARAMS,
             memory.DESCRIPTION, watch=memory.WATCH, target="process", replace=True)
    register("connection_optimization", connection.connection_optimization, connection.PARAMS,
             connection.DESCRIPTION, watch=connection.WATCH, target="pool", replace=True)
    register("query_optimization", query.query_optimization, query.PARAMS, query.DESCRIPTION,
             watch=query.WATCH, target="database", replace=True)
    register("database_optimization", database.database_optimization, database.PARAMS,
             database.DESCRIPTION, watch=database.WATCH, target="database", replace=True)
