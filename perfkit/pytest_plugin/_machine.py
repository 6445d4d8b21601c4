"""What ran the benchmarks: machine, interpreter, package versions, git commit."""

from __future__ import annotations

import functools
import os
import platform
import socket
import subprocess
import sys
from importlib import metadata

#: packages whose versions are stored with each run (when installed)
KEY_PACKAGES = ("perfkit", "pytest", "numpy", "pandas", "scipy", "sqlalchemy", "pytest-xdist")


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    if sys.platform == "darwin":
        try:
            return subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"],
                                  capture_output=True, text=True, timeout=2,
                                  check=False).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            pass
    return platform.processor() or platform.machine()


def _versions() -> dict[str, str]:
    out = {}
    for name in KEY_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


@functools.lru_cache(maxsize=1)
def describe() -> dict:
    """A JSON-able description of this machine and interpreter (cached per process)."""
    try:
        affinity = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        affinity = None
    try:
        import psutil  # a perfkit dependency; optional here
        physical = psutil.cpu_count(logical=False)
        freq = psutil.cpu_freq()
        max_mhz = round(freq.max) if freq and freq.max else None
        mem_gb = round(psutil.virtual_memory().total / 2**30, 1)
    except Exception:  # noqa: BLE001 - description only
        physical, max_mhz, mem_gb = None, None, None
    return {
        "host": socket.gethostname(),
        "cpu": _cpu_model(),
        "cores_logical": os.cpu_count(),
        "cores_physical": physical,
        "cores_usable": affinity,
        "cpu_max_mhz": max_mhz,
        "memory_gb": mem_gb,
        "os": platform.platform(),
        "arch": platform.machine(),
        "python": platform.python_version(),
        "python_impl": platform.python_implementation(),
        "python_build": " ".join(platform.python_build()),
        "packages": _versions(),
    }


def same_machine(a: dict, b: dict) -> bool:
    """Whether two descriptions name the same hardware and interpreter."""
    keys = ("host", "cpu", "cores_logical", "python", "python_impl")
    return all(a.get(k) == b.get(k) for k in keys)


def git_commit(path: str | os.PathLike | None = None) -> str:
    """The commit checked out at ``path`` ('' when git or a commit is not available).

    CI systems' commit variables (and ``PERFKIT_COMMIT``) take precedence.
    """
    for var in ("PERFKIT_COMMIT", "GITHUB_SHA", "CI_COMMIT_SHA", "BUILDKITE_COMMIT", "GIT_COMMIT"):
        if os.environ.get(var):
            return os.environ[var]
    try:
        proc = subprocess.run(["git", "rev-parse", "--verify", "-q", "HEAD"], cwd=path or None,
                              capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return ""
    return proc.stdout.strip() if proc.returncode == 0 else ""
