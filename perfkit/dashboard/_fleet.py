"""The fleet overview: one row per host, the spread of a metric across hosts, the soonest crossings.

Pure functions, frame in and frame out, so a notebook gets the page's numbers::

    frame = store.window_means("5min", since="6min")    # or store.samples(since="6min")
    perfkit.dashboard.fleet_overview(frame, store.alert_events(since="1h"))

A host is **stale** when its newest sample is older than ``stale_after``
before ``now``: it gets no score (it is not healthy, it is silent). A host
whose newest sample is more than ``stale_after`` *ahead* of ``now`` has a
clock running ahead; it is scored, and flagged ``clock ahead``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from perfkit._time import Duration, as_timedelta, duration_seconds
from perfkit.catalog import GROUPS

__all__ = ["FLEET_METRICS", "FleetPage", "build_fleet", "fleet_crossings", "fleet_overview",
           "fleet_spread"]

FLEET_METRICS = ("application.api_response_time.p95", "system.cpu_usage")
"""The metrics whose spread across hosts the fleet page charts."""

_GROUPS = tuple(g for g in GROUPS if g != "process")
_STATUS_ORDER = {"critical": 0, "warning": 1, "stale": 2, "ok": 3}


def _aggregate(frame: pd.DataFrame) -> pd.DataFrame:
    f = frame[frame["labels"] == ""] if len(frame) else frame
    cats = [c for c in ("host", "metric", "labels")
            if len(f) and isinstance(f[c].dtype, pd.CategoricalDtype)]
    return f.astype({c: str for c in cats}) if cats else f


def fleet_overview(frame: pd.DataFrame, alert_events: pd.DataFrame | None = None, *,
                   now: pd.Timestamp | None = None, stale_after: Duration = "2min",
                   hosts: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per host, worst first: ``host, status, score, <group> scores, worst_metric,
    worst_cost, firing, last_seen, age_s, clock``.

    ``frame`` holds the recent samples of every host (the score reads each host's
    last 5 minutes); ``alert_events`` the Monitors' alert transitions (a rule
    fires while its latest event is ``firing``). ``hosts`` adds hosts known to
    the store but without samples in ``frame`` (``stale``, ``last_seen`` NaT). ``status`` is
    ``stale`` for a silent host, else ``critical`` / ``warning`` (the worst
    firing alert or scored metric), else ``ok``.
    """
    from perfkit.analysis import score_hosts

    end = pd.Timestamp.now(tz="UTC") if now is None else pd.Timestamp(now)
    late = duration_seconds(stale_after, "stale_after")
    f = _aggregate(frame)
    firing = _firing(alert_events)
    scores: dict[Any, dict[Any, Any]] = (score_hosts(f).set_index("host").to_dict("index")
                                         if len(f) else {})
    last_seen = f.groupby("host")["ts"].max() if len(f) else pd.Series(dtype=object)
    rows = []
    for host, last in last_seen.items():
        age = (end - last).total_seconds()
        n_firing, sev = firing.get(str(host), (0, None))
        row: dict[str, object] = {"host": host, "last_seen": last, "age_s": age,
                                  "clock": "ahead" if -age > late else "", "firing": n_firing}
        if age > late:
            row.update(status="stale", score=np.nan, worst_metric="", worst_cost=0.0,
                       **{g: np.nan for g in _GROUPS})
        else:
            sc = scores[str(host)]
            row.update(score=sc["overall"], worst_metric=sc["worst_metric"],
                       worst_cost=sc["worst_cost"], **{g: sc[g] for g in _GROUPS})
            statuses = {sc["status"], sev}
            row["status"] = ("critical" if "critical" in statuses else
                             "warning" if "warning" in statuses else "ok")
        rows.append(row)
    seen = {r["host"] for r in rows}
    for host in sorted(set(hosts or ()) - seen):  # known, silent for the whole frame
        rows.append({"host": host, "status": "stale", "score": np.nan, "worst_metric": "",
                     "worst_cost": 0.0, "firing": firing.get(host, (0, None))[0],
                     "last_seen": pd.NaT, "age_s": np.nan, "clock": "",
                     **{g: np.nan for g in _GROUPS}})
    cols = ["host", "status", "score", *_GROUPS, "worst_metric", "worst_cost", "firing",
            "last_seen", "age_s", "clock"]
    out = pd.DataFrame(rows, columns=cols)
    if not len(out):
        return out.astype({"host": str, "status": str, "score": float, "firing": int})
    out["last_seen"] = pd.to_datetime(out["last_seen"], utc=True)
    order = out["status"].map(_STATUS_ORDER)
    return (out.assign(_o=order).sort_values(["_o", "score", "host"], na_position="last",
                                             kind="stable")
            .drop(columns="_o").reset_index(drop=True))


def _firing(events: pd.DataFrame | None) -> dict[str, tuple[int, str | None]]:
    """host → (rules firing now, worst severity among them)."""
    if events is None or not len(events):
        return {}
    # threshold rules only: anomaly episodes and demo phases share the alert history
    events = events[events["severity"].isin(["warning", "critical"])]
    keys = ["host", "metric", "labels", "severity"]
    last = events.sort_values("ts", kind="stable").drop_duplicates(keys, keep="last")
    on = last[last["state"] == "firing"]
    # a metric past critical fires its warning rule too: count each series once
    per = on.sort_values("severity").drop_duplicates(["host", "metric", "labels"])
    out: dict[str, tuple[int, str | None]] = {}
    for host, g in per.groupby("host"):
        sev = "critical" if (g["severity"] == "critical").any() else "warning"
        out[str(host)] = (len(g), sev)
    return out


def fleet_spread(frame: pd.DataFrame, metric: str, every: Duration = "1min"
                 ) -> pd.DataFrame:
    """Per ``every`` bucket: ``ts, metric, median, worst, worst_host, hosts`` across hosts.

    Each host's mean in the bucket is one value; ``worst`` is the highest
    (the lowest for a metric where lower is worse, such as the cache hit rate).
    """
    from perfkit.catalog import find_metric

    cols = ["ts", "metric", "median", "worst", "worst_host", "hosts"]
    f = _aggregate(frame)
    f = f[f["metric"] == metric] if len(f) else f
    if not len(f):
        return pd.DataFrame(columns=cols)
    per = (f.assign(ts=f["ts"].dt.floor(as_timedelta(every, "every")))
           .groupby(["ts", "host"], sort=True)["value"].mean().reset_index())
    m = find_metric(metric)
    lower_is_worse = m is not None and m.direction == "lower"
    idx = (per.groupby("ts")["value"].idxmin() if lower_is_worse
           else per.groupby("ts")["value"].idxmax())
    g = per.groupby("ts")["value"]
    out = pd.DataFrame({"ts": g.median().index, "metric": metric,
                        "median": g.median().to_numpy(),
                        "worst": per.loc[idx.to_numpy(), "value"].to_numpy(),
                        "worst_host": per.loc[idx.to_numpy(), "host"].to_numpy(),
                        "hosts": g.size().to_numpy()})
    return out[cols].reset_index(drop=True)


def fleet_crossings(frame: pd.DataFrame, horizon: str | pd.Timedelta = "1h",
                    metrics: Sequence[str] = FLEET_METRICS, n: int = 10) -> pd.DataFrame:
    """The ``n`` (host, metric) pairs forecast to cross a threshold soonest:
    ``host, metric, severity, threshold, eta_expected, eta_earliest``, soonest first.

    A full forecast costs per series, so the hosts are first ranked by a
    straight line through each host's samples (its time to the warning
    threshold); the ``2 n`` most urgent per metric are then forecast with
    :func:`perfkit.time_to_threshold` (``linear``, one call, the host riding in
    the labels). Thresholds already crossed are alerts, not forecasts, and are
    left out.
    """
    from perfkit.analysis import time_to_threshold
    from perfkit.dashboard._build import thin

    cols = ["host", "metric", "severity", "threshold", "eta_expected", "eta_earliest"]
    f = _aggregate(frame)
    f = f[f["metric"].isin(list(metrics))] if len(f) else f
    if not len(f):
        return pd.DataFrame(columns=cols)
    f = thin(_urgent(f, 2 * n), max_points=240)
    tagged = f.assign(labels="host=" + f["host"].astype(str), host="")
    ttt = time_to_threshold(tagged, horizon, labels=True, method="linear")
    if not len(ttt):
        return pd.DataFrame(columns=cols)
    zero = pd.Timedelta(0)
    ahead = ttt[(ttt["eta_earliest"].notna() & (ttt["eta_earliest"] > zero))
                | (ttt["eta_expected"].notna() & (ttt["eta_expected"] > zero))]
    ahead = ahead.assign(host=ahead["labels"].str.removeprefix("host="))
    soon = ahead.assign(_k=ahead["eta_expected"].fillna(ahead["eta_earliest"]))
    soon = soon.sort_values(["_k", "eta_earliest"], kind="stable").drop_duplicates(
        ["host", "metric"])
    return soon[cols].head(n).reset_index(drop=True)


def _urgent(f: pd.DataFrame, keep: int) -> pd.DataFrame:
    """The samples of the ``keep`` hosts per metric whose straight-line trend reaches the
    metric's warning threshold soonest (hosts moving away from it come last)."""
    from perfkit.catalog import find_metric

    t = (f["ts"] - f["ts"].min()).dt.total_seconds()
    g = f.assign(t=t, tv=t * f["value"], tt=t * t).groupby(["metric", "host"], sort=False)
    agg = g.agg(n=("t", "size"), st=("t", "sum"), sv=("value", "sum"), stv=("tv", "sum"),
                stt=("tt", "sum"), cur=("value", "last")).reset_index()
    var = agg["stt"] - agg["st"] ** 2 / agg["n"]
    slope = ((agg["stv"] - agg["st"] * agg["sv"] / agg["n"]) / var.where(var > 0)).fillna(0.0)
    keys = []
    for metric, a in agg.assign(slope=slope).groupby("metric", sort=False):
        m = find_metric(str(metric))
        warn = m.warning if m is not None else None
        if warn is None or len(a) <= keep:
            keys += [(metric, h) for h in a["host"]]
            continue
        sign = -1.0 if m is not None and m.direction == "lower" else 1.0
        gap = sign * (warn - a["cur"])
        rising = sign * a["slope"]
        eta = (gap / rising.where(rising > 0)).where(gap > 0)
        order = a.assign(_eta=eta.fillna(np.inf), _gap=gap).sort_values(["_eta", "_gap"])
        keys += [(metric, h) for h in order["host"].head(keep)]
    idx = pd.MultiIndex.from_arrays([f["metric"], f["host"]])
    return f[idx.isin(keys)]


@dataclass
class FleetPage:
    """What the fleet section shows: the overview, each fleet metric's spread, the soonest
    crossings, and per-section errors and timings (like :class:`perfkit.dashboard.Page`)."""

    generated_at: pd.Timestamp
    window: pd.Timedelta
    overview: pd.DataFrame
    spread: dict[str, pd.DataFrame] = field(default_factory=dict)
    crossings: pd.DataFrame = field(default_factory=pd.DataFrame)
    errors: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)


def _chart_frame(store: Any, since: pd.Timestamp, end: pd.Timestamp, td: pd.Timedelta
                 ) -> pd.DataFrame:
    """The fleet metrics over the window, one mean per host and rollup bucket (1 min up to
    two days, 1 h beyond), as a samples frame: thousands of rows, not millions."""
    every = "1min" if td <= pd.Timedelta("2D") else "1h"
    r = store.rollups(metric=list(FLEET_METRICS), since=since, until=end, labels="", every=every)
    return r[["ts", "host", "metric", "mean", "labels"]].rename(columns={"mean": "value"})


def build_fleet(store: Any, *, window: str | pd.Timedelta = "1h",
                horizon: str | pd.Timedelta = "1h", now: pd.Timestamp | None = None,
                stale_after: str | pd.Timedelta = "2min") -> FleetPage:
    """Read what the fleet section needs from ``store`` and compute it.

    Four reads, none of them per host or per raw sample of the fleet: each
    series' mean over its host's last 5 minutes (``Store.window_means`` from the
    1 min rollups, one grouped query: what the score reads), the known hosts, a day of alert
    events, and the :data:`FLEET_METRICS` over ``window`` from the 1 min
    rollups (1 h beyond two days) for the spread and crossing charts. A read
    that fails raises (the page shows the banner); a computation that fails is
    reported in ``errors``.
    """
    from perfkit.dashboard._build import _section
    from perfkit.dashboard._window import parse_window

    td, hz = parse_window(window), parse_window(horizon, "horizon")
    end = pd.Timestamp.now(tz="UTC") if now is None else now
    t0 = time.perf_counter()
    recent = store.window_means("5min", since=end - pd.Timedelta("6min"), until=end,
                                exact=False)
    known = store.hosts()
    events = store.alert_events(since=end - pd.Timedelta("24h"))
    charts = _chart_frame(store, end - td, end, td)
    page = FleetPage(end, td, pd.DataFrame())
    page.timings["load"] = time.perf_counter() - t0
    page.overview = _section(page, "overview", lambda: fleet_overview(  # type: ignore[arg-type]
        recent, events, now=end, stale_after=stale_after, hosts=known), pd.DataFrame())
    every = max(pd.Timedelta("1min"), (td / 120).ceil("min"))
    for metric in FLEET_METRICS:
        page.spread[metric] = _section(page, f"spread {metric}",  # type: ignore[arg-type]
                                       partial(fleet_spread, charts, metric, every),
                                       pd.DataFrame())
    fit = charts[charts["ts"] >= end - min(td, pd.Timedelta("30min"))] if len(charts) else charts
    page.crossings = _section(page, "crossings",  # type: ignore[arg-type]
                              lambda: fleet_crossings(fit, hz), pd.DataFrame())
    page.timings["total"] = time.perf_counter() - t0
    return page
