"""The page's sections, each drawn from one :class:`~perfkit.dashboard.Page` (Streamlit only here).

The script (``_app.py``) runs every section in its own ``st.fragment`` with the
same ``run_every``: a refresh redraws each section in place with stable keys,
never the whole page, so scroll position, the open tab and open expanders stay.
Every function here only lays out what the page computed; numbers are written
through :mod:`perfkit.dashboard._words`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from perfkit import plots
from perfkit.dashboard._crossings import already_past
from perfkit.dashboard._page import GROUP_ORDER, Page
from perfkit.dashboard._state import STATE_RULE, action_rows, alert_table, costly_metrics
from perfkit.dashboard._unusual import unusual_now
from perfkit.dashboard._words import (
    change_table,
    compare,
    evidence_table,
    fmt,
    fmt_age,
    fmt_seconds,
    record_of,
    typed_rows,
    verdict_sentence,
)
from perfkit.errors import PerfkitError

__all__ = ["Context", "actions", "actions_figure", "alerts", "group_metrics", "header",
           "load_plotly", "metric_figure", "metric_svg", "metrics", "recommendations",
           "timeline_figure", "timeline_svg"]

_ALERT_PREFIX = re.compile(r"^(warning|critical|advisory) alert: ")


@dataclass(frozen=True)
class Context:
    """What the sections need beyond the page: who may act, and how to act."""

    can_act: bool
    locked_reason: str
    target_host: str | None
    act: Callable[..., Any]
    horizon: str
    preview: bool = False
    """Draw this session's first metric charts as SVG (:func:`perfkit.plots.metric_svg`):
    they show before the browser has loaded plotly.js, which the sections below load;
    the next refresh draws the interactive charts. Only with timed refreshes."""


def timeline_figure(page: Page) -> Any:
    """The alert timeline's figure."""
    return page.figure("fig_alert_timeline", lambda: plots.alert_timeline_figure(
        page.alert_events, until=page.generated_at, x_range=page.history_range()))


def timeline_svg(page: Page) -> str:
    """:func:`timeline_figure` as SVG text (:func:`perfkit.plots.alert_timeline_svg`)."""
    return str(page.figure("svg_alert_timeline", lambda: plots.alert_timeline_svg(
        page.alert_events, until=page.generated_at, x_range=page.history_range())))


def load_plotly() -> None:
    """An empty plotly chart, out of sight, for a run whose charts are SVG: the browser
    loads plotly.js behind them, so the refresh that draws the interactive charts shows
    them at once instead of blank while plotly.js arrives."""
    st.container(key="plotly_preload").plotly_chart(go.Figure(), key="fig_preload")


def _first_draw(ctx: Context, section: str) -> bool:
    """Whether ``section`` draws SVG charts in this run: :attr:`Context.preview` and the
    section's first run in this session."""
    key = f"_live_{section}"
    first = ctx.preview and not st.session_state.get(key, False)
    st.session_state[key] = True
    return first


def actions_figure(page: Page) -> Any:
    """The action history's figure."""
    return page.figure("fig_actions", lambda: plots.action_history_figure(
        page.actions, x_range=page.history_range()))


def _chart_args(page: Page, name: str) -> dict[str, Any]:
    drawn = page.drawn_forecast(name)
    return {"forecast": page.forecasts if drawn else None, "x_range": page.chart_range(name),
            "note": page.chart_note(name) or "no data", "forecast_note": page.forecast_note(name),
            "phases": page.phases, "now": page.generated_at, "anomalies": page.anomalies}


def metric_figure(page: Page, name: str) -> Any:
    """``name``'s chart: its hosts' lines, thresholds, forecast when drawn, phases, anomalies."""
    return page.figure(f"fig_{name}", lambda: plots.metric_figure(
        page.display, name, **_chart_args(page, name)))


def metric_svg(page: Page, name: str) -> str:
    """:func:`metric_figure` as SVG text (:func:`perfkit.plots.metric_svg`)."""
    return str(page.figure(f"svg_{name}", lambda: plots.metric_svg(
        page.display, name, **_chart_args(page, name))))


def group_metrics(page: Page, group: str | None) -> list[str]:
    """The metrics of ``group``'s tab (None: the "Other" tab), in the page's order."""
    ov = page.overview.set_index("metric")
    return [m for m in page.metrics if (ov.loc[m, "group"] == group if group else
                                        ov.loc[m, "group"] not in GROUP_ORDER)]


def header(page: Page) -> None:
    """Score gauge, group scores, the metrics costing the most points, and the last change."""
    sc = page.score
    c1, c2, c3 = st.columns([1.1, 1.4, 1.3])
    overall = sc.overall if sc is not None else None
    statuses = set(page.overview["status"]) if len(page.overview) else set()
    worst = "critical" if "critical" in statuses else "warning" if "warning" in statuses \
        else None
    # SVG drawn here, not plotly charts: the top row shows before the browser has loaded
    # plotly.js (seconds on a first visit) and draws nothing on the first charts' path
    c1.container(key="gauge").markdown(plots.health_gauge_svg(overall, worst=worst),
                                       unsafe_allow_html=True)
    changed = page.changed
    if changed is not None:
        when, metric, status = changed
        c1.caption(f"State last changed at {when:%H:%M:%S} UTC: {metric} became {status}.",
                   help=STATE_RULE)
    if sc is None:
        c2.warning(page.errors.get("score", "no score"))
        return
    if overall is None:
        have = sorted(set(page.frame["metric"].astype(str))) if len(page.frame) else []
        c2.info("No score yet: none of the scored metrics (system, cache, database, "
                "application) has samples in this window"
                + (f"; this selection holds only {', '.join(have[:8])}." if have else "."))
    else:
        c2.container(key="groups").markdown(plots.group_scores_svg(sc.groups, sc.breakdown),
                                            unsafe_allow_html=True)
    c3.markdown("**Costing the most points**", help=STATE_RULE + " Points: 100 when better "
                "than warning, 75 at warning falling to 25 at critical, 0 beyond.")
    costly = costly_metrics(sc, overview=page.overview)
    # Lines, not a table: a narrow column would cut the long metric names. One
    # element, so a refresh never shows the previous run's extra lines greyed out.
    if len(costly):
        c3.markdown("\n\n".join(
            f"`{r.metric}` {fmt(r.value, r.unit)} · {r.status}"
            + (f" since {r.since:%H:%M:%S}" if pd.notna(r.since) else "")
            + f" · **−{r.cost:.1f}** points" for r in typed_rows(costly)))
    elif overall is not None:
        c3.caption("Nothing: every scored metric is within its thresholds.")
    if sc.missing:
        c3.caption("No data yet: " + ", ".join(sc.missing))


def alerts(page: Page, ctx: Context) -> None:
    """Active alerts, predicted crossings and the alert timeline."""
    preview = _first_draw(ctx, "alerts")
    c1, c2 = st.columns(2)
    with c1:
        st.subheader("Alerts", help=STATE_RULE)
        if "alerts" in page.errors:
            st.warning(f"Alerts unavailable: {page.errors['alerts']}")
        elif len(page.alerts):
            shown, recent = alert_table(page.alerts, overview=page.overview)
            if len(shown):
                st.markdown("\n\n".join(
                    f":{'red' if r.severity == 'critical' else 'orange'}[**{r.severity}**] "
                    f"{r.text} · {r.state} since {r.since:%H:%M:%S}"
                    for r in typed_rows(shown)))
            else:
                st.success("No active alerts.")
            if len(recent):
                st.caption("Recently resolved:  \n" + "  \n".join(recent["message"]))
        else:
            st.success("No alerts in this window.")
        unusual(page)
    with c2:
        st.subheader("Predicted crossings")
        cr = page.crossings
        if "crossings" in page.errors:
            st.warning(page.errors["crossings"])
        else:
            expected = cr[cr["expected"]] if len(cr) else cr
            possible = cr[~cr["expected"]] if len(cr) else cr
            for r in typed_rows(expected.head(6)):
                (st.error if r.severity == "critical" else st.warning)(r.text)
            if page.forecast_basis:
                st.info(page.forecast_basis)
            if page.crossings_wait == pd.Timedelta(0) and not len(expected):
                st.success(f"No threshold crossing expected within "
                           f"{fmt_age(page.crossing_reach)}.")
            past = already_past(page.overview)
            if past:
                st.caption("Already past (see Alerts):  \n" + "  \n".join(past))
            with st.expander("Possible within the forecast interval", key="exp_possible"):
                if len(possible):
                    for r in typed_rows(possible):
                        st.caption(r.text)
                else:
                    st.caption("None: even the pessimistic edge of every forecast stays "
                               "on the safe side.")
    if preview:
        st.container(key="svg_alert_timeline").markdown(timeline_svg(page),
                                                        unsafe_allow_html=True)
    else:
        st.plotly_chart(timeline_figure(page), key="fig_alert_timeline")


def unusual(page: Page) -> None:
    """The series whose anomaly episode is open now: metric, host, since, score, pattern."""
    st.subheader("Unusual now", help=UNUSUAL_HELP)
    if "anomalies" in page.errors:
        st.warning(f"Anomalies unavailable: {page.errors['anomalies']}")
        return
    now = unusual_now(page.anomalies)
    if len(now):
        st.markdown("\n\n".join(
            f"`{r.metric}`" + (f" `{r.labels}`" if r.labels else "") + f" on `{r.host}` · "
            f"since {r.since:%H:%M:%S} · score {r.score:.2f} · {r.pattern}"
            for r in typed_rows(now.head(8))))
        if len(now) > 8:
            st.caption(f"and {len(now) - 8} more series")
    else:
        ended = len(page.anomalies)
        st.caption("Nothing unusual now." + (f" {ended} anomaly episode(s) ended in this "
                                               "window (shaded on the charts)." if ended else
                                               " No anomaly episode recorded in this window "
                                               "(a Monitor scores every series it collects)."))


UNUSUAL_HELP = ("Each series the Monitor collects is scored online against its own past "
                "(perfkit.anomaly_scores); an episode opens when the score reaches the "
                "Monitor's anomaly_min_score and ends once it stays below (or its Monitor "
                "stops). Score: the episode's peak (so far, while open). The charts shade "
                "each episode.")


def _reason(r: Any) -> str:
    ev = r.evidence if isinstance(r.evidence, dict) else {}
    parts = [p for p in str(r.reason).split("; ") if not _ALERT_PREFIX.match(p)]
    head = ""
    if {"metric", "value", "threshold"} <= set(ev):
        said = compare(ev["metric"], float(ev["value"]), float(ev["threshold"]),
                       str(ev.get("severity", "warning")))
        head = f"{ev['metric']} is {said}. "
    rest = "; ".join(parts)
    return head + (rest[:1].upper() + rest[1:] + "." if rest else "")


def recommendations(page: Page, ctx: Context) -> None:
    """Recommended actions with Run / Dry-run, their evidence as a table."""
    st.subheader("Recommendations")
    recs = page.recommendations
    if "recommendations" in page.errors:
        st.warning(f"Recommendations unavailable: {page.errors['recommendations']}")
        return
    if not ctx.can_act:
        st.caption(f"🔒 {ctx.locked_reason}")
    if not len(recs):
        st.caption("Nothing to recommend: no rule matches the current data.")
    for r in typed_rows(recs):
        key = f"{r.action}_{r.target}"
        with st.container(border=True, key=f"rec_{key}"):
            c1, c2, c3 = st.columns([6, 1, 1])
            c1.markdown(f"**P{r.priority} · {r.action}** on `{r.target}` ({r.severity})  \n"
                        + _reason(r))
            with c1.expander("Evidence and parameters", key=f"exp_ev_{key}"):
                st.table(evidence_table(r.evidence).set_index("what"))
                if r.params:
                    st.table(evidence_table(r.params).rename(columns={"what": "parameter"})
                             .set_index("parameter"))
            params = dict(r.params)
            if isinstance(params.get("apply"), bool):
                # e.g. query_optimization only proposes its CREATE INDEX unless told to apply it
                params["apply"] = c1.checkbox("apply the proposed change", value=params["apply"],
                                              key=f"rec_apply_{key}", disabled=not ctx.can_act)
            for col, label, dry in ((c2, "Run", False), (c3, "Dry-run", True)):
                why = None if ctx.target_host else "choose one host to act on"
                if col.button(label, key=f"rec_{label}_{key}",
                              disabled=ctx.target_host is None or not ctx.can_act,
                              help=why if ctx.can_act else ctx.locked_reason):
                    try:
                        ticket = ctx.act(r.action, params, host=ctx.target_host, dry_run=dry)
                        st.session_state["last_ticket"] = ticket.message
                    except (ValueError, RuntimeError, PerfkitError) as exc:
                        st.session_state["last_ticket"] = f"refused: {exc}"
    if st.session_state.get("last_ticket"):
        st.info(st.session_state["last_ticket"])


def actions(page: Page) -> None:
    """The latest action's result in words and as a before/after table, then the history."""
    st.subheader("Action history")
    a = page.actions
    if "actions" in page.errors:
        st.warning(f"Action history unavailable: {page.errors['actions']}")
        return
    if not len(a):
        st.caption("No actions in this window yet: press Run or Dry-run on a recommendation, "
                   "or switch on automatic optimisation.")
        return
    latest = a.sort_values("id", ascending=False).iloc[0]
    with st.container(border=True, key="latest_action"):
        said = verdict_sentence(latest)
        box = st.success if latest.get("verdict") == "improved" else \
            st.error if latest.get("status") in ("failed", "rejected") or \
            latest.get("verdict") == "worse" else st.info
        box(f"#{latest['id']} · {said}")
        table = change_table(latest.get("before"), latest.get("after"),
                             dry_run=bool(latest.get("dry_run")))
        if len(table):
            st.table(table.set_index("measure"))
        detail: Any = latest.get("detail")
        found = evidence_table({k: v for k, v in detail.items() if k != "verdict_reason"}) \
            if isinstance(detail, dict) else evidence_table(None)
        if isinstance(detail, dict) and len(found):
            st.caption("What it found" + (f" ({detail['verdict_reason']})"
                                          if detail.get("verdict_reason") else ""))
            st.table(found.set_index("what"))
        with st.expander(f"Full record of #{latest['id']}", key="exp_record"):
            st.json(record_of(latest), expanded=True)
    rows = action_rows(a)
    for r in typed_rows(rows.head(5)):
        took = f" · {fmt_seconds(r.duration_s)}" if pd.notna(r.duration_s) else ""
        st.markdown(f"`#{r.id}` **{r.action}**{' (dry run)' if r.dry_run else ''} on `{r.host}` "
                    f"by {r.requested_by} — **{r.outcome}**{took}"
                    + (f" · {r.change}" if r.change else "")
                    + (f" · error: {r.error}" if r.error else ""))
    st.plotly_chart(actions_figure(page), key="fig_actions")
    with st.expander("Every action in this window", key="exp_actions"):
        st.dataframe(rows, hide_index=True, key="tbl_actions")


def _tile(page: Page, name: str, row: Any, *, preview: bool) -> None:
    status = row["status"]
    since = f" since {row['since']:%H:%M:%S}" if pd.notna(row["since"]) else ""
    several = bool(len(page.frame)) and page.frame["host"].nunique() > 1
    worst = f" · worst host {row['host']}" if several and row.get("host") else ""
    st.metric(f"{name} {row['arrow']}", fmt(row["current"], row["unit"]),
              delta=(f"{status}{since} · avg {fmt(row['average'], row['unit'])}{worst}"
                     if status != "missing" else None),
              delta_color="off", delta_arrow="off",
              help=f"Latest sample; trend {row['trend']}"
                   + (" (getting worse)" if row["bad_trend"] else "") + ". " + STATE_RULE)
    if preview:
        st.container(key=f"svg_{name}").markdown(metric_svg(page, name), unsafe_allow_html=True)
    else:
        st.plotly_chart(metric_figure(page, name), key=f"fig_{name}")


def metrics(page: Page, ctx: Context) -> None:
    """Metric tiles and charts by group; only the open tab is drawn (:attr:`Context.preview`:
    as SVG the first time in a session)."""
    preview = _first_draw(ctx, "metrics")
    st.subheader("Metrics")
    if len(page.forecasts) and page.forecast_reach < page.horizon:
        st.caption(f"Charts draw the forecast {fmt_age(page.forecast_reach)} ahead (half "
                   f"the history shown); predicted crossings look "
                   f"{fmt_age(page.crossing_reach)} ahead.")
    ov = page.overview.set_index("metric")
    labels = [g.capitalize() for g in GROUP_ORDER] + ["Other"]
    tabs = st.tabs(labels, key="metric_tab", on_change="rerun")
    for tab, group in zip(tabs, [*GROUP_ORDER, None]):
        if tab.open is False:
            continue
        with tab:
            names = group_metrics(page, group)
            if not names:
                st.caption("No other metrics in this window (custom metrics and process "
                           "metrics appear here).")
            for i in range(0, len(names), 2):
                cols = st.columns(2)
                for col, name in zip(cols, names[i:i + 2]):
                    with col:
                        _tile(page, name, ov.loc[name], preview=preview)
            if group in ("application", "database"):
                base = ("application.api_response_time" if group == "application"
                        else "database.query_time")
                st.plotly_chart(page.figure(f"fig_pct_{base}", partial(
                    plots.percentiles_figure, page.display, base, x_range=page.history_range())),
                    key=f"fig_pct_{base}")
