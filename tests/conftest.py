"""Shared fixtures: real Redis and PostgreSQL, each test in its own namespace.

On a machine without the services the tests that need them skip with a
one-line reason; under CI (``CI=true``) that skip becomes a failure, because
CI machines always run both.

The run touches only temporary files: the default store (``PERFKIT_STORE_URL``)
and ``HOME`` point into a temporary directory for the whole session, and the
session fails if the checkout has files afterwards that it did not have before.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy as sa
from _procs import REDIS_SERVER, RedisProcess, free_port

if TYPE_CHECKING:
    from perfkit.monitor import Monitor

REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
PG_URL = os.environ.get("PERFKIT_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
# Redis db 0 belongs to users; perfkit's tests use db 11 (xdist worker gwN: 11 + N, so parallel
# workers never flush each other's keys) and flush only that db. Redis has 16 databases: from
# gw5 on, a worker gets a private redis-server (db 11 there) instead of a database to share.
_WORKER_N = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0")[2:] or 0)
_SHARED_DBS = 5
REDIS_TEST_DB = 11 + (_WORKER_N if _WORKER_N < _SHARED_DBS else 0)

# Set at import, before any test or fixture runs (each xdist worker gets its own directory).
_RUN_DIR = Path(tempfile.mkdtemp(prefix="perfkit-tests-"))
os.environ.setdefault("PYENV_ROOT", str(Path.home() / ".pyenv"))  # pyenv shims read HOME
os.environ["HOME"] = str(_RUN_DIR / "home")
(_RUN_DIR / "home").mkdir()
os.environ["PERFKIT_STORE_URL"] = f"sqlite:///{_RUN_DIR / 'default-store' / 'perfkit.db'}"
os.environ.setdefault("STREAMLIT_BROWSER_GATHER_USAGE_STATS", "false")
try:  # schemathesis' Hypothesis keeps its example database in ./.hypothesis by default
    from hypothesis.configuration import set_hypothesis_home_dir
except ImportError:  # pragma: no cover - hypothesis comes with the test extra
    pass
else:
    set_hypothesis_home_dir(_RUN_DIR / "hypothesis")

# -- the checkout stays as it was --------------------------------------------------------

_ROOT = Path(__file__).resolve().parents[1]
_SCRATCH = ("__pycache__/", ".pytest_cache/", ".mypy_cache/", ".ruff_cache/", "test-artifacts/",
            ".egg-info/")
_before: set[str] | None = None


def _checkout_files() -> set[str] | None:
    """``git status`` entries, ignored files included (with size and mtime, so a write into
    an existing ignored file such as ``.perfkit/perfkit.db`` counts), minus caches and
    test artifacts."""
    if shutil.which("git") is None or not (_ROOT / ".git").exists():
        return None
    try:
        out = subprocess.run(["git", "status", "--porcelain", "--ignored", "-uall"],
                             cwd=_ROOT, capture_output=True, text=True, timeout=60, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    entries = set()
    for line in out.stdout.splitlines():
        if not line.strip() or any(part in line for part in _SCRATCH):
            continue
        try:
            st = (_ROOT / line[3:]).stat()
            line = f"{line}  ({st.st_size} bytes, mtime {st.st_mtime_ns})"
        except OSError:
            pass
        entries.add(line)
    return entries


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """Workers for ``-n auto``: two per CPU (at most 16).

    Much of the suite waits on other processes (servers it starts, Chromium,
    Prometheus, PostgreSQL), so one worker per CPU leaves CPUs idle: on 2 cores,
    4 workers ran the suite in 229 s against 262 s for 2.
    """
    return min(16, 2 * (os.cpu_count() or 1))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Long chains first: xdist hands out work in collection order, so the groups that run
    serially on one worker (a live Prometheus, the wheel's venvs, the demo) and the
    end-to-end tests start at once beside the short tests instead of last, after them.
    A stable sort: every worker sees the same order."""
    def rank(item: pytest.Item) -> int:
        if item.get_closest_marker("xdist_group") is not None:
            return 0
        return 1 if "/e2e/" in item.nodeid or item.get_closest_marker("slow") else 2

    items.sort(key=rank)


def pytest_sessionstart(session: pytest.Session) -> None:
    global _before
    if not hasattr(session.config, "workerinput"):    # once, in the controller
        _before = _checkout_files()


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(_RUN_DIR, ignore_errors=True)
    if _before is None or hasattr(session.config, "workerinput"):
        return
    after = _checkout_files() or set()
    new = sorted(after - _before)
    if new:
        tr = session.config.pluginmanager.get_plugin("terminalreporter")
        message = ("the test run left files in the checkout (tests must write only to "
                   "temporary directories):\n  " + "\n  ".join(new))
        if tr is not None:
            tr.write_sep("=", "checkout changed", red=True)
            tr.write_line(message)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"service needed under CI but unavailable: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def _redis_address() -> Iterator[tuple[str, int]]:
    """(host, port) of the Redis server this worker's test database lives on."""
    if _WORKER_N < _SHARED_DBS:
        yield REDIS_HOST, REDIS_PORT
        return
    if REDIS_SERVER is None:
        _unavailable("redis-server is not installed (needed from the sixth xdist worker on)")
    server = RedisProcess(free_port())
    server.start()
    yield "127.0.0.1", server.port
    server.kill()


@pytest.fixture
def redis_client(_redis_address: tuple[str, int]) -> Iterator[object]:
    """A redis-py client on the test database; keys this test made are removed after."""
    import redis

    host, port = _redis_address
    client = redis.Redis(host=host, port=port, db=REDIS_TEST_DB,
                         socket_connect_timeout=1, socket_timeout=5)
    try:
        client.ping()
    except redis.RedisError as exc:
        _unavailable(f"Redis not reachable at {host}:{port} ({exc})")
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture
def own_redis() -> Iterator[RedisProcess]:
    """A private redis-server on a free port, killed after the test (see ``_procs``)."""
    if REDIS_SERVER is None:
        _unavailable("redis-server is not installed")
    server = RedisProcess(free_port())
    server.start()
    yield server
    server.kill()


@pytest.fixture
def redis_url(redis_client: object, _redis_address: tuple[str, int]) -> str:
    """URL of the (clean) Redis test database."""
    host, port = _redis_address
    return f"redis://{host}:{port}/{REDIS_TEST_DB}"


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A PostgreSQL URL whose connections use a fresh schema, dropped after the test."""
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


# -- monitors and threads ---------------------------------------------------------------

@pytest.fixture
def make_monitor(sqlite_url: str) -> Iterator[Callable[..., Monitor]]:
    """``make_monitor(url=None, **kwargs)``: a Monitor (on the test's SQLite store unless
    ``url`` is given); after the test each one is stopped, the engines it instrumented are
    disposed and its store is closed."""
    from perfkit.monitor import Monitor

    made: list[Monitor] = []

    def make(url: str | None = None, **kwargs: Any) -> Monitor:
        m = Monitor(url or sqlite_url, **kwargs)
        made.append(m)
        return m

    yield make
    for m in made:
        m.stop_optimization()
        m.stop()
        for engine in m.database.engines().values():
            engine.dispose()
        m.store.close()


@pytest.fixture
def mon(make_monitor: Callable[..., Monitor]) -> Monitor:
    """A Monitor on a fresh SQLite store, host ``test-host``, 1 s interval, whose actions
    are judged without a settling pause."""
    m = make_monitor(interval=1.0, host="test-host")
    m.optimizer.configure(settle_s=0.0)
    return m


@pytest.fixture
def run_threads() -> Callable[..., None]:
    """``run_threads(calls, timeout=60)``: each callable in its own thread, all started before
    any is joined. Re-raises the first exception a thread raised; fails the test if a thread
    is still running after ``timeout`` seconds."""

    def run(calls: Iterable[Callable[[], object]], timeout: float = 60.0) -> None:
        errors: list[BaseException] = []

        def body(call: Callable[[], object]) -> None:
            try:
                call()
            except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread
                errors.append(exc)

        threads = [threading.Thread(target=body, args=(c,), daemon=True) for c in calls]
        for t in threads:
            t.start()
        deadline = time.monotonic() + timeout
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
        alive = sum(t.is_alive() for t in threads)
        if alive:
            pytest.fail(f"{alive} of {len(threads)} threads still running after {timeout:g} s")
        if errors:
            raise errors[0]

    return run


# -- a database that goes away and comes back ---------------------------------------

class Proxy:
    """A TCP forwarder in front of PostgreSQL that can be cut and restored (``close`` /
    ``open``), or frozen: after ``pause()`` it accepts and reads but forwards nothing,
    like a server that hangs, until ``resume()``."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.flowing = threading.Event()
        self.flowing.set()
        self.port = 0
        self.conns: list[socket.socket] = []
        self.lock = threading.Lock()
        self.listener: socket.socket | None = None
        self.open()

    def open(self) -> None:
        ls = socket.socket()
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(("127.0.0.1", self.port))
        ls.listen(16)
        self.port = ls.getsockname()[1]
        self.listener = ls
        threading.Thread(target=self._accept, args=(ls,), daemon=True).start()

    def _accept(self, ls: socket.socket) -> None:
        while True:
            try:
                client, _ = ls.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            with self.lock:
                self.conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def pause(self) -> None:
        """Stop forwarding (connections stay open, bytes are read and held)."""
        self.flowing.clear()

    def resume(self) -> None:
        """Forward again, including what was held."""
        self.flowing.set()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(65536):
                self.flowing.wait()
                b.sendall(data)
        except OSError:
            pass
        for s in (a, b):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        assert self.listener is not None
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept()
        self.listener.close()
        self.listener = None
        with self.lock:
            for s in self.conns:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()
            self.conns.clear()


@pytest.fixture
def proxied_pg(pg_url: str) -> Iterator[tuple[Proxy, str]]:
    """A PostgreSQL URL that goes through a Proxy the test can close() and open()."""
    u = sa.engine.make_url(pg_url)
    proxy = Proxy((u.host or "127.0.0.1", u.port or 5432))
    yield proxy, u.set(port=proxy.port).render_as_string(hide_password=False)
    proxy.resume()
    if proxy.listener is not None:
        proxy.close()


@pytest.fixture(scope="module")
def prometheus_binary() -> str:
    """Path of Debian's ``prometheus`` binary (``apt-get install prometheus``)."""
    import shutil

    path = shutil.which("prometheus")
    if path is None:
        _unavailable("prometheus binary not installed (apt-get install -y prometheus)")
    assert path is not None
    return path
