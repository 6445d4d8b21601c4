"""The fleet section of the page (Streamlit layout only): one row per host, fleet charts.

Numbers come from :func:`perfkit.dashboard.build_fleet`; this module only lays them
out. Choosing a row opens that host's page (the sidebar's host picker follows).
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from perfkit import plots
from perfkit.dashboard._fleet import FLEET_METRICS, FleetPage, build_fleet

__all__ = ["HOST_KEY", "OPEN_KEY", "fleet_section", "take_open_request"]

HOST_KEY = "host_choice"
"""Session key of the sidebar's host picker."""
OPEN_KEY = "fleet_open"
"""Session key a click in the fleet table leaves for the next run (widgets cannot be set
once drawn in the same run)."""

_STATUS_ICON = {"critical": "🔴 critical", "warning": "🟠 warning", "stale": "⚪ stale",
                "ok": "🟢 ok"}


def take_open_request() -> None:
    """Call before drawing the host picker: apply a host chosen in the fleet table."""
    if OPEN_KEY in st.session_state:
        st.session_state[HOST_KEY] = st.session_state.pop(OPEN_KEY)


def _last_good(key: tuple[Any, ...], page: FleetPage | None = None) -> FleetPage | None:
    kept: dict[tuple[Any, ...], FleetPage] = st.session_state.setdefault("fleet_pages", {})
    if page is not None:
        kept.clear()
        kept[key] = page
    return kept.get(key)


def fleet_section(store: Any, *, window: str, horizon: str) -> None:
    """The fleet overview: table (sort by any column, filter by name and status), the
    p95-latency and CPU spread across hosts, and the hosts forecast to cross soonest."""
    key = (str(getattr(store, "url", "")), window, horizon)
    page: FleetPage | None
    try:
        page = build_fleet(store, window=window, horizon=horizon)
        _last_good(key, page)
    except Exception as exc:  # noqa: BLE001 - a store that stops answering keeps the last page
        st.error(f"Store unreachable: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}. "
                 "The fleet view retries on every refresh; below is the last data it read.",
                 icon="🔌")
        page = _last_good(key)
        if page is None:
            return
    ov = page.overview
    counts = ov["status"].value_counts() if len(ov) else pd.Series(dtype=int)
    st.caption(f"{len(ov)} hosts · " + " · ".join(f"{counts.get(s, 0)} {s}" for s in
                                                  ("critical", "warning", "stale", "ok"))
               + f" · updated {page.generated_at:%H:%M:%S} UTC · built in "
               f"{page.timings.get('total', 0):.2f} s")
    c1, c2 = st.columns([3, 2])
    text = c1.text_input("Filter hosts", key="fleet_filter", placeholder="part of a host name")
    statuses = c2.multiselect("Status", list(_STATUS_ICON), default=[], key="fleet_status",
                              placeholder="every status")
    shown = ov
    if len(shown) and text.strip():
        shown = shown[shown["host"].str.contains(text.strip(), case=False, regex=False)]
    if len(shown) and statuses:
        shown = shown[shown["status"].isin(statuses)]
    table = shown.assign(status=shown["status"].map(_STATUS_ICON).fillna(shown["status"]),
                         last_seen=shown["last_seen"].dt.strftime("%H:%M:%S")) \
        if len(shown) else shown
    event = st.dataframe(
        table.drop(columns=["age_s"], errors="ignore"), hide_index=True, key="fleet_table",
        on_select="rerun", selection_mode="single-row", height=min(420, 38 + 35 * len(table)),
        column_config={"score": st.column_config.ProgressColumn(
            "score", min_value=0, max_value=100, format="%.0f"),
            "worst_cost": st.column_config.NumberColumn("points lost", format="%.1f")})
    rows = getattr(getattr(event, "selection", None), "rows", None) or []
    if rows:
        st.session_state[OPEN_KEY] = str(shown["host"].iloc[rows[0]])
        st.rerun()
    st.caption("Choose a row to open that host's page. A stale host stopped reporting: it has "
               "no score, it is not healthy.")
    cols = st.columns(len(FLEET_METRICS))
    for col, metric in zip(cols, FLEET_METRICS):
        col.plotly_chart(plots.fleet_spread_figure(page.spread.get(metric, pd.DataFrame()),
                                                   metric), key=f"fig_fleet_{metric}")
    st.subheader("Forecast to cross a threshold soonest")
    cr = page.crossings
    if "crossings" in page.errors:
        st.warning(page.errors["crossings"])
    elif len(cr):
        st.dataframe(cr.assign(eta_expected=cr["eta_expected"].astype(str),
                               eta_earliest=cr["eta_earliest"].astype(str)),
                     hide_index=True, key="fleet_crossings")
    else:
        st.success(f"No host is forecast to cross a threshold within {horizon}.")
    if page.errors:
        with st.expander(f"{len(page.errors)} fleet section(s) could not be computed"):
            st.json(page.errors)
