"""What the long-running commands share: bind checks, tokens, signals, the browser.

Kept out of :mod:`perfkit.cli` so the command table stays readable; nothing here
starts a thread on import.
"""

from __future__ import annotations

import atexit
import contextlib
import ipaddress
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any, NoReturn

__all__ = ["STOP_S", "LaunchError", "check_bind", "check_port", "exit_now", "has_display",
           "is_local", "open_browser_when_up", "open_store", "stop_on_signals"]

STOP_S = 2.0
"""Longest a command waits for its Monitor's threads when stopping (then flushes and exits)."""

_LOCAL_NAMES = {"localhost", "ip6-localhost", "ip6-loopback"}


class LaunchError(Exception):
    """A command cannot start; the message says why and how to fix it (exit status 2)."""


def is_local(host: str) -> bool:
    """Whether binding ``host`` keeps the server reachable from this machine only."""
    h = host.strip().strip("[]").lower()
    if h in _LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None, *, option: str) -> None:
    """Refuse a non-local bind without a token: anything that acts would be open to all."""
    if not is_local(host) and not token:
        raise LaunchError(
            f"refusing to listen on {host} (beyond this machine) with nothing guarding the "
            f"controls that act: set a token ({option}), or bind 127.0.0.1 (the default)")


def check_port(host: str, port: int) -> None:
    """Fail now, with the fix, when ``host:port`` cannot be bound (in use, no permission)."""
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        # the servers set SO_REUSEADDR too: a port in TIME_WAIT is free for them
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host.strip("[]"), port))
        except OSError as exc:
            busy = exc.errno in (98, 48, 10048)  # EADDRINUSE on Linux, macOS, Windows
            why = "already in use" if busy else exc.strerror or str(exc)
            raise LaunchError(f"port {port} on {host} is {why}; pick another with --port "
                              f"(e.g. --port {port + 1})") from None


def open_store(url: str | None) -> Any:
    """Open the store at ``url`` (None: the default) or raise a LaunchError naming URL and cause."""
    from perfkit.store import Store

    shown = url or os.environ.get("PERFKIT_STORE_URL") or "the default sqlite:///.perfkit/perfkit.db"
    try:
        store = Store(url)
    except Exception as exc:  # noqa: BLE001 - any failure to open is reported the same way
        raise LaunchError(f"cannot open the store {shown}: {type(exc).__name__}: {exc}") from None
    health = store.health()
    if not health.get("reachable", True):
        store.close()
        raise LaunchError(f"cannot open the store {health.get('url', shown)}: "
                          f"{health.get('last_error') or 'unreachable'}")
    return store


def has_display() -> bool:
    """Whether a browser window can be shown (on Linux/BSD: an X11 or Wayland display)."""
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def open_browser_when_up(url: str, host: str, port: int, timeout: float = 30.0) -> None:
    """Open ``url`` in a browser once ``host:port`` accepts connections (daemon thread)."""
    def wait_and_open() -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                with socket.create_connection((host, port), timeout=1):
                    break
            except OSError:
                time.sleep(0.1)
        else:
            return
        import webbrowser

        with contextlib.suppress(Exception):
            webbrowser.open(url)

    threading.Thread(target=wait_and_open, name="perfkit-browser", daemon=True).start()


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """SIGTERM (and SIGINT) raise KeyboardInterrupt in the main thread, so ``finally`` runs."""
    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    old = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, h in old.items():
            signal.signal(sig, h)


def exit_now(code: int) -> NoReturn:
    """End the process with ``code`` once a command has stopped and flushed everything.

    The atexit handlers run and stdout/stderr are flushed; then the process ends
    without the interpreter's teardown of every imported module, which for pandas,
    statsmodels and SQLAlchemy took 1.5–3.5 s on a busy 2-core machine and writes
    nothing: a SIGTERM'd server would otherwise outlive its 5 s stop budget.
    """
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)
