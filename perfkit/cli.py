"""The ``perfkit`` command: ``monitor``, ``dashboard``, ``demo``, ``serve``."""

from __future__ import annotations

import argparse
import os
import socket
import sys
import time
from collections.abc import Callable, Sequence
from typing import NoReturn

from perfkit import _launch

__all__ = ["main", "run"]

Command = Callable[[argparse.Namespace], int]


def _monitor(args: argparse.Namespace) -> int:
    from perfkit.catalog import find_metric
    from perfkit.monitor import Monitor

    mon = Monitor(_launch.open_store(args.store), interval=args.interval,
                  disk_path=args.disk_path)
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
    from perfkit.dashboard import (
        EMBEDDED_ENV,
        HOST_ENV,
        SCRIPT,
        TOKEN_ENV,
        resolve_mode,
        shared_runtime,
        start_warming,
    )

    token = args.token or os.environ.get(TOKEN_ENV) or None
    _launch.check_bind(args.host, token, option=f"--token or {TOKEN_ENV}")
    _launch.check_port(args.host, args.port)
    # The page runs in this process and reads its settings from the environment.
    if args.store:
        os.environ["PERFKIT_STORE_URL"] = args.store
    if args.actions_store:
        from perfkit.store._prometheus import ACTIONS_ENV

        os.environ[ACTIONS_ENV] = args.actions_store
    if args.mode:
        os.environ[EMBEDDED_ENV] = "1" if args.mode == "all-in-one" else "0"
    os.environ[HOST_ENV] = args.host
    if token:
        os.environ[TOKEN_ENV] = token
    store_url = os.environ.get("PERFKIT_STORE_URL") or None
    _launch.open_store(store_url).close()
    embedded = resolve_mode(store_url)
    # Collection starts with the command, not with the first browser that connects.
    rt = shared_runtime(store_url, embedded)
    start_warming(rt)  # the first visitor's imports and first figures, done while we start
    url = f"http://{_shown_host(args.host)}:{args.port}"
    mode = "all-in-one: Monitor and demo running" if embedded else "viewer"
    print(f"perfkit dashboard: {url} ({mode}; store {rt.store.health()['url']}; "
          "Ctrl-C to stop)", flush=True)
    if not args.no_browser and _launch.has_display():
        _launch.open_browser_when_up(url, _shown_host(args.host), args.port)
    try:
        _run_streamlit(str(SCRIPT), args.host, args.port)
    except KeyboardInterrupt:
        pass
    finally:
        rt.close()
    return 0


def _shown_host(host: str) -> str:
    return socket.gethostname() if host in ("0.0.0.0", "::", "") else host


def _run_streamlit(script: str, host: str, port: int) -> None:
    """Streamlit's server in this process: its signal handlers stop it, then this returns."""
    from streamlit import config as st_config
    from streamlit.web import bootstrap

    flags = {"server_port": port, "server_address": host, "server_headless": True,
             "browser_gatherUsageStats": False, "client_toolbarMode": "viewer",
             "server_fileWatcherType": "none", "server_runOnSave": False,
             "logger_hideWelcomeMessage": True, "logger_level": "warning"}
    st_config._main_script_path = script
    bootstrap.load_config_options(flag_options=flags)
    bootstrap.run(script, False, [], flags)


def _serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from perfkit.api import PREFIX, TOKEN_ENV, app
    except ImportError as exc:
        print(f"perfkit serve needs the API extra ({exc.name} is missing): "
              "pip install \"perfkit[api]\"", file=sys.stderr)
        return 2
    from perfkit.monitor import Monitor

    token = args.token or os.environ.get(TOKEN_ENV) or None
    _launch.check_bind(args.host, token, option=f"--token or {TOKEN_ENV}")
    _launch.check_port(args.host, args.port)
    store = _launch.open_store(args.store)
    mon = Monitor(store, interval=args.interval, disk_path=args.disk_path)
    if not args.no_monitor:
        mon.start()
    guarded = ("token required for POST and for other hosts' data" if token
               else f"open: set {TOKEN_ENV} to guard")
    print(f"perfkit serve: API on http://{_shown_host(args.host)}:{args.port}{PREFIX} "
          f"({guarded}), Prometheus at /metrics; store {store.health()['url']}", flush=True)
    try:
        # uvicorn stops on SIGINT/SIGTERM itself and re-raises the signal afterwards
        with _launch.stop_on_signals():
            uvicorn.run(app(mon, token=token or "", all_hosts=not args.own_host_only,
                            max_age=args.max_age),
                        host=args.host, port=args.port, log_level=args.log_level)
    except KeyboardInterrupt:
        pass
    finally:
        mon.stop(timeout=_launch.STOP_S)
        store.close()
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
    from perfkit.demo import DEFAULT_PHASES, Demo
    from perfkit.monitor import Monitor

    mon = Monitor(_launch.open_store(args.store), interval=args.interval)
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
        mon.stop(timeout=_launch.STOP_S)
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

    d = sub.add_parser("dashboard", help="serve the Streamlit dashboard and open it in a browser")
    d.add_argument("--store", default=None, help="store URL (default: the embedded SQLite store)")
    d.add_argument("--actions-store", default=None,
                   help="SQL store for alert events and the actions queue when --store is a "
                   "read-only prometheus://HOST:9090 source (e.g. postgresql://user@db/perf)")
    d.add_argument("--host", default="127.0.0.1", help="address to bind (default: localhost "
                   "only; any other address needs --token)")
    d.add_argument("--port", type=int, default=8501)
    d.add_argument("--token", default=None, help="token the page asks for before anything "
                   "acts (default: $PERFKIT_DASHBOARD_TOKEN); required beyond localhost")
    d.add_argument("--no-browser", "--headless", dest="no_browser", action="store_true",
                   help="do not open a browser (none is opened without a display anyway)")
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
    s.add_argument("--host", default="127.0.0.1", help="address to bind (default: localhost "
                   "only; any other address needs a token)")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--token", default=None, help="bearer token for POST endpoints and for "
                   "other hosts' data (default: $PERFKIT_API_TOKEN); required beyond localhost")
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
    try:
        # SIGTERM gets the same clean stop as Ctrl-C: every command's ``finally`` runs
        with _launch.stop_on_signals():
            return func(args)
    except _launch.LaunchError as exc:
        print(f"perfkit {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0


def run() -> NoReturn:
    """The ``perfkit`` executable: :func:`main`, then a prompt exit (:func:`_launch.exit_now`)."""
    _launch.exit_now(main())


if __name__ == "__main__":
    run()
