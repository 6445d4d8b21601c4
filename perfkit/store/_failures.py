"""Which database errors mean "try again later" and which mean "this row can never be written".

A transient error (the server is down, restarting, busy, a lock or statement timed
out) keeps the rows buffered for a retry. A permanent one (a value the database
refuses: SQLSTATE class 22 data exception, 54 program limit such as an index row
over the btree limit, 23 constraint violation) will fail the same way on every
retry, so the writer isolates the offending rows and writes the rest.

psycopg classes some permanent errors as ``OperationalError`` (``ProgramLimitExceeded``
is one), so the SQLSTATE decides before the exception class does.
"""

from __future__ import annotations

import sqlite3

import sqlalchemy as sa

# SQLSTATE classes / codes (https://www.postgresql.org/docs/current/errcodes-appendix.html)
_TRANSIENT_CLASSES = ("08", "53", "57", "58")  # connection, resources, operator, system
_TRANSIENT_CODES = {"40001", "40P01", "55P03", "57014"}  # serialization, deadlock, lock, cancel
_PERMANENT_CLASSES = ("22", "23", "54")        # data exception, constraint, program limit
# SQLite reports these as OperationalError, but they are about the row, not the server.
_SQLITE_PERMANENT = ("too big", "too many", "constraint")


def sqlstate(exc: BaseException) -> str | None:
    """The PostgreSQL SQLSTATE of ``exc`` (or of the DBAPI error it wraps), else None."""
    orig = getattr(exc, "orig", None) if isinstance(exc, sa.exc.DBAPIError) else exc
    code = getattr(orig, "sqlstate", None)
    return code if isinstance(code, str) else None


def permanent(exc: BaseException) -> bool:
    """True when retrying the same rows would fail the same way: isolate and reject them."""
    code = sqlstate(exc)
    if code is not None:
        return code.startswith(_PERMANENT_CLASSES)
    orig = exc.orig if isinstance(exc, sa.exc.DBAPIError) else exc
    if isinstance(orig, (sqlite3.IntegrityError, sqlite3.DataError)):
        return True
    return isinstance(orig, sqlite3.OperationalError) and any(
        s in str(orig).lower() for s in _SQLITE_PERMANENT)


def transient(exc: BaseException) -> bool:
    """True for "the database is not there / busy right now": keep the data, retry later."""
    code = sqlstate(exc)
    if code is not None:
        return code.startswith(_TRANSIENT_CLASSES) or code in _TRANSIENT_CODES
    if permanent(exc):
        return False
    if isinstance(exc, (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.DisconnectionError,
                        sa.exc.TimeoutError, OSError)):
        return True
    if isinstance(exc, sa.exc.DBAPIError):
        return bool(exc.connection_invalidated) or (exc.orig is not None
                                                     and transient(exc.orig))
    if isinstance(exc, (sqlite3.OperationalError, sqlite3.InterfaceError)):
        return True
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is a dependency
        return False
    return isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError))
