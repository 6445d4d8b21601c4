"""Retention and rollups on PostgreSQL: a month of samples, pruned and charted.

    nice -n 15 python benchmarks/bench_retention.py                 # 60 series x 30 days at 30 s
    nice -n 15 python benchmarks/bench_retention.py --series 20     # quick

A month of samples is bulk-loaded through ``Store.write`` into a throw-away schema (the
samples table partitioned by day; every write also fills the 1 min / 1 h rollups).

* 30-day chart: one metric of every host over the month, read raw (``Store.samples``)
  against the 1 h and 1 min rollups (``Store.rollups``): rows and time.
* Prune: a writer thread writes a Monitor-sized batch (20 samples) every 0.05 s through
  ``Store.write`` while ``Store.prune`` removes the oldest day (its partition is
  dropped). The same-run reference is a plain ``DELETE … WHERE ts < cutoff`` of the
  next day. Reported: time and rows of each, the writer's worst latency before and
  during each (goal: never blocked > 1 s), and whether the remaining partitions were
  rewritten (a rewritten table gets a new file node).
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _report import best_of, drop_schema, print_rows

from perfkit.store import Store

PG = os.environ.get("PERFKIT_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
DAY_NS = 86_400 * 10**9


class Writer(threading.Thread):
    """Writes 20 fresh samples every 0.05 s and records each write's latency."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.store = Store(url, host="writer-1")
        self.latencies: list[tuple[float, float]] = []
        self.halt = threading.Event()

    def run(self) -> None:
        metrics = [f"bench.live_{i:02d}" for i in range(20)]
        while not self.halt.wait(0.05):
            frame = pd.DataFrame({"ts": pd.Timestamp.now(tz="UTC"), "host": "writer-1",
                                  "metric": metrics, "value": np.random.random(20), "labels": ""})
            t = time.perf_counter()
            self.store.write(frame)
            self.latencies.append((time.perf_counter(), time.perf_counter() - t))
        self.store.close()

    def worst(self, lo: float, hi: float) -> float:
        # writes that overlapped [lo, hi]: ended after lo and started before hi
        got = [lat for end, lat in self.latencies if end >= lo and end - lat <= hi]
        return max(got) if got else float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--series", type=int, default=60)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--step", type=int, default=30, help="seconds between samples")
    ap.add_argument("--url", default=PG)
    args = ap.parse_args()
    schema = f"perfkit_retention_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(args.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in args.url else "?"
    url = f"{args.url}{sep}options=-csearch_path%3D{schema}"
    try:
        end = pd.Timestamp.now(tz="UTC").floor("min")
        ts = pd.date_range(end=end, periods=args.days * 86_400 // args.step,
                           freq=f"{args.step}s")
        t0 = time.perf_counter()
        with Store(url) as st:
            for i in range(args.series):
                st.write(pd.DataFrame({"ts": ts, "host": f"h{i % 10}", "metric":
                                       f"bench.metric_{i // 10:02d}", "labels": "",
                                       "value": np.random.random(len(ts))}))
        load_s = time.perf_counter() - t0
        total = args.series * len(ts)
        print(f"loaded {total:,} samples ({args.days} days) in {load_s:.0f} s", flush=True)

        def node() -> tuple[dict[str, int], int]:
            """File node of each samples partition, and their total size."""
            with admin.connect() as c:
                got = c.execute(sa.text(
                    "SELECT c.relname, pg_relation_filenode(c.oid), pg_total_relation_size(c.oid) "
                    "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE n.nspname = :s AND c.relname LIKE 'perfkit_samples_%' "
                    "AND c.relkind = 'r'"), {"s": schema}).all()
            return {r[0]: int(r[1]) for r in got}, sum(int(r[2]) for r in got)

        metric = "bench.metric_00"
        with Store(url) as st:
            raw_s, raw_rows = best_of(lambda: len(st.samples(metric=metric)))
            h_s, h_rows = best_of(lambda: len(st.rollups(metric=metric, every="1h")))
            m_s, m_rows = best_of(lambda: len(st.rollups(metric=metric, every="1min")))
        node0, size0 = node()
        writer = Writer(url)
        writer.start()
        time.sleep(3.0)  # the writer's baseline latency
        base = writer.worst(0, time.perf_counter())
        first = ts[0]
        st = Store(url)
        t_a = time.perf_counter()
        deleted = st.prune(first + pd.Timedelta("1D"))["samples"]
        t_b = time.perf_counter()
        node1, size1 = node()
        rewritten = [k for k, v in node1.items() if node0.get(k) != v]
        # reference: the naive range delete on ts alone, over the next day
        lo = int((first + pd.Timedelta("1D")).value)
        t_c = time.perf_counter()
        with st.engine.begin() as c:
            ref_rows = c.execute(sa.text("DELETE FROM perfkit_samples WHERE ts < :t"),
                                 {"t": lo + DAY_NS}).rowcount
        t_d = time.perf_counter()
        time.sleep(2.0)  # a write blocked by the delete finishes after it: count it too
        writer.halt.set()
        writer.join(timeout=30)
        during, ref_during = writer.worst(t_a, t_b), writer.worst(t_c, t_d)
        st.close()
        def fmt(v: float) -> str:
            return "no write overlapped" if np.isnan(v) else f"{v:.3f}"

        rows = [
            ("store", f"{total:,} samples, {args.series} series, {args.days} days at "
                      f"{args.step} s, {size0 / 2**20:,.0f} MiB in {len(node0)} day "
                      f"partitions; loaded at {total / load_s:,.0f} samples/s with rollups"),
            (f"30-day chart of one metric ({min(args.series, 10)} series): raw samples",
             f"{raw_s:.2f} s for {raw_rows:,} rows"),
            ("**same from the 1 h rollups**", f"{h_s:.3f} s for {h_rows:,} rows "
                                              f"({raw_s / h_s:,.0f}x faster)"),
            ("same from the 1 min rollups", f"{m_s:.2f} s for {m_rows:,} rows"),
            ("**Store.prune(one day)** (drops the day's partition)",
             f"{t_b - t_a:.2f} s for {deleted:,} rows"),
            ("ref: DELETE … WHERE ts < cutoff (next day)", f"{t_d - t_c:.2f} s for "
                                                          f"{ref_rows:,} rows"),
            ("writer worst latency: before / during prune / during ref",
             f"{fmt(base)} / {fmt(during)} / {fmt(ref_during)} s"),
            ("remaining partitions rewritten by prune", f"{len(rewritten)} of {len(node1)} "
             f"({size0 / 2**20:,.0f} → {size1 / 2**20:,.0f} MiB)"),
        ]
        print_rows(rows)
    finally:
        drop_schema(admin, schema)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
