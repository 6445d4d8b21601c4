"""The `perfkit monitor` command prints a live table and fills the store."""

from __future__ import annotations

import socket
import subprocess
import sys

from _procs import wait_until

import perfkit


def test_monitor_command_prints_table_and_writes_store(sqlite_url):
    out = subprocess.run(
        [sys.executable, "-m", "perfkit.cli", "monitor", "--store", sqlite_url, "--interval", "0.2",
         "--count", "2"], capture_output=True, text=True, timeout=120, check=True).stdout
    assert "system.memory_usage" in out and "system.cpu_usage" in out  # CPU from the 2nd pass
    frame = perfkit.Store(sqlite_url).samples(metric="system.memory_usage")
    assert len(frame) == 2 and frame["value"].between(0, 100).all()


def test_unknown_command_fails_with_usage():
    res = subprocess.run([sys.executable, "-m", "perfkit.cli", "nope"],
                         capture_output=True, text=True)
    assert res.returncode == 2 and "invalid choice" in res.stderr


def test_monitor_command_serves_actions_queued_for_its_host(sqlite_url):
    store = perfkit.Store(sqlite_url)
    proc = subprocess.Popen(
        [sys.executable, "-m", "perfkit.cli", "monitor", "--store", sqlite_url, "--interval", "0.3",
         "--count", "12"], stdout=subprocess.PIPE, text=True)
    try:
        hosts = wait_until(lambda: [h for h in store.hosts()
                                    if h.startswith(socket.gethostname())], 120,
                           "the monitor's first sample")
        store.request_action("memory_optimization", {}, host=hosts[0], requested_by="test")
        out, _ = proc.communicate(timeout=120)
    finally:
        proc.kill()
    done = store.actions(action="memory_optimization")
    assert done["status"].tolist() == ["done"] and "action #" in out
