"""The decision: is this run slower than the baseline by more than allowed?

Statistic: the ratio of medians, ``median(current) / median(baseline)`` of
the per-round samples, with a percentile-bootstrap confidence interval
(independent resampling of both runs' rounds). When both runs carry the
interleaved reference rounds (see :mod:`.measure`) a second, machine-
normalised ratio divides every round by the reference round timed right
after it, and :func:`combine` merges the two views (the normalised one decides
when the machine's speed moved between the runs). Why this and not the
Mann-Whitney U test: see ``docs/regression.md`` — in short, the limit a user
writes (``max_regression="10%"``) is a statement about the *size* of a
slowdown; a CI of the ratio can be compared with it directly, whereas a U
test only says whether two distributions differ (and with hundreds of rounds
it calls a 0.5 % shift significant).

Verdicts (``limit = 1 + max_regression``, ``[lo, hi]`` the CI):

* ``regression``   – ``lo > limit``: slower than allowed, at the CI's confidence
  (so both statistically significant and larger than ``max_regression``)
* ``improved``     – ``hi < 1 / limit``: faster by more than the same margin
* ``inconclusive`` – the CI is wider than the whole tolerated band
  (``hi / lo > limit**2``), or it straddles the limit: noise too high to decide
* ``ok``           – ``hi <= limit``: not slower than allowed
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, replace

VERDICTS = ("regression", "improved", "inconclusive", "ok")


@dataclass(frozen=True)
class Comparison:
    ratio: float
    ci_low: float
    ci_high: float
    verdict: str
    reason: str
    limit: float
    confidence: float


def seed_for(name: str) -> int:
    """A stable seed per test so a verdict is reproducible from the stored samples."""
    return zlib.crc32(name.encode("utf-8"))


def ratio_ci(current: Sequence[float], baseline: Sequence[float], confidence: float = 0.99,
             n_boot: int = 2000, seed: int = 0, current_ref: Sequence[float] | None = None,
             baseline_ref: Sequence[float] | None = None) -> tuple[float, float, float]:
    """Ratio of medians and its percentile-bootstrap CI.

    With ``current_ref`` / ``baseline_ref`` (the interleaved reference rounds,
    one per round) each round is first divided by the reference round timed
    right after it, and the ratio is that of the medians of these per-round
    quotients: ``med(cur / cur_ref) / med(base / base_ref)``. Pairing round by
    round cancels a machine whose speed changes *within* a run (a busy
    neighbour comes and goes), not only between runs.
    """
    import numpy as np

    cur = np.asarray(current, dtype=float)
    base = np.asarray(baseline, dtype=float)
    if cur.size == 0 or base.size == 0:
        raise ValueError("both runs need at least one sample")
    if current_ref is not None and baseline_ref is not None:
        cref = np.asarray(current_ref, dtype=float)
        bref = np.asarray(baseline_ref, dtype=float)
        if cref.shape != cur.shape or bref.shape != base.shape:
            raise ValueError("reference samples must pair with the samples, one per round")
        with np.errstate(divide="ignore", invalid="ignore"):
            cur, base = cur / cref, base / bref
    ratio = float(np.median(cur) / np.median(base))
    rng = np.random.default_rng(seed)
    # chunked so that the k x n index arrays stay small (<= ~8 MB each)
    chunk = max(1, min(n_boot, 1_000_000 // max(cur.size, base.size)))
    ratios = []
    done = 0
    while done < n_boot:
        k = min(chunk, n_boot - done)
        mc = np.median(cur[rng.integers(0, cur.size, size=(k, cur.size))], axis=1)
        mb = np.median(base[rng.integers(0, base.size, size=(k, base.size))], axis=1)
        ratios.append(mc / mb)
        done += k
    r = np.concatenate(ratios)
    alpha = 1.0 - confidence
    lo, hi = np.quantile(r, [alpha / 2, 1 - alpha / 2])
    return ratio, float(lo), float(hi)


def decide(ratio: float, lo: float, hi: float, max_regression: float) -> tuple[str, str]:
    """Verdict and a one-line reason from the ratio's CI and the allowed slowdown."""
    limit = 1.0 + max_regression
    pct = f"{max_regression:.0%}" if max_regression >= 0.01 else f"{max_regression:.1%}"
    if lo > limit:
        return "regression", (f"slower than allowed: whole CI above {limit:.3g} "
                              f"(max_regression {pct})")
    if hi < 1.0 / limit:
        return "improved", f"faster: whole CI below {1 / limit:.3g}"
    if hi / lo > limit * limit:
        return "inconclusive", (f"too noisy to decide: CI spans x{hi / lo:.2f}, wider than the "
                                f"tolerated band {1 / limit:.3g}..{limit:.3g}")
    if hi <= limit:
        return "ok", f"within max_regression {pct}"
    return "inconclusive", f"CI straddles the limit {limit:.3g}: cannot tell if it exceeds {pct}"


def compare(current: Sequence[float], baseline: Sequence[float], max_regression: float,
            confidence: float = 0.99, seed: int = 0, n_boot: int = 2000,
            current_ref: Sequence[float] | None = None,
            baseline_ref: Sequence[float] | None = None) -> Comparison:
    """Decide on ``current`` vs ``baseline`` (normalised when both references are given)."""
    ratio, lo, hi = ratio_ci(current, baseline, confidence, n_boot=n_boot, seed=seed,
                             current_ref=current_ref, baseline_ref=baseline_ref)
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo <= 0:
        return Comparison(ratio, lo, hi, "inconclusive", "degenerate samples",
                          1 + max_regression, confidence)
    verdict, reason = decide(ratio, lo, hi, max_regression)
    return Comparison(ratio, lo, hi, verdict, reason, 1 + max_regression, confidence)


def machine_moved(shift: float, limit: float) -> bool:
    """Whether the machine's speed between the runs (``shift``: current over baseline
    median of the reference rounds) changed by more than half the tolerated band."""
    return shift > 0 and abs(math.log(shift)) > math.log(limit) / 2


def combine(raw: Comparison, norm: Comparison | None, shift: float = 1.0) -> Comparison:
    """One verdict from the absolute and the machine-normalised comparisons.

    ``shift`` is how fast the machine ran the reference rounds during this
    run relative to the baseline's (current / baseline median).

    * the machine moved (:func:`machine_moved`) and the normalised view is
      firm (not ``inconclusive``): the normalised view decides. The absolute
      view then compares two different machines: a 30 % slowdown measured
      while the machine ran 40 % faster reads as an "improvement";
    * they agree: that verdict, reported by the one closer to 1;
    * one says ``ok``: ``ok`` stands, the other's alarm is put down to drift of
      the machine (or of the reference);
    * one calls a regression (improvement) and the other is merely
      ``inconclusive`` but its own ratio is past the limit in the same
      direction: the clear one stands, so a 30 % slowdown cannot hide behind
      the other view's width;
    * anything else (they point different ways): ``inconclusive``.
    """
    if norm is None:
        return raw
    if machine_moved(shift, raw.limit) and norm.verdict != "inconclusive":
        return replace(norm, reason=f"{norm.reason}; the reference ran x{shift:.2f} the "
                       "baseline's time, so the machine-normalised view decides")
    if raw.verdict == norm.verdict:
        return min((raw, norm), key=lambda c: abs(math.log(c.ratio)) if c.ratio > 0 else math.inf)
    for c in (raw, norm):
        if c.verdict == "ok":
            return c
    for clear, noisy in ((raw, norm), (norm, raw)):
        if noisy.verdict != "inconclusive":
            continue
        if clear.verdict == "regression" and noisy.ratio > clear.limit:
            return clear
        if clear.verdict == "improved" and 0 < noisy.ratio < 1 / clear.limit:
            return clear
    return Comparison(raw.ratio, raw.ci_low, raw.ci_high, "inconclusive",
                      f"absolute ({raw.verdict}) and machine-normalised ({norm.verdict}) "
                      "comparisons disagree", raw.limit, raw.confidence)


def reference_shift(current_ref: Sequence[float], baseline_ref: Sequence[float]) -> float:
    """Median reference round of this run over the baseline's (> 1: machine slower now)."""
    import numpy as np

    b = float(np.median(np.asarray(baseline_ref, dtype=float)))
    return float(np.median(np.asarray(current_ref, dtype=float))) / b if b > 0 else math.nan


def judge(current: Sequence[float], baseline: Sequence[float], max_regression: float,
          confidence: float = 0.99, seed: int = 0, current_ref: Sequence[float] | None = None,
          baseline_ref: Sequence[float] | None = None
          ) -> tuple[Comparison, Comparison, Comparison | None]:
    """The gate's decision: ``(verdict, absolute view, normalised view or None)``.

    The normalised view exists when both runs carry reference rounds (one per
    round); :func:`combine` merges the views.
    """
    raw = compare(current, baseline, max_regression, confidence, seed)
    if current_ref is None or baseline_ref is None or not len(current_ref) or not len(baseline_ref):
        return raw, raw, None
    norm = compare(current, baseline, max_regression, confidence, seed,
                   current_ref=current_ref, baseline_ref=baseline_ref)
    return combine(raw, norm, reference_shift(current_ref, baseline_ref)), raw, norm
