"""NAB evaluation of perfkit's anomaly detector, with leave-series-out cross-validation.

    nice -n 15 python benchmarks/anomaly_eval.py                # CV + NAB results files + scores
    python ../shared/eval/nab_score.py data/nab --check-causal \
        --detector benchmarks/anomaly_eval.py:scores --detector benchmarks/anomaly_eval.py:cv_scores

Every constant of :class:`perfkit.analysis.anomaly.AnomalyParams` is chosen on a
grid by leave-one-series-out cross-validation: for each series, the grid point
with the best NAB standard score on the *other* series (threshold optimised
over them, as NAB does) scores the held-out one. The held-out scores are
written as NAB results files (``<out>/perfkit_cv/<category>/perfkit_cv_<file>``)
and scored with ``nab_score.py --published``; ``cv_scores`` recomputes them
from the series alone (so ``--check-causal`` applies to the CV detector too).

Selection uses a vectorised copy of NAB's ``Sweeper.calcScoreByThreshold`` and
of the state's fusion step (both checked against the originals on the first
grid point); every reported figure comes from ``nab_score.py`` itself.
Intermediate results are cached under ``/tmp`` (``--cache``).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import pickle
import subprocess
import sys
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from perfkit.analysis._anomaly import (
    _FLAT,
    _MEMORY_CAP,
    AGE_EVERY,
    DEFAULT,
    AnomalyParams,
    AnomalyState,
    Notability,
)

DATA = ROOT / "data" / "nab"
SCORER = ROOT.parent / "shared" / "eval" / "nab_score.py"
if not SCORER.exists():
    SCORER = Path("/work/shared/eval/nab_score.py")
GRID: dict[str | tuple[str, ...], tuple] = {
    "w_level": (1.2, 0.8),
    "decay": (0.1, 0.5),
    "w_pattern": (0.6, 0.8, 0.4, 0.0),
    "w_others": (0.0, 0.25, 0.5, 1.0),
}
"""Ties go to the grid point listed first. A tuple key varies those constants together.
Not searched here: the two pattern resolutions ``patterns`` (both always on: with a choice
between them, folds split and the held-out series lost), ``halflife`` (40), ``w_variance``
(0.3) and ``w_flat`` (0.5), the values an
earlier 384-point CV chose in most folds (variance and flat line tied with 0 on NAB; they stay
on because they name their pattern for an operator). A wider grid (324 points, also over
halflife and a third decay) selected less stably; see benchmarks/anomalies.md."""
OUT = Path("/tmp/perfkit_anomaly_cv")
"""Where the CV writes its cache, choices and NAB results files (``--out``)."""


def run_state(values: np.ndarray, ts_ns: np.ndarray, params: AnomalyParams) -> np.ndarray:
    """Scores of one series from the online state (the product path)."""
    st = AnomalyState(params)
    return np.array([st.step(t, v)[0] for t, v in zip(ts_ns.tolist(), values.tolist())])


def scores(series: pd.Series) -> np.ndarray:
    """nab_score.py detector: perfkit's default constants."""
    return run_state(series.to_numpy(float), series.index.asi8, DEFAULT)


def cv_scores(series: pd.Series) -> np.ndarray:
    """nab_score.py detector: the constants chosen without this series (run the CV first)."""
    choice = json.loads((OUT / "choices.json").read_text())[str(series.name)]
    return run_state(series.to_numpy(float), series.index.asi8, AnomalyParams(**choice))


# --- fast replicas used only for selection -----------------------------------------------------

def surprises(values: np.ndarray, params: AnomalyParams) -> np.ndarray:
    """Unweighted surprise of each method at each sample (rows: methods)."""
    ms = [m for m, _ in params.methods()]
    q = np.zeros((len(ms), len(values)))
    for i, v in enumerate(values.tolist()):
        if math.isfinite(v):
            for k, m in enumerate(ms):
                q[k, i] = m.step(v)
    return q


def fuse(q: np.ndarray, finite: np.ndarray, params: AnomalyParams) -> np.ndarray:
    """The state's fusion, report-once-per-method rule and notability discount applied to
    precomputed surprises."""
    ms = params.methods()
    wq = np.array([w for _, w in ms])[:, None] * q
    kinds = list(dict.fromkeys(m.reason for m, _ in ms))
    kind = [kinds.index(m.reason) for m, _ in ms]
    flat = kinds.index(_FLAT) if _FLAT in kinds else None
    n_seen = np.cumsum(finite)
    out = np.zeros(wq.shape[1])
    res, dec, others = [0.0] * len(wq), params.decay, params.w_others
    notability = Notability(params.notable, params.notable_halflife)
    cols = wq.T.tolist()
    for i in np.flatnonzero(finite & (n_seen > params.warmup)).tolist():
        if not n_seen[i] % AGE_EVERY:
            notability.age()
        top = [0.0] * len(kinds)
        for k, x in enumerate(cols[i]):
            floor = res[k] - dec
            if x > floor and x > 0:
                res[k] = min(x, _MEMORY_CAP)
                top[kind[k]] = max(top[kind[k]], x)
            else:
                res[k] = floor if floor > 0 else 0.0
        best = max(top)
        if best > 0:
            out[i] = notability.score(best + others * (sum(top) - best),
                                      top[flat] if flat is not None else 0.0)[0]
    return out


def _grouped_cummax(v: np.ndarray, group: np.ndarray) -> np.ndarray:
    """Running maximum of ``v`` restarting at each new ``group`` (groups contiguous)."""
    # shift each group above all earlier ones, so one global running max cannot leak across
    span = float(np.max(v) - np.min(v)) + 1.0 if len(v) else 1.0
    lifted = v + group * span
    return np.maximum.accumulate(lifted) - group * span


class FastNab:
    """Vectorised ``Sweeper.calcScoreByThreshold`` (same rows, same ties, same maximum)."""

    def __init__(self, data: dict[str, pd.Series], windows: dict, nab_src: Path):
        sys.path.insert(0, str(nab_src))
        from nab.sweeper import Sweeper
        self.profiles = json.loads((nab_src / "config" / "profiles.json").read_text())
        self.rows: dict[str, dict] = {}
        self._null: dict = {}
        for p, spec in self.profiles.items():
            sw = Sweeper(probationPercent=0.15, costMatrix=spec["CostMatrix"])
            self.rows[p] = {}
            for f, s in data.items():
                wl = [(pd.Timestamp(a), pd.Timestamp(b)) for a, b in windows[f]]
                pts = sw.calcSweepScore(list(s.index), [0.0] * len(s), wl, f)
                names = [x.windowName for x in pts]
                wn = sorted({x for x in names if x not in (None, "probationary")})
                keep = np.array([x != "probationary" for x in names])
                wid = np.array([-1 if x is None else wn.index(x) if x in wn else -2 for x in names])
                sweep = np.array([x.sweepScore for x in pts])
                self.rows[p][f] = (keep, wid[keep], sweep[keep], len(wn))

    def raw(self, sc: dict[str, np.ndarray], files, profile: str) -> tuple[float, int]:
        cm = self.profiles[profile]["CostMatrix"]
        fn = cm["fnWeight"]
        parts, off = [], 0
        for f in files:
            keep, wid, v, nw = self.rows[profile][f]
            w = wid.copy()
            w[w >= 0] += off
            parts.append((np.asarray(sc[f])[keep], w, v))
            off += nw
        s, w, v = (np.concatenate(x) for x in zip(*parts))
        o = np.argsort(-s, kind="stable")
        s, w, v = s[o], w[o], v[o]
        # the sum over thresholds as increments: an FP row adds its weight; a window row adds
        # how much it raises its window's best (each window starts at -fnWeight)
        inc = np.where(w == -1, v, 0.0)
        inw = np.flatnonzero(w >= 0)
        if len(inw):
            wj, vj = w[inw], v[inw]
            order = np.lexsort((np.arange(len(inw)), wj))  # by window, then by position
            wj_o, vj_o = wj[order], vj[order]
            starts = np.r_[True, wj_o[1:] != wj_o[:-1]]
            group = np.cumsum(starts) - 1
            best = np.maximum(_grouped_cummax(vj_o, group), -fn)
            prev = np.where(starts, -fn, np.r_[-fn, best[:-1]])
            inc[inw[order]] += best - prev
        tot = -fn * off + np.cumsum(inc)
        ends = np.r_[np.flatnonzero(np.diff(s) != 0), len(s) - 1]
        return max(-fn * off, float(tot[ends].max())), off

    def score(self, sc, files, profile="standard") -> float:
        cm = self.profiles[profile]["CostMatrix"]
        r, nw = self.raw(sc, files, profile)
        key = (tuple(files), profile)
        if key not in self._null:
            null = {f: np.full(len(sc[f]), 0.5) for f in files}
            self._null[key] = self.raw(null, files, profile)[0]
        rn = self._null[key]
        return 100 * (r - rn) / (nw * cm["tpWeight"] - rn)


def _fields(key: str | tuple[str, ...], val) -> dict:
    return dict(zip(key, val)) if isinstance(key, tuple) else {key: val}


def grid() -> list[AnomalyParams]:
    out = []
    for vals in itertools.product(*GRID.values()):
        kw: dict = {}
        for key, val in zip(GRID, vals):
            kw.update(_fields(key, val))
        out.append(replace(DEFAULT, **kw))
    return out


def constants(p: AnomalyParams) -> dict:
    """The searched constants of ``p``, by name."""
    names = [n for key in GRID for n in (key if isinstance(key, tuple) else (key,))]
    return {n: getattr(p, n) for n in names}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--out", type=Path, default=OUT)
    a = ap.parse_args(argv)
    windows = json.loads((a.data / "windows.json").read_text())
    files = sorted(windows)
    data = {}
    for f in files:
        df = pd.read_csv(a.data / f)
        data[f] = pd.Series(df["value"].to_numpy(float), name=f,
                            index=pd.DatetimeIndex(pd.to_datetime(df["timestamp"])))
    fast = FastNab(data, windows, SCORER.parent / "nab_scorer")
    a.out.mkdir(parents=True, exist_ok=True)
    configs = grid()
    cache = a.out / "surprises.pkl"
    qcache: dict = pickle.loads(cache.read_bytes()) if cache.exists() else {}
    table: list[dict[str, np.ndarray]] = []
    for i, p in enumerate(configs):
        key = (p.halflife, p.long_halflife, p.patterns)
        if key not in qcache:
            qcache[key] = {f: surprises(s.to_numpy(float), p) for f, s in data.items()}
            cache.write_bytes(pickle.dumps(qcache))
        sc = {f: fuse(qcache[key][f], np.isfinite(s.to_numpy(float)), p) for f, s in data.items()}
        if i == 0:  # the replicas must agree with the product path and NAB's own sweeper
            f0 = files[0]
            exact = run_state(data[f0].to_numpy(float), data[f0].index.asi8, p)
            assert np.array_equal(exact, sc[f0]), "fusion replica differs from AnomalyState"
        table.append(sc)
        print(f"\rgrid {i + 1}/{len(configs)}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    choices, held = {}, {}
    for f in files:
        rest = [g for g in files if g != f]
        best = max(range(len(configs)), key=lambda k: fast.score(table[k], rest))
        choices[f] = constants(configs[best])
        held[f] = table[best][f]
    full = max(range(len(configs)), key=lambda k: fast.score(table[k], files))
    (a.out / "choices.json").write_text(json.dumps(choices, indent=1))
    det = a.out / "results" / "perfkit_cv"
    for f in files:
        cat, base = f.split("/")
        (det / cat).mkdir(parents=True, exist_ok=True)
        stamps = pd.read_csv(a.data / f)["timestamp"]
        pd.DataFrame({"timestamp": stamps, "value": data[f].to_numpy(), "anomaly_score": held[f]}
                     ).to_csv(det / cat / f"perfkit_cv_{base}", index=False)
    counts = pd.Series([json.dumps(c, sort_keys=True) for c in choices.values()]).value_counts()
    print("constants chosen per fold (count):")
    for c, n in counts.items():
        print(f"  {n:2d} x {c}")
    print("best on all 17 (in-sample, for DEFAULT):",
          constants(configs[full]),
          f"fast standard {fast.score(table[full], files):.1f}")
    print("DEFAULT now:", asdict(DEFAULT))
    subprocess.run([sys.executable, str(SCORER), str(a.data), "--published", str(a.out / "results"),
                    "--names", "perfkit_cv"], check=True)


if __name__ == "__main__":
    main()
