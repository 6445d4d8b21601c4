"""Alert events and the actions queue / audit log: row conversion and validation."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from perfkit._json import jsonable

ALERT_STATES = ("pending", "firing", "resolved")
ACTION_STATUSES = ("pending", "running", "done", "failed", "rejected", "abandoned", "expired")
# abandoned: claimed, and its lease ran out (the Monitor died mid-run); expired: pending
# longer than the store's pending_ttl (no Monitor of that host claimed it)
FINAL_STATUSES = ("done", "failed", "rejected", "abandoned", "expired")
ALERT_COLUMNS = ("ts", "host", "metric", "labels", "severity", "state", "value", "threshold",
                 "message")
ACTION_COLUMNS = ("id", "host", "action", "params", "requested_by", "dry_run", "status",
                  "requested_at", "claimed_at", "claimed_by", "finished_at", "before", "after",
                  "verdict", "detail", "error", "duration_s")
_TIME_COLUMNS = ("requested_at", "claimed_at", "finished_at")
_JSON_COLUMNS = ("params", "before", "after", "detail")
_NULLABLE_TEXT = ("claimed_by", "verdict", "error")


# -- JSON -----------------------------------------------------------------------------

def to_json(value: object, field: str, *, mapping: bool = True) -> str | None:
    if value is None:
        return None
    if mapping and not isinstance(value, Mapping):
        raise TypeError(f"{field} must be a dict (or None), got {type(value).__name__}")
    try:
        return json.dumps(jsonable(value, strict=True), sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{field} cannot be stored as JSON: {exc}; use str, int, float, bool, "
                        "None, lists and dicts (numpy scalars, Timestamps, timedeltas and sets "
                        "are converted)") from None


def from_json(text: str | None) -> Any:
    return None if text is None else json.loads(text)


# -- time -----------------------------------------------------------------------------

def ns_to_ts(col: list[Any]) -> pd.Series:
    arr = np.array([np.iinfo(np.int64).min if v is None else int(v) for v in col], dtype=np.int64)
    return pd.Series(arr.view("M8[ns]")).dt.tz_localize("UTC")


# -- alert events ---------------------------------------------------------------------

def alert_rows(given: object, default_host: str) -> list[dict[str, Any]]:
    """Validate an alert-events frame; every problem names its column. All or nothing."""
    if not isinstance(given, pd.DataFrame):
        raise TypeError("write_alert_events expects a DataFrame with columns "
                        f"{list(ALERT_COLUMNS)}, "
                        f"got {type(given).__name__}")
    frame: pd.DataFrame = given
    if "ts" not in frame.columns and "since" in frame.columns:
        frame = frame.rename(columns={"since": "ts"})
    missing = [c for c in ("ts", "metric", "severity", "state") if c not in frame.columns]
    if missing:
        raise ValueError(f"alert events frame lacks column(s) {missing}; expected "
                         f"{list(ALERT_COLUMNS)} "
                         "(host, labels, value, threshold, message optional)")
    n = len(frame)
    if n == 0:
        return []
    try:
        ts = pd.to_datetime(frame["ts"], utc=True, errors="coerce")
    except (TypeError, ValueError) as exc:
        raise ValueError(f"alert events column 'ts' must hold timestamps ({exc})") from None
    if ts.isna().any():
        raise ValueError(f"alert events column 'ts' has {int(ts.isna().sum())} "
                         "missing/unparseable value(s); every event needs a Timestamp, "
                         "datetime or ISO string")
    ts_ns = pd.DatetimeIndex(ts).as_unit("ns").asi8

    def strings(name: str, default: str | None = None, allow_empty: bool = True) -> list[str]:
        if name not in frame.columns:
            return [default or ""] * n
        out = []
        for v in frame[name].tolist():
            if v is None or (isinstance(v, float) and math.isnan(v)):
                v = default if default is not None else ""
            if not isinstance(v, str) or (not allow_empty and not v):
                raise ValueError(f"alert events column {name!r} must hold non-empty strings, "
                                 f"got {v!r}")
            out.append(v)
        return out

    def numbers(name: str) -> list[float | None]:
        if name not in frame.columns:
            return [None] * n
        vals = pd.to_numeric(frame[name], errors="coerce")
        bad = frame[name].notna() & vals.isna()
        if bad.any():
            raise ValueError(f"alert events column {name!r} must hold numbers, got "
                             f"{frame.loc[bad, name].tolist()[:3]}")
        return [None if (v is None or not math.isfinite(v)) else float(v) for v in vals.tolist()]

    states = strings("state", allow_empty=False)
    wrong = sorted({s for s in states if s not in ALERT_STATES})
    if wrong:
        raise ValueError(f"alert events column 'state' has {wrong}; allowed: {list(ALERT_STATES)}")
    cols = {
        "ts": ts_ns.tolist(), "host": strings("host", default_host),
        "metric": strings("metric", allow_empty=False),
        "labels": strings("labels"), "severity": strings("severity", allow_empty=False),
        "state": states, "value": numbers("value"), "threshold": numbers("threshold"),
        "message": strings("message"),
    }
    return [dict(zip(cols, row)) for row in zip(*cols.values())]


def alerts_frame(rows: Sequence[Any]) -> pd.DataFrame:
    cols: list[Sequence[Any]] = list(zip(*rows)) if rows else [[] for _ in ALERT_COLUMNS]
    data: dict[str, pd.Series] = {}
    for name, col in zip(ALERT_COLUMNS, cols):
        if name == "ts":
            data[name] = ns_to_ts(list(col))
        elif name in ("value", "threshold"):
            data[name] = pd.Series([np.nan if v is None else v for v in col], dtype="float64")
        else:
            data[name] = pd.Series(list(col), dtype=str)
    return pd.DataFrame(data)


# -- actions --------------------------------------------------------------------------

def action_record(row: Any) -> dict[str, Any]:
    """One actions row as a dict: JSON decoded, times as UTC Timestamps (None when unset)."""
    out: dict[str, Any] = {}
    for c in ACTION_COLUMNS:
        v = row[c]
        if c in _JSON_COLUMNS:
            v = from_json(v)
            if c == "params" and v is None:
                v = {}
        elif c in _TIME_COLUMNS:
            v = None if v is None else pd.Timestamp(int(v), unit="ns", tz="UTC")
        elif c == "dry_run":
            v = bool(v)
        elif c == "id":
            v = int(v)
        out[c] = v
    return out


def actions_frame(rows: Sequence[Any]) -> pd.DataFrame:
    data: dict[str, pd.Series] = {}
    for c in ACTION_COLUMNS:
        col = [r[c] for r in rows]
        if c == "id":
            data[c] = pd.Series(col, dtype="int64")
        elif c in _TIME_COLUMNS:
            data[c] = ns_to_ts(col)
        elif c == "dry_run":
            data[c] = pd.Series([bool(v) for v in col], dtype=bool)
        elif c == "duration_s":
            data[c] = pd.Series([np.nan if v is None else v for v in col], dtype="float64")
        elif c in _JSON_COLUMNS:
            vals = [from_json(v) for v in col]
            if c == "params":
                vals = [{} if v is None else v for v in vals]
            s = pd.Series([None] * len(vals), dtype=object)
            for i, v in enumerate(vals):  # element-wise: a list of dicts must not become columns
                s.iat[i] = v
            data[c] = s
        elif c in _NULLABLE_TEXT:
            data[c] = pd.Series(col, dtype=object)  # None stays None
        else:
            data[c] = pd.Series(col, dtype=str)
    return pd.DataFrame(data)
