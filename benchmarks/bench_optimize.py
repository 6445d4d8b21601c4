"""Optimisation layer: what the actions gain and what the machinery costs, with the
reference measured in the same run.

    python benchmarks/bench_optimize.py

1. ``query_optimization(apply=True)`` on a 100k-row SQLite table (and PostgreSQL when
   ``PERFKIT_TEST_PG`` or the default test server answers): the median query time after
   the index against the same query before it (reference: the unindexed query).
2. ``memory_optimization`` against a bare ``gc.collect()`` on the same amount of cyclic
   garbage (reference: ``gc.collect()``): time and objects collected.
3. ``Monitor.run_action`` of a no-op action against the same two audit writes
   (``record_action`` + ``finish_action`` in a SQLite store) done by hand: the cost of
   validation, the worker thread and the timeout (best of 200).
4. ``recommend()`` on one hour of the 14 core metrics at a 5 s interval against
   ``perfkit.analysis.alerts`` on the same frame (which it calls).
"""

from __future__ import annotations

import gc
import os
import statistics
import sys
import tempfile
import time
import uuid

import numpy as np
import pandas as pd
import sqlalchemy as sa
from tqdm import tqdm

import perfkit
import perfkit.actions
from perfkit.actions import recommend
from perfkit.analysis import alerts
from perfkit.catalog import CORE_METRICS
from perfkit.monitor import Monitor

ROWS = 100_000
PG_URL = os.environ.get("PERFKIT_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _median_s(fn, repeat: int = 7) -> float:
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t0)
    return statistics.median(runs)


def _orders(engine: sa.Engine) -> sa.Table:
    md = sa.MetaData()
    t = sa.Table("orders", md, sa.Column("id", sa.Integer, primary_key=True),
                 sa.Column("customer", sa.Integer), sa.Column("amount", sa.Float))
    md.create_all(engine)
    with engine.begin() as conn:
        conn.execute(t.insert(), [{"id": i, "customer": i % 5000, "amount": i * 0.5}
                                  for i in range(ROWS)])
    return t


def bench_index(mon: Monitor, engine: sa.Engine, label: str) -> list[tuple[str, str, str]]:
    t = _orders(engine)
    mon.instrument_engine(engine)
    with engine.connect() as conn:
        for k in range(5):
            conn.execute(sa.select(t).where(t.c.customer == k)).all()
    r = mon.run_action("query_optimization", apply=True, repeat=9)
    stmt = r.detail["statements"][0]
    before, after = stmt["ms_before"], stmt["ms_after"]
    return [(f"{label}: query by customer, unindexed (reference)", f"{before:.3f} ms", "1.00×"),
            (f"{label}: same query after query_optimization(apply=True)", f"{after:.3f} ms",
             f"{after / before:.4f}×  ({r.verdict}; plan: {stmt['plan_after'][0]})")]


class _Node:
    def __init__(self) -> None:
        self.me = self
        self.payload = [0] * 8


def bench_memory(mon: Monitor, n: int = 200_000) -> list[tuple[str, str, str]]:
    def garbage() -> None:
        junk = [_Node() for _ in range(n)]
        del junk

    was = gc.isenabled()
    gc.disable()
    try:
        ref_t, ours_t, ref_n, ours_n = [], [], [], []
        for _ in tqdm(range(5), desc="memory", leave=False):
            garbage()
            t0 = time.perf_counter()
            ref_n.append(gc.collect())
            ref_t.append(time.perf_counter() - t0)
            garbage()
            t0 = time.perf_counter()
            r = mon.run_action("memory_optimization")
            ours_t.append(time.perf_counter() - t0)
            ours_n.append(r.detail["collected_total"])
    finally:
        if was:
            gc.enable()
    rt, ot = statistics.median(ref_t), statistics.median(ours_t)
    return [(f"gc.collect() on {n:,} cyclic objects (reference)",
             f"{rt * 1e3:.1f} ms, {int(np.median(ref_n)):,} collected", "1.00×"),
            ("memory_optimization (gen 0,1,2 + malloc_trim + RSS + audit row)",
             f"{ot * 1e3:.1f} ms, {int(np.median(ours_n)):,} collected", f"{ot / rt:.2f}×")]


def bench_runner(mon: Monitor) -> list[tuple[str, str, str]]:
    def noop(monitor: Monitor, *, dry_run: bool) -> dict:
        return {}

    perfkit.actions.register("bench_noop", noop, None, "no-op for the benchmark", replace=True)
    n = 200

    def audit_only() -> None:
        aid = mon.store.record_action("bench_noop", {}, host=mon.host, requested_by="user")
        noop(mon, dry_run=False)
        mon.store.finish_action(aid, status="done", duration_s=0.0)

    ref = min(_median_s(audit_only, 1) for _ in range(n))
    ours = min(_median_s(lambda: mon.run_action("bench_noop"), 1)
               for _ in tqdm(range(n), desc="run_action", leave=False))
    perfkit.actions.unregister("bench_noop")
    return [("no-op + its two audit writes done by hand (reference)", f"{ref * 1e3:.2f} ms",
             "1.00×"),
            ("Monitor.run_action(no-op): validation, audit, worker thread, timeout",
             f"{ours * 1e3:.2f} ms", f"{ours / ref:.2f}×")]


def bench_recommend() -> list[tuple[str, str, str]]:
    ts = pd.date_range(end=pd.Timestamp.now(tz="UTC"), periods=720, freq="5s")
    rng = np.random.default_rng(1)
    frame = perfkit.as_samples(pd.concat([
        pd.DataFrame({"ts": ts, "host": "h", "metric": m,
                      "value": np.clip(50 + 10 * rng.standard_normal(ts.size), 0, 100),
                      "labels": ""}) for m in CORE_METRICS]))
    ref = _median_s(lambda: alerts(frame))
    ours = _median_s(lambda: recommend(frame))
    return [(f"analysis.alerts on {len(frame):,} samples (reference)", f"{ref * 1e3:.1f} ms",
             "1.00×"),
            ("recommend() on the same frame (alerts + rules)", f"{ours * 1e3:.1f} ms",
             f"{ours / ref:.2f}×")]


def main() -> None:
    rows: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        mon = Monitor(f"sqlite:///{tmp}/store.db", interval=5.0, host="bench")
        mon.optimizer.configure(settle_s=0.0)
        rows += bench_index(mon, sa.create_engine(f"sqlite:///{tmp}/app.db"), "SQLite")
        schema = f"perfkit_bench_{uuid.uuid4().hex[:8]}"
        admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as c:
                c.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        except Exception as exc:  # noqa: BLE001 - PostgreSQL is optional for the benchmark
            print(f"PostgreSQL skipped: {type(exc).__name__}", file=sys.stderr)
        else:
            try:
                pg = sa.create_engine(f"{PG_URL}?options=-csearch_path%3D{schema}")
                rows += bench_index(mon, pg, "PostgreSQL")
                pg.dispose()
            finally:
                with admin.connect() as c:
                    c.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()
        rows += bench_memory(mon)
        rows += bench_runner(mon)
        rows += bench_recommend()
        mon.store.close()
    w = max(len(r[0]) for r in rows)
    print(f"{'case':<{w}}  {'time':>28}  ratio")
    for name, value, ratio in rows:
        print(f"{name:<{w}}  {value:>28}  {ratio}")


if __name__ == "__main__":
    main()
