"""Level-shift detection: where did the series last change its baseline?

A forecast should not extrapolate across a disk cleanup or a deploy that moved
the baseline: :func:`last_shift` finds the last change in mean with
``ruptures`` (``KernelCPD`` with a linear kernel, i.e. the least-squares
"l2" cost solved exactly by PELT in C) and the forecast fits only the segment
after it.

Least-squares segmentation alone would also cut a steady ramp (a filling disk)
into steps, so every candidate change point must also be a *discontinuity*:
straight lines fitted to the segments on either side must disagree at the break
by more than ``jump`` (default 3) pooled residual standard deviations.
Candidates failing that are merged, walking back from the most recent.

The data are first scaled by a robust noise estimate — the median absolute
one-step difference (``1.4826 * MAD(diff) / sqrt(2)``) — so the penalty is in
units of noise variance: ``penalty * log(n)`` with ``penalty = 3`` by default
(a BIC-like penalty, a little stricter than BIC's 2 for the extra tolerance
autocorrelated metrics need). A segment has at least ``min_size`` points
(default ``max(5, n // 20)``), so a burst shorter than that at the very end of
the window is not a "shift" (the robust and smoothing methods absorb it).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["change_points", "last_shift", "noise_scale"]


def noise_scale(y: np.ndarray) -> float:
    """Robust noise standard deviation from one-step differences (0 for a constant series)."""
    d = np.diff(np.asarray(y, float))
    if d.size == 0:
        return 0.0
    mad = np.median(np.abs(d - np.median(d)))
    s = 1.4826 * mad / np.sqrt(2)
    if s == 0:  # mostly repeated values (quantised metrics): fall back to the mean abs diff
        s = np.mean(np.abs(d)) / np.sqrt(2)
    return float(s)


def change_points(y, *, penalty: float = 3.0, min_size: int | None = None,
                  jump: float = 3.0) -> list[int]:
    """Indices where a new segment starts (empty when no shift was found).

    ``y`` is an array or a Series. Needs 2 * ``min_size`` points to find anything.
    """
    import ruptures as rpt

    v = np.asarray(y.to_numpy() if isinstance(y, pd.Series) else y, dtype=float)
    v = v[np.isfinite(v)]
    n = len(v)
    ms = max(5, n // 20) if min_size is None else int(min_size)
    if n < 2 * ms:
        return []
    s = noise_scale(v)
    if s == 0:
        return []
    z = ((v - np.median(v)) / s).reshape(-1, 1)
    bkps = rpt.KernelCPD(kernel="linear", min_size=ms).fit(z).predict(pen=penalty * np.log(n))
    cand = [int(b) for b in bkps[:-1]]
    if not cand:
        return []
    bounds = [0] + cand + [n]
    kept: list[int] = []
    right_end = n
    for j in range(len(bounds) - 2, 0, -1):
        c = bounds[j]
        if _is_jump(v[bounds[j - 1]:c], v[c:right_end], jump):
            kept.append(c)
            right_end = c
    return sorted(kept)


def _line(y: np.ndarray, at: float) -> tuple[float, float]:
    """(value of the OLS line at index ``at``, SSE) for ``y`` against 0..len-1."""
    x = np.arange(len(y), dtype=float)
    xc = x - x.mean()
    sxx = float(xc @ xc)
    b = float(xc @ (y - y.mean())) / sxx if sxx > 0 else 0.0
    a = y.mean() - b * x.mean()
    r = y - a - b * x
    return a + b * at, float(r @ r)


def _is_jump(left: np.ndarray, right: np.ndarray, jump: float) -> bool:
    pl, sl = _line(left, len(left) - 0.5)
    pr, sr = _line(right, -0.5)
    dof = len(left) + len(right) - 4
    if dof <= 0:
        return False
    sd = np.sqrt((sl + sr) / dof)
    return abs(pr - pl) > jump * sd if sd > 0 else pr != pl


def last_shift(y, *, penalty: float = 3.0, min_size: int | None = None,
               max_points: int = 250) -> int:
    """Index of the first point after the last level shift (0 when there is none).

    Series longer than ``max_points`` are searched on block means of
    ``ceil(n / max_points)`` points, which keeps the cost flat (~0.2 ms) however
    long the history; the block boundary found is then refined to the single
    point that best splits two means within a block of it.
    """
    v = np.asarray(y.to_numpy() if isinstance(y, pd.Series) else y, dtype=float)
    n = len(v)
    if n > max_points:
        k = int(np.ceil(n / max_points))
        nb = n // k
        off = n - nb * k                      # blocks aligned to the end of the series
        blocks = v[off:].reshape(nb, k).mean(axis=1)
        cps = change_points(blocks, penalty=penalty,
                            min_size=None if min_size is None else max(2, min_size // k))
        return _refine(v, off + cps[-1] * k, k) if cps else 0
    cps = change_points(v, penalty=penalty, min_size=min_size)
    return cps[-1] if cps else 0


def _refine(v: np.ndarray, c: int, k: int) -> int:
    """The split within ``k`` of ``c`` that best separates two means (least squares)."""
    a, b = max(0, c - 4 * k), min(len(v), c + 4 * k)
    w = v[a:b]
    cs = np.cumsum(w)
    s = np.arange(max(1, c - k - a), min(len(w) - 1, c + k - a) + 1)
    if s.size == 0:
        return c
    left, right = cs[s - 1], cs[-1] - cs[s - 1]
    return int(a + s[np.argmax(left**2 / s + right**2 / (len(w) - s))])

