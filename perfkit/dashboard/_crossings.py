"""Predicted threshold crossings in words, and the thresholds already passed."""

from __future__ import annotations

from typing import Any

import pandas as pd

from perfkit.catalog import find_metric
from perfkit.dashboard._page import crossing_reach
from perfkit.dashboard._words import fmt, fmt_age, typed_rows

__all__ = ["already_past", "crossing_text", "crossings"]

def crossings(ttt: pd.DataFrame, frame: pd.DataFrame, horizon: pd.Timedelta,
               overview: pd.DataFrame | None = None) -> pd.DataFrame:
    """Future crossings some path of the interval reaches within the horizon.

    Thresholds already passed are the alerts' business and left out: by the
    forecast's own start and by the page's current state (``overview``), so a
    metric already below its threshold is never "expected to fall" to it. Each
    metric's crossings are looked for only as far ahead as its history allows
    (:func:`~perfkit.dashboard._page.crossing_reach`: none below 2 min of data, then
    four times the history): a mean path crossing beyond that counts as not expected.
    ``expected`` is True when the mean path crosses, False when only the
    pessimistic bound does.
    """
    if not len(ttt):
        return ttt.assign(expected=pd.Series(dtype=bool))
    zero = pd.Timedelta(0)
    future = (ttt["eta_expected"].isna() | (ttt["eta_expected"] > zero)) & \
        (ttt["eta_earliest"].notna() | ttt["eta_expected"].notna())
    span = frame.groupby("metric")["ts"].agg(lambda t: t.max() - t.min()) if len(frame) \
        else pd.Series(dtype="timedelta64[ns]")
    reach = ttt["metric"].map(span).fillna(zero).map(lambda h: crossing_reach(h, horizon))
    ttt = ttt.assign(eta_expected=ttt["eta_expected"].where(ttt["eta_expected"] <= reach))
    future &= ttt["eta_earliest"].fillna(ttt["eta_expected"]) <= reach
    if overview is not None and len(overview):
        rank = {"ok": 0, "missing": 0, "warning": 1, "critical": 2}
        now = ttt["metric"].map(dict(zip(overview["metric"], overview["status"]))).map(rank)
        future &= ~(now.fillna(0) >= ttt["severity"].map(rank))
    out = ttt[future]
    out = out.assign(expected=out["eta_expected"].notna())
    out = out.assign(text=[crossing_text(r) for r in typed_rows(out)])
    return out.sort_values(["expected", "eta_earliest"], ascending=[False, True],
                           na_position="last", ignore_index=True)


def crossing_text(r: Any) -> str:
    """A predicted crossing in words, from its own columns."""
    m = find_metric(r.metric)
    unit = m.unit if m is not None else ""
    verb = "rise above" if r.direction == "higher" else "fall below"
    where = f"its {r.severity} threshold ({fmt(r.threshold, unit)})"
    if pd.notna(r.eta_expected):
        lo = r.eta_earliest if pd.notna(r.eta_earliest) else r.eta_expected
        hi = f"{fmt_age(r.eta_latest)}" if pd.notna(r.eta_latest) else "later"
        return (f"{r.metric} is expected to {verb} {where} in about {fmt_age(r.eta_expected)} "
                f"(between {fmt_age(lo)} and {hi})")
    return f"{r.metric} could {verb} {where} in {fmt_age(r.eta_earliest)} (pessimistic edge)"


def already_past(overview: pd.DataFrame) -> list[str]:
    """"cache.hit_rate is already below its warning threshold (80 %) since 21:40:12" lines."""
    out: list[str] = []
    if not len(overview) or "status" not in overview:
        return out
    for r in typed_rows(overview[overview["status"].isin(["warning", "critical"])]):
        m = find_metric(r.metric)
        if m is None:
            continue
        thr = getattr(m, r.status)
        side = "above" if m.direction == "higher" else "below"
        when = f" since {r.since:%H:%M:%S}" if pd.notna(r.since) else ""
        level = f" ({fmt(thr, m.unit)})" if thr is not None else ""
        out.append(f"{r.metric} is already {side} its {r.status} threshold{level}{when}")
    return out


