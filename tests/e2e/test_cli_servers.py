"""The long-running commands start without a terminal, stop cleanly on a signal, and refuse
bad settings before anything starts."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator

import pytest
from _procs import free_port, wait_until

pytest.importorskip("streamlit")


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def _perfkit(*args: str, cwd: object) -> subprocess.Popen[str]:
    """The command as a script or a container runs it: no terminal, stdin closed."""
    return subprocess.Popen([sys.executable, "-m", "perfkit.cli", *args], cwd=cwd,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            env={**os.environ, "DISPLAY": ""})


@pytest.fixture
def stopper() -> Iterator[list[subprocess.Popen[str]]]:
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait(30)


def _wait_up(proc: subprocess.Popen[str], url: str) -> None:
    def answers() -> bool:
        if proc.poll() is not None:
            pytest.fail(f"exited {proc.returncode}: {proc.stderr.read() if proc.stderr else ''}")
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status == 200

    wait_until(answers, 120, f"{url} to answer", every=0.2, retry_on=(OSError,))


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_dashboard_runs_headless_and_stops_on_a_signal(sig: signal.Signals, tmp_path: object,
                                                       stopper: list) -> None:
    port = free_port()
    proc = _perfkit("dashboard", "--port", str(port), "--store", f"sqlite:///{tmp_path}/d.db",
                    "--mode", "viewer", cwd=tmp_path)
    stopper.append(proc)
    _wait_up(proc, f"http://127.0.0.1:{port}/_stcore/health")
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    # no orphan: the server ran in this process, so its port is free once it has exited
    assert not _listening(port)
    lines = [ln for ln in out.splitlines() if ln.strip()]
    assert lines[0] == (f"perfkit dashboard: http://127.0.0.1:{port} (viewer; store "
                        f"sqlite:///{tmp_path}/d.db; Ctrl-C to stop)")
    assert [ln for ln in lines + err.splitlines() if "http" in ln] == lines[:1]
    assert "Email" not in out + err and "Welcome" not in out + err


def test_serve_and_demo_stop_on_sigterm(tmp_path: object, stopper: list) -> None:
    port = free_port()
    serve = _perfkit("serve", "--port", str(port), "--store", f"sqlite:///{tmp_path}/s.db",
                     "--interval", "0.5", "--log-level", "warning", cwd=tmp_path)
    demo = _perfkit("demo", "--store", f"sqlite:///{tmp_path}/m.db", "--interval", "0.5",
                    "--orders", "2000", cwd=tmp_path)
    stopper += [serve, demo]
    _wait_up(serve, f"http://127.0.0.1:{port}/api/v1/advanced-performance/health")
    assert demo.stdout is not None and "perfkit demo:" in demo.stdout.readline()
    for proc in (serve, demo):
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
        assert proc.returncode == 0
    assert not _listening(port)


def test_prompt_exit_still_runs_atexit_and_flushes_output(tmp_path: object) -> None:
    # The commands end without the interpreter's teardown; what a user relies on stays:
    # the exit status, buffered output and the atexit handlers (logging's among them).
    code = ("import atexit, sys\nfrom perfkit._launch import exit_now\n"
            "atexit.register(lambda: print('atexit ran'))\n"
            "sys.stdout.write('buffered, no newline; ')\nexit_now(3)\n")
    res = subprocess.run([sys.executable, "-c", code], check=False, cwd=tmp_path,
                         stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    assert res.returncode == 3, res.stderr
    assert res.stdout == "buffered, no newline; atexit ran\n"


@pytest.mark.parametrize("command", ["dashboard", "serve"])
def test_port_in_use_is_a_clear_error(command: str, tmp_path: object) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        res = subprocess.run([sys.executable, "-m", "perfkit.cli", command, "--port", str(port),
                              "--store", f"sqlite:///{tmp_path}/p.db"], check=False,
                             cwd=tmp_path,
                             stdin=subprocess.DEVNULL, capture_output=True, text=True,
                             timeout=120)
    assert res.returncode == 2
    assert f"port {port} on 127.0.0.1 is already in use; pick another with --port" in res.stderr
    assert not (tmp_path / "p.db").exists()     # refused before anything was opened


@pytest.mark.parametrize("command, env", [("dashboard", "PERFKIT_DASHBOARD_TOKEN"),
                                          ("serve", "PERFKIT_API_TOKEN")])
def test_non_local_bind_needs_a_token(command: str, env: str, tmp_path: object) -> None:
    clean = {k: v for k, v in os.environ.items() if k not in ("PERFKIT_DASHBOARD_TOKEN",
                                                              "PERFKIT_API_TOKEN")}
    res = subprocess.run([sys.executable, "-m", "perfkit.cli", command, "--host", "0.0.0.0",
                          "--port", str(free_port())], check=False, cwd=tmp_path, env=clean,
                         stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    assert res.returncode == 2
    assert "refusing to listen on 0.0.0.0" in res.stderr and f"--token or {env}" in res.stderr


@pytest.mark.parametrize("command", ["dashboard", "serve", "demo", "monitor"])
def test_unopenable_store_names_the_url_and_why(command: str, tmp_path: object) -> None:
    bad = f"sqlite:///{tmp_path}/file/under/a/file.db"
    (tmp_path / "file").write_text("not a directory")
    port = free_port()
    extra = [] if command in ("demo", "monitor") else ["--port", str(port)]
    res = subprocess.run([sys.executable, "-m", "perfkit.cli", command, "--store", bad, *extra],
                         check=False, cwd=tmp_path, stdin=subprocess.DEVNULL,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2
    assert f"cannot open the store {bad}: " in res.stderr
    assert "Error" in res.stderr.splitlines()[-1]    # the cause, e.g. NotADirectoryError
    assert not _listening(port)
