"""The ``perfkit`` command: ``monitor``, ``dashboard``, ``demo``, ``serve``."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = ["main"]

Command = Callable[[argparse.Namespace], int]


def _monitor(args: argparse.Namespace) -> int:
    from perfkit.catalog import find_metric
    from perfkit.monitor import Monitor

    mon = Monitor(args.store, interval=args.interval, disk_path=args.disk_path)
    print(f"perfkit: monitoring {mon.host} every {mon.interval:g}s into {mon.store.health()['url']}"
          " (Ctrl-C to stop)", flush=True)
    n = 0
    try:
        while args.count is None or n < args.count:
            frame = mon.collect()
            n += 1
            rows = frame[frame["labels"] == ""].sort_values("metric")
            print(f"\n{frame['ts'].max() if len(frame) else '':}  ({len(frame)} samples)")
            for metric, value in zip(rows["metric"], rows["value"]):
                m = find_metric(metric)
                sev = m.severity(value) if m else None
                unit = m.unit if m else ""
                flag = f"  << {sev}" if sev else ""
                print(f"  {metric:<42} {value:>12.2f} {unit:<6}{flag}")
            sys.stdout.flush()
            if args.count is None or n < args.count:
                time.sleep(mon.interval)
    except KeyboardInterrupt:
        pass
    finally:
        mon.stop()
    return 0


def _dashboard(args: argparse.Namespace) -> int:
    app = Path(__file__).resolve().parent.parent / "app.py"
    if not app.exists():
        print(f"perfkit: cannot find app.py next to the perfkit package ({app}); "
              "run from a checkout installed with `pip install -e .`", file=sys.stderr)
        return 2
    env = dict(os.environ)
    if args.store:
        env["PERFKIT_STORE_URL"] = args.store
    cmd = [sys.executable, "-m", "streamlit", "run", str(app), "--server.port", str(args.port),
           "--server.headless", str(args.headless).lower(), "--browser.gatherUsageStats", "false"]
    return subprocess.call(cmd, env=env)


def _serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from perfkit.api import PREFIX, TOKEN_ENV, app
    except ImportError as exc:
        print(f"perfkit serve needs the API extra ({exc.name} is missing): "
              "pip install 'perfkit[api]'", file=sys.stderr)
        return 2
    from perfkit.monitor import Monitor

    mon = Monitor(args.store, interval=args.interval, disk_path=args.disk_path)
    if not args.no_monitor:
        mon.start()
    guarded = "token required" if os.environ.get(TOKEN_ENV) else f"open: set {TOKEN_ENV} to guard"
    print(f"perfkit: API on http://{args.host}:{args.port}{PREFIX} (POST endpoints {guarded}), "
          f"Prometheus at /metrics; store {mon.store.health()['url']}", flush=True)
    try:
        uvicorn.run(app(mon, all_hosts=not args.own_host_only, max_age=args.max_age),
                    host=args.host, port=args.port, log_level=args.log_level)
    finally:
        mon.stop()
    return 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="perfkit", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    m = sub.add_parser("monitor", help="monitor this host into the store and print a live table")
    m.add_argument("--store", default=None, help="store URL (default: PERFKIT_STORE_URL or "
                   "sqlite:///.perfkit/perfkit.db)")
    m.add_argument("--interval", type=float, default=5.0, help="seconds between collections")
    m.add_argument("--disk-path", default="/", help="path whose disk usage is watched")
    m.add_argument("--count", type=int, default=None, help="stop after this many collections")
    m.set_defaults(func=_monitor)

    d = sub.add_parser("dashboard", help="open the Streamlit dashboard (streamlit run app.py)")
    d.add_argument("--store", default=None, help="store URL (default: the embedded SQLite store)")
    d.add_argument("--port", type=int, default=8501)
    d.add_argument("--headless", action="store_true", help="do not open a browser")
    d.set_defaults(func=_dashboard)

    s = sub.add_parser("serve", help="run the HTTP API and Prometheus /metrics (needs "
                       "perfkit[api]); POST endpoints need PERFKIT_API_TOKEN when it is set")
    s.add_argument("--store", default=None, help="store URL (default: PERFKIT_STORE_URL or "
                   "sqlite:///.perfkit/perfkit.db)")
    s.add_argument("--host", default="127.0.0.1", help="address to bind (default: localhost only)")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--interval", type=float, default=5.0, help="seconds between collections")
    s.add_argument("--disk-path", default="/", help="path whose disk usage is watched")
    s.add_argument("--no-monitor", action="store_true",
                   help="do not collect this host's metrics at start (POST start-monitoring does)")
    s.add_argument("--own-host-only", action="store_true",
                   help="/metrics exports only this server's host, not every host of the store")
    s.add_argument("--max-age", default=None,
                   help="/metrics leaves out series whose latest sample is older, e.g. 15min")
    s.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info",
                                                           "debug"])
    s.set_defaults(func=_serve)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``perfkit`` command."""
    args = _parser().parse_args(argv)
    func: Command = args.func
    return func(args)


if __name__ == "__main__":
    raise SystemExit(main())
