"""The 0–100 health score: ``score(frame)``."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from perfkit._time import Duration, duration_ns
from perfkit.analysis._input import SamplesLike, WhenLike, split_series, to_ns
from perfkit.catalog import CORE_METRICS
from perfkit.catalog import metrics as catalog_metrics

__all__ = ["SCORE_GROUPS", "Score", "metric_points", "score"]

SCORE_GROUPS = ("system", "cache", "database", "application")
CURRENT_WINDOW = pd.Timedelta("5min")


def metric_points(value: float, warning: float | None, critical: float | None,
                  direction: str) -> tuple[float, str]:
    """(points 0–100, status) of one value against its thresholds — see :func:`score`."""
    sign = 1.0 if direction == "higher" else -1.0
    w = warning if warning is not None else critical
    c = critical if critical is not None else warning
    if w is None or c is None:
        return 100.0, "ok"
    v, w, c = sign * value, sign * w, sign * c
    if v < w:
        return 100.0, "ok"
    band = c - w
    if v < c and band > 0:
        return 75.0 - 50.0 * (v - w) / band, "warning"
    if band <= 0:                       # only one threshold (or equal): fixed steps
        over = critical is not None and sign * value >= sign * critical
        status = "critical" if over else "warning"
        return (25.0 if status == "critical" else 75.0), status
    return max(0.0, 25.0 - 25.0 * (v - c) / band), "critical"


@dataclass
class Score:
    """The health score: ``overall`` 0–100, per-group scores, and what cost points."""

    overall: float | None
    groups: dict[str, float | None]
    breakdown: pd.DataFrame
    missing: list[str] = field(default_factory=list)

    @property
    def worst(self) -> pd.DataFrame:
        """The metrics that cost points, most expensive first."""
        b = self.breakdown
        return b[b["cost"] > 0].sort_values("cost", ascending=False)

    def to_frame(self) -> pd.DataFrame:
        """One row per group plus an ``overall`` row: ``group, score, metrics, missing``."""
        rows = []
        for g, v in self.groups.items():
            b = self.breakdown[self.breakdown["group"] == g]
            rows.append({"group": g, "score": v,
                         "metrics": int((b["status"] != "missing").sum()),
                         "missing": int((b["status"] == "missing").sum())})
        rows.append({"group": "overall", "score": self.overall,
                     "metrics": int((self.breakdown["status"] != "missing").sum()),
                     "missing": len(self.missing)})
        return pd.DataFrame(rows)

    def __repr__(self) -> str:
        o = "n/a" if self.overall is None else f"{self.overall:.1f}"
        g = ", ".join(f"{k}={'n/a' if v is None else f'{v:.1f}'}" for k, v in self.groups.items())
        top = ", ".join(f"{r.metric} (-{r.cost:.1f})" for r in self.worst.head(3).itertuples())
        return f"Score(overall={o}; {g}" + (f"; costs: {top}" if top else "") + \
            (f"; missing: {len(self.missing)}" if self.missing else "") + ")"

    def _repr_html_(self) -> str:
        o = "n/a" if self.overall is None else f"{self.overall:.1f}"
        return (f"<div><b>Health score: {o} / 100</b></div>"
                + self.to_frame().to_html(index=False, na_rep="n/a", float_format="{:.1f}".format)
                + self.breakdown.to_html(index=False, na_rep="", float_format="{:.2f}".format))


_CAP = {"warning": 75.0, "critical": 25.0}
_RANK = {"ok": 0, "warning": 1, "critical": 2}


def _alert_floors(alerts: pd.DataFrame | None) -> dict[str, str]:
    """Metric -> worst severity among its firing aggregate-series alerts."""
    if alerts is None or not len(alerts) or not {"metric", "severity", "state"} <= set(alerts):
        return {}
    a = alerts[alerts["state"] == "firing"]
    if "labels" in a:
        a = a[a["labels"].fillna("") == ""]
    out: dict[str, str] = {}
    for metric, sev in zip(a["metric"], a["severity"]):
        if sev in _CAP and _RANK[sev] > _RANK[out.get(metric, "ok")]:
            out[str(metric)] = str(sev)
    return out


def _expected() -> list:
    """Catalogue metrics with direction and thresholds in the scored groups."""
    out = []
    for m in catalog_metrics():
        if m.group in SCORE_GROUPS and m.direction in ("higher", "lower") and \
                (m.warning is not None or m.critical is not None):
            out.append(m)
    return out


def score(frame: SamplesLike, *, now: WhenLike | None = None,
          window: Duration = CURRENT_WINDOW, alerts: pd.DataFrame | None = None) -> Score:
    """Health score of the latest state in ``frame``, 0 (bad) to 100 (healthy).

    Formula:

    * A metric's **current value** is the mean of its aggregate samples in the
      last ``window`` (default 5 min) before ``now`` (default: latest sample).
    * Each catalogued metric with thresholds gets **points**, read in its bad
      direction (higher CPU, lower hit rate): 100 when better than warning;
      75 at the warning threshold falling linearly to 25 at the critical one;
      25 at critical falling linearly to 0 one more warning-to-critical band
      past it. (With a single threshold: 75 past warning, 25 past critical.)
      ``penalty = 100 - points``.
    * A **group** score (system, cache, database, application) is the mean of
      its metrics' points; a group with no data is ``None``.
    * **overall** is the mean of the group scores that are not ``None`` (each
      group weighs the same however many metrics it has).
    * The catalogue metrics with thresholds in the core set
      (``catalog.CORE_METRICS``) are *expected*; an expected metric without data
      is listed in ``missing`` with status ``missing`` — it is not counted as
      perfect, it is left out of the mean. Other catalogued metrics with
      thresholds (latency percentiles, user metrics) count when present.
    * ``breakdown`` has one row per metric: ``metric, group, value, points,
      penalty, status`` (ok / warning / critical / missing) and ``cost`` — the
      points it takes off ``overall`` (``penalty / metrics in its group /
      groups scored``) — sorted most expensive first; ``worst`` lists those
      with ``cost > 0``.

    * ``alerts`` (a :func:`perfkit.alerts` frame, optional) makes the score agree
      with the alert list: a metric whose aggregate series has a **firing** alert
      never counts as healthier than that alert says — a firing critical alert
      caps it at 25 points (status ``critical``), a firing warning at 75
      (status at least ``warning``), whatever its mean in ``window``. Without
      this, a 5-minute mean can read "ok" while the alert on the latest sample fires.
      Anomaly alerts (severity ``anomaly``) and anomaly episodes do not change the
      score: they say a metric behaves unlike its past, not that it is unhealthy.

    Example: everything healthy → 100. CPU exactly at its warning (70 %) with
    the four expected system metrics present → CPU 75 points, system
    (75 + 3 * 100) / 4 = 93.75, overall (93.75 + 3 * 100) / 4 = 98.44, so CPU
    costs 1.56 points.
    """
    series = {s.metric: s for s in split_series(frame, labels=False)}
    floors = _alert_floors(alerts)
    end = to_ns(now) if now is not None else max((int(s.ts[-1]) for s in series.values()),
                                                  default=None)
    win = duration_ns(window, "window")
    rows = []
    for m in _expected():
        s = series.get(m.name)
        cur = None
        if s is not None and end is not None:
            seg = s.until(end)
            if seg.n:
                recent = seg.since(end - win)
                cur = float(recent.values.mean()) if recent.n else float(seg.values[-1])
        if cur is None:
            if m.name in CORE_METRICS:
                rows.append({"metric": m.name, "group": m.group, "value": np.nan,
                             "points": np.nan, "penalty": np.nan, "status": "missing"})
            continue
        pts, status = metric_points(cur, m.warning, m.critical, m.direction)
        cap = floors.get(m.name)
        if cap is not None and pts > _CAP[cap]:
            pts = _CAP[cap]
            status = cap if _RANK[cap] > _RANK[status] else status
        rows.append({"metric": m.name, "group": m.group, "value": cur, "points": pts,
                     "penalty": 100.0 - pts, "status": status})
    b = pd.DataFrame(rows, columns=["metric", "group", "value", "points", "penalty", "status"])
    groups: dict[str, float | None] = {}
    for g in SCORE_GROUPS:
        in_group = b.loc[(b["group"] == g) & (b["status"] != "missing"), "points"]
        groups[g] = float(in_group.mean()) if len(in_group) else None
    scored = [v for v in groups.values() if v is not None]
    overall = float(np.mean(scored)) if scored else None
    n_in_group = b[b["status"] != "missing"].groupby("group")["metric"].transform("count")
    b["cost"] = np.where(b["status"] != "missing",
                         b["penalty"] / n_in_group.reindex(b.index) / max(len(scored), 1), 0.0)
    b = b.sort_values(["cost", "group", "metric"], ascending=[False, True, True]) \
        .reset_index(drop=True)
    return Score(overall, groups, b, sorted(b.loc[b["status"] == "missing", "metric"]))
