"""Checking incoming samples: keep the good rows, name every problem with the bad ones.

:func:`prepare` turns a written frame into a :class:`Batch` (numpy arrays plus
the distinct series keys), which is what the buffer holds and the writer
inserts. Each string column is factorised once and that serves both the
checks and the series keys.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from perfkit.errors import InvalidInputError
from perfkit.frames import (
    LABELS_FORM,
    MAX_HOST_CHARS,
    MAX_METRIC_CHARS,
    SAMPLE_COLUMNS,
    as_samples,
    format_labels,
    label_problem,
    name_problem,
)

Key = tuple[str, str, str]


class InvalidSamplesError(InvalidInputError):
    """Some rows of a written frame were rejected; the valid rows were accepted.

    ``accepted`` rows of the frame were written (or buffered), ``rejected`` were
    not; ``problems`` names the field and the metrics concerned for each kind.
    """

    def __init__(self, message: str, *, accepted: int, rejected: int, problems: list[str]):
        super().__init__(message)
        self.accepted, self.rejected, self.problems = accepted, rejected, problems


@dataclass
class Batch:
    """Samples ready to insert: row ``i`` is series ``keys[codes[i]]`` at ``ts[i]``."""

    codes: np.ndarray        # int64, index into keys
    keys: list[Key]          # distinct (host, metric, labels)
    ts: np.ndarray           # int64 ns since the epoch, UTC
    value: np.ndarray        # float64

    def __len__(self) -> int:
        return len(self.ts)

    def tail(self, start: int) -> Batch:
        return Batch(self.codes[start:], self.keys, self.ts[start:], self.value[start:])

    def subset(self, key_index: list[int]) -> Batch:
        """The rows of the series ``keys[i]`` for ``i`` in ``key_index``."""
        key_index = sorted(key_index)
        keep = np.zeros(len(self.keys), dtype=bool)
        keep[key_index] = True
        rows = keep[self.codes]
        remap = np.cumsum(keep) - 1
        return Batch(remap[self.codes[rows]], [self.keys[i] for i in key_index],
                     self.ts[rows], self.value[rows])

    @staticmethod
    def concat(batches: list[Batch]) -> Batch:
        if len(batches) == 1:
            return batches[0]
        index: dict[Key, int] = {}
        codes = []
        for b in batches:
            remap = np.array([index.setdefault(k, len(index)) for k in b.keys], dtype=np.int64)
            codes.append(remap[b.codes] if len(remap) else b.codes)
        return Batch(np.concatenate(codes), list(index), np.concatenate([b.ts for b in batches]),
                     np.concatenate([b.value for b in batches]))


EMPTY = Batch(np.empty(0, np.int64), [], np.empty(0, np.int64), np.empty(0, np.float64))


def _factorize(col: pd.Series, field: str) -> tuple[np.ndarray, list[object]]:
    try:
        codes, uniq = pd.factorize(col, use_na_sentinel=True)
    except TypeError as exc:  # unhashable values (lists, dicts)
        raise ValueError(f"column {field!r} must hold strings ({exc})") from None
    return np.asarray(codes, dtype=np.int64), list(uniq)


def _bad_codes(codes: np.ndarray, uniq: list[object], *, allow_empty: bool,
               allow_missing: bool = False) -> np.ndarray:
    bad_u = [i for i, u in enumerate(uniq)
             if not isinstance(u, str) or (not allow_empty and not u.strip())]
    bad = np.isin(codes, bad_u) if bad_u else np.zeros(len(codes), dtype=bool)
    if not allow_missing:
        bad |= codes == -1
    return bad


def _bad_unique(codes: np.ndarray, uniq: list[object], problem: Callable[[str], str | None]
                ) -> tuple[np.ndarray, str | None]:
    """Rows whose (string) value has a problem, and the first problem found."""
    idx, first = [], None
    for i, u in enumerate(uniq):
        if isinstance(u, str):
            why = problem(u)
            if why is not None:
                idx.append(i)
                first = first or why
    return (np.isin(codes, idx) if idx else np.zeros(len(codes), dtype=bool)), first


def _is_utc_ns(dtype: object) -> bool:
    return (isinstance(dtype, pd.DatetimeTZDtype) and dtype.unit == "ns"
            and str(dtype.tz) == "UTC")


def prepare(given: object, default_host: str) -> tuple[Batch, int, list[str]]:
    """(the valid rows as a Batch, number of rows rejected, problem descriptions)."""
    if not isinstance(given, pd.DataFrame):
        raise TypeError(f"Store.write expects a samples DataFrame with columns "
                        f"{list(SAMPLE_COLUMNS)}, got {type(given).__name__}")
    frame: pd.DataFrame = given
    missing = [c for c in ("ts", "metric", "value") if c not in frame.columns]
    if missing:
        raise ValueError(f"samples frame lacks column(s) {missing}; expected "
                         f"{list(SAMPLE_COLUMNS)} (host and labels are optional)")
    n = len(frame)
    if n == 0:
        return EMPTY, 0, []
    if "host" not in frame.columns:
        frame = frame.assign(host=default_host)
    if "labels" not in frame.columns:
        frame = frame.assign(labels="")
    try:
        lc, lu = _factorize(frame["labels"], "labels")
    except ValueError:  # mappings given as labels
        frame = frame.assign(labels=frame["labels"].map(
            lambda x: format_labels(x) if isinstance(x, Mapping) else x))
        lc, lu = _factorize(frame["labels"], "labels")
    hc, hu = _factorize(frame["host"], "host")
    mc, mu = _factorize(frame["metric"], "metric")

    problems: list[str] = []
    bad = np.zeros(n, dtype=bool)

    def flag(mask: np.ndarray, what: str) -> None:
        nonlocal bad
        mask = mask & ~bad
        if mask.any():
            names = sorted({str(m)[:60] for m in frame["metric"][mask].tolist()})[:5]
            problems.append(f"{int(mask.sum())} row(s) with {what} (metric(s) {names})")
            bad |= mask

    metric_bad = _bad_codes(mc, mu, allow_empty=False)
    if metric_bad.any():
        problems.append(f"{int(metric_bad.sum())} row(s) whose 'metric' is missing, empty or "
                        "not a string")
        bad |= metric_bad
    flag(_bad_codes(hc, hu, allow_empty=True), "a 'host' that is missing or not a string")
    for codes, uniq, field, limit in ((mc, mu, "metric", MAX_METRIC_CHARS),
                                      (hc, hu, "host", MAX_HOST_CHARS)):
        mask, why = _bad_unique(codes, uniq, functools.partial(name_problem, field=field,
                                                               limit=limit))
        if why is not None:
            flag(mask, why)
    label_mask = _bad_codes(lc, lu, allow_empty=True, allow_missing=True)
    mask, why = _bad_unique(lc, lu, label_problem)
    flag(label_mask | mask, f"'labels' that are not a labels string ({why or 'not a str'}); "
                            f"accepted form: {LABELS_FORM}")
    vcol = frame["value"]
    if vcol.dtype == bool:
        flag(np.ones(n, dtype=bool), "a boolean 'value' (expected a number)")
    if vcol.dtype == np.float64:
        values = vcol.to_numpy()
    else:
        try:
            values = pd.to_numeric(vcol, errors="coerce").to_numpy(dtype="float64",
                                                                   na_value=np.nan)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"column 'value' must hold numbers ({exc})") from None
    flag(~np.isfinite(values), "a 'value' that is NaN, inf or not a number")
    fast = _is_utc_ns(frame["ts"].dtype)
    ts = frame["ts"]
    if not fast:
        try:
            ts = pd.to_datetime(ts, utc=True, errors="coerce")
        except (TypeError, ValueError) as exc:
            raise ValueError(f"column 'ts' must hold timestamps ({exc})") from None
    flag(ts.isna().to_numpy(), "a 'ts' that is missing or not a timestamp")

    good = ~bad if bad.any() else slice(None)
    if fast and vcol.dtype == np.float64:
        ts_ns = frame["ts"].array.asi8[good]
        values = values[good]
    else:
        # anything else goes through the contract's own normalisation
        norm = as_samples(frame[good] if bad.any() else frame)
        ts_ns = norm["ts"].array.asi8
        values = norm["value"].to_numpy(dtype=np.float64)
    # series keys from the codes already computed (missing labels mean '')
    if (lc == -1).any():
        lu = [*lu, ""]
        lc = np.where(lc == -1, len(lu) - 1, lc)
    nm, nl = max(len(mu), 1), max(len(lu), 1)
    combined = ((hc * nm + mc) * nl + lc)[good]
    codes, uniq = pd.factorize(combined)
    keys = [(hu[k // (nm * nl)], mu[(k // nl) % nm], lu[k % nl]) for k in uniq.tolist()]
    batch = Batch(np.asarray(codes, dtype=np.int64), keys,
                  np.ascontiguousarray(ts_ns, dtype=np.int64),
                  np.ascontiguousarray(values, dtype=np.float64))
    return batch, int(bad.sum()), problems
