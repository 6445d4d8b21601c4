"""The health score of every host at once: :func:`score` per host, vectorised for fleets."""

from __future__ import annotations

import numpy as np
import pandas as pd

from perfkit._time import Duration, as_timedelta
from perfkit.analysis._score import CURRENT_WINDOW, SCORE_GROUPS, _expected, metric_points

__all__ = ["score_hosts"]


def score_hosts(frame: pd.DataFrame, *, window: Duration = CURRENT_WINDOW
                ) -> pd.DataFrame:
    """One row per host: ``host, overall, <group>…, worst_metric, worst_cost, worst_status,
    status`` — the numbers :func:`perfkit.score` gives for that host's samples alone.

    Each host is scored at its own latest sample (the mean of each metric's
    aggregate samples in the ``window`` before it), so a fleet of 200 hosts
    costs a few group-bys instead of 200 calls. ``status`` is the worst
    metric status (``critical``, ``warning``, ``ok``).
    """
    groups = list(SCORE_GROUPS)
    cols = ["host", "overall", *groups, "worst_metric", "worst_cost", "worst_status", "status"]
    f = frame[frame["labels"] == ""] if len(frame) else frame
    if not len(f):
        return pd.DataFrame(columns=cols)
    f = f[["ts", "host", "metric", "value"]].astype({"host": str, "metric": str})
    f = f[np.isfinite(f["value"].to_numpy(float))]
    last = f.groupby("host")["ts"].transform("max")
    recent = f[f["ts"] > last - as_timedelta(window, "window")]  # score() keeps ts > end - window
    cur = recent.groupby(["host", "metric"], sort=False)["value"].mean().reset_index()
    spec = pd.DataFrame([{"metric": m.name, "group": m.group, "warning": m.warning,
                          "critical": m.critical, "direction": m.direction}
                         for m in _expected()])
    b = cur.merge(spec, on="metric", how="inner")
    pts = [metric_points(v, w, c, d) for v, w, c, d in
           zip(b["value"], b["warning"], b["critical"], b["direction"])]
    b["points"] = [p for p, _ in pts]
    b["status"] = [s for _, s in pts]
    b = b[b["group"].isin(groups)]
    per_group = b.groupby(["host", "group"])["points"].agg(["mean", "count"]).reset_index()
    wide = per_group.pivot(index="host", columns="group", values="mean").reindex(columns=groups)
    hosts = pd.Index(sorted(f["host"].unique()), name="host")
    wide = wide.reindex(hosts)
    scored = wide.notna().sum(axis=1)
    overall = wide.mean(axis=1, skipna=True)
    # cost of a metric: its penalty / metrics in its group / groups scored (as in score())
    b = b.merge(per_group[["host", "group", "count"]], on=["host", "group"])
    b["cost"] = (100.0 - b["points"]) / b["count"] / b["host"].map(scored).clip(lower=1)
    b = b.sort_values(["host", "cost", "group", "metric"], ascending=[True, False, True, True])
    top = b.drop_duplicates("host").set_index("host").reindex(hosts)
    rank = {"critical": 2, "warning": 1, "ok": 0}
    worst_status = b.assign(_r=b["status"].map(rank)).groupby("host")["_r"].max().reindex(hosts)
    out = wide.reset_index()
    out.insert(1, "overall", overall.where(scored > 0).to_numpy())
    has_cost = top["cost"].fillna(0).to_numpy() > 0
    out["worst_metric"] = np.where(has_cost, top["metric"].fillna("").to_numpy(), "")
    out["worst_cost"] = np.where(has_cost, top["cost"].to_numpy(), 0.0)
    out["worst_status"] = np.where(has_cost, top["status"].fillna("").to_numpy(), "")
    out["status"] = worst_status.map({2: "critical", 1: "warning", 0: "ok"}).fillna("ok").to_numpy()
    return out[cols]
