"""The Monitor's alerts and anomaly episodes: the current alert states, and after each
collection the rule transitions and anomaly episode starts/ends written to the store.

A mixin of :class:`perfkit.Monitor` (kept apart so each file reads in one sitting); the
state it keeps (last stored state per rule, the online anomaly states) is set up in
``Monitor.__init__``.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from perfkit._anomaly_watch import AnomalyWatch
    from perfkit._time import Duration
    from perfkit.store import Store

log = logging.getLogger("perfkit.monitor")


class AlertBookkeeping:
    """Alert rules and anomaly episodes of :class:`perfkit.Monitor`."""

    store: Store
    host: str
    alert_rules: Any
    _lock: threading.RLock
    _alert_state: dict[tuple[str, str, str], tuple[pd.Timestamp, str]] | None
    _anomaly: AnomalyWatch
    _stale_closed: bool
    _first_scored: pd.Timestamp | None

    if TYPE_CHECKING:  # provided by Monitor
        def recent(self, window: Duration | None = None) -> pd.DataFrame: ...

    def alerts(self) -> pd.DataFrame:
        """Current alert states (rules: ``alert_rules``; columns as
        :func:`perfkit.analysis.alerts`): threshold rules evaluated over this Monitor's
        window, anomaly rules read from the online states that wrote their events (O(1)
        per rule, and the same states as the store's events, whereas a replay of the
        window would warm up anew at the window's start)."""
        from perfkit.analysis._alerts import current, order_alerts

        thresholds = current(self.recent(), self.alert_rules, kinds=("threshold",))
        with self._lock:
            anomaly = self._anomaly.rule_states()
        if not len(anomaly):
            return thresholds
        if not len(thresholds):
            return order_alerts(anomaly)
        return order_alerts(pd.concat([thresholds, anomaly], ignore_index=True))

    def _evaluate_alerts(self) -> None:
        # Replaying the window's history each interval keeps the pending / for /
        # hysteresis state in one pure function. The replay restarts at the
        # window's first sample, so it can re-detect an incident that is already
        # stored; an event is written only when it moves a rule past the last
        # stored state (read back from the store once, so restarts do not repeat).
        from perfkit.analysis._alerts import transitions

        if self._alert_state is None:
            self._alert_state = self._stored_alert_state()
        # anomaly rules run on the online states instead (see _score_anomalies)
        events = transitions(self.recent(), self.alert_rules, kinds=("threshold",))
        keep = []
        for i, (ts, metric, labels, sev, state) in enumerate(zip(
                events["ts"], events["metric"], events["labels"], events["severity"],
                events["state"])):
            last = self._alert_state.get((metric, labels, sev))
            if last is not None and (ts <= last[0] or state == last[1]
                                     or (last[1] == "firing" and state == "pending")):
                continue
            self._alert_state[(metric, labels, sev)] = (ts, state)
            keep.append(i)
        if keep:
            self.store.write_alert_events(events.iloc[keep].assign(host=self.host))

    def anomalies(self) -> pd.DataFrame:
        """This Monitor's series that are anomalous now (columns as :func:`perfkit.anomalies`)."""
        with self._lock:
            return self._anomaly.now(self.host)

    def _score_anomalies(self, frame: pd.DataFrame) -> None:
        from perfkit.analysis._alerts import resolve_rules

        rules = {k: r for k, r in resolve_rules(self.alert_rules).items() if r.kind == "anomaly"}
        if self._first_scored is None and len(frame):
            self._first_scored = frame["ts"].min()
        if not self._stale_closed and self._first_scored is not None:
            try:
                self._close_stale(self._first_scored)
            except Exception as exc:  # noqa: BLE001 - store down: try again next time, score now
                log.debug("open anomaly episodes of an earlier run not read: %s", exc)
        with self._lock:
            events = self._anomaly.update(frame, rules)
        if len(events):
            self.store.write_alert_events(events.assign(host=self.host))

    def _close_stale(self, first: pd.Timestamp) -> None:
        # A run of this host that died without stop() left its open episodes in the store;
        # this run's states start empty, so end them just before its first sample.
        from perfkit._anomaly_watch import ANOMALY_SEVERITY, STOPPED

        last = self.store.latest_alert_events(ANOMALY_SEVERITY, host=self.host)
        self._stale_closed = True
        # only what began before this run: a retry after an outage must not end its own
        stale = last[(last["state"] == "firing") & (last["ts"] < first)]
        if len(stale):
            self.store.write_alert_events(stale.assign(ts=first - pd.Timedelta(1, "ns"),
                                                       state="resolved", message=STOPPED))

    def _stored_alert_state(self) -> dict[tuple[str, str, str], tuple[pd.Timestamp, str]]:
        stored = self.store.alert_events(host=self.host)
        return {(m, lab, sev): (ts, state) for ts, m, lab, sev, state in zip(
            stored["ts"], stored["metric"], stored["labels"], stored["severity"], stored["state"])}
