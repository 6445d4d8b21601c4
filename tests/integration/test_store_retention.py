"""Retention that scales and rollups: day partitions on PostgreSQL, 1 min / 1 h buckets,
the grouped per-series window means the fleet overview reads."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from perfkit.store import Store

DAY = pd.Timedelta(days=1)


def _midnight() -> pd.Timestamp:
    return pd.Timestamp.now(tz="UTC").floor("D")


def _frame(start: pd.Timestamp, n: int, step: str, *, host: str = "h1",
           metric: str = "system.cpu_usage", seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"ts": pd.date_range(start, periods=n, freq=step).as_unit("ns"),
                         "host": host, "metric": metric, "labels": "",
                         "value": rng.normal(50, 10, n).round(3)})


def _partitions(store: Store) -> list[str]:
    with store.engine.connect() as c:
        return sorted(c.execute(sa.text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = to_regclass('perfkit_samples')")).scalars())


def _filenodes(store: Store, names: list[str]) -> dict[str, int]:
    with store.engine.connect() as c:
        return {n: int(c.execute(sa.text("SELECT pg_relation_filenode(to_regclass(:n))"),
                                 {"n": n}).scalar()) for n in names}


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: object) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/perfkit.db"
    return request.getfixturevalue("pg_url")


@pytest.mark.postgres
def test_prune_drops_whole_days_and_deletes_only_the_partial_one(pg_url: str) -> None:
    day0 = _midnight() - 4 * DAY
    data = _frame(day0, 4 * 24 * 6, "10min")                 # four whole days, 144 a day
    with Store(pg_url) as store:
        store.write(data)
        parts = _partitions(store)
        want = [f"perfkit_samples_{d:%Y%m%d}" for d in pd.date_range(day0, periods=7, freq="D")]
        assert parts == want                    # the 4 written, today and 2 days ahead
        kept_nodes = _filenodes(store, want[2:])
        cutoff = day0 + 2 * DAY + pd.Timedelta("3h")          # two days and 3 h of the third
        assert store.prune(cutoff, what="samples") == {"samples": 2 * 144 + 18}
        assert _partitions(store) == want[2:]                 # whole days dropped, not emptied
        assert _filenodes(store, want[2:]) == kept_nodes      # nothing rewritten
        got = store.samples()
        expect = data[data["ts"] >= cutoff].reset_index(drop=True)
        assert got["ts"].tolist() == expect["ts"].tolist()
        assert got["value"].tolist() == expect["value"].tolist()
        # a late sample for a dropped day gets its partition back instead of being refused
        assert store.write(_frame(day0 + pd.Timedelta("1h"), 1, "1min")) == 1
        assert len(store.samples(until=day0 + DAY)) == 1
        assert store.health()["rejected"] == 0


@pytest.mark.postgres
def test_a_store_from_before_partitioning_keeps_working(pg_url: str,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    eng = sa.create_engine(pg_url)
    with eng.begin() as c:  # the samples table as earlier versions created it
        c.execute(sa.text("CREATE TABLE perfkit_samples (series_id integer NOT NULL, "
                          "ts bigint NOT NULL, value double precision NOT NULL, "
                          "CONSTRAINT perfkit_samples_pk PRIMARY KEY (series_id, ts))"))
    eng.dispose()
    day0 = _midnight() - 3 * DAY
    data = _frame(day0, 3 * 24, "1h")
    with Store(pg_url) as store:
        store.write(data)
        assert _partitions(store) == []
        with caplog.at_level(logging.INFO, logger="perfkit.store"):
            assert store.prune(day0 + DAY, what="samples") == {"samples": 24}
        assert "not partitioned" in caplog.text
        assert len(store.samples()) == 48
        assert len(store.rollups(every="1h")) == 72  # rollups too, kept until pruned themselves
        before = store.samples()
        other = Store(pg_url)                        # a second writer that saw the plain table
        other.write(_frame(_midnight(), 1, "1min", host="h2"))
        assert store.partition_samples() == 49
        assert store.partition_samples() == 0        # once is enough
        day1 = day0 + DAY
        assert _partitions(store)[:2] == [f"perfkit_samples_{d:%Y%m%d}"
                                          for d in (day1, day1 + DAY)]
        pd.testing.assert_frame_equal(store.samples(host="h1"), before)
        # a day the migration made no partition for: that writer looks again, refuses nothing
        assert other.write(_frame(day0 - 9 * DAY, 1, "1min", host="h2")) == 1
        assert other.health()["rejected"] == 0 and len(other.samples(host="h2")) == 2
        other.close()
        assert store.prune(day0 + 2 * DAY, what="samples") == {"samples": 25}
        assert f"perfkit_samples_{day1:%Y%m%d}" not in _partitions(store)


def test_rollups_match_the_raw_samples(url: str) -> None:
    start = _midnight() - DAY + pd.Timedelta("22h30min")
    a = _frame(start, 3 * 3600 // 7, "7s", seed=1)            # crosses hours and midnight
    b = _frame(start, 500, "13s", host="h2", metric="system.memory_usage", seed=2)
    with Store(url) as store:
        store.write(pd.concat([a, b], ignore_index=True))
        for every, width in (("1min", "1min"), ("1h", "1h")):
            got = store.rollups(every=every)
            raw = pd.concat([a, b], ignore_index=True)
            ref = (raw.assign(ts=raw["ts"].dt.floor(width))
                   .groupby(["ts", "host", "metric", "labels"])["value"]
                   .agg(count="size", min="min", mean="mean", max="max").reset_index())
            ref = ref.sort_values(["ts", "host"]).reset_index(drop=True)
            got = got.sort_values(["ts", "host"]).reset_index(drop=True)
            assert got["ts"].tolist() == ref["ts"].tolist()
            assert got["host"].tolist() == ref["host"].tolist()
            assert got["count"].tolist() == ref["count"].tolist()
            np.testing.assert_allclose(got[["min", "mean", "max"]], ref[["min", "mean", "max"]],
                                       rtol=1e-12)
        assert list(store.rollups(every="1h", host="h2")["host"].unique()) == ["h2"]
        with pytest.raises(ValueError, match="1min"):
            store.rollups(every="5min")


def test_later_batches_add_to_a_bucket_and_a_retried_batch_counts_once(url: str) -> None:
    t0 = _midnight() - pd.Timedelta("2h")
    with Store(url) as store:
        store.write(_frame(t0, 30, "1s", seed=3))
        store.write(_frame(t0 + pd.Timedelta("30s"), 30, "1s", seed=4))
        one = store.rollups(every="1min")
        assert one["count"].tolist() == [60]
        raw = store.samples()
        assert one["min"].iloc[0] == raw["value"].min()
        assert one["mean"].iloc[0] == pytest.approx(raw["value"].mean(), rel=1e-12)
        # a retried batch overwrites its raw samples and counts once, with the new values
        retry = _frame(t0, 30, "1s", seed=5)
        store.write(retry)
        raw = store.samples()
        assert len(raw) == 60
        for every in ("1min", "1h"):
            again = store.rollups(every=every)
            assert again["count"].tolist() == [60]
            assert again["mean"].iloc[0] == pytest.approx(raw["value"].mean(), rel=1e-12)
            assert (again["min"].iloc[0], again["max"].iloc[0]) == (raw["value"].min(),
                                                                    raw["value"].max())
        kept = store.rollups(every="1min")
        assert store.rebuild_rollups() == {"1min": 1, "1h": 1}
        rebuilt = store.rollups(every="1min")
        assert rebuilt["count"].tolist() == [60]
        np.testing.assert_allclose(rebuilt[["min", "mean", "max"]], kept[["min", "mean", "max"]],
                                   rtol=1e-12)
        # rollups have their own retention: pruning samples leaves them
        store.prune(t0 + pd.Timedelta("1h"), what="samples")
        assert store.samples().empty and len(store.rollups(every="1h")) == 1
        assert store.prune(t0 + pd.Timedelta("1h"), what="rollups") == {"rollups": 2}
        assert store.rollups(every="1h").empty


def test_window_means_is_what_the_fleet_overview_reads(url: str) -> None:
    from perfkit.dashboard import fleet_overview
    from perfkit.store._reads import window_means_of

    end = pd.Timestamp.now(tz="UTC").floor("s")
    frames = []
    for i, metric in enumerate(["system.cpu_usage", "system.memory_usage",
                                "application.error_rate"]):
        frames.append(_frame(end - pd.Timedelta("6min"), 360, "1s", host="h1", metric=metric,
                             seed=i))
        # h2 went quiet two minutes ago: its window ends at its own last sample
        frames.append(_frame(end - pd.Timedelta("6min"), 240, "1s", host="h2", metric=metric,
                             seed=10 + i))
    frames.append(_frame(end - pd.Timedelta("6min"), 360, "1s", host="h1",
                         metric="system.cpu_usage", seed=9).assign(labels="core=1"))
    raw = pd.concat(frames, ignore_index=True)
    with Store(url) as store:
        store.write(raw)
        since = end - pd.Timedelta("6min")
        got = store.window_means(since=since, until=end)
        recent = store.samples(since=since, until=end, labels="")
        ref = window_means_of(recent, pd.Timedelta("5min"))
        key = ["host", "metric"]
        g, r = got.sort_values(key).reset_index(drop=True), ref.sort_values(key).reset_index(
            drop=True)
        assert g[[*key, "ts"]].equals(r[[*key, "ts"]]) and len(g) == 6
        np.testing.assert_allclose(g["value"], r["value"], rtol=1e-12)
        a = fleet_overview(got, now=end).drop(columns=["age_s"])
        b = fleet_overview(recent, now=end).drop(columns=["age_s"])
        pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-9)
        # from the rollups: the 5 minute buckets ending with the one of the host's newest sample
        fast = store.window_means(since=since, until=end, exact=False).sort_values(key)
        agg = recent.assign(b=recent["ts"].dt.floor("1min"),
                            last=recent.groupby("host")["ts"].transform("max"))
        agg = agg[agg["b"] > agg["last"].dt.floor("1min") - pd.Timedelta("5min")]
        want = agg.groupby(key)["value"].mean().reset_index().sort_values(key)
        assert fast["host"].tolist() == want["host"].tolist() and len(fast) == 6
        np.testing.assert_allclose(fast["value"], want["value"], rtol=1e-12)
        assert fast["ts"].tolist() == g["ts"].tolist()          # still each series' newest
        assert store.window_means(since=since, host="h2")["host"].unique().tolist() == ["h2"]
        with pytest.raises(ValueError, match="window"):
            store.window_means("-1min")


def test_an_older_store_is_told_to_rebuild_its_rollups(url: str,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    t0 = _midnight() - pd.Timedelta("3h")
    with Store(url) as store:
        store.write(_frame(t0, 120, "1min"))
    eng = sa.create_engine(url)
    with eng.begin() as c:  # as a store from before rollups: no rollup tables
        c.execute(sa.text("DROP TABLE perfkit_rollup_1m"))
        c.execute(sa.text("DROP TABLE perfkit_rollup_1h"))
    eng.dispose()
    with caplog.at_level(logging.WARNING, logger="perfkit.store"), Store(url) as store:
        assert "rebuild_rollups" in caplog.text
        assert store.rollups(every="1h").empty
        assert store.rebuild_rollups() == {"1min": 120, "1h": 2}
        assert store.rollups(every="1h")["count"].tolist() == [60, 60]
