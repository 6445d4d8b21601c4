"""perfkit as a team installs it: from a wheel, into a clean virtual environment.

The wheel is built once per run from a copy of the package (the checkout gets no build/
or egg-info) and installed by pip into fresh venvs in a temporary directory; every command
runs from a directory outside the checkout with no PYTHONPATH, so nothing can come from
the source tree. The venvs get the wheel's declared dependencies linked from this
environment rather than downloaded and unpacked again (``_overlay.py``): only what the
wheel's ``Requires-Dist`` names for the chosen extras is there, and ``pip check`` holds
every version range against it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from _overlay import closure, link_into, wheel_requirements
from _procs import free_port, wait_until

from perfkit.store import Store

ROOT = Path(__file__).resolve().parents[2]
INSTALL_TIMEOUT_S = 600

# one worker builds the wheel and the venvs once for all tests here
pytestmark = [pytest.mark.slow, pytest.mark.timeout(INSTALL_TIMEOUT_S + 300),
              pytest.mark.xdist_group("wheel")]


@dataclass
class Venv:
    root: Path
    work: Path  # an empty directory outside the checkout: the commands' cwd

    def exe(self, name: str) -> str:
        return str(self.root / "bin" / name)

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run([self.exe(args[0]), *args[1:]], cwd=self.work, env=clean_env(),
                              capture_output=True, text=True, timeout=timeout)

    def popen(self, *args: str) -> subprocess.Popen[str]:
        # its own session, so the whole tree (perfkit dashboard -> streamlit) can be stopped
        return subprocess.Popen([self.exe(args[0]), *args[1:]], cwd=self.work, env=clean_env(),
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                start_new_session=True)


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PERFKIT_STORE_URL", "VIRTUAL_ENV")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def stop(proc: subprocess.Popen[str]) -> str:
    """Interrupt a process tree started by :meth:`Venv.popen` (Ctrl-C), kill it if it
    lingers, and return what it printed."""
    gone = contextlib.suppress(ProcessLookupError)
    with gone:
        os.killpg(proc.pid, signal.SIGINT)
    try:
        out, _ = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        with gone:
            os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate(timeout=30)
    with gone:
        os.killpg(proc.pid, signal.SIGKILL)  # children that outlived their parent
    return out


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("wheel")
    src = base / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "perfkit", src / "perfkit",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                    str(base / "dist"), str(src)], check=True, env=clean_env(), cwd=base,
                   capture_output=True, timeout=600)
    (whl,) = (base / "dist").glob("perfkit-*.whl")
    return whl


def make_venv(base: Path, wheel: Path, extras: set[str]) -> Venv:
    """A fresh venv with the wheel installed by pip and its dependencies for ``extras``."""
    venv = Venv(base / "venv", base / "work")
    venv.work.mkdir()
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv.root)],
                   check=True, timeout=300)
    site = Path(subprocess.run(
        [venv.exe("python"), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        check=True, capture_output=True, text=True, timeout=60).stdout.strip())
    deps = base / "deps" / "site-packages"  # Streamlit runs in development mode elsewhere
    link_into(closure(wheel_requirements(wheel, extras), skip="perfkit"), deps)
    (site / "_perfkit_test_deps.pth").write_text(f"{deps}\n")
    spec = f"{wheel}[{','.join(sorted(extras))}]" if extras else str(wheel)
    pip = [sys.executable, "-m", "pip", "--python", venv.exe("python")]
    for args in (["install", "-q", "--no-deps", "--no-compile", spec], ["check"]):
        res = subprocess.run([*pip, *args], env=clean_env(), cwd=venv.work,
                             capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S)
        assert res.returncode == 0, f"pip {args[0]}: {res.stdout[-3000:]}{res.stderr[-3000:]}"
    return venv


@pytest.fixture(scope="module")
def core(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Venv:
    return make_venv(tmp_path_factory.mktemp("core"), wheel, set())


@pytest.fixture(scope="module")
def dashboard(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Venv:
    return make_venv(tmp_path_factory.mktemp("dashboard"), wheel, {"dashboard"})


def test_core_install_carries_only_the_core(core: Venv) -> None:
    code = textwrap.dedent("""
        import importlib.metadata as md, importlib.util as u, json
        extras = ["streamlit", "plotly", "tsdownsample", "redis", "psycopg", "fastapi",
                  "uvicorn"]
        files = {str(f) for f in md.distribution("perfkit").files}
        present = [m for m in extras if u.find_spec(m)]
        print(json.dumps({"present": present, "files": sorted(files)}))
    """)
    res = core.run("python", "-c", code)
    assert res.returncode == 0, res.stderr
    got = json.loads(res.stdout)
    assert got["present"] == []
    # package data: the typing marker, and the page `perfkit dashboard` runs
    assert {"perfkit/py.typed", "perfkit/dashboard/_app.py"} <= set(got["files"])


def test_monitor_runs_from_the_installed_package(core: Venv) -> None:
    code = textwrap.dedent("""
        import json, perfkit
        mon = perfkit.Monitor("sqlite:///w.db", host="wheel-host", interval=60)
        mon.record("orders.placed", 3.0)
        mon.collect()
        latest = mon.store.latest(host="wheel-host").set_index("metric")["value"]
        mon.stop()
        mon.store.close()
        print(json.dumps({"file": perfkit.__file__, "orders": latest["orders.placed"],
                          "memory": latest["system.memory_usage"]}))
    """)
    res = core.run("python", "-c", code)
    assert res.returncode == 0, res.stderr
    got = json.loads(res.stdout)
    assert Path(got["file"]).is_relative_to(core.root)
    assert got["orders"] == 3.0 and 0 < got["memory"] <= 100
    assert (core.work / "w.db").exists()


def test_cli_commands_from_the_installed_package(core: Venv) -> None:
    res = core.run("perfkit", "dashboard", "--help")
    assert res.returncode == 0 and "--port" in res.stdout
    # without the extras, each command says which install fixes it
    res = core.run("perfkit", "dashboard", "--headless")
    assert res.returncode == 2 and 'pip install "perfkit[dashboard]"' in res.stderr
    res = core.run("perfkit", "serve")
    assert res.returncode != 0 and 'pip install "perfkit[api]"' in res.stdout + res.stderr


def test_demo_runs_from_the_installed_package(core: Venv) -> None:
    url = f"sqlite:///{core.work / 'demo.db'}"
    proc = core.popen("perfkit", "demo", "--store", url, "--interval", "0.5", "--rate", "50",
                      "--seed", "1")
    try:
        with Store(url) as store:
            def served() -> list[float]:
                assert proc.poll() is None, f"perfkit demo exited {proc.returncode}"
                return store.samples(metric="application.requests_per_second")["value"].tolist()

            try:
                rps = wait_until(served, 120, "the demo's first requests_per_second sample",
                                 every=0.2)
            except AssertionError as exc:
                failure: AssertionError | None = exc
            else:
                failure = None
    finally:
        out = stop(proc)
    assert failure is None, f"{failure}\n{out}"
    assert all(v > 0 for v in rps), out
    assert "perfkit demo: prediction-market service" in out


@pytest.fixture
def dashboard_process(dashboard: Venv) -> Iterator[tuple[subprocess.Popen[str], int]]:
    port = free_port()
    store = f"sqlite:///{dashboard.work / 'dash.db'}"
    proc = dashboard.popen("perfkit", "dashboard", "--headless", "--port", str(port),
                           "--store", store)
    yield proc, port
    stop(proc)


def test_dashboard_extra_serves_the_page(dashboard_process: tuple[subprocess.Popen[str], int]
                                         ) -> None:
    proc, port = dashboard_process
    def healthy() -> bool:
        assert proc.poll() is None, f"exit code {proc.returncode}:\n{stop(proc)[-3000:]}"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=5) as r:
            return r.read().decode() == "ok"

    wait_until(healthy, 180, "the dashboard's health answer", every=0.3, retry_on=(OSError,))
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as r:
        assert r.status == 200 and "<html" in r.read().decode().lower()
