"""The logic behind the dashboard page, usable from notebooks too.

``app.py`` only lays out what these functions return: the window's samples
(:class:`WindowLoader`, incremental), display downsampling
(:func:`downsample`), every section of the page (:func:`build_page`), the
per-tick cache shared by sessions (:class:`PageCache`), the store banner
(:func:`probe_store`) and the server's Monitor/demo (:class:`Runtime`).
"""

from perfkit.views.downsample import DEFAULT_POINTS, downsample, downsample_series
from perfkit.views.page import (ARROWS, action_rows, GROUP_ORDER, HORIZONS, Page, PageCache, build_page,
                                fit_window, metric_overview)
from perfkit.views.runtime import ActionTicket, Runtime, open_runtimes, resolve_mode
from perfkit.views.status import StoreStatus, failed_status, probe_store
from perfkit.views.window import WINDOWS, WindowLoader, load_window, parse_window

__all__ = ["action_rows", "downsample", "downsample_series", "DEFAULT_POINTS", "build_page", "metric_overview",
           "fit_window", "Page", "PageCache", "HORIZONS", "ARROWS", "GROUP_ORDER", "Runtime",
           "ActionTicket", "resolve_mode", "open_runtimes", "StoreStatus", "probe_store", "failed_status",
           "WindowLoader", "load_window", "parse_window", "WINDOWS"]
