"""Shared fixtures: real Redis and PostgreSQL, each test in its own namespace.

On a machine without the services the tests that need them skip with a
one-line reason; under CI (``CI=true``) that skip becomes a failure, because
CI machines always run both.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
PG_URL = os.environ.get("PERFKIT_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
# Redis db 0 belongs to users; perfkit's tests use db 11 and flush only their own keys.
REDIS_TEST_DB = 11


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"service needed under CI but unavailable: {reason}")
    pytest.skip(reason)


@pytest.fixture
def redis_client() -> Iterator[object]:
    """A redis-py client on the test database; keys this test made are removed after."""
    import redis

    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=REDIS_TEST_DB,
                         socket_connect_timeout=1, socket_timeout=5)
    try:
        client.ping()
    except redis.RedisError as exc:
        _unavailable(f"Redis not reachable at {REDIS_HOST}:{REDIS_PORT} ({exc})")
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture
def redis_url(redis_client: object) -> str:
    """URL of the (clean) Redis test database."""
    return f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_TEST_DB}"


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A PostgreSQL URL whose connections use a fresh schema, dropped after the test."""
    import sqlalchemy as sa

    schema = f"perfkit_test_{uuid.uuid4().hex[:10]}"
    try:
        admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:  # noqa: BLE001 - any connection failure means "not available"
        _unavailable(f"PostgreSQL not reachable at {PG_URL} ({type(exc).__name__})")
    sep = "&" if "?" in PG_URL else "?"
    yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path: object) -> str:
    """A fresh SQLite store URL in the test's temporary directory."""
    return f"sqlite:///{tmp_path}/perfkit.db"
