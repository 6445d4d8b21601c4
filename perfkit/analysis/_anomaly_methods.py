"""The anomaly detector's methods: small online objects behind one protocol.

Each method watches one pattern of a single series and answers, for every new
value, "how surprising is this, given everything before it?" as a *surprise*
``q = -ln p`` (nats), where ``p`` is the tail probability of the method's
statistic under that series' own history (:class:`_Tail`). Then it absorbs the
value. Every step is O(1): a fixed number of float updates and a fixed-size
histogram. The statistics are deliberately plain, so the pattern that broke
can be named:

* ``spike``: the value lies outside every value seen so far, measured in units
  of the range seen so far (NAB's "spatial anomaly" idea);
* ``level``: the short-term mean (an EWMA) leaves every level it held before;
* ``variance``: the short-term variance departs from the long-term one
  (absolute log ratio);
* ``flat line``: a run of identical values longer than any run before;
* ``pattern``: the last few values, each placed in one of a few bands of the
  range seen so far, form a sequence never seen before although its start was
  common (a shape inside the usual range: the contextual idea of CAD OSE).

A statistic that is 0 ("nothing new") has ``p = 1`` and costs one counter
increment, which is what keeps the common path cheap.
"""

from __future__ import annotations

import math
from typing import Protocol

_NB = 64
"""Histogram bins, log-spaced: bin ``b >= 1`` holds ``edge(b) <= d < edge(b+1)``, with
``edge(b) = (2**((b-1)/8) - 1) / 10`` (fine near 0, up to d ~ 2,000 in the last bin)."""

_REFRESH = 32
"""The exponential tail is refitted when it is asked for and this many values came since the
last fit (the histogram changes slowly; a range method asks only at a new record)."""

_TAIL_Q = 0.02
"""Above the top 2 % of the history the tail is extrapolated as an exponential
(peaks over threshold): an empirical p-value cannot go below ``1/(n+1)``, and a
value far beyond every record should be more surprising than one just beyond it."""

_MIN_HISTORY = 50
"""Fewer values than this: only the empirical p-value, no extrapolation."""

_PRIOR_N = 10
_PRIOR_SCALE = 0.1
"""The exponential's scale is shrunk towards 0.1 (a tenth of a range, for the range methods;
a method in other units gives its own) with the weight of 10 values: a range method sees few
record-breaking values (about ln n in n), and a scale fitted to two or three of them would
call anything beyond them impossible."""

BURN_IN = 30
"""Values a range method sees before its statistic enters the history: the first few values
break "records" by many ranges (the range is still tiny), which says nothing about later ones."""


def _bin(d: float) -> int:
    if d <= 0.0:
        return 0
    b = int(8.0 * math.log2(1.0 + 10.0 * d)) + 1
    return b if b < _NB else _NB - 1


def _edge(b: int) -> float:
    return (2.0 ** ((b - 1) / 8.0) - 1.0) / 10.0 if b > 0 else 0.0


class _Tail:
    """Tail probability ``P(D >= d)`` of a nonnegative statistic under its own past values."""

    __slots__ = ("_beta", "_fw", "_n", "_prior", "_pu", "_u", "counts", "n")

    def __init__(self, prior_scale: float = _PRIOR_SCALE) -> None:
        self._prior = prior_scale
        self.counts = [0] * _NB
        self.n = 0
        self._fw = [0] * _NB  # Fenwick tree of bins 1.. (O(log bins) add and prefix sum)
        self._n = 0  # values, as of the last tail refresh
        self._u = 0.0
        self._pu = 1.0
        self._beta = 1.0

    def surprise_add(self, d: float) -> float:
        """``-ln P(D >= d)`` under the values so far (0 for ``d <= 0``), then ``d`` joins them."""
        if d <= 0.0:
            self.counts[0] += 1
            self.n += 1
            return 0.0
        b = _bin(d)
        q = self._surprise(d, b)
        self.counts[b] += 1
        fw = self._fw
        while b < _NB:
            fw[b] += 1
            b += b & -b
        self.n += 1
        return q

    def _surprise(self, d: float, b: int) -> float:
        if self.n - self._n >= _REFRESH:
            self._refresh()
        n1 = self.n + 1
        ge = self._ge(b) + 1
        if self._n < _MIN_HISTORY or ge > _TAIL_Q * n1:
            return -math.log(ge / n1) if ge < n1 else 0.0
        # ln of min(empirical, exponential tail beyond u)
        log_emp = math.log(ge / n1)
        log_exp = math.log(self._pu) - (d - self._u) / self._beta
        return -min(log_emp, log_exp)

    def _ge(self, b: int) -> int:
        """Values in bins >= ``b`` (``b >= 1``)."""
        fw, below = self._fw, 0
        b -= 1
        while b > 0:
            below += fw[b]
            b -= b & -b
        return self.n - self.counts[0] - below

    def add_zero(self) -> None:
        """A value of 0 ("nothing new"), the common case, joins the history in O(1)."""
        self.counts[0] += 1
        self.n += 1

    def _refresh(self) -> None:
        c = self.counts
        ge = [0] * (_NB + 1)
        acc = 0
        for b in range(_NB - 1, -1, -1):
            acc += c[b]
            ge[b] = acc
        self._n = self.n
        # the tail starts at bin 1 at the lowest: d = 0 ("nothing new") is a point mass, and the
        # exponential describes how far beyond, given that a value is beyond at all
        bu = 1
        for b in range(_NB - 1, 0, -1):
            if ge[b] >= _TAIL_Q * self.n:
                bu = b
                break
        self._u = u = _edge(bu)
        excess = 0.0
        for b in range(bu, _NB):
            if c[b]:
                excess += c[b] * max(0.5 * (_edge(b) + _edge(b + 1)) - u, 0.0)
        self._pu = max(ge[bu], 1) / (self.n + 1)
        self._beta = (excess + _PRIOR_N * self._prior) / (ge[bu] + _PRIOR_N)


class Method(Protocol):
    """One pattern of one series, watched online.

    ``step(x)`` returns the surprise (nats, >= 0) of the finite value ``x``
    given the values before it, then absorbs ``x``. O(1) time and memory.
    """

    reason: str

    def step(self, x: float) -> float: ...


def _halflife(h: float) -> float:
    return 1.0 - 0.5 ** (1.0 / h)


def _tiny(x: float) -> float:
    # a scale floor relative to the magnitude, so a constant series has a defined statistic
    return 1e-9 * (abs(x) + 1.0)


def _beyond_range(s: Spike | Level, v: float) -> float:
    """Surprise of ``v`` lying beyond the range [lo, hi] of ``s``'s earlier values, in ranges;
    widens the range to take ``v`` in. Spike feeds it values, Level its short-term means."""
    lo, hi = s.lo, s.hi
    if lo <= v <= hi:
        if s.n > BURN_IN:
            s.tail.add_zero()
        return 0.0
    q = 0.0
    if s.n > BURN_IN:
        d = max(v - hi, lo - v) / (hi - lo + _tiny(v))
        q = s.tail.surprise_add(d)
    if v < lo:
        s.lo = v
    else:
        s.hi = v
    return q


class Spike:
    """Distance of the value beyond the range of all earlier values, in ranges."""

    reason = "spike"
    __slots__ = ("hi", "lo", "n", "tail")

    def __init__(self) -> None:
        self.lo = math.inf
        self.hi = -math.inf
        self.n = 0
        self.tail = _Tail()

    def step(self, x: float) -> float:
        self.n += 1
        if self.hi < self.lo:  # first value
            self.lo = self.hi = x
            return 0.0
        return _beyond_range(self, x)


class Level:
    """Distance of the short-term mean beyond every short-term mean before it."""

    reason = "level"
    __slots__ = ("a", "hi", "lo", "m", "n", "tail")

    def __init__(self, halflife: float) -> None:
        self.a = _halflife(halflife)
        self.m = math.nan
        self.lo = math.inf
        self.hi = -math.inf
        self.n = 0
        self.tail = _Tail()

    def step(self, x: float) -> float:
        self.n += 1
        if self.m != self.m:  # first value
            self.m = self.lo = self.hi = x
            return 0.0
        m = self.m = self.m + self.a * (x - self.m)
        return _beyond_range(self, m)


class Variance:
    """``|ln(short-term variance / long-term variance)|`` against its own history."""

    reason = "variance"
    __slots__ = ("a", "al", "ml", "ms", "tail", "vl", "vs")

    def __init__(self, halflife: float, long_halflife: float) -> None:
        self.a = _halflife(halflife)
        self.al = _halflife(long_halflife)
        self.ms = self.ml = math.nan
        self.vs = self.vl = 0.0
        self.tail = _Tail()

    def step(self, x: float) -> float:
        if self.ms != self.ms:
            self.ms = self.ml = x
            return 0.0
        a, al, ms, ml, vl = self.a, self.al, self.ms, self.ml, self.vl
        e = x - ms
        self.ms = ms + a * e
        self.vs = vs = self.vs + a * (e * e - self.vs)
        el = x - ml
        floor = 1e-12 * (1.0 + ml * ml)
        d = abs(math.log((vs + floor) / (vl + floor)))
        self.ml = ml + al * el
        self.vl = vl + al * (el * el - vl)
        return self.tail.surprise_add(d)


class FlatLine:
    """A run of identical values longer than any earlier run, once per run.

    The surprise is the fraction of earlier runs at least this long (``p``),
    so a metric that often sits still (a quantised CPU at 0 %) is not flagged
    and one that never did is.
    """

    reason = "flat line"
    __slots__ = ("flagged", "longest", "prev", "run", "runs")

    def __init__(self) -> None:
        self.prev = math.nan
        self.run = 0
        self.longest = 0
        self.runs = 0
        self.flagged = False

    def step(self, x: float) -> float:
        if x == self.prev:
            self.run += 1
            if self.run > 2 * self.longest + 2 and not self.flagged:
                self.flagged = True
                return math.log(self.runs + 1.0)
            return 0.0
        self.longest = max(self.longest, self.run)
        self.runs += 1
        self.run = 0
        self.flagged = False
        self.prev = x
        return 0.0


class Context:
    """A short sequence of range bands never seen before, scored by how common its prefix was.

    Each value is placed in one of ``bands`` equal bands of the range seen so
    far; the context is the bands of the last ``order`` values. When the
    current band has never followed that context, the statistic is
    ``-ln P(band | context)`` (smoothed counts: high when the context is
    common and always led elsewhere), and its surprise is its tail
    probability under the series' own history; a sequence seen before counts
    as 0 ("nothing new"), as for the range methods. The count table holds at
    most ``bands ** (order + 1)`` sequences, so memory is bounded.
    """

    reason = "pattern"
    __slots__ = ("_keys", "bands", "counts", "hi", "lo", "n", "order", "prefix", "recent", "tail")

    _SMOOTH = 0.1
    """Pseudo-count of every band after a context (an unseen sequence has a finite statistic)."""
    _WARM = 100
    """Values before the statistic is scored or enters its history (the first sequences are
    all new, which says nothing about later ones)."""
    _PRIOR_SCALE = 1.0
    """The tail's prior scale, in nats of the statistic: each further nat of unlikeliness
    beyond the recorded ones makes a value about e times rarer."""

    def __init__(self, bands: int, order: int) -> None:
        self.bands = bands
        self.order = order
        self.lo = math.inf
        self.hi = -math.inf
        self.n = 0
        # a sequence of bands is the integer with those base-``bands`` digits (no tuple per value)
        self._keys = bands ** order
        self.recent = 0
        self.counts: dict[int, int] = {}
        self.prefix: dict[int, int] = {}
        self.tail = _Tail(self._PRIOR_SCALE)

    def step(self, x: float) -> float:
        self.n = n = self.n + 1
        lo, hi = self.lo, self.hi
        if x < lo:
            self.lo = lo = x
        if x > hi:
            self.hi = hi = x
        span = hi - lo
        bands = self.bands
        band = min(int((x - lo) / span * bands), bands - 1) if span > 0 else 0
        context = self.recent
        key = context * bands + band
        self.recent = key % self._keys
        if n <= self.order:
            return 0.0
        counts, prefix = self.counts, self.prefix
        c = counts.get(key, 0)
        cp = prefix.get(context, 0)
        counts[key] = c + 1
        prefix[context] = cp + 1
        if n <= self._WARM:
            return 0.0
        if c:
            self.tail.add_zero()
            return 0.0
        d = -math.log(self._SMOOTH / (cp + self._SMOOTH * bands))
        return self.tail.surprise_add(d)
