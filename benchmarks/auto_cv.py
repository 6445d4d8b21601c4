"""Nested leave-series-out cross-validation of ``auto``'s rule and interval constants.

    python benchmarks/auto_cv.py [--data data/nab] [--cache /tmp/auto_cv.npz] [--jobs 2]

The origins, windows, horizon and MASE scale are ``forecast_eval.py``'s (its
``load_series`` / ``choose_origins`` are imported from ``../shared/eval``), so a
rule's figures here equal what ``forecast_eval.py --forecaster
benchmarks/nab_forecasters.py:auto`` reports for it. At each origin every
candidate of :data:`perfkit.analysis._auto.AUTO_RULES` is computed on the same
fitted members (level-shift detection and constant check as in
``forecast_array``), and kept with the RMS of its causal h-step errors.

The candidate set and the selection criteria were fixed before any was scored (the
volatility power was added later, after an exploration on these same series: see
``benchmarks/analysis.md``, "Intervals that follow recent volatility"):

* outer loop, for each of the N series: on the other N - 1 choose the rule with the
  lowest **mean** of per-series MASE (the goal that was missed), then, for that
  rule, the interval constants ``(c, nu)`` (half-width ``c * t_nu(level) * RMS_h``)
  that bring the mean-of-series coverage at 80 % and 95 % closest to nominal
  (least squares over a grid: nu in {3, 5, 10, inf}, c by bisection per nu), or the
  window's own error quantile times c; each for a volatility power in {0, 0.5, 1}
  (half-width times ``volatility_ratio ** power``), keeping the candidate whose lowest
  training series covers most at 80 %;
* score rule and constants on the held-out series. The N held-out rows are the
  cross-validated estimate; the constants fitted on all N go into the code.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from perfkit.analysis._auto import (
    AUTO_RULES,
    AutoParts,
    auto_parts,
    calibrated_half,
    hstep_quantile,
    interval_half,
    uses_shift,
    volatility_ratio,
)
from perfkit.analysis._input import NS_PER_HOUR
from perfkit.analysis._shift import last_shift

LEVELS = (0.8, 0.95)
NUS = (3.0, 5.0, 10.0, np.inf)
POWERS = (0.0, 0.5, 1.0)          # interval x volatility_ratio ** power
UNCALIBRATED = (1.0, np.inf, 0.0)


def _eval_module(path: str):  # returns a module
    if "forecast_eval" in sys.modules:
        return sys.modules["forecast_eval"]
    spec = importlib.util.spec_from_file_location("forecast_eval", path)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules["forecast_eval"] = mod           # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


def default_eval() -> str:
    for p in (ROOT.parent / "shared/eval/forecast_eval.py",
              Path("/work/shared/eval/forecast_eval.py")):
        if p.exists():
            return str(p)
    raise SystemExit("forecast_eval.py not found; pass --eval")


def _origin(x: np.ndarray, y: np.ndarray, h: int,
            rules: tuple[str, ...]) -> dict[str, tuple[AutoParts | None, object]]:
    """All rules at one origin (as ``forecast_array(..., "auto")`` would, shift included)."""
    out: dict[str, tuple[AutoParts | None, object]] = {}
    for shift in (True, False):
        start = last_shift(y) if shift and len(y) >= 10 else 0
        if len(y) - start < 3:
            start = 0
        xs, ys = x[start:], y[start:]
        memo: dict = {}
        for r in rules:
            if uses_shift(r) != shift:
                continue
            if np.ptp(ys) == 0:
                out[r] = (None, float(ys[-1]))
                continue
            out[r] = (auto_parts(xs, ys, h, r, memo), None)
    return out


def evaluate(args: tuple[str, str, str, tuple[str, ...]]) -> dict:
    """Per-rule arrays for one series: actual, mean, uncalibrated half-widths, RMS."""
    eval_path, path, name, rules = args
    fe = _eval_module(eval_path)
    cfg = fe.Config()
    s = fe.load_series(Path(path), name, fe.parse_duration(cfg.max_fill))
    h = max(1, round(fe.parse_duration(cfg.horizon) / s.step))
    split, origins = fe.choose_origins(s, h, cfg)
    tr = s.raw[:split]
    both = ~np.isnan(tr[1:]) & ~np.isnan(tr[:-1])
    scale = float(np.mean(np.abs(np.diff(tr)[both])))
    w = max(1, round(fe.parse_duration(cfg.window) / s.step))
    actual = np.array([s.raw[t + 1:t + 1 + h] for t in origins])
    out: dict = {"series": name, "scale": scale, "actual": actual, "rules": {}}
    per = {r: {"mean": [], "half80": [], "half95": [], "rms": [], "model": [], "q80": [],
               "q95": [], "ratio": []} for r in rules}
    for t in origins:
        start = max(t - w + 1, s.seg_start[t])
        idx = s.index[start:t + 1]
        x = (idx.asi8 - idx.asi8[-1]) / NS_PER_HOUR
        res = _origin(x, s.filled[start:t + 1], h, rules)
        for r, (parts, fit) in res.items():
            d = per[r]
            if parts is None:
                d["mean"].append(np.full(h, fit))
                for k in ("half80", "half95", "rms"):
                    d[k].append(np.zeros(h))
                d["q80"].append(0.0)
                d["q95"].append(0.0)
                d["ratio"].append(1.0)
                d["model"].append("constant")
                continue
            d["mean"].append(parts.mean)
            # the uncalibrated z * RMS interval, and the RMS (nan beyond hmax: fallback)
            d["half80"].append(interval_half(parts, 0.8, (1.0, np.inf), 0.0))
            d["half95"].append(interval_half(parts, 0.95, (1.0, np.inf), 0.0))
            rms = parts.rms.copy()
            rms[parts.hmax:] = np.nan
            d["rms"].append(rms)
            d["model"].append(parts.model)
            d["ratio"].append(volatility_ratio(parts))
            for lv in LEVELS:
                d[f"q{round(lv * 100)}"].append(
                    hstep_quantile(parts.y, parts.path, parts.rms, parts.hmax, lv)
                    if parts.hmax else np.nan)
    out["rules"] = {r: {k: (np.array(v) if k != "model" else v) for k, v in d.items()}
                    for r, d in per.items()}
    return out


def _half(res: dict, rule: str, level: float, cal: tuple[float, float, float]) -> np.ndarray:
    """Half-widths for calibration ``(c, nu, power)`` (as ``interval_half`` computes them)."""
    d = res["rules"][rule]
    base = d["half80"] if level == 0.8 else d["half95"]
    q = d[f"q{round(level * 100)}"][:, None]
    vol = d["ratio"][:, None] ** cal[2]
    return np.where(np.isnan(d["rms"]), base,
                    calibrated_half(np.nan_to_num(d["rms"]), level, cal[:2], np.nan_to_num(q))
                    * vol)


def coverage(res: dict, rule: str, level: float, cal: tuple[float, float, float]) -> float:
    """Share of observed targets inside the calibrated interval (one series)."""
    a = res["actual"]
    ok = ~np.isnan(a)
    err = np.abs(a - res["rules"][rule]["mean"])
    return float((err[ok] <= _half(res, rule, level, cal)[ok]).mean())


def winkler(res: dict, rule: str, level: float, cal: tuple[float, float, float]) -> float:
    """Mean interval score (width + 2/(1-level) x miss) / the series' MASE scale."""
    a = res["actual"]
    ok = ~np.isnan(a)
    half = _half(res, rule, level, cal)
    miss = np.maximum(np.abs(a - res["rules"][rule]["mean"]) - half, 0)
    return float((2 * half + 2 / (1 - level) * miss)[ok].mean() / res["scale"])


def mase(res: dict, rule: str) -> float:
    a = res["actual"]
    e = np.abs(a - res["rules"][rule]["mean"])
    return float(np.nanmean(e) / res["scale"])


def _fit_c(train: list[dict], rule: str, nu: float, power: float) -> tuple[float, float]:
    """c (by bisection) making the mean of the 80 % and 95 % coverage gaps zero; the
    squared gaps left."""
    lo, hi = 0.2, 4.0
    for _ in range(25):
        c = (lo + hi) / 2
        gap = np.mean([np.mean([coverage(r, rule, lv, (c, nu, power)) for r in train]) - lv
                       for lv in LEVELS])
        lo, hi = (c, hi) if gap < 0 else (lo, c)
    err = sum((np.mean([coverage(r, rule, lv, (c, nu, power)) for r in train]) - lv) ** 2
              for lv in LEVELS)
    return c, float(err)


def fit_calibration(train: list[dict], rule: str) -> tuple[float, float, float]:
    """The interval constants ``(c, nu, power)`` for ``rule`` on ``train``. For each
    volatility power in :data:`POWERS`: Student-t (nu from :data:`NUS`, the one whose 80 %
    and 95 % mean coverage are closest to nominal) or the window's own quantile (nu = 0),
    each with c calibrated. Of all these candidates, the one whose lowest training
    series covers most at 80 % (mean coverage is at nominal for each by construction)."""
    cands = []
    for pw in POWERS:
        t_fits = [(_fit_c(train, rule, nu, pw), nu) for nu in NUS]
        (c_t, _), nu_t = min(t_fits, key=lambda f: f[0][1])
        c_e, _ = _fit_c(train, rule, 0.0, pw)
        cands += [(c_t, nu_t, pw), (c_e, 0.0, pw)]
    return max(cands, key=lambda cal: min(coverage(r, rule, 0.8, cal) for r in train))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(ROOT / "data" / "nab"))
    ap.add_argument("--eval", default=None, help="path of forecast_eval.py")
    ap.add_argument("--cache", default=None, help="pickle of the per-origin results (reused)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--rules", default=",".join(AUTO_RULES),
                    help="the candidate set (comma list of AUTO_RULES)")
    a = ap.parse_args(argv)
    import pickle

    rules = tuple(r.strip() for r in a.rules.split(",") if r.strip())
    unknown = set(rules) - set(AUTO_RULES)
    if unknown:
        raise SystemExit(f"unknown rules {sorted(unknown)}; choose from {AUTO_RULES}")

    if a.cache and Path(a.cache).exists():
        results = pickle.loads(Path(a.cache).read_bytes())
    else:
        ev = a.eval or default_eval()
        files = sorted(Path(a.data).rglob("*.csv"))
        jobs = [(ev, str(f), f.relative_to(a.data).as_posix(), rules) for f in files]
        with ProcessPoolExecutor(a.jobs) as ex:
            results = list(ex.map(evaluate, jobs))
        if a.cache:
            Path(a.cache).write_bytes(pickle.dumps(results))
    names = [r["series"] for r in results]
    m = pd.DataFrame({rule: [mase(r, rule) for r in results] for rule in rules}, index=names)
    print("| rule | median MASE | mean MASE |\n|---|---:|---:|")
    for rule in rules:
        print(f"| {rule} | {m[rule].median():.3f} | {m[rule].mean():.3f} |")
    rows = []
    for i, s in enumerate(names):
        train = [r for j, r in enumerate(results) if j != i]
        rule = m.drop(index=s).mean().idxmin()
        cal = fit_calibration(train, rule)
        held = results[i]
        rows.append({"series": s, "rule": rule, "c": cal[0], "nu": cal[1],
                     "mase": mase(held, rule),
                     **{f"cov{round(lv * 100)}": coverage(held, rule, lv, cal) for lv in LEVELS},
                     **{f"winkler{round(lv * 100)}": winkler(held, rule, lv, cal)
                        for lv in LEVELS},
                     "power": cal[2],
                     "cov80_uncal": coverage(held, rule, 0.8, UNCALIBRATED),
                     "cov95_uncal": coverage(held, rule, 0.95, UNCALIBRATED)})
    cv = pd.DataFrame(rows).set_index("series")
    pd.set_option("display.width", 200)
    print("\nheld-out rows (nested leave-one-series-out)\n")
    print(cv.round(3).to_string())
    print(f"\npicks {cv.rule.value_counts().to_dict()}; held-out median MASE "
          f"{cv.mase.median():.3f}, mean {cv.mase.mean():.3f}; coverage 80 % mean of series "
          f"{cv.cov80.mean():.3f} (lowest {cv.cov80.min():.3f}), 95 % {cv.cov95.mean():.3f} "
          f"(lowest {cv.cov95.min():.3f}); uncalibrated 80 % {cv.cov80_uncal.mean():.3f}, "
          f"95 % {cv.cov95_uncal.mean():.3f}; mean Winkler/scale 80 % {cv.winkler80.mean():.3f}, "
          f"95 % {cv.winkler95.mean():.3f}")
    best = m.mean().idxmin()
    print(f"on all {len(names)} series: rule {best}, constants {fit_calibration(results, best)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
