"""The `perfkit monitor` command prints a live table and fills the store."""

from __future__ import annotations

import subprocess
import sys

import perfkit


def test_monitor_command_prints_table_and_writes_store(sqlite_url):
    out = subprocess.run(
        [sys.executable, "-m", "perfkit.cli", "monitor", "--store", sqlite_url, "--interval", "0.2",
         "--count", "2"], capture_output=True, text=True, timeout=120, check=True).stdout
    assert "system.memory_usage" in out and "system.cpu_usage" in out  # CPU from the 2nd pass
    frame = perfkit.Store(sqlite_url).samples(metric="system.memory_usage")
    assert len(frame) == 2 and frame["value"].between(0, 100).all()


def test_unknown_command_fails_with_usage():
    res = subprocess.run([sys.executable, "-m", "perfkit.cli", "nope"], capture_output=True, text=True)
    assert res.returncode == 2 and "invalid choice" in res.stderr
