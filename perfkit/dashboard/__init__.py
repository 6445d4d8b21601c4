"""The logic behind the dashboard page, usable from notebooks too.

:data:`SCRIPT` (run by ``perfkit dashboard`` and by the checkout's ``app.py``) only lays out
what these functions return: the window's samples
(:class:`WindowLoader`, incremental), display downsampling
(:func:`downsample`), every section of the page (:func:`build_page`), the
per-tick cache shared by sessions (:class:`PageCache`), the fleet overview
(:func:`fleet_overview`, :func:`fleet_spread`, :func:`fleet_crossings`), the store banner
(:func:`probe_store`) and the server's Monitor/demo (:class:`Runtime`).
"""

from pathlib import Path

from perfkit._downsample import DEFAULT_POINTS, downsample, downsample_series
from perfkit.dashboard._access import HOST_ENV, TOKEN_ENV, Access, access_from_env
from perfkit.dashboard._build import build_page
from perfkit.dashboard._crossings import already_past
from perfkit.dashboard._fleet import (
    FLEET_METRICS,
    FleetPage,
    build_fleet,
    fleet_crossings,
    fleet_overview,
    fleet_spread,
)
from perfkit.dashboard._page import GROUP_ORDER, HORIZONS, MIN_HISTORY, Page, fit_window
from perfkit.dashboard._pagecache import PageCache
from perfkit.dashboard._runtime import (
    EMBEDDED_ENV,
    ActionTicket,
    Runtime,
    open_runtimes,
    resolve_mode,
    shared_runtime,
)
from perfkit.dashboard._state import (
    ARROWS,
    STATE_RULE,
    action_rows,
    alert_table,
    costly_metrics,
    metric_overview,
)
from perfkit.dashboard._status import StoreStatus, failed_status, probe_store
from perfkit.dashboard._warm import (
    DEFAULT_HORIZON,
    DEFAULT_REFRESH_S,
    DEFAULT_WINDOW,
    RECENT_S,
    start_warming,
)
from perfkit.dashboard._window import WINDOWS, WindowLoader, load_window, parse_window

#: The Streamlit script of the page, inside the installed package.
SCRIPT = Path(__file__).with_name("_app.py")

__all__ = [
    "ARROWS",
    "DEFAULT_HORIZON",
    "DEFAULT_POINTS",
    "DEFAULT_REFRESH_S",
    "DEFAULT_WINDOW",
    "EMBEDDED_ENV",
    "FLEET_METRICS",
    "GROUP_ORDER",
    "HORIZONS",
    "HOST_ENV",
    "MIN_HISTORY",
    "RECENT_S",
    "SCRIPT",
    "STATE_RULE",
    "TOKEN_ENV",
    "WINDOWS",
    "Access",
    "ActionTicket",
    "FleetPage",
    "Page",
    "PageCache",
    "Runtime",
    "StoreStatus",
    "WindowLoader",
    "access_from_env",
    "action_rows",
    "alert_table",
    "already_past",
    "build_fleet",
    "build_page",
    "costly_metrics",
    "downsample",
    "downsample_series",
    "failed_status",
    "fit_window",
    "fleet_crossings",
    "fleet_overview",
    "fleet_spread",
    "load_window",
    "metric_overview",
    "open_runtimes",
    "parse_window",
    "probe_store",
    "resolve_mode",
    "shared_runtime",
    "start_warming",
]
