"""What the first visitor's page would wait for, done while ``perfkit dashboard`` starts.

The page's first run imports plotly, the analysis and the recommendation rules,
and builds its first figures (plotly loads its validators on first use): seconds
on a busy machine, spent before anything is shown. :func:`warm` does that work
once, in a thread the command starts next to the server, so the first browser
finds it done.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

__all__ = ["DEFAULT_HORIZON", "DEFAULT_REFRESH_S", "DEFAULT_WINDOW", "RECENT_S",
           "start_warming", "warm"]

log = logging.getLogger("perfkit.dashboard")

# The page's default controls: what a new visitor asks for first.
DEFAULT_WINDOW = "15min"
DEFAULT_HORIZON = "30min"
DEFAULT_REFRESH_S = 5.0
# A new visitor is shown a page built this recently at once (it says when it was
# built) while a fresh one is built for the next timed refresh.
RECENT_S = 30.0


def warm(rt: Any, *, window: str = DEFAULT_WINDOW, horizon: str = DEFAULT_HORIZON,
         refresh_s: float = DEFAULT_REFRESH_S, wait_s: float = 10.0) -> Any:
    """Build ``rt``'s first page (the default selection's: the first listed host) and the
    figures of its first screen; returns that page (None when it could not be built).
    The page, its figures with it, stays in ``rt.pages`` for the first visitor.

    Waits up to ``wait_s`` for the embedded Monitor's first collection, so the
    forecasts, the score and the recommendation rules run on real samples (an
    empty window skips them). A failure is logged and ignored: the page itself
    reports what it cannot compute.
    """
    t0 = time.perf_counter()
    page = None
    try:
        from perfkit.dashboard import _sections as sections
        from perfkit.dashboard._page import GROUP_ORDER

        mon = rt.monitor
        end = time.monotonic() + wait_s
        while mon is not None and mon.collections == 0 and time.monotonic() < end:
            time.sleep(0.1)
        hosts = rt.hosts()
        page, _ = rt.page(window=window, horizon=horizon, host=hosts[0] if hosts else None,
                          refresh_s=refresh_s)
        if page is not None:
            # the figures of the first screen (the first tab's), kept on the page for the
            # first visitor, once each to JSON: plotly loads its validators and encoders
            # on first use
            first = sections.group_metrics(page, GROUP_ORDER[0])
            sections.timeline_svg(page)
            for name in first:
                sections.metric_svg(page, name)
            figs = [sections.timeline_figure(page), sections.actions_figure(page),
                    *(sections.metric_figure(page, name) for name in first)]
            for fig in figs:
                fig.to_json()
    except Exception:
        log.debug("warming the first page failed", exc_info=True)
    log.debug("first page warmed in %.2f s", time.perf_counter() - t0)
    return page


def start_warming(rt: Any) -> threading.Thread:
    """Run :func:`warm` on ``rt`` in a daemon thread (started here) and return it."""
    thread = threading.Thread(target=warm, args=(rt,), name="perfkit-dashboard-warm",
                              daemon=True)
    thread.start()
    return thread
