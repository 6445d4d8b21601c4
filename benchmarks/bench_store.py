"""Store speed: ingest and read-back against same-run references.

    python benchmarks/bench_store.py                 # SQLite, 1,000,000 samples
    python benchmarks/bench_store.py --pg            # also PostgreSQL (PERFKIT_TEST_PG or the
                                                     # test server), in a throw-away schema
    python benchmarks/bench_store.py --rows 200000 --repeat 1   # quick

Every figure is the best of ``--repeat`` runs, so a busy machine hurts the
references and perfkit alike; compare the ratios. Targets (issue 2): ingest at
least 500,000 samples/s into SQLite in batches, read 1,000,000 back into a
frame in under 1 s, and report bytes per sample on disk.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from perfkit.frames import as_samples
from perfkit.store import Store

T0 = 1_790_000_000_000_000_000  # 2026-09-21 in ns
SERIES_HOSTS, SERIES_METRICS = 2, 25  # 50 series


def make_frame(n: int, seed: int = 0) -> pd.DataFrame:
    """``n`` samples of 50 series, one collection (50 rows) a second, random values."""
    rng = np.random.default_rng(seed)
    i = np.arange(n)
    nser = SERIES_HOSTS * SERIES_METRICS
    hosts = np.array([f"host-{k}:1" for k in range(SERIES_HOSTS)], dtype=object)
    metrics = np.array([f"bench.metric_{k:02d}" for k in range(SERIES_METRICS)], dtype=object)
    return as_samples(pd.DataFrame({  # the contract's dtypes, as a Monitor writes them
        "ts": pd.to_datetime(T0 + (i // nser) * 1_000_000_000, utc=True),
        "host": pd.Series(hosts[i % SERIES_HOSTS], dtype=object),
        "metric": pd.Series(metrics[(i // SERIES_HOSTS) % SERIES_METRICS], dtype=object),
        "value": rng.random(n) * 100,
        "labels": pd.Series([""] * n, dtype=object),
    }))


def best(fn: Callable[[], object], repeat: int, setup: Callable[[], None] | None = None) -> float:
    times = []
    for _ in range(repeat):
        if setup:
            setup()
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def db_bytes(path: Path) -> int:
    con = sqlite3.connect(path)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.execute("VACUUM")
    con.close()
    return path.stat().st_size


def rm_db(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        p = Path(f"{path}{suffix}")
        if p.exists():
            p.unlink()


class Report:
    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str]] = []

    def add(self, what: str, figure: str, note: str = "") -> None:
        self.rows.append((what, figure, note))
        print(f"  {what:<58} {figure:>16}  {note}", flush=True)

    def markdown(self) -> str:
        out = ["| measurement | figure | note |", "|---|---:|---|"]
        out += [f"| {a} | {b} | {c} |" for a, b, c in self.rows]
        return "\n".join(out)


def sqlite_bench(n: int, batch: int, repeat: int, tmp: Path, rep: Report) -> None:
    frame = make_frame(n)
    ref_n = min(n, 200_000)
    sid = (np.arange(ref_n) % 50 + 1).tolist()
    ts = (T0 + (np.arange(ref_n) // 50) * 1_000_000_000).tolist()
    val = frame["value"].to_numpy()[:ref_n].tolist()
    tuples = list(zip(sid, ts, val))
    dicts = [{"series_id": a, "ts": b, "value": c} for a, b, c in tuples]
    ddl_norowid = ("CREATE TABLE s (series_id INTEGER NOT NULL, ts INTEGER NOT NULL, "
                   "value REAL NOT NULL, PRIMARY KEY (series_id, ts)) WITHOUT ROWID")
    ref_db = tmp / "ref.db"

    def fresh_ref(ddl: str = ddl_norowid, extra: str | None = None) -> None:
        rm_db(ref_db)
        con = sqlite3.connect(ref_db, isolation_level=None)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute(ddl)
        if extra:
            con.execute(extra)
        con.close()

    # -- ingest references --------------------------------------------------------------
    eng = sa.create_engine(f"sqlite:///{ref_db}")
    table = sa.Table("s", sa.MetaData(), sa.Column("series_id", sa.Integer),
                     sa.Column("ts", sa.BigInteger), sa.Column("value", sa.Float))

    def sa_dicts() -> None:
        with eng.begin() as conn:
            for k in range(0, ref_n, batch):
                conn.execute(table.insert(), dicts[k:k + batch])

    t_sa = best(sa_dicts, repeat, lambda: (eng.dispose(), fresh_ref()))
    eng.dispose()

    def raw_many() -> None:
        con = sqlite3.connect(ref_db, isolation_level=None)
        con.execute("PRAGMA synchronous=NORMAL")
        for k in range(0, ref_n, batch):
            con.execute("BEGIN")
            con.executemany("INSERT INTO s VALUES (?, ?, ?)", tuples[k:k + batch])
            con.execute("COMMIT")
        con.close()

    t_raw = best(raw_many, repeat, fresh_ref)
    ref_sa_rate, ref_raw_rate = ref_n / t_sa, ref_n / t_raw
    rep.add(f"ref: SQLAlchemy Core insert, list of dicts ({ref_n:,} rows)",
            f"{ref_sa_rate:,.0f} rows/s")
    rep.add(f"ref: sqlite3 executemany, prebuilt tuples ({ref_n:,} rows)",
            f"{ref_raw_rate:,.0f} rows/s")

    # -- perfkit ingest ---------------------------------------------------------------
    db = tmp / "perfkit.db"
    parts = [frame.iloc[k:k + batch] for k in range(0, n, batch)]
    stores: list[Store] = []

    def fresh_store() -> None:
        for s in stores:
            s.close()
        stores.clear()
        rm_db(db)
        stores.append(Store(f"sqlite:///{db}"))

    def store_write() -> None:
        for p in parts:
            stores[0].write(p)

    t_store = best(store_write, repeat, fresh_store)
    rate = n / t_store
    rep.add(f"**perfkit Store.write**, {n:,} samples in frames of {batch:,}",
            f"**{rate:,.0f} samples/s**",
            f"{rate / ref_sa_rate:.1f}x SA dicts, {rate / ref_raw_rate:.2f}x raw executemany; "
            f"target >= 500,000")

    # -- read -------------------------------------------------------------------------
    store = stores[0]
    t_read = best(lambda: store.samples(), repeat)
    got = store.samples()
    assert len(got) == n, (len(got), n)
    rep.add(f"**perfkit Store.samples()**, {n:,} samples", f"**{t_read * 1000:,.0f} ms**",
            f"{t_read / n * 1e5 * 1000:.0f} ms per 100k; target < 1 s for 1,000,000")
    sub = store.samples(metric="bench.metric_00", host="host-0:1")
    t_sub = best(lambda: store.samples(metric="bench.metric_00", host="host-0:1"), repeat)
    rep.add(f"Store.samples(metric=…, host=…) one series, {len(sub):,} samples",
            f"{t_sub * 1000:,.1f} ms")

    # new samples, as a Monitor writes them (after the end of what is stored), then the
    # same frames again: a retried batch, whose rollup buckets are recomputed
    later = frame.iloc[:20_000].assign(ts=frame["ts"].iloc[:20_000] + pd.Timedelta("30D"))
    small = [later.iloc[k:k + 50] for k in range(0, 20_000, 50)]

    def small_writes() -> None:
        for p in small:
            stores[0].write(p)

    for what in ("Monitor-sized frames (50 rows, 400 writes)",
                 "the same frames again (a retried batch each)"):
        t_small = best(small_writes, 1)
        rep.add(f"Store.write, {what}", f"{len(small) / t_small:,.0f} writes/s",
                f"{20_000 / t_small:,.0f} samples/s")

    # references read 100k rows of the tidy shape from a plain table
    fresh_ref("CREATE TABLE tidy (ts INTEGER, host TEXT, metric TEXT, value REAL, labels TEXT)")
    k = 100_000
    con = sqlite3.connect(ref_db)
    con.executemany("INSERT INTO tidy VALUES (?,?,?,?,?)", zip(
        (T0 + np.arange(k) * 1000).tolist(), frame["host"][:k], frame["metric"][:k],
        frame["value"][:k].tolist(), frame["labels"][:k]))
    con.commit()
    con.close()
    eng = sa.create_engine(f"sqlite:///{ref_db}")
    t_rs = best(lambda: pd.read_sql("SELECT * FROM tidy", eng), repeat)
    eng.dispose()

    def raw_read() -> None:
        c = sqlite3.connect(ref_db)
        pd.DataFrame(c.execute("SELECT * FROM tidy").fetchall(),
                     columns=["ts", "host", "metric", "value", "labels"])
        c.close()

    t_rr = best(raw_read, repeat)
    per100k = t_read / n * 1e5
    rep.add("ref: pd.read_sql through SQLAlchemy, 100k rows", f"{t_rs * 1000:,.0f} ms",
            f"perfkit {t_rs / per100k:.1f}x faster per row")
    rep.add("ref: raw sqlite3 fetchall -> DataFrame, 100k rows", f"{t_rr * 1000:,.0f} ms",
            f"perfkit {t_rr / per100k:.1f}x faster per row")

    latest = best(lambda: store.latest(), repeat)
    rep.add("Store.latest() (50 series)", f"{latest * 1000:,.1f} ms")
    store.close()

    # -- bytes per sample ----------------------------------------------------------------
    size = db_bytes(db)
    stored = n + len(later)      # the Monitor-sized writes are in the file too
    rep.add(f"**bytes per sample on disk** (perfkit layout, {stored:,} random float samples)",
            f"**{size / stored:.1f} B**", "series + WITHOUT ROWID samples, after VACUUM")
    ints = make_frame(n).assign(value=lambda f: np.round(f["value"]))
    rm_db(db)
    with Store(f"sqlite:///{db}") as s:
        for k in range(0, n, batch):
            s.write(ints.iloc[k:k + batch])
    rep.add("bytes per sample, integral values (counts)", f"{db_bytes(db) / n:.1f} B",
            "SQLite stores integral REALs as small integers")
    for name, ddl, extra in (
        ("rowid table (series_id, ts, value) + index",
         "CREATE TABLE s (series_id INTEGER, ts INTEGER, value REAL)",
         "CREATE INDEX s_i ON s(series_id, ts)"),
        ("rowid tidy table (ts, host, metric, value, labels) + index",
         "CREATE TABLE s (ts INTEGER, host TEXT, metric TEXT, value REAL, labels TEXT)",
         "CREATE INDEX s_i ON s(metric, ts)"),
    ):
        fresh_ref(ddl, extra)
        c = sqlite3.connect(ref_db)
        if "tidy" in name:
            c.executemany("INSERT INTO s VALUES (?,?,?,?,?)", zip(
                fastio_ts(frame), frame["host"], frame["metric"], frame["value"].tolist(),
                frame["labels"]))
        else:
            c.executemany("INSERT INTO s VALUES (?,?,?)", zip(
                (np.arange(n) % 50).tolist(), fastio_ts(frame), frame["value"].tolist()))
        c.commit()
        c.close()
        rep.add(f"ref bytes per sample: {name}", f"{db_bytes(ref_db) / n:.1f} B")


def fastio_ts(frame: pd.DataFrame) -> list[int]:
    return pd.DatetimeIndex(frame["ts"]).asi8.tolist()


def pg_bench(url: str, n: int, batch: int, repeat: int, rep: Report) -> None:
    schema = f"perfkit_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in url else "?"
    surl = f"{url}{sep}options=-csearch_path%3D{schema}"
    try:
        frame = make_frame(n)
        parts = [frame.iloc[k:k + batch] for k in range(0, n, batch)]
        ref_n = min(n, 100_000)
        eng = sa.create_engine(surl)
        table = sa.Table("ref", sa.MetaData(), sa.Column("series_id", sa.Integer),
                         sa.Column("ts", sa.BigInteger), sa.Column("value", sa.Double),
                         sa.PrimaryKeyConstraint("series_id", "ts"))
        dicts = [{"series_id": int(a), "ts": int(b), "value": float(c)} for a, b, c in zip(
            np.arange(ref_n) % 50, T0 + (np.arange(ref_n) // 50) * 10**9, frame["value"][:ref_n])]

        def reset_ref() -> None:
            table.drop(eng, checkfirst=True)
            table.create(eng)

        def sa_dicts() -> None:
            with eng.begin() as conn:
                for k in range(0, ref_n, batch):
                    conn.execute(table.insert(), dicts[k:k + batch])

        t_sa = best(sa_dicts, repeat, reset_ref)
        rep.add(f"PG ref: SQLAlchemy Core insert (psycopg executemany), {ref_n:,} rows",
                f"{ref_n / t_sa:,.0f} rows/s")
        stores: list[Store] = []

        def fresh() -> None:
            for s in stores:
                s.close()
            stores.clear()
            with eng.begin() as c:
                c.execute(sa.text("DROP TABLE IF EXISTS perfkit_samples, perfkit_series, "
                                  "perfkit_alert_events, perfkit_actions, perfkit_meta"))
            stores.append(Store(surl))

        def write() -> None:
            for p in parts:
                stores[0].write(p)

        t_w = best(write, repeat, fresh)
        rep.add(f"**PG perfkit Store.write** (binary COPY + upsert), {n:,} samples",
                f"**{n / t_w:,.0f} samples/s**",
                f"{(n / t_w) / (ref_n / t_sa):.1f}x SA executemany")
        s = stores[0]
        t_r = best(lambda: s.samples(), repeat)
        assert len(s.samples()) == n
        t_ref = best(lambda: pd.read_sql(sa.text("SELECT * FROM ref"), eng), repeat)
        rep.add(f"**PG perfkit Store.samples()** (binary COPY), {n:,} samples",
                f"**{t_r * 1000:,.0f} ms**", f"{t_r / n * 1e5 * 1000:.0f} ms per 100k")
        rep.add(f"PG ref: pd.read_sql through SQLAlchemy, {ref_n:,} rows",
                f"{t_ref * 1000:,.0f} ms",
                f"perfkit {t_ref / ref_n / (t_r / n):.1f}x faster per row")
        s.close()
        eng.dispose()
    finally:
        with admin.connect() as c:
            c.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--batch", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--pg", nargs="?", const=os.environ.get(
        "PERFKIT_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test"), default=None,
        help="also benchmark PostgreSQL at this URL")
    args = ap.parse_args(argv)
    rep = Report()
    print(f"perfkit store benchmark: {args.rows:,} samples, batches of {args.batch:,}, "
          f"best of {args.repeat}; python {sys.version.split()[0]}, "
          f"sqlite {sqlite3.sqlite_version}, "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        sqlite_bench(args.rows, args.batch, args.repeat, Path(tmp), rep)
    if args.pg:
        pg_bench(args.pg, args.rows, args.batch, args.repeat, rep)
    print()
    print(rep.markdown())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
