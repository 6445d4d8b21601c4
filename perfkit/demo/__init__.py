"""The demo: a small prediction-market service and a load generator for it.

``perfkit demo`` runs it headless; the dashboard starts it in-process when no
store is configured, so a first run shows perfkit working on live data::

    mon = perfkit.Monitor(interval=2)
    demo = perfkit.demo.Demo(mon, rate=20).start()
    mon.start()
"""

from perfkit.demo._load import DEFAULT_PHASES, PHASE_KINDS, LoadGenerator, Phase, PhaseStats
from perfkit.demo._runner import Demo
from perfkit.demo._service import CATEGORIES, MarketService, OrderRejected

__all__ = [
           "CATEGORIES",
           "DEFAULT_PHASES",
           "PHASE_KINDS",
           "Demo",
           "LoadGenerator",
           "MarketService",
           "OrderRejected",
           "Phase",
           "PhaseStats",
]
