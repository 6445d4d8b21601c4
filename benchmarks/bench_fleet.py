"""A fleet on one PostgreSQL store: many monitors with distinct host names writing at once.

    nice -n 15 python benchmarks/bench_fleet.py           # 200 hosts x 20 metrics, 1 s, 2 min
    nice -n 15 python benchmarks/bench_fleet.py --hosts 50 --duration 60   # quick

Each writer process plays ``hosts / processes`` monitors: every interval, each of its
hosts writes one collection (``--metrics`` catalogue metrics) through its own
``Store.write`` call (one batch, one transaction, binary COPY), the way a Monitor does;
the processes share nothing but the database. The real collectors are not run (200
psutil sweeps a second would measure this machine, not the store): values are random
walks around healthy levels. Reported:

* sustained samples/s and the write lag per tick (how late a tick's last write finished),
  first and last third of the run: a lag that stays flat is a store that keeps up;
* PostgreSQL disk per host per day (relation sizes / samples, times a day of samples) and
  the CPU seconds the PostgreSQL server processes used per second of run;
* the write lag minute by minute (median and worst tick of each minute);
* the time to read a fleet frame (all hosts, one metric, 1 h: an hour of history is
  bulk-loaded first) raw and from the 1 min rollups, the per-series window means the
  overview scores (one grouped query) against reading the raw last 6 minutes, and to
  compute the fleet overview (one row per host), against the same-run reference:
  ``perfkit.score`` called once per host; then the whole fleet section (``build_fleet``).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _report import best_of, drop_schema, print_rows

from perfkit.catalog import CORE_METRICS, PERCENTILES
from perfkit.store import Store

PG = os.environ.get("PERFKIT_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
METRICS = [*CORE_METRICS, *(f"{b}.p{p}" for b in ("application.api_response_time",
                                                   "database.query_time") for p in PERCENTILES)]
LEVELS = {"system.cpu_usage": 35.0, "system.memory_usage": 55.0, "system.disk_usage": 40.0,
          "cache.hit_rate": 93.0, "application.error_rate": 0.3}


def _host(i: int) -> str:
    return f"fleet-{i:03d}"


def _writer(url: str, hosts: list[int], metrics: list[str], interval: float, start: float,
            duration: float, out: mp.Queue, batch: bool) -> None:
    """One process playing several monitors; puts (tick start, lag s, rows) per tick.

    ``batch``: the tick's collections of all its hosts go in one write (a relay in front of
    the store) instead of one write per host (each Monitor on its own)."""
    rng = np.random.default_rng(hosts[0])
    levels = np.array([LEVELS.get(m, 20.0) for m in metrics])
    state = {h: levels.copy() for h in hosts}
    store = Store(url)  # one connection per process: 200 would pass max_connections
    ticks = []
    k = 0
    while True:
        tick = start + k * interval
        if tick >= start + duration:
            break
        time.sleep(max(0.0, tick - time.time()))
        rows = 0
        frames = []
        for h in hosts:
            state[h] = np.clip(state[h] + rng.normal(0, 0.3, len(metrics)), 0, 99)
            frame = pd.DataFrame({"ts": pd.Timestamp.now(tz="UTC"), "host": _host(h),
                                  "metric": metrics, "value": state[h], "labels": ""})
            if batch:
                frames.append(frame)
            else:
                rows += store.write(frame)
        if frames:
            rows += store.write(pd.concat(frames, ignore_index=True))
        ticks.append((tick, time.time() - tick, rows))
        k += 1 + int(max(0.0, time.time() - (start + (k + 1) * interval)) // interval)
    store.close()
    out.put(ticks)


def _backfill(url: str, n_hosts: int, metric: str, hours: float) -> float:
    """An hour (``hours``) of 1 s history of ``metric`` for every host; seconds it took."""
    end = pd.Timestamp.now(tz="UTC").floor("s") - pd.Timedelta("5min")
    ts = pd.date_range(end=end, periods=int(hours * 3600), freq="1s")
    rng = np.random.default_rng(7)
    t0 = time.perf_counter()
    with Store(url) as st:
        for h in range(n_hosts):
            st.write(pd.DataFrame({"ts": ts, "host": _host(h), "metric": metric,
                                   "value": 30 + rng.normal(0, 2, len(ts)), "labels": ""}))
    return time.perf_counter() - t0


def _pg_cpu_times() -> dict[int, float]:
    out = {}
    for p in psutil.process_iter(["name"]):
        if p.info["name"] and p.info["name"].startswith("postgres"):
            try:
                c = p.cpu_times()
                out[p.pid] = c.user + c.system
            except psutil.Error:
                pass
    return out


class PgCpu:
    """CPU seconds of the PostgreSQL server processes, sampled every second (the writers'
    backends exit with their connections, so a before/after difference would miss them)."""

    def __init__(self) -> None:
        self.base = _pg_cpu_times()
        self.seen = dict(self.base)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.wait(1.0):
            self.seen.update(_pg_cpu_times())

    def total(self) -> float:
        self.stop.set()
        self.thread.join()
        self.seen.update(_pg_cpu_times())
        return sum(v - self.base.get(pid, 0.0) for pid, v in self.seen.items())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hosts", type=int, default=200)
    ap.add_argument("--metrics", type=int, default=len(METRICS))
    ap.add_argument("--interval", type=float, default=1.0)
    ap.add_argument("--duration", type=float, default=120.0, help="seconds of live writing")
    ap.add_argument("--processes", type=int, default=4)
    ap.add_argument("--batch", action="store_true",
                    help="one write per process and tick (a relay) instead of one per host")
    ap.add_argument("--url", default=PG)
    args = ap.parse_args()
    metrics = METRICS[:args.metrics]
    schema = f"perfkit_fleet_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(args.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in args.url else "?"
    url = f"{args.url}{sep}options=-csearch_path%3D{schema}"
    try:
        Store(url).close()  # create the tables once, before the writers race for it
        fill_s = _backfill(url, args.hosts, "system.cpu_usage", 1.0)
        print(f"backfilled 1 h of system.cpu_usage for {args.hosts} hosts in {fill_s:.1f} s",
              flush=True)
        groups = [list(range(args.hosts))[i::args.processes] for i in range(args.processes)]
        q: mp.Queue = mp.Queue()
        start = time.time() + 3.0
        pg, wall0 = PgCpu(), time.time()
        procs = [mp.Process(target=_writer, args=(url, g, metrics, args.interval, start,
                                                  args.duration, q, args.batch))
                 for g in groups if g]
        for p in procs:
            p.start()
        ticks = [t for _ in procs for t in q.get(timeout=args.duration + 600)]
        for p in procs:
            p.join(timeout=60)
        pg_cpu = pg.total() / (time.time() - wall0)
        lag = pd.DataFrame(ticks, columns=["tick", "lag", "rows"])
        span = lag["tick"].max() - lag["tick"].min() + args.interval
        third = span / 3
        first = lag[lag["tick"] < start + third]["lag"]
        last = lag[lag["tick"] >= start + 2 * third]["lag"]
        with admin.connect() as c:
            size = c.execute(sa.text(
                "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c JOIN pg_namespace n "
                "ON n.oid = c.relnamespace WHERE n.nspname = :s AND c.relkind = 'r'"),
                {"s": schema}).scalar() or 0
            size = float(size)
        with Store(url) as st:
            c0 = time.process_time()
            fleet_s, fleet = best_of(lambda: st.samples(metric="system.cpu_usage", since="1h"))
            fleet_cpu = (time.process_time() - c0) / 3
            roll_s, roll = best_of(lambda: st.rollups(metric="system.cpu_usage", since="1h",
                                                      labels=""))
            recent_s, recent = best_of(lambda: st.samples(since="6min", labels=""), repeat=1)
            means_s, means = best_of(lambda: st.window_means("5min", since="6min"))
            fast_s, fast = best_of(lambda: st.window_means("5min", since="6min", exact=False))
            import perfkit.analysis  # noqa: F401 - a running dashboard has it imported
            from perfkit.dashboard import build_fleet

            page_s, page = best_of(lambda: build_fleet(st, window="1h", horizon="1h"), repeat=2)
        from perfkit.analysis import score
        from perfkit.dashboard import fleet_overview

        ov_s, ov = best_of(lambda: fleet_overview(recent))
        cpu_t = time.process_time()
        fleet_overview(recent)
        ov_cpu = time.process_time() - cpu_t
        ref_s, _ = best_of(lambda: {h: score(g) for h, g in recent.groupby("host")}, repeat=1)
        rate = lag["rows"].sum() / span
        n_rows = args.hosts * 3600 + int(lag["rows"].sum())
        bytes_per_row = size / max(n_rows, 1)
        per_host_day = bytes_per_row * len(metrics) * 86_400 / args.interval
        rows = [
            ("live run", (f"{args.hosts} hosts x {len(metrics)} metrics every "
                          f"{args.interval:g} s for {span:.0f} s, {len(procs)} writer processes, "
                          + ("one write per process and tick" if args.batch else
                             "one write per host and tick"))),
            ("sustained samples/s",
             f"{rate:,.0f} (offered {args.hosts * len(metrics) / args.interval:,.0f})"),
            ("write lag per tick, first third p50 / p99 / max",
             f"{first.median():.2f} / {first.quantile(.99):.2f} / {first.max():.2f} s"),
            ("write lag per tick, last third p50 / p99 / max",
             f"{last.median():.2f} / {last.quantile(.99):.2f} / {last.max():.2f} s"),
            ("PostgreSQL CPU during the run", f"{pg_cpu:.2f} cores"),
            ("PostgreSQL disk", (f"{size / 2**20:,.0f} MiB for {n_rows:,} samples = "
                                 f"{bytes_per_row:.0f} B/sample")),
            ("disk per host per day", (f"{per_host_day / 2**20:,.0f} MiB "
                                       f"({len(metrics)} metrics at {args.interval:g} s)")),
            ("read fleet frame: all hosts, one metric, 1 h",
             f"{fleet_s:.2f} s wall, {fleet_cpu:.2f} s CPU for {len(fleet):,} rows"),
            ("same from the 1 min rollups", f"{roll_s:.2f} s for {len(roll):,} rows"),
            ("read last 6 min of every host (raw)", f"{recent_s:.2f} s for {len(recent):,} rows"),
            ("**Store.window_means** (what the overview scores, one grouped query)",
             f"{means_s:.2f} s for {len(means):,} rows"),
            ("**same from the 1 min rollups** (exact=False: what build_fleet reads)",
             f"{fast_s:.2f} s for {len(fast):,} rows"),
            ("**fleet_overview** (vectorised score_hosts)",
             f"{ov_s:.2f} s wall, {ov_cpu:.2f} s CPU for {len(ov)} hosts"),
            ("ref: perfkit.score once per host", f"{ref_s:.2f} s ({ref_s / ov_s:.1f}x slower)"),
            ("**whole fleet section** (build_fleet: window means, hosts, alerts, 1 h "
             "rollups; overview, spread, crossings)",
             f"{page_s:.2f} s (" + ", ".join(f"{k} {v:.2f} s" for k, v in page.timings.items()
                                            if k != "total")
             + f"; {len(page.errors)} section errors)"),
        ]
        minute = ((lag["tick"] - start) // 60).astype(int)
        by_min = lag.groupby(minute)["lag"].agg(["median", "max"])
        rows += [(f"write lag, minute {m + 1}: p50 / max", f"{r['median']:.2f} / {r['max']:.2f} s")
                 for m, r in by_min.iterrows()]
        print_rows(rows, "load average during the run")
    finally:
        drop_schema(admin, schema)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
