"""The dashboard page, run by Streamlit: ``perfkit dashboard`` (or ``streamlit run app.py``).

This file only lays out the page. Every figure comes from ``perfkit.plots``,
every number from ``perfkit.dashboard`` (the same perfkit functions a notebook
calls) and every section from ``perfkit.dashboard._sections``. Nothing typed into
the page is run as code or SQL: the action buttons name registered actions, and
the store URL box (off unless the operator enables it) opens only allowed stores.
Beyond localhost, anything that acts needs the server's token.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

try:
    import streamlit as st
except ModuleNotFoundError as exc:  # pragma: no cover - depends on the install
    from perfkit.errors import extra_error

    raise extra_error(exc, "dashboard", "perfkit dashboard") from exc

from perfkit.dashboard import (
    DEFAULT_HORIZON,
    DEFAULT_REFRESH_S,
    DEFAULT_WINDOW,
    HORIZONS,
    RECENT_S,
    WINDOWS,
    Runtime,
    access_from_env,
    failed_status,
    resolve_mode,
    shared_runtime,
)
from perfkit.dashboard import _sections as sections
from perfkit.dashboard._fleet_view import HOST_KEY, fleet_section, take_open_request
from perfkit.store._engine import mask

st.set_page_config(page_title="perfkit", page_icon="📈", layout="wide")

REFRESH = {"2 s": 2.0, "5 s": 5.0, "10 s": 10.0, "30 s": 30.0, "off": None}

# Streamlit fades a fragment's elements while it reruns (after 0.5 s): its element
# containers (data-stale) and, styled apart, expanders and tab bars. With timed refreshes
# that fade is a flicker every few seconds over content about to be replaced in place.
st.html("<style>div[data-stale='true'],.stExpander :is(details,summary,summary *),"
        ".stTabs :is([role=tablist],[role=tab]:not([data-disabled]))"
        "{opacity:1 !important;transition:none !important}"
        ".st-key-plotly_preload{position:absolute;width:1px;height:1px;overflow:hidden;"
        "opacity:0;pointer-events:none}</style>")


@st.cache_resource(show_spinner="Starting perfkit: store, Monitor and demo service…")
def runtime(store_url: str | None, embedded: bool) -> Runtime:
    """One Runtime per server and store URL, shared by every session and rerun."""
    return shared_runtime(store_url, embedded)


access = access_from_env(st.get_option("server.address"))

# -- sidebar: access, connection and controls ---------------------------------------------
st.sidebar.title("perfkit")
offered = None
if access.needs_token and access.token:
    offered = st.sidebar.text_input("Access token", type="password", key="access_token",
                                    max_chars=256, help="This dashboard is reachable from "
                                    "other machines: actions need the server's token.")
can_act = access.can_act(offered)
if access.needs_token and offered and not can_act:
    st.sidebar.error("That token is not this server's token.")

configured = os.environ.get("PERFKIT_STORE_URL") or None
store_url = configured
if access.url_box:
    typed = (st.sidebar.text_input(
        "Store URL", value=configured or "", key="store_url", max_chars=2000,
        placeholder="default: sqlite:///.perfkit/perfkit.db", disabled=not can_act,
        help="An existing perfkit store the operator allows (sqlite:///path.db, "
             "postgresql://user@host/db or a read-only prometheus://host:9090). Empty: the "
             "server's store.") or "").strip()
    if typed and typed != configured:
        try:
            store_url = access.check_url(typed)
        except ValueError as exc:
            st.sidebar.error(f"Not opened: {exc}")
else:
    st.sidebar.caption(f"Store: `{mask(configured) if configured else 'the default store'}`")
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
# The widgets are drawn after the main column (see the end): their lazily loaded
# frontend code (selectboxes, toggles: ~25 files) would otherwise be fetched before
# plotly.js and delay the first charts. Their values are read from the session first.
REFRESH_DEFAULT = next(k for k, v in REFRESH.items() if v == DEFAULT_REFRESH_S)
host_choice = st.session_state.get(HOST_KEY, host_options[0])
host = None if host_choice in (ALL, FLEET) else host_choice
window = st.session_state.get("window", DEFAULT_WINDOW)
horizon = st.session_state.get("horizon", DEFAULT_HORIZON)
refresh = REFRESH[st.session_state.get("refresh", REFRESH_DEFAULT)]


def sidebar_widgets() -> None:
    """The host and window selectors and the controls, below the connection lines."""
    st.sidebar.selectbox("Host", host_options, index=0, key=HOST_KEY)
    st.sidebar.selectbox("Time window", WINDOWS, index=WINDOWS.index(DEFAULT_WINDOW),
                         key="window")
    st.sidebar.selectbox("Forecast horizon", HORIZONS,
                         index=HORIZONS.index(DEFAULT_HORIZON), key="horizon",
                         help="How far predicted crossings look ahead "
                         "(while the history is short, four times the history). "
                         "Charts draw at most half their history ahead, so the past "
                         "keeps two thirds of each chart.")
    st.sidebar.selectbox("Refresh", list(REFRESH), key="refresh",
                         index=list(REFRESH.values()).index(DEFAULT_REFRESH_S))
    st.sidebar.subheader("Controls")

    def _control(label: str, key: str, state: bool, setter: Callable[[bool], None], enabled: bool,
                 help: str) -> None:
        # The widget shows the server's state (another session may have changed it) and acts
        # only when this user flips it, never by replaying a stale session value.
        st.session_state[key] = state
        st.sidebar.toggle(label, key=key, disabled=not (enabled and can_act),
                          help=help if can_act else access.locked_reason(),
                          on_change=lambda: setter(st.session_state[key]))

    viewer_help = ("Runs inside the services in viewer mode; open the dashboard without a "
                   "store URL.")
    _control("Monitoring", "ctl_monitoring", rt.monitoring, rt.set_monitoring, rt.embedded,
             "Collect this process's metrics every interval." if rt.embedded else viewer_help)
    _control("Automatic optimisation", "ctl_optimizing", rt.optimizing, rt.set_optimizing,
             rt.embedded, "Runs the recommended actions by priority, with cooldowns."
             if rt.embedded else viewer_help)
    if rt.demo is not None:
        _control("Demo workload", "ctl_demo", rt.demo_running, rt.set_demo, True,
                 "The prediction-market demo service's load generator.")
    if not can_act:
        st.sidebar.caption(f"🔒 {access.locked_reason()}")


# -- the live sections: each its own fragment, so a refresh redraws it in place ----------
# A full run is a visitor's doing. A new session (a page load) is shown a page built
# within RECENT_S at once (its timed refreshes too, while a fresh one is built behind);
# a later full run (a sidebar change) shows the store as it is now. Timed refreshes
# rerun only the fragments and share the tick's page.
new_visit = not st.session_state.get("_visited") and refresh is not None
st.session_state["_visited"] = True
if not new_visit:
    rt.pages.invalidate()


def _page() -> tuple[Any, Any]:
    # stale_ok: a timed refresh shows the last built page at once and the next is built
    # in the background; a control change and an action (both invalidate) build in the
    # foreground
    return rt.page(window=window, horizon=horizon, host=host, refresh_s=refresh or 1.0,
                   stale_ok=refresh is not None, recent_s=RECENT_S if new_visit else None)


ctx = sections.Context(can_act=can_act, locked_reason=access.locked_reason(),
                       target_host=host or rt.host, act=rt.act, horizon=horizon,
                       preview=new_visit)


@st.fragment(run_every=refresh)
def status_line() -> None:
    page, status = _page()
    if not status.ok:
        st.error(status.message, icon="🔌")
    if page is None:
        st.info("Waiting for the first samples…")
        return
    if not len(page.frame):
        who = host or "any host"
        st.info(f"No samples from {who} in the last {window}. All-in-one mode fills it within "
                "a few seconds; a viewer needs a Monitor writing to this store.")
    demo = ""
    if rt.demo is not None and rt.demo.running:
        ds = rt.demo.status()
        demo = (f" · demo phase **{ds['phase']}** ({ds['remaining_s']:.0f} s left, "
                f"{ds['requests']} requests, {ds['errors']} failed)")
    st.caption(f"{len(page.frame):,} samples in the last {window} · updated "
               f"{page.generated_at:%H:%M:%S} UTC · built in {page.timings.get('total', 0):.2f} s"
               + demo)
    if page.errors:
        with st.expander("Sections that could not be computed", key="exp_errors"):
            st.json(page.errors)


def _section(key: str, draw: Callable[[Any], None]) -> None:
    def run() -> None:
        page, _ = _page()
        if page is not None:
            draw(page)
    st.fragment(run_every=refresh, key=key)(run)()


def fleet() -> None:
    """The fleet section, refreshing on its own like the host page."""
    fleet_section(rt.store, window=window, horizon=horizon)


if host_choice == FLEET:
    st.title("perfkit · fleet")
    st.fragment(run_every=refresh)(fleet)()
    sidebar_widgets()
    st.stop()

st.title("perfkit · service health")
status_line()
SECTIONS: dict[str, Callable[[Any], None]] = {
    "header": sections.header, "alerts": lambda p: sections.alerts(p, ctx),
    "recommendations": lambda p: sections.recommendations(p, ctx), "actions": sections.actions,
    "metrics": lambda p: sections.metrics(p, ctx)}
slots = {name: st.container() for name in SECTIONS}
# Laid out in that order, sent score and charts first: a first visit's browser starts on
# plotly.js and the first charts before it renders the sections below them.
for name in ("header", "metrics", "alerts", "recommendations", "actions"):
    with slots[name]:
        _section(name, SECTIONS[name])
if ctx.preview:
    sections.load_plotly()
sidebar_widgets()
