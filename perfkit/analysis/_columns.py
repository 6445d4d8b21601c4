"""Reading a samples frame's columns as integer codes and plain arrays, fast.

A frame of 23 metrics x 10,000 points has 230,000 rows; hashing its string
columns row by row costs ~3 ms (Arrow strings) to ~15 ms (Python strings in an
object column, pandas 2's default), one ``isna`` pass over an object column
~8 ms, and every full-length temporary another ~0.3 ms (mostly page faults),
against a ~1 ms numpy core. So the string columns are factorised once, and as
*runs* where the frame stores them in runs (a frame concatenated per metric; an
all-empty ``labels`` column), missing names are found from the codes rather
than by another pass, timestamps are read in their own unit without a copy, and
no row mask is built when every row is usable.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["Coded", "FrameColumns", "factorize", "frame_columns"]

_RUN_PROBE = 4096
"""Rows probed for runs before factorising a string column run by run."""

_NAT = np.iinfo(np.int64).min


@dataclass
class Coded:
    """A factorised column: ``uniques`` in first-seen order and each row's code.

    Run-encoded when ``starts`` is set: rows ``starts[i]`` up to the next start
    all have code ``run_codes[i]``; otherwise ``run_codes`` holds one code per row.
    """

    uniques: np.ndarray      # object array of str
    run_codes: np.ndarray    # -1 for a missing value, as pandas.factorize
    starts: np.ndarray | None
    n: int

    def missing(self) -> bool:
        """Whether some row has no value (code -1)."""
        return bool(len(self.run_codes)) and int(self.run_codes.min()) < 0

    def codes(self) -> np.ndarray:
        """One code per row."""
        if self.starts is None:
            return self.run_codes
        return np.repeat(self.run_codes, np.diff(np.r_[self.starts, self.n]))


@dataclass
class FrameColumns:
    """The columns :func:`perfkit.analysis._input.split_series` needs."""

    metric: Coded
    labels: Coded
    ts: np.ndarray           # int64 in units of ``1 / scale`` ns (datetime64[us] -> scale 1000)
    scale: int
    values: np.ndarray       # float64
    ok: np.ndarray | None    # rows to keep (finite value, a time, a metric); None = all

    def ts_ns(self, ts: np.ndarray) -> np.ndarray:
        """``ts`` (a slice or gather of :attr:`ts`) in ns."""
        return ts * self.scale if self.scale != 1 else ts


def frame_columns(frame: pd.DataFrame) -> FrameColumns:
    """Codes and arrays of a frame with at least ``ts``, ``metric`` and ``value`` columns."""
    ts = frame["ts"]
    if not isinstance(ts.dtype, pd.DatetimeTZDtype):
        ts = pd.to_datetime(ts, utc=True)
    t, scale = _epoch(pd.DatetimeIndex(ts))
    val = frame["value"]
    v = (val.to_numpy() if val.dtype == np.float64 else
         pd.to_numeric(val, errors="coerce").to_numpy(dtype=float, na_value=np.nan))
    m = factorize(frame["metric"])
    unnamed = m.missing()
    ok = None
    # the sum is finite only if every value is (a finite overflow just takes the exact path)
    if not np.isfinite(v.sum()) or (len(t) and t.min() == _NAT) or unnamed:
        ok = np.isfinite(v) & (t != _NAT)
        if unnamed:                        # a row without a metric name cannot be analysed
            ok &= m.codes() >= 0
        if ok.all():
            ok = None
    lab = frame["labels"] if "labels" in frame.columns else None
    return FrameColumns(m, label_codes(lab, len(v)), _read_only(t), scale, _read_only(v), ok)


def _read_only(a: np.ndarray) -> np.ndarray:
    """A read-only view: series may be slices of the caller's frame, never written through."""
    a = a.view()
    a.flags.writeable = False
    return a


def _epoch(idx: pd.DatetimeIndex) -> tuple[np.ndarray, int]:
    """Epoch integers in the index's own unit (no copy) and the factor to ns."""
    scale = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}[idx.unit]
    t = idx.asi8
    if scale != 1 and len(t):
        bound = np.iinfo(np.int64).max // scale
        lo, hi = int(t.min()), int(t.max())
        if hi > bound or lo < -bound:      # NaT, or outside the ns range: pandas converts
            return idx.as_unit("ns").asi8, 1   # (and raises its own error when out of range)
    return t, scale


def factorize(col: pd.Series) -> Coded:
    """First-seen codes of a column, like :func:`pandas.factorize` (missing: -1).

    Two common layouts skip hashing every row: a categorical column (its codes
    are already integers) and a string column (Arrow or Python strings) stored
    in long runs of one value, which is factorised one run at a time.
    """
    n = len(col)
    if isinstance(col.dtype, pd.CategoricalDtype):
        codes = col.cat.codes.to_numpy()
        cats = col.cat.categories
        if cats.inferred_type == "string" and not (codes < 0).any():
            return _first_seen(codes, np.asarray(cats, dtype=object))
    elif n > 1 and (_is_arrow_string(col) or col.dtype == object):
        runs = _arrow_runs(col) if col.dtype != object else _object_runs(col.to_numpy())
        if runs is not None:
            starts, run_values = runs
            rc, run_uniques = pd.factorize(run_values, sort=False)
            return Coded(np.asarray(run_uniques, dtype=object), rc, starts, n)
    codes, uniques = pd.factorize(col, sort=False)
    return Coded(np.asarray(uniques, dtype=object), codes, None, n)


def label_codes(lab: pd.Series | None, n: int) -> Coded:
    """Codes of an ``n``-row labels column (missing -> ``''``); one run when all are ``''``."""
    if lab is None or _all_empty(lab):
        return Coded(np.array([""], dtype=object), np.zeros(1, dtype=np.intp),
                     np.zeros(1, dtype=np.intp), n)
    if lab.hasnans:
        lab = (lab.astype(object) if isinstance(lab.dtype, pd.CategoricalDtype) else lab).fillna("")
    if not (_is_arrow_string(lab) or isinstance(lab.dtype, pd.CategoricalDtype)):
        lab = lab.astype(str)
    return factorize(lab)


def _first_seen(codes: np.ndarray, names: np.ndarray) -> Coded:
    """Renumber integer ``codes`` into ``names`` by first appearance."""
    starts = np.r_[0, np.flatnonzero(codes[1:] != codes[:-1]) + 1]
    seen = pd.unique(codes[starts])
    lookup = np.zeros(len(names), dtype=np.intp)
    lookup[seen] = np.arange(len(seen))
    return Coded(names[seen], lookup[codes], None, len(codes))


def _is_arrow_string(col: pd.Series) -> bool:
    d = col.dtype
    return (isinstance(d, pd.StringDtype) and d.storage == "pyarrow") or (
        isinstance(d, pd.ArrowDtype) and str(d.pyarrow_dtype) in ("string", "large_string"))


def _arrow_runs(col: pd.Series) -> tuple[np.ndarray, np.ndarray] | None:
    """``(run starts, run values)`` of an Arrow string column without nulls, or None
    when its values are not stored in long runs (then hashing every row is cheaper:
    a run costs one Python-level value read, ~50x a row's hash)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    a = pa.array(col.array)
    if isinstance(a, pa.Array):
        a = pa.chunked_array([a])
    if a.null_count:
        return None
    n = len(a)

    def changes(k: int) -> np.ndarray:
        neq = pc.not_equal(a.slice(1, k - 1), a.slice(0, k - 1))
        return pc.indices_nonzero(neq).to_numpy().astype(np.intp) + 1

    starts = _run_starts(changes, n)
    if starts is None:
        return None
    return starts, np.array([a[int(i)].as_py() for i in starts], dtype=object)


def _object_runs(a: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """``(run starts, run values)`` of an object column, or None when its values are not
    stored in long runs. A missing value is a run value like any other
    (pandas.factorize gives it -1).

    Rows built from one scalar hold the same object. So the object pointers are
    compared first (~0.3 ns a row), and values only where the pointer changes;
    where it changes on most rows (a store's rows: one object each) every value is
    compared, which numpy does at ~7 ns a row against ~65 ns to hash it.
    """
    ptr = _pointers(a)

    def changes(k: int) -> np.ndarray:
        if ptr is not None:
            cand = np.flatnonzero(ptr[1:k] != ptr[:k - 1]) + 1
            if len(cand) <= max(16, k // 64):
                return cand[a[cand] != a[cand - 1]]
        return np.flatnonzero(a[1:k] != a[:k - 1]) + 1

    starts = _run_starts(changes, len(a))
    return None if starts is None else (starts, a[starts])


def _pointers(a: np.ndarray) -> np.ndarray | None:
    """The object pointers a contiguous object array holds, as integers (a read-only
    view of its buffer, valid while ``a`` lives), or None for a strided array."""
    if a.dtype != object or not a.flags.c_contiguous or not len(a):
        return None
    buf = (ctypes.c_size_t * len(a)).from_address(a.ctypes.data)
    out = np.ctypeslib.as_array(buf)
    out.flags.writeable = False
    return out


def _run_starts(changes: Callable[[int], np.ndarray], n: int) -> np.ndarray | None:
    """Where runs start, from ``changes(k)`` (positions among the first ``k`` rows whose
    value differs from the row before), or None for a column not stored in long runs:
    the first rows are probed before the whole column is compared."""
    k = min(n, _RUN_PROBE)
    if len(changes(k)) > max(16, k // 64):
        return None
    starts = np.r_[0, changes(n)]
    return starts if len(starts) <= max(16, n // 64) else None


def _all_empty(lab: pd.Series) -> bool:
    if _is_arrow_string(lab):
        import pyarrow as pa

        a = pa.array(lab.array)
        chunks = a.chunks if isinstance(a, pa.ChunkedArray) else [a]
        return a.null_count == 0 and all(_char_bytes(c) == 0 for c in chunks)
    if lab.dtype == object and len(lab) > 1:
        runs = _object_runs(lab.to_numpy())
        if runs is not None:
            return all(isinstance(x, str) and not x for x in runs[1])
    return not lab.hasnans and not lab.astype(bool).any()


def _char_bytes(c: Any) -> int:  # a pyarrow (large) string array
    """Bytes of character data in an Arrow (large) string array, read off its offsets."""
    import pyarrow as pa

    if len(c) == 0:
        return 0
    wide = pa.types.is_large_string(c.type)
    off = np.frombuffer(c.buffers()[1], dtype=np.int64 if wide else np.int32)
    return int(off[c.offset + len(c)] - off[c.offset])
