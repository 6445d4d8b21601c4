"""Store URLs and the SQLAlchemy engine: SQLite in WAL mode, PostgreSQL through psycopg 3."""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.pool import StaticPool

from perfkit.errors import MissingExtraError

DEFAULT_URL = "sqlite:///.perfkit/perfkit.db"
ENV_VAR = "PERFKIT_STORE_URL"
ACCEPTED = ("'sqlite:///path/to/perfkit.db' (a file; 'sqlite://' for memory) or "
            "'postgresql://user:password@host:5432/dbname'")
# How long perfkit waits on the database. The Monitor never waits on these (its writes
# go through the background writer); they bound how long rows sit in flight.
BUSY_TIMEOUT_MS = 10_000          # SQLite: wait this long for another writer's lock
PG_CONNECT_TIMEOUT_S = 5          # PostgreSQL: TCP connect + startup
PG_STATEMENT_TIMEOUT_MS = 20_000  # server side: one statement
PG_LOCK_TIMEOUT_MS = 5_000        # server side: waiting for a lock another client holds
# TCP: notice a peer that vanished (keepalives) or stopped acknowledging (user timeout)
PG_TCP: dict[str, int] = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5,
                          "keepalives_count": 3, "tcp_user_timeout": 20_000}
CACHE_KIB = 32_768  # SQLite page cache per connection (grows only as used)


def mask(url: str) -> str:
    """``url`` with its password replaced by ``***``."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparseable URL: mask by pattern
        return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", str(url))


def _invalid(url: object, why: str) -> ValueError:
    return ValueError(f"invalid store URL {mask(str(url))!r}: {why}. Accepted forms: {ACCEPTED}")


def normalise_url(url: str | os.PathLike[str] | sa.URL | None) -> sa.URL:
    """Resolve the default / environment URL and check it is one perfkit can use."""
    if url is None:
        url = os.environ.get(ENV_VAR) or DEFAULT_URL
    if isinstance(url, sa.URL):
        url = url.render_as_string(hide_password=False)
    if isinstance(url, os.PathLike):
        url = f"sqlite:///{os.fspath(url)}"
    if not isinstance(url, str) or not url.strip():
        raise _invalid(url, f"expected a non-empty string, got {type(url).__name__}")
    try:
        u = sa.engine.make_url(url.strip())
    except Exception as exc:  # noqa: BLE001 - ArgumentError and friends
        raise _invalid(url, f"not a URL ({exc})") from None
    backend, _, driver = u.drivername.partition("+")
    if backend == "sqlite":
        if driver not in ("", "pysqlite"):
            raise _invalid(url, f"SQLite driver {driver!r} is not supported (use plain 'sqlite')")
        if u.host or u.port or u.username:
            raise _invalid(url, "a SQLite URL has no host: use three slashes, 'sqlite:///file.db'")
        return u.set(drivername="sqlite")
    if backend in ("postgresql", "postgres"):
        if driver not in ("", "psycopg"):
            raise _invalid(url, f"PostgreSQL driver {driver!r} is not supported (perfkit uses "
                                "psycopg 3: 'postgresql://' or 'postgresql+psycopg://')")
        if not u.database:
            raise _invalid(url, "the PostgreSQL URL names no database")
        return u.set(drivername="postgresql+psycopg")
    raise _invalid(url, f"unsupported database {backend!r}")


def make_engine(u: sa.URL, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> sa.Engine:
    """An engine for ``u`` with perfkit's connection settings."""
    if u.get_backend_name() == "sqlite":
        return _sqlite_engine(u, busy_timeout_ms)
    if importlib.util.find_spec("psycopg") is None:
        raise MissingExtraError(f"{mask(u.render_as_string(hide_password=False))} needs the "
                                "PostgreSQL driver psycopg, which is not "
                                'installed: pip install "perfkit[postgres]"')
    return sa.create_engine(u, pool_pre_ping=True, connect_args=pg_connect_args(u))


def pg_connect_args(u: sa.URL) -> dict[str, Any]:
    """perfkit's timeouts for a PostgreSQL URL; anything the URL sets itself wins."""
    args: dict[str, Any] = {k: v for k, v in {"connect_timeout": PG_CONNECT_TIMEOUT_S,
                                              **PG_TCP}.items() if k not in u.query}
    opts = u.query.get("options", "")
    opts = " ".join(opts) if isinstance(opts, tuple) else opts
    extra = [f"-c {name}={ms}" for name, ms in (("statement_timeout", PG_STATEMENT_TIMEOUT_MS),
                                                 ("lock_timeout", PG_LOCK_TIMEOUT_MS))
             if name not in opts]
    if extra:
        args["options"] = " ".join([opts, *extra]).strip()
    return args


def _sqlite_engine(u: sa.URL, busy_ms: int) -> sa.Engine:
    memory = u.database in (None, "", ":memory:")
    kwargs: dict[str, Any] = {"connect_args": {"check_same_thread": False,
                                               "timeout": busy_ms / 1000}}
    if memory:
        kwargs["poolclass"] = StaticPool
    else:
        Path(str(u.database)).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(u, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let perfkit emit BEGIN itself (pysqlite's implicit transactions cannot do
        # BEGIN IMMEDIATE); the busy timeout comes first so that switching to WAL
        # waits for a concurrent opener instead of failing.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout={busy_ms}")
        if not memory:
            cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        # Writers take the write lock up front (BEGIN IMMEDIATE): a deferred
        # transaction that reads and then writes can fail with SQLITE_BUSY without
        # waiting for the busy timeout. Readers use a plain BEGIN and never block.
        immediate = conn.get_execution_options().get("perfkit_immediate", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def connect(engine: sa.Engine, write: bool) -> sa.Connection:
    """A connection whose transactions take SQLite's write lock up front when ``write``."""
    conn = engine.connect()
    if write and engine.dialect.name == "sqlite":
        conn = conn.execution_options(perfkit_immediate=True)
    return conn
