"""Online anomaly scores: values, reasons, report-once, causality, bad input."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import perfkit
from perfkit.analysis import AnomalyParams, AnomalyState
from perfkit.analysis._anomaly import AGE_EVERY, Notability
from perfkit.errors import InvalidInputError


def frame(values, *, metric="m", host="h", start="2024-01-01", freq="min", ts=None):
    stamps = ts if ts is not None else pd.date_range(start, periods=len(values), freq=freq,
                                                     tz="UTC")
    return pd.DataFrame({"ts": stamps, "host": host, "metric": metric,
                         "value": np.asarray(values, float), "labels": ""})


def noise(n, seed=0):
    return np.random.default_rng(seed).normal(size=n)


def online(values, ts_ns):
    st = AnomalyState(AnomalyParams())
    return [st.step(int(t), float(v)) for t, v in zip(ts_ns, values)]


def test_batch_equals_online_state_exactly():
    v = noise(800)
    v[500] += 15
    v[650:] += 5
    f = frame(v)
    out = perfkit.anomaly_scores(f)
    ts = pd.DatetimeIndex(f["ts"]).asi8
    steps = online(v, ts)
    assert out["score"].tolist() == [s for s, _ in steps]
    assert out["reason"].tolist() == [r for _, r in steps]


def test_scores_are_causal():
    v = noise(700, seed=3)
    v[400] -= 10
    full = perfkit.anomaly_scores(frame(v))["score"].to_numpy()
    for cut in (150, 401, 650):
        part = perfkit.anomaly_scores(frame(v[:cut]))["score"].to_numpy()
        assert np.array_equal(part, full[:cut])


def test_spike_scores_high_at_the_spike_with_reason():
    v = noise(1000)
    v[600] += 12
    out = perfkit.anomaly_scores(frame(v))
    assert int(out["score"].idxmax()) == 600
    assert out.loc[600, "score"] >= 0.5
    assert out.loc[600, "reason"] == "spike"
    assert out["score"].min() >= 0 and out["score"].max() < 1


@pytest.mark.parametrize("seed", range(5))
def test_level_shift_is_reported_at_its_onset_not_on_later_samples(seed):
    v = noise(1000, seed=seed)
    v[600:] += 8
    s = perfkit.anomaly_scores(frame(v))["score"].to_numpy()
    assert s[600] >= 0.5
    later = np.flatnonzero(s[601:] >= 0.5) + 601
    # the level method may confirm the shift once, a few samples on; nothing after that
    assert len(later) <= 1 and all(i < 610 for i in later)
    assert s[610:].max() < 0.5


def test_surprise_is_discounted_by_the_series_earlier_notable_moments():
    v = noise(1500, seed=8)
    v[300::40] += np.linspace(3, 9, 30)  # bursts: notable moments of varying size
    levels = AnomalyParams().notable
    # a lifetime count here; the aging has its own tests below
    on = AnomalyState(AnomalyParams(notable_halflife=math.inf))
    off = AnomalyState(AnomalyParams(notable=()))
    counts = [0] * len(levels)
    discount = 0.0
    for i, x in enumerate(v.tolist()):
        s_on, reason = on.step(i, x)
        s_off, _ = off.step(i, x)
        q = 7.0 * s_off / (1.0 - s_off)  # the undiscounted surprise, from the score without it
        discount = sum(math.log1p(c) for c in counts) / len(counts)
        expected = max(q - discount, 0.0)
        assert s_on == pytest.approx(expected / (expected + 7.0), abs=1e-9)
        assert (reason == "") == (s_on == 0) or reason.startswith("warming up")
        if s_off > 0:
            counts = [c + (q >= lv) for c, lv in zip(counts, levels)]
    assert discount > 2  # the bursts were counted: ln(1 + N) of a few dozen moments


@pytest.mark.parametrize("levels", [(0.0,), (-1.0, 2.0), (math.nan,), (math.inf,), ("2",)])
def test_notable_levels_must_be_positive_finite_nats(levels):
    with pytest.raises(InvalidInputError, match="notable levels must be positive finite"):
        AnomalyParams(notable=levels)


def test_notable_moments_are_forgotten_with_their_half_life():
    v = noise(12_000, seed=9)
    v[200:1200:25] += np.linspace(3, 9, 40)  # a restless start, then months of calm noise
    ends = {}
    for halflife in (2048.0, math.inf):
        st = AnomalyState(AnomalyParams(notable_halflife=halflife))
        peak = 0.0
        for i, x in enumerate(v.tolist()):
            st.step(i, x)
            peak = max(peak, st.notability.discount)
        ends[halflife] = st.notability.discount
        if halflife == math.inf:
            assert ends[halflife] == peak  # never forgets: the discount only grows
    assert ends[2048.0] < ends[math.inf] - 1.0


def test_notability_ages_by_its_half_life():
    nb = Notability((2.0, 4.0), halflife=2 * AGE_EVERY)
    for q in (5.0, 5.0, 3.0):
        nb.add(q)
    assert nb.counts == [3.0, 2.0]
    assert nb.discount == pytest.approx((math.log(4) + math.log(3)) / 2)
    nb.age()
    nb.age()  # two blocks: one half-life
    assert nb.counts == pytest.approx([1.5, 1.0])
    assert nb.discount == pytest.approx((math.log(2.5) + math.log(2)) / 2)


@pytest.mark.parametrize("halflife", [0, -5.0, math.nan, "1e4", True])
def test_notable_halflife_must_be_a_positive_number(halflife):
    with pytest.raises(InvalidInputError, match="notable_halflife must be a positive"):
        AnomalyParams(notable_halflife=halflife)


def test_a_new_shape_inside_the_range_is_named_pattern():
    rng = np.random.default_rng(4)
    t = np.arange(1000)
    v = np.where((t // 5) % 2 == 0, 0.0, 10.0) + rng.normal(0, 0.05, 1000)
    v[700:705] = 5.0 + rng.normal(0, 0.05, 5)  # mid-range: no new extreme, a new sequence
    out = perfkit.anomaly_scores(frame(v))
    top = int(out["score"].iloc[150:].idxmax())
    assert top == 700 and out["reason"].iloc[top] == "pattern"


def test_flat_line_is_named():
    v = noise(1000, seed=2)
    v[600:] = 0.3
    out = perfkit.anomaly_scores(frame(v))
    flat = out[out["reason"] == "flat line"]
    assert len(flat) == 1 and 600 < flat.index[0] < 700
    assert flat["score"].iloc[0] > 0


def test_warm_up_scores_zero_with_a_reason():
    out = perfkit.anomaly_scores(frame(noise(150)))
    assert (out["score"].iloc[:100] == 0).all()
    assert out["reason"].iloc[11] == "warming up: 12 of 100 samples"
    assert not out["reason"].iloc[100].startswith("warming up")


def test_constant_series_scores_zero_then_a_change_is_a_spike():
    out = perfkit.anomaly_scores(frame(np.full(300, 5.0)))
    assert (out["score"] == 0).all()
    v = np.full(300, 5.0)
    v[250] = 6.0
    out = perfkit.anomaly_scores(frame(v))
    assert out["score"].iloc[250] > 0.5 and out["reason"].iloc[250] == "spike"


def test_nan_and_inf_score_zero_and_leave_the_state_alone():
    v = noise(400, seed=4)
    v[300] += 9
    bad = v.copy()
    ts = pd.date_range("2024-01-01", periods=400, freq="min", tz="UTC")
    keep = np.ones(400, bool)
    keep[[120, 200, 201]] = False
    bad[120], bad[200], bad[201] = math.nan, math.inf, -math.inf
    out = perfkit.anomaly_scores(frame(bad, ts=ts))
    assert (out["score"].iloc[[120, 200, 201]] == 0).all()
    assert (out["reason"].iloc[[120, 200, 201]] == "missing value (not finite)").all()
    clean = perfkit.anomaly_scores(frame(v[keep], ts=ts[keep]))
    assert np.array_equal(out["score"].to_numpy()[keep], clean["score"].to_numpy())


def test_gaps_and_changing_interval_give_defined_scores():
    v = noise(500, seed=5)
    steps = np.r_[np.full(200, 60), np.full(100, 600), [86_400 * 3], np.full(198, 5)]
    offsets = pd.to_timedelta(np.r_[0, np.cumsum(steps)], unit="s")
    ts = pd.Timestamp("2024-01-01", tz="UTC") + offsets
    out = perfkit.anomaly_scores(frame(v, ts=ts))
    assert out["score"].between(0, 1).all() and len(out) == 500
    regular = perfkit.anomaly_scores(frame(v))
    assert np.array_equal(out["score"].to_numpy(), regular["score"].to_numpy())


def test_rows_keep_input_order_and_series_are_independent():
    a, b = noise(300, seed=6), noise(300, seed=7)
    b[250] += 20
    fa, fb = frame(a, metric="a"), frame(b, metric="b")
    both = pd.concat([fa, fb]).sample(frac=1.0, random_state=0).reset_index(drop=True)
    out = perfkit.anomaly_scores(both)
    assert out["ts"].tolist() == both["ts"].tolist()
    assert out["metric"].tolist() == both["metric"].tolist()
    alone = perfkit.anomaly_scores(fa)
    got = out[out["metric"] == "a"].sort_values("ts")["score"].to_numpy()
    assert np.array_equal(got, alone["score"].to_numpy())


def test_worker_processes_give_exactly_the_one_process_scores_in_row_order():
    parts = []
    for i in range(9):
        v = noise(250 + 10 * i, seed=20 + i)
        if i % 3 == 0:  # still anomalous at the end: listed by anomalies()
            v[-2] += 15
        else:
            v[200 + i] += 12
        parts.append(frame(v, metric=f"m{i}", host="h" if i % 2 else "db"))
    f = pd.concat(parts).sample(frac=1.0, random_state=1).reset_index(drop=True)
    one = perfkit.anomaly_scores(f, jobs=1)
    pd.testing.assert_frame_equal(perfkit.anomaly_scores(f, jobs=2), one, check_exact=True)
    assert set(one.loc[one["reason"] == "spike", "metric"]) == {f"m{i}" for i in range(9)}
    now_one = perfkit.anomalies(f, min_score=0.3, jobs=1)
    assert sorted(now_one["metric"]) == ["m0", "m3", "m6"]
    pd.testing.assert_frame_equal(perfkit.anomalies(f, min_score=0.3, jobs=2), now_one,
                                  check_exact=True)


def _unguarded_script(tmp_path, with_thread):
    script = tmp_path / "unguarded.py"
    script.write_text(
        "import threading, numpy as np, pandas as pd, perfkit\n"
        + ("done = threading.Event()\nthreading.Thread(target=done.wait, daemon=True).start()\n"
           if with_thread else "")
        + "ts = pd.date_range('2024-01-01', periods=50, freq='min', tz='UTC')\n"
        "f = pd.concat([pd.DataFrame({'ts': ts, 'metric': f'm{i}', 'value': np.arange(50.0)})\n"
        "               for i in range(8)])\n"
        "print(len(perfkit.anomaly_scores(f, jobs=2)))\n")
    env = {**os.environ, "PYTHONPATH": str(Path(perfkit.__file__).parents[1])}
    return subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=300, env=env, cwd=tmp_path)


def test_workers_of_a_threaded_script_without_a_main_guard_fail_with_advice(tmp_path):
    run = _unguarded_script(tmp_path, with_thread=True)
    assert run.returncode != 0
    assert 'if __name__ == "__main__":' in run.stderr and "jobs=1" in run.stderr


@pytest.mark.skipif(sys.platform != "linux", reason="workers are forked on Linux only")
def test_single_threaded_script_forks_its_workers_and_needs_no_main_guard(tmp_path):
    run = _unguarded_script(tmp_path, with_thread=False)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["400"]


def test_jobs_must_be_a_positive_whole_number():
    for bad in (0, -1, 1.5, True):
        with pytest.raises(InvalidInputError, match="jobs must be"):
            perfkit.anomaly_scores(frame(noise(20)), jobs=bad)


def test_out_of_order_sample_is_ignored_by_the_state():
    st = AnomalyState()
    assert st.step(1_000, 1.0)[1].startswith("warming up")
    assert st.step(500, 2.0) == (0.0, "out of order: ignored")
    assert st.n == 1


def test_anomalies_lists_what_is_unusual_now_highest_first():
    quiet, small, big = noise(400, seed=8), noise(400, seed=9), noise(400, seed=10)
    small[398] += 9
    big[399] += 30
    old = noise(400, seed=11)
    old[150] += 30
    f = pd.concat([frame(quiet, metric="quiet"), frame(small, metric="small"),
                   frame(big, metric="big", host="db"), frame(old, metric="old")])
    now = perfkit.anomalies(f)
    assert now["metric"].tolist() == ["big", "small"]
    assert now["score"].is_monotonic_decreasing
    first = now.iloc[0]
    assert first["host"] == "db" and first["pattern"] == "spike"
    assert first["since"] == f[f["metric"] == "big"]["ts"].iloc[399]


def test_anomalies_of_calm_data_is_an_empty_typed_frame():
    now = perfkit.anomalies(frame(noise(300)), min_score=0.9)
    assert list(now.columns) == ["metric", "host", "labels", "since", "score", "pattern"]
    assert len(now) == 0 and str(now["since"].dtype).startswith("datetime64")


def test_series_input_is_accepted():
    s = pd.Series(noise(200), index=pd.date_range("2024-01-01", periods=200, freq="min"),
                  name="cpu")
    out = perfkit.anomaly_scores(s)
    assert len(out) == 200 and (out["metric"] == "cpu").all()


def test_bad_input_says_what_is_wrong():
    with pytest.raises(InvalidInputError, match="lacks column"):
        perfkit.anomaly_scores(pd.DataFrame({"ts": [], "value": []}))
    with pytest.raises(TypeError, match="samples DataFrame"):
        perfkit.anomaly_scores([1, 2, 3])
    with pytest.raises(InvalidInputError, match="min_score"):
        AnomalyState(min_score=1.5)


def cpu_frame(v, freq="10s"):
    return frame(v, metric="system.cpu_usage", host="", freq=freq)


def test_anomaly_alert_rule_fires_once_per_episode_and_resolves():
    v = noise(300, seed=12) + 30
    v[200] += 40
    rule = perfkit.AlertRule("system.cpu_usage", kind="anomaly", min_score=0.5)
    f = cpu_frame(v)
    tr = perfkit.alert_transitions(f, [rule])
    assert tr["state"].tolist() == ["firing", "resolved"]
    assert tr["ts"].iloc[0] == f["ts"].iloc[200]
    assert (tr["severity"] == "anomaly").all() and tr["threshold"].iloc[0] == 0.5
    assert "spike" in tr["message"].iloc[0]
    scores = perfkit.anomaly_scores(f)["score"]
    assert tr["value"].iloc[0] == scores.iloc[200]


def test_anomaly_alert_rule_for_needs_the_episode_to_last():
    v = noise(300, seed=12) + 30
    v[200] += 40
    f = cpu_frame(v)
    short = perfkit.AlertRule("system.cpu_usage", kind="anomaly", min_score=0.5, for_="20s")
    states = perfkit.alert_transitions(f, [short])["state"].tolist()
    assert states[:2] == ["pending", "firing"]
    never = perfkit.AlertRule("system.cpu_usage", kind="anomaly", min_score=0.5, for_="1h")
    assert perfkit.alert_transitions(f, [never])["state"].tolist() == ["pending", "resolved"]
    now = perfkit.alerts(f, [short])
    assert now["severity"].tolist() == ["anomaly"] and now["state"].tolist() == ["resolved"]


def test_anomaly_alert_rule_rejects_thresholds_and_bad_scores():
    with pytest.raises(ValueError, match="min_score"):
        perfkit.AlertRule("system.cpu_usage", kind="anomaly", min_score=1.0)
    with pytest.raises(ValueError, match="no warning/critical"):
        perfkit.AlertRule("system.cpu_usage", kind="anomaly", warning=80.0)
    with pytest.raises(ValueError, match="kind"):
        perfkit.AlertRule("system.cpu_usage", kind="magic")
