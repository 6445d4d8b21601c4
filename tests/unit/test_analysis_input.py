"""Splitting a samples frame into series: every layout of the same rows gives the same series."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from perfkit.analysis._input import split_series
from perfkit.frames import as_samples


def _frame() -> pd.DataFrame:
    """Three metrics, one with a per-endpoint label set, two hosts (so repeated
    timestamps), a NaN and an inf, concatenated metric by metric."""
    rng = np.random.default_rng(4)
    parts = []
    for j, name in enumerate(["system.cpu_usage", "orders.custom", "database.query_time"]):
        ts = pd.date_range("2026-01-01", periods=50 + 10 * j, freq=f"{5 + j}s", tz="UTC")
        for host in ("a", "b"):
            parts.append(pd.DataFrame({"ts": ts, "host": host, "metric": name,
                                       "value": rng.normal(10 * (j + 1), 1, len(ts)),
                                       "labels": ""}))
        if name == "orders.custom":
            parts.append(pd.DataFrame({"ts": ts[::2], "host": "a", "metric": name,
                                       "value": rng.normal(5, 1, len(ts[::2])),
                                       "labels": "endpoint=GET /x"}))
    f = pd.concat(parts, ignore_index=True)
    f.loc[3, "value"] = np.nan
    f.loc[7, "value"] = np.inf
    return f


def _expected(f: pd.DataFrame, labels) -> list[tuple[str, str, np.ndarray, np.ndarray]]:
    """The series by a plain pandas groupby (first-seen order, mean per timestamp)."""
    g = f[np.isfinite(f["value"])].astype({"metric": object, "labels": object})
    if labels is False:
        g = g[g["labels"] == ""]
    elif labels is None:
        has_agg = set(g.loc[g["labels"] == "", "metric"])
        g = g[(g["labels"] == "") | ~g["metric"].isin(has_agg)]
    order = list(dict.fromkeys(zip(g["metric"], g["labels"])))
    means = g.groupby(["metric", "labels", "ts"])["value"].mean()
    out = []
    for m, lab in order:
        s = means.loc[(m, lab)]
        out.append((m, lab, pd.DatetimeIndex(s.index).as_unit("ns").asi8, s.to_numpy()))
    return out


def _layouts(f: pd.DataFrame):
    yield "per metric", f
    yield "by time (the store's order)", f.sort_values("ts", kind="stable").reset_index(drop=True)
    yield "shuffled", f.sample(frac=1.0, random_state=3).reset_index(drop=True)
    yield "categorical", f.astype({"metric": "category", "labels": "category"})
    yield "object strings", f.astype({"metric": object, "labels": object})
    yield "nanosecond contract frame", as_samples(f, drop_invalid=True)
    yield "millisecond timestamps", f.assign(ts=f["ts"].astype("datetime64[ms, UTC]"))


@pytest.mark.parametrize("labels", [None, True, False])
def test_every_layout_gives_the_groupby_series(labels):
    f = _frame()
    want = _expected(f, labels)
    first_two = [(m, lab) for m, lab, _, _ in want][:2]
    assert first_two == [("system.cpu_usage", ""), ("orders.custom", "")]
    for name, layout in _layouts(f):
        got = split_series(layout, labels)
        first_seen = layout.loc[np.isfinite(layout["value"]), ["metric", "labels"]].astype(str)
        wanted = [w for k in dict.fromkeys(zip(first_seen["metric"], first_seen["labels"]))
                  for w in want if (w[0], w[1]) == k]
        assert [(s.metric, s.labels) for s in got] == [(m, lab) for m, lab, _, _ in wanted], name
        for s, (_, _, ts, v) in zip(got, wanted):
            np.testing.assert_array_equal(s.ts, ts, err_msg=name)
            np.testing.assert_allclose(s.values, v, rtol=1e-12, err_msg=name)
            assert s.step_ns() == float(np.median(np.diff(ts))), name


def test_rows_without_a_metric_or_time_are_dropped_and_missing_labels_are_aggregate():
    f = _frame().astype({"metric": object, "labels": object})
    f.loc[0, "metric"] = None
    f.loc[1, "labels"] = None
    f["ts"] = f["ts"].astype(object)
    f.loc[2, "ts"] = pd.NaT
    got = {(s.metric, s.labels): s for s in split_series(f, True)}
    assert set(got) == {("system.cpu_usage", ""), ("orders.custom", ""),
                        ("orders.custom", "endpoint=GET /x"), ("database.query_time", "")}
    cpu = f[(f["metric"] == "system.cpu_usage") & np.isfinite(f["value"]) & f["ts"].notna()]
    assert got[("system.cpu_usage", "")].n == cpu["ts"].nunique()


def test_a_frame_with_only_labelled_rows_and_labels_false_is_empty():
    f = _frame()
    f["labels"] = "endpoint=GET /x"
    assert split_series(f, False) == []
    assert [s.labels for s in split_series(f)] == ["endpoint=GET /x"] * 3


@pytest.mark.parametrize("unit", ["ns", "us"])
def test_a_frame_concatenated_per_metric_is_split_by_its_runs(unit):
    """One label set, every value finite, each metric one block of rows: the layout
    the run-length shortcut reads without hashing or sorting rows."""
    f = _frame()
    f = f[(f["labels"] == "") & np.isfinite(f["value"]) & (f["host"] == "a")]
    f = f.assign(ts=f["ts"].astype(f"datetime64[{unit}, UTC]")).reset_index(drop=True)
    f.loc[f["metric"] == "orders.custom", "value"] = 7.0          # a constant series too
    got = split_series(f)
    want = _expected(f, None)
    assert [(s.metric, s.labels) for s in got] == [(m, lab) for m, lab, _, _ in want]
    for s, (_, _, ts, v) in zip(got, want):
        np.testing.assert_array_equal(s.ts, ts)
        np.testing.assert_array_equal(s.values, v)
    # a metric that comes back after another one is still one series
    again = pd.concat([f, f[f["metric"] == "system.cpu_usage"].assign(
        ts=lambda d: d["ts"] + pd.Timedelta("1h"))], ignore_index=True)
    cpu = [s for s in split_series(again) if s.metric == "system.cpu_usage"]
    assert len(cpu) == 1 and cpu[0].n == 2 * got[0].n
