"""Reading query plans (pure): which tables are fully scanned, and on which columns.

SQLite's ``EXPLAIN QUERY PLAN`` rows (``SCAN t``, ``SEARCH t USING INDEX ix (a=?)``,
``SEARCH u USING AUTOMATIC COVERING INDEX (t_id=?)``) and PostgreSQL's
``EXPLAIN (FORMAT JSON)`` tree (``Seq Scan`` nodes with ``Filter``; ``Hash Cond`` /
``Merge Cond`` / ``Join Filter`` on the joins above) become :class:`Scan` records.
Column names found here are only *candidates*: the caller keeps those that are
real columns of the table (from the database's own catalogue).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "EQUALITY",
    "RANGE",
    "Scan",
    "pg_scans",
    "plan_lines",
    "predicate_columns",
    "sql_aliases",
    "sqlite_scans",
]

EQUALITY, RANGE = "equality", "range"

_SQLITE_ROW = re.compile(r"^(SCAN|SEARCH) (.+?)(?: AS (.+?))?(?: USING (.*))?$")
_ID = r'(?:"[^"]+"|\w+)'  # an identifier, quoted ones may hold spaces
_AUTO_COLS = re.compile(r"AUTOMATIC (?:PARTIAL )?(?:COVERING )?INDEX \(([^)]*)\)")
_FROM = re.compile(rf'\b(?:FROM|JOIN)\s+((?:{_ID}\.)?{_ID})(?:\s+(?:AS\s+)?({_ID}))?',
                   re.IGNORECASE)
_KEYWORDS = {"where", "on", "join", "inner", "left", "right", "full", "cross", "natural",
             "group", "order", "limit", "having", "union", "using", "outer", "set", "window"}
_STRINGS = re.compile(r"'(?:[^']|'')*'")
_CASTS = re.compile(r"::[\w ]+(?:\[\])?")
_COMPARE = re.compile(
    rf'(?:({_ID})\.)?({_ID})\s*(=|<>|!=|<=|>=|<|>|\bIN\b|\bLIKE\b|\bBETWEEN\b|\bIS\b)',
    re.IGNORECASE)
_REVERSED = re.compile(rf'(=|<=|>=|<|>)\s*(?:({_ID})\.)?({_ID})\s*(?=$|[\s),])', re.IGNORECASE)
_CLAUSE = re.compile(r"\b(WHERE|ON)\b(.*?)(?=\b(?:WHERE|ON|GROUP\s+BY|ORDER\s+BY|LIMIT|HAVING|JOIN|"
                     r"INNER|LEFT|RIGHT|FULL|CROSS|UNION|WINDOW)\b|$)", re.IGNORECASE | re.DOTALL)


@dataclass
class Scan:
    """One table read in full: its real name, the alias the query uses, and the
    columns (candidates) it is filtered or joined on, in order of appearance."""

    table: str
    alias: str
    filter_columns: dict[str, str] = field(default_factory=dict)   # column -> equality|range
    join_columns: list[str] = field(default_factory=list)
    automatic_index: list[str] = field(default_factory=list)       # SQLite built one per run
    estimated_rows: float | None = None


def _unquote(name: str) -> str:
    return name.strip('"')


def sql_aliases(sql: str) -> dict[str, str]:
    """``{alias or table: table}`` from the FROM / JOIN clauses of ``sql``."""
    out: dict[str, str] = {}
    for table, alias in _FROM.findall(sql):
        table = _unquote(re.findall(_ID, table)[-1])  # schema."table" -> table
        out[table] = table
        if alias and alias.lower().strip('"') not in _KEYWORDS:
            out[_unquote(alias)] = table
    return out


def predicate_columns(text: str) -> list[tuple[str | None, str, str]]:
    """``(qualifier, column, equality|range)`` for every comparison in ``text``."""
    # PostgreSQL prints "((b)::text = '7'::text)": drop literals, casts and parentheses.
    text = _CASTS.sub("", _STRINGS.sub("?", text)).replace("(", " ").replace(")", " ")
    found: list[tuple[str | None, str, str]] = []
    for qual, col, op in _COMPARE.findall(text):
        kind = EQUALITY if op.strip().upper() in ("=", "IN", "IS") else RANGE
        found.append((_unquote(qual) or None, _unquote(col), kind))
    for op, qual, col in _REVERSED.findall(text):
        found.append((_unquote(qual) or None, _unquote(col), EQUALITY if op == "=" else RANGE))
    return found


Predicate = tuple[str | None, str, str]


def _sql_predicates(sql: str) -> tuple[list[Predicate], list[tuple[str | None, str]]]:
    filters: list[Predicate] = []
    joins: list[tuple[str | None, str]] = []
    for kw, body in _CLAUSE.findall(sql):
        preds = predicate_columns(body)
        if kw.upper() == "ON":
            joins += [(q, c) for q, c, _ in preds]
        else:
            filters += preds
    return filters, joins


def sqlite_scans(rows: list[tuple[Any, ...]], sql: str) -> list[Scan]:
    """Full scans in SQLite ``EXPLAIN QUERY PLAN`` rows (detail in the last column)."""
    aliases = sql_aliases(sql)
    filters, joins = _sql_predicates(sql)
    scans = []
    for row in rows:
        m = _SQLITE_ROW.match(str(row[-1]).strip())
        if not m:
            continue
        verb, name, alias, using = m.groups()
        auto = _AUTO_COLS.search(using or "")
        if verb == "SCAN" and using:  # SCAN ... USING COVERING INDEX: reads an index, not the table
            continue
        if verb == "SEARCH" and not auto:
            continue
        ref = alias or name
        table = aliases.get(ref, name)
        s = Scan(table, ref)
        if auto:
            s.automatic_index = [c.split("=")[0].strip() for c in auto.group(1).split(" AND ")]
        single = len(set(aliases.values())) == 1
        for q, c, kind in filters:
            if q in (ref, table) or (q is None and single):
                s.filter_columns.setdefault(c, kind)
        s.join_columns = [c for q, c in joins if q in (ref, table)]
        scans.append(s)
    return scans


def _walk(node: dict[str, Any], out: list[dict[str, Any]]) -> None:
    out.append(node)
    for child in node.get("Plans", []) or []:
        _walk(child, out)


def pg_scans(plan: Any) -> list[Scan]:
    """Sequential scans in a PostgreSQL ``EXPLAIN (FORMAT JSON)`` result."""
    root = plan[0]["Plan"] if isinstance(plan, list) else plan["Plan"]
    nodes: list[dict[str, Any]] = []
    _walk(root, nodes)
    conds = [n[k] for n in nodes for k in ("Hash Cond", "Merge Cond", "Join Filter") if k in n]
    scans = []
    for n in nodes:
        if n.get("Node Type") != "Seq Scan" or "Relation Name" not in n:
            continue
        alias = n.get("Alias", n["Relation Name"])
        s = Scan(n["Relation Name"], alias, estimated_rows=n.get("Plan Rows"))
        for q, c, kind in predicate_columns(n.get("Filter", "")):
            if q in (None, alias):
                s.filter_columns.setdefault(c, kind)
        for text in conds:
            s.join_columns += [c for q, c, _ in predicate_columns(text) if q == alias]
        scans.append(s)
    return scans


def plan_lines(plan: Any) -> list[str]:
    """A plan as short readable lines (SQLite rows or a PostgreSQL JSON plan)."""
    if isinstance(plan, list) and plan and isinstance(plan[0], dict) and "Plan" in plan[0]:
        nodes: list[dict[str, Any]] = []
        _walk(plan[0]["Plan"], nodes)
        out = []
        for n in nodes:
            line = n.get("Node Type", "?")
            if "Relation Name" in n:
                line += f" on {n['Relation Name']}"
            if "Index Name" in n:
                line += f" using {n['Index Name']}"
            for k in ("Index Cond", "Filter", "Hash Cond"):
                if k in n:
                    line += f" [{k}: {n[k]}]"
            out.append(line)
        return out
    return [str(r[-1]) for r in plan]
