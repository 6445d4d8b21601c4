"""Import cost: what perfkit adds to ``import perfkit`` and to every pytest start-up.

    nice -n 15 python benchmarks/bench_import.py              # 21 rounds of each
    nice -n 15 python benchmarks/bench_import.py --rounds 11  # quick

Two measurements, each against its reference in the same run, in interleaved
rounds (A, B, A, B, …) so that load from other processes hits both alike:

* pytest start-up: ``pytest --co`` on an empty test directory with the perfkit
  plugin loaded (installed as the ``pytest11`` entry point) and with
  ``-p no:perfkit``; the difference of the medians is what the plugin adds.
* ``python -c "import perfkit"`` against ``python -c "pass"``, plus
  ``python -X importtime`` for the modules that importing perfkit loads.

The checkout's perfkit is imported (``PYTHONPATH`` is set to it), so the
figures belong to this tree, not to whatever is installed.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, **extra)
    env["PYTHONPATH"] = str(ROOT)
    env.pop("PYTEST_ADDOPTS", None)
    # an installed package runs from .pyc files: let the warm-up run write them
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def run_once(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """``(CPU s, wall s)`` of one run of ``cmd``. CPU time (user + system of the child)
    is the figure that survives a busy machine: waiting for a core is not counted."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    _, status, ru = os.wait4(p.pid, 0)
    took = time.perf_counter() - t0
    p.returncode = rc = os.waitstatus_to_exitcode(status)
    # pytest exits 5 when it collected nothing: that is the point of an empty directory
    if rc not in (0, 5):
        err = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True,
                             timeout=300).stderr
        raise RuntimeError(f"{' '.join(cmd)} failed ({rc}): {err[-2000:]}")
    return ru.ru_utime + ru.ru_stime, took


def interleaved(cmds: dict[str, list[str]], rounds: int, cwd: Path,
                env: dict[str, str] | None = None) -> dict[str, list[tuple[float, float]]]:
    env = env or _env()
    times: dict[str, list[tuple[float, float]]] = {k: [] for k in cmds}
    for c in cmds.values():  # warm the OS file cache and write the .pyc files once
        run_once(c, cwd, env)
    for _ in range(rounds):
        for k, c in cmds.items():
            times[k].append(run_once(c, cwd, env))
    return times


def importtime(module: str, cwd: Path) -> list[tuple[int, int, str]]:
    """``(self µs, cumulative µs, module)`` per module ``import module`` loads."""
    res = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import {module}"],
                         cwd=cwd, env=_env(), capture_output=True, text=True, timeout=120,
                         check=True)
    rows = []
    for line in res.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, cum_us, name = (p.strip() for p in line[len("import time:"):].split("|"))
        rows.append((int(self_us), int(cum_us), name))
    return rows


def _med(xs: list[tuple[float, float]], i: int) -> float:
    return statistics.median(x[i] for x in xs)


def _cells(xs: list[tuple[float, float]]) -> str:
    q = statistics.quantiles([x[0] for x in xs], n=4)
    return (f"{_med(xs, 0) * 1e3:.1f} | {q[0] * 1e3:.1f}–{q[2] * 1e3:.1f} | "
            f"{_med(xs, 1) * 1e3:.1f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=21)
    args = ap.parse_args()
    py = sys.executable
    with tempfile.TemporaryDirectory() as d:
        empty = Path(d)
        (empty / "tests").mkdir()
        co = [py, "-m", "pytest", "--co", "-q", "-p", "no:cacheprovider", "tests"]
        pt = interleaved({"with": co, "without": [*co, "-p", "no:perfkit"]}, args.rounds, empty)
        # the same without the other installed plugins (schemathesis, pytest-benchmark, …),
        # whose start-up dwarfs and blurs perfkit's: only perfkit's plugin, named explicitly
        bare = interleaved({"with": [*co, "-p", "perfkit.pytest_plugin"], "without": co},
                           args.rounds, empty, _env(PYTEST_DISABLE_PLUGIN_AUTOLOAD="1"))
        imp = interleaved({"pass": [py, "-c", "pass"],
                           "perfkit": [py, "-c", "import perfkit"],
                           "plugin": [py, "-c", "import perfkit.pytest_plugin"]},
                          args.rounds, empty)
        rows = importtime("perfkit", empty)
        plugin_rows = importtime("perfkit.pytest_plugin", empty)

    added = _med(pt["with"], 0) - _med(pt["without"], 0)
    ratio = _med(pt["with"], 0) / _med(pt["without"], 0)
    added_wall = _med(pt["with"], 1) - _med(pt["without"], 1)
    try:
        load = f"{os.getloadavg()[0]:.1f}"
    except OSError:
        load = "n/a"
    md = [f"Python {platform.python_version()}, {os.cpu_count()} CPUs, load average {load} "
          f"at the end, {args.rounds} interleaved rounds. CPU = user + system time of the "
          "child process (median, interquartile range); wall = median elapsed time.",
          "",
          "| command | CPU ms | CPU IQR ms | wall ms | CPU vs reference |",
          "|---|---|---|---|---|",
          f"| `pytest --co` empty dir, `-p no:perfkit` (reference) | {_cells(pt['without'])} "
          "| 1.00× |",
          f"| `pytest --co` empty dir, perfkit plugin loaded | {_cells(pt['with'])} | "
          f"{ratio:.3f}× (**{added * 1e3:+.1f} ms**; wall {added_wall * 1e3:+.1f} ms) |",
          f"| same, no other plugins (`PYTEST_DISABLE_PLUGIN_AUTOLOAD=1`, reference) | "
          f"{_cells(bare['without'])} | 1.00× |",
          f"| same, no other plugins, `-p perfkit.pytest_plugin` | {_cells(bare['with'])} | "
          f"{_med(bare['with'], 0) / _med(bare['without'], 0):.3f}× "
          f"(**{(_med(bare['with'], 0) - _med(bare['without'], 0)) * 1e3:+.1f} ms**; wall "
          f"{(_med(bare['with'], 1) - _med(bare['without'], 1)) * 1e3:+.1f} ms) |",
          f"| `python -c pass` (reference) | {_cells(imp['pass'])} | 1.00× |"]
    base = _med(imp["pass"], 0)
    for k, label in (("perfkit", "import perfkit"), ("plugin", "import perfkit.pytest_plugin")):
        m = _med(imp[k], 0)
        md.append(f"| `python -c \"{label}\"` | {_cells(imp[k])} | "
                  f"{m / base:.2f}× ({(m - base) * 1e3:+.1f} ms) |")
    for title, rs, top in (("import perfkit", rows, "perfkit"),
                           ("import perfkit.pytest_plugin", plugin_rows, "perfkit.pytest_plugin")):
        total = next((c for _, c, n in rs if n == top), 0)
        ours = sum(s for s, _, n in rs if n.startswith("perfkit"))
        md += ["", f"`python -X importtime -c \"{title}\"`: {total / 1e3:.1f} ms cumulative for "
               f"`{top}`, {len(rs)} modules loaded, {ours / 1e3:.1f} ms in perfkit's own modules. "
               "Largest cumulative:", "",
               "| module | self ms | cumulative ms |", "|---|---|---|"]
        for s, c, n in sorted(rs, key=lambda r: -r[1])[:8]:
            md.append(f"| `{n}` | {s / 1e3:.2f} | {c / 1e3:.2f} |")
    print("\n".join(md))
    bare_added = _med(bare["with"], 0) - _med(bare["without"], 0)
    print(f"\nplugin start-up cost: {added * 1e3:+.1f} ms CPU among all installed plugins, "
          f"{bare_added * 1e3:+.1f} ms CPU alone (goal < 20 ms)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
