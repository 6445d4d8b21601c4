"""Episodes from the store's alert history, for the chart bands and "Unusual now".

Anomaly episodes (:func:`anomaly_episodes`) and the demo's load phases
(:func:`stored_phases`) are both written as start / end events beside the alerts.

The Monitor writes each episode's start (``state='firing'``, ``value`` the score,
``message`` the pattern that broke), repeats it with the same ``ts`` whenever the peak
rises, and writes its end (``'resolved'``, the episode's peak score and pattern) as alert
events with ``severity='anomaly-episode'``. Pairing them gives one row per episode; an
episode whose start is older than the events read begins at the window's start, one
without an end yet is open and runs to now. An episode still open but begun before the
window has no event in it: ``Store.latest_alert_events`` (the newest event per series,
however old) supplies it.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from perfkit._anomaly_watch import ANOMALY_SEVERITY
from perfkit.demo._load import PHASE_SEVERITY

__all__ = ["EPISODE_COLUMNS", "anomaly_episodes", "end_silent", "stored_phases", "unusual_now"]

EPISODE_COLUMNS = ["host", "metric", "labels", "start", "end", "score", "pattern", "open"]
"""Columns of :func:`anomaly_episodes`."""


def _empty() -> pd.DataFrame:
    out = pd.DataFrame({c: pd.Series(dtype=object) for c in EPISODE_COLUMNS})
    return out.astype({"start": "datetime64[ns, UTC]", "end": "datetime64[ns, UTC]",
                       "score": float, "open": bool})


def anomaly_episodes(events: pd.DataFrame, *, start: pd.Timestamp, end: pd.Timestamp,
                     latest: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per anomaly episode in ``events`` (``Store.alert_events()``), oldest first.

    ``start`` / ``end`` bound the episodes whose opening or closing event lies
    outside ``events`` (the window read). ``latest``
    (``Store.latest_alert_events('anomaly-episode')``) adds the episodes still open
    whose events all precede the window, with their real start. ``score`` is the peak
    score (so far, while open); ``pattern`` the reason the score gives (level,
    variance, spike, flat line, …).
    """
    out = _episodes(events, ANOMALY_SEVERITY, start, end)
    if latest is None or not len(latest):
        return out
    opened = latest[(latest["severity"] == ANOMALY_SEVERITY) & (latest["state"] == "firing")]
    keys = ["host", "metric", "labels"]
    seen = set(map(tuple, out[keys].astype(str).to_numpy().tolist())) if len(out) else set()
    before = [_row((h, m, lab), t, end, v, msg, True)
              for t, h, m, lab, v, msg in zip(opened["ts"], opened["host"].astype(str),
                                              opened["metric"].astype(str),
                                              opened["labels"].fillna("").astype(str),
                                              opened["value"], opened["message"])
              if (h, m, lab) not in seen and t < start]
    if not before:
        return out
    extra = pd.DataFrame(before, columns=EPISODE_COLUMNS)
    extra["start"] = pd.to_datetime(extra["start"], utc=True)
    extra["end"] = pd.to_datetime(extra["end"], utc=True)
    both = pd.concat([out, extra.astype({"score": float, "open": bool})], ignore_index=True)
    return both.sort_values("start", kind="stable", ignore_index=True)


def _episodes(events: pd.DataFrame, severity: str, start: pd.Timestamp,
              end: pd.Timestamp) -> pd.DataFrame:
    if not len(events) or "severity" not in events:
        return _empty()
    ev = events[events["severity"] == severity]
    if not len(ev):
        return _empty()
    rows: list[dict[str, Any]] = []
    cols = ["host", "metric", "labels"]
    ev = ev.assign(labels=ev["labels"].fillna("")).sort_values("ts", kind="stable")
    for key, g in ev.groupby(cols, sort=False):
        opened: Any = None
        for e in g.itertuples():
            if e.state == "firing":
                if opened is not None and e.ts == opened.ts:  # the peak so far, repeated
                    opened = e
                    continue
                if opened is not None:  # a Monitor that died never closed the last one
                    rows.append(_row(key, opened.ts, e.ts, opened.value, opened.message, False))
                opened = e
            elif e.state == "resolved":
                t0 = opened.ts if opened is not None else start
                rows.append(_row(key, t0, e.ts, e.value, e.message, False))
                opened = None
        if opened is not None:
            rows.append(_row(key, opened.ts, end, opened.value, opened.message, True))
    out = pd.DataFrame(rows, columns=EPISODE_COLUMNS)
    out["start"] = pd.to_datetime(out["start"], utc=True)
    out["end"] = pd.to_datetime(out["end"], utc=True)
    return out.astype({"score": float, "open": bool}).sort_values(
        "start", kind="stable", ignore_index=True)


def _row(key: Any, start: Any, end: Any, score: Any, pattern: Any, is_open: bool
         ) -> dict[str, Any]:
    host, metric, labels = key
    return {"host": str(host), "metric": str(metric), "labels": str(labels), "start": start,
            "end": end, "score": float("nan") if score is None else float(score),
            "pattern": str(pattern or ""),
            "open": is_open}


SILENT_AFTER = pd.Timedelta("1min")
"""An open episode's series silent this long (or three of its sampling intervals, if
longer) has lost its Monitor: the episode is shown as ended at the last sample."""


def end_silent(episodes: pd.DataFrame, frame: pd.DataFrame, *, end: pd.Timestamp
               ) -> pd.DataFrame:
    """``episodes`` with each open one whose series stopped reporting ended at its last
    sample in ``frame`` (the window's samples, up to ``end``), or dropped when the
    series has no sample in the window.

    A Monitor that died without stopping never writes the end of its open episodes;
    without this they would stay "unusual now" for ever.
    """
    if not len(episodes) or not episodes["open"].any():
        return episodes
    keys = ["host", "metric", "labels"]
    last: dict[tuple[str, str, str], pd.Timestamp] = {}
    fresh: dict[tuple[str, str, str], pd.Timedelta] = {}
    if len(frame):
        g = frame.astype({k: str for k in keys}).groupby(keys, observed=True)["ts"].agg(
            ["min", "max", "size"])
        for k, lo, hi, n in zip(g.index, g["min"], g["max"], g["size"]):
            last[k] = hi
            fresh[k] = max(SILENT_AFTER, 3 * (hi - lo) / max(int(n) - 1, 1))
    ends, still, keep = [], [], []
    for h, m, lab, t0, t1, is_open in zip(episodes["host"], episodes["metric"],
                                          episodes["labels"], episodes["start"],
                                          episodes["end"], episodes["open"]):
        k = (str(h), str(m), str(lab))
        silent = bool(is_open) and not (k in last and end - last[k] <= fresh[k])
        keep.append(not silent or k in last)
        ends.append(max(last[k], t0) if silent and k in last else t1)
        still.append(bool(is_open) and not silent)
    out = episodes.assign(end=pd.to_datetime(pd.Series(ends, index=episodes.index), utc=True),
                          open=still)
    return out[keep].reset_index(drop=True)


def unusual_now(episodes: pd.DataFrame) -> pd.DataFrame:
    """The open episodes, "unusual now": metric, host, labels, since, score and pattern,
    highest score first."""
    o = episodes[episodes["open"]] if len(episodes) else episodes
    out = o.rename(columns={"start": "since"})[
        ["metric", "host", "labels", "since", "score", "pattern"]]
    return out.sort_values(["score", "metric"], ascending=[False, True], kind="stable",
                           ignore_index=True)


def stored_phases(events: pd.DataFrame, *, start: pd.Timestamp, end: pd.Timestamp
                  ) -> pd.DataFrame:
    """The demo's load phases recorded in ``events``: ``kind, start, end`` (what
    :meth:`perfkit.demo.LoadGenerator.phases_frame` gives in its own process). A phase
    begun before the events read starts at ``start``; the running one ends at ``end``."""
    ep = _episodes(events, PHASE_SEVERITY, start, end)
    return pd.DataFrame({"kind": ep["pattern"].astype(str), "start": ep["start"],
                         "end": ep["end"]})
