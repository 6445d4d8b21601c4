"""Helpers for tests that start real servers as plain processes on a free local port, and
wait for what those servers (or threads) do."""

from __future__ import annotations

import itertools
import os
import random
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from typing import TypeVar

REDIS_SERVER = shutil.which("redis-server")

T = TypeVar("T")


def wait_until(predicate: Callable[[], T], timeout: float, what: str, *, every: float = 0.05,
               retry_on: tuple[type[BaseException], ...] = ()) -> T:
    """Call ``predicate()`` every ``every`` seconds until it returns something truthy; return it.

    ``timeout`` only bounds a hang: choose it far above how long the event takes on a busy
    machine, never as a speed requirement. An exception of a ``retry_on`` type counts as
    "not yet" (a server still starting); any other exception, such as an assertion that the
    server process is still alive, ends the wait at once. (A pandas object has no truth
    value: return a bool or a list.)

    Raises:
        AssertionError: "timed out after N s waiting for <what>", with the last value the
            predicate returned and the last exception it raised.
    """
    deadline = time.monotonic() + timeout
    last: object = None
    error: BaseException | None = None
    while True:
        try:
            last = predicate()
        except retry_on as exc:
            error = exc
        else:
            if last:
                return last  # type: ignore[return-value]
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what} "
                                 f"(last result {last!r}, last error {error!r})")
        time.sleep(every)


# Ports handed out below the kernel's ephemeral range (32768 up on Linux), a block of
# its own per xdist worker: a port asked for with bind(0) can be taken by any outgoing
# connection (Redis, PostgreSQL, HTTP clients) or by another worker before the server
# the test starts binds it. Here no client can be given it and no other worker picks it.
_BLOCK = 1400
_worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
_first = 10_000 + _BLOCK * (int(_worker[2:]) % 16 if _worker[2:].isdigit() else 0)
_next = itertools.count(random.randrange(_BLOCK))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now, out of the ephemeral
    range and never handed to another test worker of the same run."""
    for _ in range(_BLOCK):
        port = _first + next(_next) % _BLOCK
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {_first}-{_first + _BLOCK - 1}")


class RedisProcess:
    """A private ``redis-server`` (no persistence) that a test may kill and restart.

    Its INFO counters belong to the test alone: the shared server's are moved by every
    other test that uses Redis at the same time.
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        assert REDIS_SERVER is not None
        self.proc = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--daemonize", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        proc = self.proc

        def pong() -> bool:
            assert proc.poll() is None, f"redis-server exited with status {proc.returncode}"
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")

        wait_until(pong, 60, f"redis-server on port {self.port} to answer PING", every=0.02,
                   retry_on=(OSError,))

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None
