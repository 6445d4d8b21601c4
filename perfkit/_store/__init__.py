"""Internals of :mod:`perfkit.store` (schema, engine set-up, fast sample I/O, time parsing)."""
