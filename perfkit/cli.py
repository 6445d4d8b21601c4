"""The ``perfkit`` command: ``monitor``, ``dashboard``, ``demo``, ``serve``."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence

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
            for result in mon.optimizer.process_requests():  # actions queued for this host
                print(f"  action #{result.id}: {result.status} {result.verdict or ''}", flush=True)
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
    import importlib.util

    if importlib.util.find_spec("streamlit") is None:
        print('perfkit dashboard needs the dashboard extra: pip install "perfkit[dashboard]"',
              file=sys.stderr)
        return 2
    from perfkit.dashboard import SCRIPT as app
    env = dict(os.environ)
    if args.store:
        env["PERFKIT_STORE_URL"] = args.store
    if args.actions_store:
        from perfkit.store._prometheus import ACTIONS_ENV

        env[ACTIONS_ENV] = args.actions_store
    if args.mode:
        env["PERFKIT_EMBEDDED"] = "1" if args.mode == "all-in-one" else "0"
    cmd = [sys.executable, "-m", "streamlit", "run", str(app), "--server.port", str(args.port),
           "--server.headless", str(args.headless).lower(), "--browser.gatherUsageStats", "false",
           "--client.toolbarMode", "viewer", "--server.fileWatcherType", "none"]
    return subprocess.call(cmd, env=env)


def _serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from perfkit.api import PREFIX, TOKEN_ENV, app
    except ImportError as exc:
        print(f"perfkit serve needs the API extra ({exc.name} is missing): "
              "pip install \"perfkit[api]\"", file=sys.stderr)
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


def _phases(text: str) -> list:
    """``"steady:30,slow_query:60"`` → Phase list (argparse type; errors name the bad part)."""
    from perfkit.demo import Phase

    out = []
    for part in text.split(","):
        kind, _, secs = part.strip().partition(":")
        try:
            out.append(Phase(kind.strip(), float(secs)))
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"{part.strip()!r}: {exc} (write kind:seconds, "
                                             "e.g. steady:30,slow_query:60)") from None
    return out


def _demo(args: argparse.Namespace) -> int:
    import time

    from perfkit.demo import DEFAULT_PHASES, Demo
    from perfkit.monitor import Monitor

    mon = Monitor(args.store, interval=args.interval)
    demo = Demo(mon, rate=args.rate, phases=args.phases or DEFAULT_PHASES,
                n_orders=args.orders, seed=args.seed)
    print(f"perfkit demo: prediction-market service on {mon.host}, {args.rate:g} req/s, "
          f"store {mon.store.health()['url']} (Ctrl-C to stop)", flush=True)
    # Serve the actions a dashboard queues for this host (the optimizer's hook claims them).
    mon.optimizer  # noqa: B018
    mon.start()
    if args.optimize:
        mon.start_optimization()
    demo.start()
    end = time.monotonic() + args.duration if args.duration else None
    last = None
    try:
        while end is None or time.monotonic() < end:
            st = demo.status()
            if st["phase"] != last:
                last = st["phase"]
                print(f"phase {last} (cycle {st['cycle']})", flush=True)
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        demo.close()
        if args.optimize:
            mon.stop_optimization()
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
    d.add_argument("--actions-store", default=None,
                   help="SQL store for alert events and the actions queue when --store is a "
                   "read-only prometheus://HOST:9090 source (e.g. postgresql://user@db/perf)")
    d.add_argument("--port", type=int, default=8501)
    d.add_argument("--headless", action="store_true", help="do not open a browser")
    d.add_argument("--mode", choices=["all-in-one", "viewer"], default=None,
                   help="all-in-one: run a Monitor and the demo inside the dashboard (default "
                   "without --store); viewer: only read the store (default with --store)")
    d.set_defaults(func=_dashboard)

    dm = sub.add_parser("demo", help="run the demo prediction-market service and its load, "
                        "monitored into the store (headless)")
    dm.add_argument("--store", default=None, help="store URL (default: PERFKIT_STORE_URL or "
                    "sqlite:///.perfkit/perfkit.db)")
    dm.add_argument("--rate", type=float, default=20.0, help="requests per second")
    dm.add_argument("--interval", type=float, default=5.0, help="seconds between collections")
    dm.add_argument("--phases", type=_phases, default=None,
                    help="script as kind:seconds,… (kinds: steady, cold_cache, slow_query, "
                    "error_burst, memory_growth); default: the built-in cycle")
    dm.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    dm.add_argument("--orders", type=int, default=None,
                    help="rows in the orders table the slow query scans (default: enough for "
                    "that query to take 150 ms on this machine)")
    dm.add_argument("--seed", type=int, default=None, help="random seed for data and load")
    dm.add_argument("--optimize", action="store_true", help="start automatic optimisation")
    dm.set_defaults(func=_demo)

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
