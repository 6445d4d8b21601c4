"""The Monitor's incremental anomaly scoring: one online state per collected series.

Each collection's samples advance their series' :class:`perfkit.analysis.AnomalyState`
by one step (O(1) per sample), and an episode opening or closing becomes an event
in the store's alert history, beside threshold alerts: ``severity='anomaly-episode'``,
``state`` 'firing' (start) or 'resolved' (end), ``value`` the score, ``threshold``
the ``min_score`` and ``message`` the pattern that broke. While an episode is open,
each rise of its peak by at least :data:`PEAK_STEP` repeats the start event (same
``ts``, the peak so far as ``value``), so a reader of the store sees the peak without
the Monitor's memory. :meth:`AnomalyWatch.close` ends every open episode (reason
"monitor stopped") when the Monitor stops, so none stays open in the store for ever.
Anomaly alert rules
(``AlertRule(kind="anomaly")``) follow the same states (one
:class:`perfkit.analysis._anomaly_rules.AnomalyRuleRun` per rule and series, O(1) per
sample) and add their transitions with ``severity='anomaly'``, as
:func:`perfkit.alert_transitions` gives them. The states live in memory: after a
restart each series warms up again.
"""

from __future__ import annotations

import math

import pandas as pd

from perfkit.analysis import AnomalyParams, AnomalyState
from perfkit.analysis._alerts import ALERT_COLUMNS, AlertRule
from perfkit.analysis._anomaly import DEFAULT
from perfkit.analysis._anomaly_rules import AnomalyRuleRun, anomaly_message

__all__ = ["ANOMALY_SEVERITY", "PEAK_STEP", "STOPPED", "AnomalyWatch"]

ANOMALY_SEVERITY = "anomaly-episode"
"""The ``severity`` of anomaly events in the store's alert history."""

PEAK_STEP = 0.01
"""How much an open episode's peak must rise before it is written again: scores are
shown to two decimals, and a ramping score would otherwise write every sample."""

STOPPED = "monitor stopped"
"""The ``message`` of an episode end written because its Monitor stopped or restarted."""

_EVENT_COLUMNS = ["ts", "metric", "labels", "severity", "state", "value", "threshold", "message"]

_Key = tuple[str, str]


class AnomalyWatch:
    """Online anomaly states of every series seen, keyed by (metric, labels)."""

    def __init__(self, min_score: float = 0.5, params: AnomalyParams = DEFAULT) -> None:
        AnomalyState(params, min_score=min_score)  # validates min_score now, not at first sample
        self.min_score = min_score
        self.params = params
        self.states: dict[_Key, AnomalyState] = {}
        self.runs: dict[_Key, AnomalyRuleRun] = {}
        self._written_peak: dict[_Key, float] = {}
        # per anomaly rule: its last transition (ts_ns, state, message, min_score) and the
        # series' latest value, so the current rule states need no replay of the history
        self._rule_last: dict[_Key, tuple[int, str, str, float]] = {}
        self._last_value: dict[_Key, float] = {}

    def _run_for(self, key: _Key, st: AnomalyState, rule: AlertRule | None
                 ) -> AnomalyRuleRun | None:
        run = self.runs.get(key)
        if run is not None and run.rule != rule:
            st.unfollow(run.episode)
            del self.runs[key]
            self._rule_last.pop(key, None)
            run = None
        if rule is None:
            return None
        if run is None:
            run = self.runs[key] = AnomalyRuleRun(rule, st)
        return run

    def update(self, frame: pd.DataFrame,
               rules: dict[_Key, AlertRule] | None = None) -> pd.DataFrame:
        """Advance the states by ``frame``'s samples (time order per series); return the
        episode start / end events and the transitions of ``rules`` (anomaly rules keyed
        by (metric, labels)) they caused, with the store's alert event columns."""
        events: list[tuple] = []
        if frame.empty:
            return _frame(events)
        rules = rules or {}
        f = frame.sort_values("ts", kind="stable")
        ts_ns = pd.DatetimeIndex(f["ts"]).as_unit("ns").asi8.tolist()
        for t, metric, labels, value in zip(ts_ns, f["metric"].tolist(), f["labels"].tolist(),
                                            f["value"].tolist()):
            key = (metric, labels)
            st = self.states.get(key)
            if st is None:
                st = self.states[key] = AnomalyState(self.params, min_score=self.min_score)
            run = self._run_for(key, st, rules.get(key)) if rules or self.runs else None
            before = st.since
            score, reason = st.step(t, float(value))
            if before is None and st.since is not None:
                events.append((t, metric, labels, ANOMALY_SEVERITY, "firing", score,
                               self.min_score, reason))
                self._written_peak[key] = score
            elif before is not None and st.since is None:
                events.append((t, metric, labels, ANOMALY_SEVERITY, "resolved", st.peak_score,
                               self.min_score, st.peak_reason))
                self._written_peak.pop(key, None)
            elif st.since is not None and \
                    st.peak_score >= self._written_peak.get(key, 0.0) + PEAK_STEP:
                events.append((st.since, metric, labels, ANOMALY_SEVERITY, "firing",
                               st.peak_score, self.min_score, st.peak_reason))
                self._written_peak[key] = st.peak_score
            if run is None:
                continue
            self._last_value[key] = float(value)
            if (state := run.step(t)) is not None:
                ep, rule = run.episode, run.rule
                name = metric + (f"{{{labels}}}" if labels else "")
                message = anomaly_message(name, state, ep.peak_score, ep.peak_reason, rule)
                events.append((t, metric, labels, "anomaly", state, ep.peak_score,
                               float(rule.min_score), message))
                self._rule_last[key] = (t, state, message, float(rule.min_score))
        return _frame(events)

    def close(self, ts: pd.Timestamp) -> pd.DataFrame:
        """End every open episode and firing anomaly rule at ``ts`` (reason
        :data:`STOPPED`) and forget all scoring states: a Monitor started again warms up
        anew (:meth:`rule_states` keeps the rules' last states, now resolved)."""
        t = int(pd.Timestamp(ts).as_unit("ns").value)
        events: list[tuple] = []
        for (metric, labels), st in self.states.items():
            if st.since is not None:
                events.append((t, metric, labels, ANOMALY_SEVERITY, "resolved", st.peak_score,
                               self.min_score, STOPPED))
        for (metric, labels), run in self.runs.items():
            if run.state in ("pending", "firing"):
                events.append((t, metric, labels, "anomaly", "resolved", run.episode.peak_score,
                               float(run.rule.min_score), STOPPED))
                self._rule_last[(metric, labels)] = (t, "resolved", STOPPED,
                                                     float(run.rule.min_score))
        self.states.clear()
        self.runs.clear()
        self._written_peak.clear()
        return _frame(events)

    def rule_states(self) -> pd.DataFrame:
        """The current state of every anomaly rule that has left 'inactive', with the
        columns of :func:`perfkit.analysis.alerts` (``value`` the series' latest value,
        ``since`` the last transition): read from the online states, no replay."""
        rows = []
        for key, (t, state, message, threshold) in self._rule_last.items():
            rows.append((key[0], key[1], "anomaly", state, t,
                         self._last_value.get(key, math.nan), threshold, message))
        out = pd.DataFrame(rows, columns=ALERT_COLUMNS)
        out["since"] = pd.to_datetime(out["since"], unit="ns", utc=True)
        return out.astype({"value": float, "threshold": float})

    def now(self, host: str = "") -> pd.DataFrame:
        """The series anomalous now (as :func:`perfkit.anomalies`), highest score first."""
        rows = [{"metric": m, "host": host, "labels": lab,
                 "since": pd.Timestamp(st.since, tz="UTC"), "score": st.peak_score,
                 "pattern": st.peak_reason}
                for (m, lab), st in self.states.items() if st.since is not None]
        out = pd.DataFrame(rows, columns=["metric", "host", "labels", "since", "score", "pattern"])
        out["since"] = pd.to_datetime(out["since"], utc=True)
        out["score"] = out["score"].astype(float)
        return out.sort_values(["score", "metric"], ascending=[False, True],
                               kind="stable").reset_index(drop=True)


def _frame(events: list[tuple]) -> pd.DataFrame:
    out = pd.DataFrame(events, columns=_EVENT_COLUMNS)
    out["ts"] = pd.to_datetime(out["ts"], unit="ns", utc=True)
    # typed when empty too: a concatenation of many updates keeps float columns
    return out.astype({"value": float, "threshold": float})
