"""Helpers shared by the benchmark scripts (run as ``python benchmarks/NAME.py``)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

import sqlalchemy as sa

T = TypeVar("T")


def best_of(fn: Callable[[], T], repeat: int = 3) -> tuple[float, T]:
    """The shortest wall time of ``repeat`` calls of ``fn`` and the last call's result."""
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def print_rows(rows: Sequence[tuple[str, str]], load_label: str = "load average") -> None:
    """Print ``(measure, value)`` rows as a Markdown table, then the machine's load."""
    w = max(len(a) for a, _ in rows)
    print(f"\n| {'measure':<{w}} | value |\n|{'-' * (w + 2)}|-------|")
    for a, b in rows:
        print(f"| {a:<{w}} | {b} |")
    print(f"\n{load_label}: {os.getloadavg()}")


def drop_schema(admin: sa.Engine, schema: str) -> None:
    """Drop the benchmark's own PostgreSQL schema and dispose of the admin engine."""
    with admin.connect() as c:
        c.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()
