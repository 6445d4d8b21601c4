"""The dashboard page, run by Streamlit: ``perfkit dashboard`` (or ``streamlit run app.py``).

This file only lays out the page. Every figure comes from ``perfkit.plots``
and every number from ``perfkit.dashboard`` (which calls the same perfkit
functions a notebook does). Nothing typed into the page is run as code or SQL:
the store URL opens a store, and the action buttons name registered actions.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

try:
    import streamlit as st
except ModuleNotFoundError as exc:  # pragma: no cover - depends on the install
    from perfkit.errors import extra_error

    raise extra_error(exc, "dashboard", "perfkit dashboard") from exc

from perfkit import plots
from perfkit._format import format_duration, format_value
from perfkit.dashboard import (
    GROUP_ORDER,
    HORIZONS,
    WINDOWS,
    Page,
    Runtime,
    action_rows,
    alert_table,
    costly_metrics,
    failed_status,
    resolve_mode,
)
from perfkit.dashboard._fleet_view import HOST_KEY, fleet_section, take_open_request
from perfkit.dashboard._page import typed_rows
from perfkit.errors import PerfkitError

st.set_page_config(page_title="perfkit", page_icon="📈", layout="wide")

REFRESH = {"2 s": 2.0, "5 s": 5.0, "10 s": 10.0, "30 s": 30.0, "off": None}


@st.cache_resource(show_spinner="Starting perfkit: store, Monitor and demo service…")
def runtime(store_url: str | None, embedded: bool) -> Runtime:
    """One Runtime per server and store URL, shared by every session and rerun."""
    return Runtime(store_url, embedded=embedded).open()


def _fmt(v: float, unit: str) -> str:
    return format_value(v, unit, missing="—")


# -- sidebar: connection and controls ------------------------------------------------------
configured = os.environ.get("PERFKIT_STORE_URL") or None
st.sidebar.title("perfkit")
url_in = st.sidebar.text_input("Store URL", value=configured or "",
                               placeholder="default: sqlite:///.perfkit/perfkit.db",
                               help="sqlite:///path.db, postgresql://user@host/db or a "
                                    "read-only prometheus://host:9090. "
                                    "Empty: the embedded default store.")
store_url = url_in.strip() or None
try:
    embedded = resolve_mode(store_url)
    rt = runtime(store_url, embedded)
except Exception as exc:  # noqa: BLE001 - a store that cannot be opened gets the banner
    st.error(failed_status(store_url, exc).message)

    @st.fragment(run_every=5)
    def _retry() -> None:
        st.caption("retrying every 5 s…")
        try:
            runtime(store_url, resolve_mode(store_url))
        except Exception:  # noqa: BLE001 - still down: keep the banner
            return
        st.rerun()

    _retry()
    st.stop()

st.sidebar.caption("**All-in-one**: this server runs a Monitor and the demo service."
                    if rt.embedded else "**Viewer**: reading a store other processes fill; "
                    "actions are queued for the selected host.")
try:
    hosts = rt.hosts()
except Exception:  # noqa: BLE001 - unreachable store: the banner below says so
    hosts = [rt.host] if rt.host else []
ALL = "all hosts"
FLEET = "fleet overview"
host_options = [*hosts, ALL] if hosts else [ALL]
if len(hosts) > 1:  # a viewer of a shared store opens on the fleet; all-in-one on its own host
    host_options = [*host_options, FLEET] if rt.embedded else [FLEET, *host_options]
take_open_request()
if st.session_state.get(HOST_KEY) not in (None, *host_options):
    del st.session_state[HOST_KEY]  # a host that left the store
host_choice = st.sidebar.selectbox("Host", host_options, index=0, key=HOST_KEY)
host = None if host_choice in (ALL, FLEET) else host_choice
window = st.sidebar.selectbox("Time window", WINDOWS, index=WINDOWS.index("15min"))
horizon = st.sidebar.selectbox("Forecast horizon", HORIZONS, index=HORIZONS.index("30min"))
refresh_label = st.sidebar.selectbox("Refresh", list(REFRESH), index=1)
refresh = REFRESH[refresh_label]

st.sidebar.subheader("Controls")


def _control(label: str, key: str, state: bool, setter: Callable[[bool], None], enabled: bool,
             help: str) -> None:
    # The widget shows the server's state (another session may have changed it) and acts
    # only when this user flips it, never by replaying a stale session value.
    st.session_state[key] = state
    st.sidebar.toggle(label, key=key, disabled=not enabled, help=help,
                      on_change=lambda: setter(st.session_state[key]))


viewer_help = "Runs inside the services in viewer mode; open the dashboard without a store URL."
_control("Monitoring", "ctl_monitoring", rt.monitoring, rt.set_monitoring, rt.embedded,
         "Collect this process's metrics every interval." if rt.embedded else viewer_help)
_control("Automatic optimisation", "ctl_optimizing", rt.optimizing, rt.set_optimizing,
         rt.embedded, "Runs the recommended actions by priority, with cooldowns."
         if rt.embedded else viewer_help)
if rt.demo is not None:
    _control("Demo workload", "ctl_demo", rt.demo_running, rt.set_demo, True,
             "The prediction-market demo service's load generator.")


# -- the live part of the page ---------------------------------------------------------------
def _recommendations(page: Page, rt: Runtime, host: str | None) -> None:
    st.subheader("Recommendations")
    recs = page.recommendations
    if "recommendations" in page.errors:
        st.warning(f"Recommendations unavailable: {page.errors['recommendations']}")
        return
    if not len(recs):
        st.caption("Nothing to recommend: no rule matches the current data.")
        return
    target_host = host or (rt.host if rt.host else None)
    r: Any  # a row of the recommendations frame
    for r in recs.itertuples():
        with st.container(border=True):
            c1, c2, c3 = st.columns([6, 1, 1])
            # the reason states the estimated impact and how it was computed
            c1.markdown(f"**P{r.priority} · {r.action}** on `{r.target}` — {r.reason}")
            with c1.expander("Evidence and parameters"):
                st.json({"evidence": r.evidence, "params": r.params}, expanded=False)
            params = dict(r.params)
            if isinstance(params.get("apply"), bool):
                # e.g. query_optimization only proposes its CREATE INDEX unless told to apply it
                params["apply"] = c1.checkbox("apply the proposed change", value=params["apply"],
                                              key=f"rec_apply_{r.action}_{r.target}")
            for col, label, dry in ((c2, "Run", False), (c3, "Dry-run", True)):
                if col.button(label, key=f"rec_{label}_{r.action}_{r.target}",
                              disabled=target_host is None,
                              help=None if target_host else "choose one host to act on"):
                    assert target_host is not None  # the button is disabled without one
                    try:
                        ticket = rt.act(r.action, params, host=target_host, dry_run=dry)
                        st.session_state["last_ticket"] = ticket.message
                    except (ValueError, RuntimeError, PerfkitError) as exc:
                        st.session_state["last_ticket"] = f"refused: {exc}"
    if st.session_state.get("last_ticket"):
        st.info(st.session_state["last_ticket"])


def _actions(page: Page) -> None:
    st.subheader("Action history")
    a = page.actions
    if "actions" in page.errors:
        st.warning(f"Action history unavailable: {page.errors['actions']}")
        return
    if not len(a):
        st.caption("No actions in this window yet: press Run or Dry-run on a recommendation, "
                   "or switch on automatic optimisation.")
        return
    rows = action_rows(a)
    r: Any  # a row of the action history
    for r in rows.head(5).itertuples():
        took = f" · {r.duration_s:.2f} s" if np.isfinite(r.duration_s) else ""
        st.markdown(f"`#{r.id}` **{r.action}**{' (dry run)' if r.dry_run else ''} on `{r.host}` "
                    f"by {r.requested_by} — **{r.outcome}**{took}"
                    + (f" · {r.change}" if r.change else "")
                    + (f" · error: {r.error}" if r.error else ""))
    c1, c2 = st.columns([1, 1])
    c1.plotly_chart(plots.action_history_figure(a, x_range=page.history_range()),
                    key="fig_actions")
    c2.dataframe(rows, hide_index=True, key="tbl_actions", height=300)


def _header(page: Page) -> None:
    sc = page.score
    c1, c2, c3 = st.columns([1.1, 1.4, 1.3])
    c1.plotly_chart(plots.health_gauge(sc.overall if sc is not None else None), key="fig_gauge")
    if sc is not None:
        c2.plotly_chart(plots.group_scores_figure(sc.groups, sc.breakdown), key="fig_groups")
        c3.markdown("**Costing the most points**", help="Each metric's mean over the last "
                    "5 minutes, its threshold level and the points it takes off the overall "
                    "score.")
        worst = costly_metrics(sc)
        # Lines, not a table: a narrow column would cut the long metric names. One
        # element, so a refresh never shows the previous run's extra lines greyed out.
        if len(worst):
            c3.markdown("\n\n".join(f"`{r.metric}` {_fmt(r.value, r.unit)} ({r.status}) · "
                                      f"**−{r.cost:.1f}** points" for r in typed_rows(worst)))
        else:
            c3.caption("Nothing: every metric is within its thresholds.")
        if sc.missing:
            c3.caption("No data yet: " + ", ".join(sc.missing))
    else:
        c2.warning(page.errors.get("score", "no score"))


def _alerts(page: Page) -> None:
    c1, c2 = st.columns(2)
    with c1:
        st.subheader("Alerts")
        if "alerts" in page.errors:
            st.warning(f"Alerts unavailable: {page.errors['alerts']}")
        elif len(page.alerts):
            shown, recent = alert_table(page.alerts)
            # lines in one element, not a table: a half-width table cuts long metric names
            if len(shown):
                st.markdown("\n\n".join(
                    f":{'red' if r.severity == 'critical' else 'orange'}[**{r.severity}**] "
                    f"{r.text} · {r.state} since {r.since:%H:%M:%S}" for r in shown.itertuples()))
            else:
                st.success("No active alerts.")
            if len(recent):
                st.caption("Recently resolved:  \n" + "  \n".join(recent["message"]))
        else:
            st.success("No alerts in this window.")
    with c2:
        st.subheader("Predicted crossings")
        cr = page.crossings
        if "crossings" in page.errors:
            st.warning(page.errors["crossings"])
        else:
            expected = cr[cr["expected"]] if len(cr) else cr
            possible = cr[~cr["expected"]] if len(cr) else cr
            for r in expected.head(6).itertuples():
                (st.error if r.severity == "critical" else st.warning)(r.message)
            wait = page.crossings_wait
            if wait > pd.Timedelta(0):
                st.info(f"Crossings are predicted once a metric has "
                        f"{format_duration(wait + page.history)} of history "
                        f"(about {format_duration(wait)} from now).")
            elif not len(expected):
                st.success(f"No threshold crossing expected within {horizon}.")
            if len(possible):
                with st.expander(f"{len(possible)} possible within the forecast interval"):
                    for r in possible.itertuples():
                        st.caption(r.message)


def _alert_timeline(page: Page) -> None:
    if len(page.alert_events):
        st.plotly_chart(plots.alert_timeline_figure(
            page.alert_events, until=page.generated_at, x_range=page.history_range()),
            key="fig_alert_timeline")


def _metrics(page: Page) -> None:
    ov = page.overview.set_index("metric")
    display = page.display
    tabs = st.tabs([g.capitalize() for g in GROUP_ORDER] + ["Other"])
    groups = [*GROUP_ORDER, None]
    for tab, group in zip(tabs, groups):
        with tab:
            names = [m for m in page.metrics if (ov.loc[m, "group"] == group if group else
                                                  ov.loc[m, "group"] not in GROUP_ORDER)]
            for i in range(0, len(names), 2):
                cols = st.columns(2)
                for col, name in zip(cols, names[i:i + 2]):
                    row: Any = ov.loc[name]  # one metric's row (a Series)
                    with col:
                        delta = row["current"] - row["average"]
                        col.metric(f"{name} {row['arrow']}", _fmt(row["current"], row["unit"]),
                                   delta=(f"{delta:+.2f} vs avg {_fmt(row['average'], row['unit'])}"
                                          if np.isfinite(delta) else None),
                                   delta_color="off",
                                   help=f"trend: {row['trend']}"
                                        + (" (getting worse)" if row["bad_trend"] else ""))
                        st.plotly_chart(plots.metric_figure(display, name,
                                                            forecast=page.forecasts,
                                                            x_range=page.chart_range(name)),
                                        key=f"fig_{name}")
            if group in ("application", "database"):
                base = ("application.api_response_time" if group == "application"
                        else "database.query_time")
                st.plotly_chart(plots.percentiles_figure(display, base,
                                                         x_range=page.history_range()),
                                key=f"fig_pct_{base}")


def live() -> None:
    """The part of the page that refreshes on its own."""
    # With refresh off a page is still recomputed on each rerun the user triggers.
    page, status = rt.page(window=window, horizon=horizon, host=host,
                           refresh_s=refresh or 1.0)
    if not status.ok:
        st.error(status.message, icon="🔌")
    if page is None:
        st.info("Waiting for the first samples…")
        return
    if not len(page.frame):
        st.info("No samples in this window yet. All-in-one mode fills it within a few seconds; "
                "a viewer needs a Monitor writing to this store.")
    demo = ""
    if rt.demo is not None and rt.demo.running:
        ds = rt.demo.status()
        demo = (f" · demo phase **{ds['phase']}** ({ds['remaining_s']:.0f} s left, "
                f"{ds['requests']} requests, {ds['errors']} failed)")
    st.caption(f"{len(page.frame):,} samples in the last {window} · updated "
               f"{page.generated_at:%H:%M:%S} UTC · built in {page.timings.get('total', 0):.2f} s"
               + demo)
    _header(page)
    _alerts(page)
    _alert_timeline(page)
    _recommendations(page, rt, host)
    _actions(page)
    st.subheader("Metrics")
    _metrics(page)
    if page.errors:
        with st.expander(f"{len(page.errors)} section(s) could not be computed"):
            st.json(page.errors)


def fleet() -> None:
    """The fleet section, refreshing on its own like the host page."""
    fleet_section(rt.store, window=window, horizon=horizon)


if host_choice == FLEET:
    st.title("perfkit · fleet")
    st.fragment(run_every=refresh)(fleet)()
else:
    st.title("perfkit · service health")
    st.fragment(run_every=refresh)(live)()
