"""System and process metrics from psutil, without blocking."""

from __future__ import annotations

import os

import psutil

from perfkit.collectors._base import Reading

__all__ = ["SystemCollector"]

_GB = 1e9
_MB = 2**20


class SystemCollector:
    """CPU, memory, disk of the host and RSS / CPU of this process.

    CPU percentages come from ``cpu_percent(interval=None)``, which compares
    with the previous call instead of sleeping; the first call only primes it,
    so CPU readings start from the second collection.
    """

    name = "system"

    def __init__(self, disk_path: str = "/") -> None:
        if not os.path.exists(disk_path):
            raise ValueError(f"disk_path {disk_path!r} does not exist; "
                             "pass a mounted path such as '/'")
        self.disk_path = disk_path
        self._proc = psutil.Process()
        psutil.cpu_percent(interval=None)
        self._proc.cpu_percent(interval=None)
        self._primed = False

    def collect(self) -> list[Reading]:
        """One non-blocking snapshot."""
        vm = psutil.virtual_memory()
        out = [
            Reading("system.memory_usage", float(vm.percent)),
            Reading("system.memory_available", vm.available / _GB),
            Reading("system.disk_usage", float(psutil.disk_usage(self.disk_path).percent)),
            Reading("process.rss", self._proc.memory_info().rss / _MB),
        ]
        cpu = psutil.cpu_percent(interval=None)
        pcpu = self._proc.cpu_percent(interval=None)
        if self._primed:
            out.append(Reading("system.cpu_usage", float(cpu)))
            out.append(Reading("process.cpu_usage", float(pcpu)))
        self._primed = True
        return out
