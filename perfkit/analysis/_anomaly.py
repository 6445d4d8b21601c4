"""Online anomaly detection: which metric is behaving unlike its own past, and how.

Every series (metric, host, labels) gets an :class:`AnomalyState` that sees its
samples one at a time and runs a few small methods (see
``perfkit.analysis._anomaly_methods``), each a plain statistic with an
empirical tail probability under the series' own history:

* **spike**: a value beyond the range of all earlier values;
* **level**: the short-term mean beyond every level held before;
* **variance**: the short-term variance far from the long-term one;
* **flat line**: a run of identical values much longer than any before;
* **pattern**: a short sequence of range bands never seen before, although its
  start was common (a shape inside the usual range); two such methods, at a
  coarse and a fine band resolution.

Each pattern's weighted surprise is ``s_k = w_k * (-ln p_k)`` (the larger of
the two pattern methods' for "pattern"). The sample's surprise is the largest
plus a share of the others, ``q = max_k s_k + w_others * (sum_k s_k - max_k s_k)``:
two patterns breaking at once (a jump that is also a new shape) is stronger
evidence than one, but not independent evidence. An event is reported once per
pattern: a method's surprise counts only when it exceeds that method's
*residual* surprise of earlier reports, which decays by ``decay`` nats per
sample, so a level shift scores on the sample where it happens and not on
every later one, while a different pattern (a flat line after a spike) is
still reported.

**Notability discount.** Some series surprise their methods often (bursty
byte counts set new records every few hours), and a surprise that is rare
for one sample is routine for them. So ``q`` is lowered by
``D = mean_l ln(1 + N_l)``, where ``N_l`` counts the series' earlier samples
whose ``q`` reached the level ``l`` (``AnomalyParams.notable``, 1.8 to 4.3
nats): ``exp(-(q - D))`` is the sample's tail probability multiplied by how
many notable moments the series already had (counted with a half-life of
``notable_halflife`` samples, so a restless spell is forgotten in time). A
flat line is left out of the discount (it is values that stopped changing,
not a surprising value). The score is ``(q - D) / (q - D + 7)``: 0.5 is a
surprise 7 nats (a factor of 1,100) beyond the discount; a pure-noise series
of 5,000 samples stayed below 0.45 and an 8-sigma level shift scored above
0.5 in the tests. The reason names the pattern with the largest weighted
surprise.

Scores are causal (a score uses only samples up to it) and the batch
functions run the same online state the Monitor keeps, so they agree exactly.
``DEFAULT`` is the grid point with the best NAB score on all 17 NAB
development series; the cross-validated score, which is the honest one, is in
``benchmarks/anomalies.md`` (made by ``benchmarks/anomaly_eval.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from perfkit.analysis._anomaly_methods import Context, FlatLine, Level, Method, Spike, Variance
from perfkit.analysis._input import SamplesLike
from perfkit.analysis._parallel import check_jobs, cpu_jobs, map_chunks
from perfkit.errors import InvalidInputError

__all__ = ["DEFAULT", "AnomalyParams", "AnomalyState", "Episode", "anomalies", "anomaly_scores"]

_Q0 = 7.0
"""Surprise (nats, after the notability discount) that maps to score 0.5."""

_FLAT = FlatLine.reason
"""The one pattern the notability discount leaves alone: it counts how often a series' values
surprise, and a flat line is values that stopped changing."""

_MEMORY_CAP = 50.0
"""The residual surprise starts at most here (nats), so even an extreme event suppresses
later reports for at most ``cap / decay`` samples instead of for days."""


@dataclass(frozen=True)
class AnomalyParams:
    """The detector's constants; ``w_level``, ``w_pattern``, ``w_others`` and ``decay`` were
    searched on NAB, ``halflife``, ``w_variance`` and ``w_flat`` in an earlier search, the
    others set by hand (``benchmarks/anomalies.md`` says how)."""

    w_level: float = 0.8
    """Weight of the level method's surprise (the spike method has weight 1)."""
    w_variance: float = 0.3
    """Weight of the variance method's surprise."""
    w_flat: float = 0.5
    """Weight of the flat-line method's surprise."""
    w_pattern: float = 0.8
    """Weight of the pattern (context) method's surprise."""
    patterns: tuple[tuple[int, int], ...] = ((16, 2), (12, 1))
    """``(bands, order)`` of each pattern method: bands of the range it places each value in,
    earlier values in its context. Two resolutions, because which one fits depends on the
    series (a coarse one is not fooled by noise crossing band edges, a fine one sees smaller
    shapes); each has its own tail and report-once residual."""
    w_others: float = 0.5
    """Share of the other patterns' fresh surprises added to the largest one (0: the largest
    alone; 1: as if they were independent evidence)."""
    halflife: float = 40.0
    """Half-life (samples) of the short-term mean and variance."""
    long_halflife: float = 600.0
    """Half-life (samples) of the long-term variance."""
    decay: float = 0.5
    """Residual surprise of a reported event decays by this many nats per sample."""
    warmup: int = 100
    """Samples a series needs before it is scored."""
    notable: tuple[float, ...] = (1.8, 2.5, 3.3, 4.3)
    """Surprises (nats, before the discount) that count as a *notable moment* of a series. A
    sample's surprise is lowered by the mean over these levels of ``ln(1 + N)``, where ``N``
    counts the series' earlier samples whose surprise reached that level: a metric that often
    surprises its methods needs a larger surprise to be called anomalous. ``()`` turns the
    discount off."""
    notable_halflife: float = 50_000.0
    """Samples after which a notable moment counts half: a metric that was restless for a while
    and then calm for months needs, again, only a moderate surprise to score (on NAB, whose
    series have at most 22,695 samples, this is almost a lifetime count)."""
    hold: int = 10
    """An anomaly episode ends after this many samples in a row score below its ``min_score``
    (a product setting for "unusual now" and the stored events; it does not change scores)."""

    def __post_init__(self) -> None:
        bad = [v for v in self.notable
               if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v < math.inf]
        if bad:
            raise InvalidInputError(f"notable levels must be positive finite surprises in nats, "
                                    f"got {bad!r} in {self.notable!r}; () turns the discount off")
        h = self.notable_halflife
        if isinstance(h, bool) or not isinstance(h, (int, float)) or not h > 0:
            raise InvalidInputError(f"notable_halflife must be a positive number of samples "
                                    f"(math.inf: never forget), got {h!r}")

    def methods(self) -> list[tuple[Method, float]]:
        """Fresh method objects with their weights."""
        return [(Spike(), 1.0), (Level(self.halflife), self.w_level),
                (Variance(self.halflife, self.long_halflife), self.w_variance),
                (FlatLine(), self.w_flat),
                *((Context(bands, order), self.w_pattern) for bands, order in self.patterns)]


DEFAULT = AnomalyParams()


def score_of(q: float) -> float:
    """Score in [0, 1) of a surprise ``q`` in nats."""
    return q / (q + _Q0) if q > 0 else 0.0


AGE_EVERY = 1024
"""Samples between two agings of the notability counts (one multiplication per block, so the
per-sample path stays a comparison)."""


class Notability:
    """How often a series had notable moments: the discount (nats) on its next surprise.

    ``discount`` is the mean over the levels (nats) of ``ln(1 + N)``, ``N`` the samples so far
    whose undiscounted surprise reached that level, each weighted by ``0.5 ** (age /
    halflife)``; :meth:`add` counts one sample, :meth:`age` ages the counts by ``AGE_EVERY``
    samples. O(1).
    """

    __slots__ = ("_keep", "_lowest", "counts", "discount", "levels")

    def __init__(self, levels: tuple[float, ...], halflife: float = math.inf) -> None:
        self.levels = sorted(levels)  # ascending: add() stops at the first level not reached
        # most samples reach no level: score() checks this before it calls add()
        self._lowest = self.levels[0] if self.levels else math.inf
        self.counts = [0.0] * len(self.levels)
        self.discount = 0.0
        self._keep = 0.5 ** (AGE_EVERY / halflife)

    def age(self) -> None:
        """``AGE_EVERY`` samples have passed: older notable moments count for less."""
        if self._keep < 1.0 and self.discount:
            self.counts = [c * self._keep for c in self.counts]
            self._update()

    def _update(self) -> None:
        self.discount = sum(math.log1p(c) for c in self.counts) / len(self.counts)

    def add(self, q: float) -> None:
        """Count a sample whose undiscounted surprise is ``q``."""
        if q < self._lowest:
            return
        counts = self.counts
        for k, level in enumerate(self.levels):
            if q < level:
                break
            counts[k] += 1.0
        self._update()

    def score(self, q: float, flat: float) -> tuple[float, bool]:
        """Score of a sample with fused surprise ``q`` (> 0) of which ``flat`` is the flat
        line's, and whether the flat line is what scored; then the sample is counted. The
        flat line is not discounted (see ``_FLAT``)."""
        discounted = q - self.discount
        if q >= self._lowest:
            self.add(q)
        if flat > 0 and flat >= discounted:
            return score_of(flat), True
        return score_of(discounted), False


class Episode:
    """An anomaly episode of one series: it opens at a sample scoring at least ``min_score``
    and closes after ``hold`` scored samples in a row score below it.

    :attr:`since` (None when closed), :attr:`peak_score` and :attr:`peak_reason`
    describe the current one. Several may follow one :class:`AnomalyState`
    (:meth:`AnomalyState.follow`), e.g. one per alert rule's ``min_score``.
    """

    __slots__ = ("hold", "min_score", "peak_reason", "peak_score", "quiet", "since")

    def __init__(self, min_score: float, hold: int) -> None:
        if not 0 < min_score < 1:
            raise InvalidInputError(
                f"min_score must be between 0 and 1 (exclusive), got {min_score!r}")
        self.min_score = min_score
        self.hold = hold
        self.since: int | None = None
        self.peak_score = 0.0
        self.peak_reason = ""
        self.quiet = 0

    def step(self, ts_ns: int, score: float, reason: str) -> None:
        """Account for one scored sample."""
        loud = score > 0 and score >= self.min_score
        if self.since is None:
            if loud:
                self.since, self.peak_score, self.peak_reason = ts_ns, score, reason
                self.quiet = 0
        elif loud:
            self.quiet = 0
            if score > self.peak_score:
                self.peak_score, self.peak_reason = score, reason
        else:
            self.quiet += 1
            if self.quiet >= self.hold:
                self.since = None


class AnomalyState:
    """Online anomaly state of one series: O(1) time and memory per new sample.

    ``step(ts_ns, value)`` returns ``(score, reason)`` for that sample. Its
    :attr:`episode` (an :class:`Episode` at ``min_score``) tells whether the
    series is anomalous now; :attr:`since`, :attr:`peak_score` and
    :attr:`peak_reason` are the episode's; :attr:`notability` holds the series'
    notable-moment counts and the discount on its next surprise.
    """

    __slots__ = ("_decay", "_flat", "_kinds", "_others", "_steps", "_warmup", "episode",
                 "followers", "last_ts", "methods", "n", "notability", "params", "residual")

    def __init__(self, params: AnomalyParams = DEFAULT, *, min_score: float = 0.5) -> None:
        self.episode = Episode(min_score, params.hold)
        self.followers: tuple[Episode, ...] = (self.episode,)
        self.params = params
        self.methods = [(m, w) for m, w in params.methods() if w > 0]
        self.n = 0
        self.residual: list[float] = [0.0] * len(self.methods)
        self.notability = Notability(params.notable, params.notable_halflife)
        self.last_ts: int | None = None
        # bound once: step is the per-sample hot path (about a third of its cost was lookups)
        kinds = list(dict.fromkeys(m.reason for m, _ in self.methods))
        self._kinds = tuple(kinds)
        self._flat = kinds.index(_FLAT) if _FLAT in kinds else None
        self._steps = tuple((k, m.step, w, kinds.index(m.reason))
                            for k, (m, w) in enumerate(self.methods))
        self._warmup = params.warmup
        self._decay = params.decay
        self._others = params.w_others

    @property
    def since(self) -> int | None:
        """Start (ns) of the open episode, None when the series is not anomalous now."""
        return self.episode.since

    @property
    def peak_score(self) -> float:
        """Highest score of the current (or last) episode."""
        return self.episode.peak_score

    @property
    def peak_reason(self) -> str:
        """The pattern behind :attr:`peak_score`."""
        return self.episode.peak_reason

    def follow(self, min_score: float) -> Episode:
        """A further episode tracker at ``min_score``, stepped with every scored sample."""
        ep = Episode(min_score, self.params.hold)
        self.followers = (*self.followers, ep)
        return ep

    def unfollow(self, ep: Episode) -> None:
        """Stop stepping a tracker made by :meth:`follow` (e.g. its rule was removed)."""
        self.followers = tuple(e for e in self.followers if e is not ep or e is self.episode)

    def step(self, ts_ns: int, value: float) -> tuple[float, str]:
        """Score one sample (timestamp in ns since the epoch) and absorb it."""
        if not math.isfinite(value):
            return 0.0, "missing value (not finite)"
        if self.last_ts is not None and ts_ns < self.last_ts:
            return 0.0, "out of order: ignored"
        self.last_ts = ts_ns
        self.n = n = self.n + 1
        if not n % AGE_EVERY:
            self.notability.age()
        if n <= self._warmup:
            for _, method_step, _, _ in self._steps:
                method_step(value)
            return 0.0, f"warming up: {n} of {self._warmup} samples"
        kinds = self._kinds
        top = [0.0] * len(kinds)  # largest fresh weighted surprise of each pattern
        res, decay = self.residual, self._decay
        for k, method_step, w, g in self._steps:
            q = w * method_step(value)
            r = res[k]
            if q > 0 and q > r - decay:  # fresh: more surprising than what this method reported
                res[k] = q if q < _MEMORY_CAP else _MEMORY_CAP
                if q > top[g]:
                    top[g] = q
            elif r:
                r -= decay
                res[k] = r if r > 0 else 0.0
        best = max(top)
        score, reason = 0.0, ""
        if best > 0:
            flat = top[self._flat] if self._flat is not None else 0.0
            score, flat_won = self.notability.score(best + self._others * (sum(top) - best),
                                                    flat)
            if score > 0:
                reason = _FLAT if flat_won else kinds[top.index(best)]
        for ep in self.followers:
            ep.step(ts_ns, score, reason)
        return score, reason


_KEYS = ("host", "metric", "labels")


def _as_frame(data: SamplesLike) -> pd.DataFrame:
    if isinstance(data, pd.Series):
        if not isinstance(data.index, pd.DatetimeIndex):
            raise TypeError("a Series passed to perfkit.anomaly_scores needs a DatetimeIndex")
        return pd.DataFrame({"ts": data.index, "host": "", "metric": str(data.name or "value"),
                             "value": pd.to_numeric(data, errors="coerce").to_numpy(float),
                             "labels": ""})
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"expected a samples DataFrame or a Series, got {type(data).__name__}")
    missing = [c for c in ("ts", "metric", "value") if c not in data.columns]
    if missing:
        raise InvalidInputError(f"the samples frame lacks column(s) {missing}; it needs ts, "
                                "metric, value (host and labels default to '')")
    out = data.copy()
    for c in ("host", "labels"):
        if c not in out.columns:
            out[c] = ""
    return out


def _utc_ns(ts: pd.Series) -> np.ndarray:
    t = pd.to_datetime(ts, utc=True, errors="raise")
    return t.to_numpy("datetime64[ns]").astype(np.int64)


def _series_rows(frame: pd.DataFrame) -> list[np.ndarray]:
    """Row positions of each series, time-ordered (stable for equal stamps), in first-seen order."""
    codes = frame.groupby(list(_KEYS), sort=False, dropna=False).ngroup().to_numpy()
    order = np.argsort(codes, kind="stable")
    bounds = np.flatnonzero(np.diff(codes[order])) + 1
    return np.split(order, bounds) if len(order) else []


_PARALLEL_FROM = 500_000
"""Samples from which ``jobs=None`` uses every core. Below this (about 3 s of work on one
core) two workers did not pay on the shared 2-core machine: 300 series x 1,440 took 3.2 s of
CPU either way, and 9.3 s wall in one process against 13.0 s in two forked ones at load 18."""


def _jobs(jobs: int | None, n_samples: int) -> int:
    n = check_jobs(jobs, "every core for a large frame")
    if n is None:
        return cpu_jobs() if n_samples >= _PARALLEL_FROM else 1
    return n


_Summary = tuple[int | None, float, str]
"""An episode's since, peak score and peak reason, as a worker sends it back."""


def _score_chunk(series: list[tuple[np.ndarray, np.ndarray]], params: AnomalyParams,
                 min_score: float | None) -> list[tuple[np.ndarray, list[str], _Summary]]:
    """Scores, reasons and last episode of each (time-ordered ts_ns, values) series; with
    ``min_score`` None no episode is tracked (the summary is empty), which the scores alone
    do not need."""
    out = []
    for ts, values in series:
        state = AnomalyState(params, min_score=min_score or 0.5)
        if min_score is None:
            state.followers = ()
        step = state.step
        sc: list[float] = []
        rs: list[str] = []
        add_score, add_reason = sc.append, rs.append
        for t, v in zip(ts.tolist(), values.tolist()):
            score, reason = step(t, v)
            add_score(score)
            add_reason(reason)
        out.append((np.array(sc), rs, (state.since, state.peak_score, state.peak_reason)))
    return out


def _run(frame: pd.DataFrame, params: AnomalyParams, min_score: float | None, jobs: int | None
         ) -> tuple[np.ndarray, np.ndarray, list[tuple[int, _Summary]]]:
    ts = _utc_ns(frame["ts"])
    values = pd.to_numeric(frame["value"], errors="coerce").to_numpy(float)
    scores = np.zeros(len(frame))
    reasons = np.empty(len(frame), dtype=object)
    groups = [rows[np.argsort(ts[rows], kind="stable")] for rows in _series_rows(frame)]
    items = [(ts[rows], values[rows]) for rows in groups]
    n_jobs = _jobs(jobs, len(frame))
    if n_jobs > 1 and len(items) >= 4 * n_jobs:
        done = map_chunks(_score_chunk, items, n_jobs, params, min_score)
    else:
        done = _score_chunk(items, params, min_score)
    episodes = []
    for rows, (sc, rs, episode) in zip(groups, done):
        scores[rows] = sc
        reasons[rows] = rs
        episodes.append((int(rows[0]), episode))
    return scores, reasons, episodes


def anomaly_scores(frame: SamplesLike, params: AnomalyParams = DEFAULT, *,
                   jobs: int | None = None) -> pd.DataFrame:
    """Per-sample anomaly score in [0, 1] and the pattern that broke, computed online.

    ``frame`` is a samples frame (ts, host, metric, value, labels; host and
    labels may be absent) or a Series with a DatetimeIndex. Returns the same
    rows, in the same order, with columns ts, host, metric, labels, value,
    ``score`` and ``reason`` ('spike', 'level', 'variance', 'flat line', 'pattern';
    '' when normal; 'warming up: 12 of 100 samples' and 'missing value (not
    finite)' for samples that cannot be scored yet or at all, which score 0).
    A score uses only the samples of its series up to it.

    ``jobs`` worker processes score the series (each series stays in one, so
    the scores are exactly the online ones whatever ``jobs`` is); ``None``, the
    default, uses every core for a frame of 500,000 samples or more and one
    process below that. A process with running threads (a Monitor, a web
    server) starts its workers from a fork server, and they import the main
    module, so such a script must score under ``if __name__ == "__main__":``
    (or pass ``jobs=1``); a single-threaded one forks them.
    """
    f = _as_frame(frame)
    scores, reasons, _ = _run(f, params, None, jobs)
    out = f[["ts", "host", "metric", "labels", "value"]].reset_index(drop=True)
    out["score"] = scores
    out["reason"] = pd.Series(reasons, dtype=object).fillna("").astype(str)
    return out


def anomalies(frame: SamplesLike, *, min_score: float = 0.5,
              params: AnomalyParams = DEFAULT, jobs: int | None = None) -> pd.DataFrame:
    """What is anomalous now: one row per series whose latest anomaly episode is still open.

    Columns: metric, host, labels, ``since`` (UTC timestamp of the sample that
    started the episode), ``score`` (its peak score) and ``pattern`` (the
    reason of that peak), highest score first. An episode opens at a sample
    scoring ``>= min_score`` and closes after ``params.hold`` samples in a row
    score below it. ``jobs`` is as for :func:`anomaly_scores`.
    """
    f = _as_frame(frame)
    _, _, episodes = _run(f, params, min_score, jobs)
    rows = []
    for first, (since, peak_score, peak_reason) in episodes:
        if since is not None:
            rows.append({"metric": str(f["metric"].iloc[first]), "host": str(f["host"].iloc[first]),
                         "labels": str(f["labels"].iloc[first]),
                         "since": pd.Timestamp(since, tz="UTC"),
                         "score": peak_score, "pattern": peak_reason})
    cols = ["metric", "host", "labels", "since", "score", "pattern"]
    out = pd.DataFrame(rows, columns=cols)
    if len(out):
        out = out.sort_values(["score", "metric"], ascending=[False, True], kind="stable")
    else:
        out["since"] = pd.Series([], dtype="datetime64[ns, UTC]")
        out["score"] = pd.Series([], dtype=float)
    return out.reset_index(drop=True)
