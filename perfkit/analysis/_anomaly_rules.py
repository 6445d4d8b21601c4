"""Anomaly alert rules, sample by sample: the state machine behind ``AlertRule(kind="anomaly")``.

:func:`perfkit.alert_transitions` replays it over a history (:func:`anomaly_run`);
the Monitor keeps one :class:`AnomalyRuleRun` per rule and series and steps it
with its online anomaly states, so both give the same transitions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from perfkit._format import format_duration
from perfkit.analysis._anomaly import AnomalyState
from perfkit.analysis._input import Series

if TYPE_CHECKING:
    from perfkit.analysis._alerts import AlertRule

__all__ = ["AnomalyRuleRun", "anomaly_message", "anomaly_run"]


class AnomalyRuleRun:
    """One anomaly rule over one series, advanced sample by sample: O(1) per sample.

    It follows an :class:`~perfkit.analysis.AnomalyState` (which scores the
    samples) with an episode at the rule's ``min_score``, and runs the rule's
    pending / ``for_`` / ``keep_firing_for`` state machine on "an episode is
    open". :meth:`step` after each ``state.step`` returns the transition the
    sample caused (``'pending'``, ``'firing'``, ``'resolved'``) or None; the
    Monitor keeps one per rule and series, and :func:`alert_transitions`
    replays the same object, so both give the same transitions.
    """

    __slots__ = ("_clear", "_pend", "episode", "rule", "state")

    def __init__(self, rule: AlertRule, scorer: AnomalyState) -> None:
        self.rule = rule
        self.episode = scorer.follow(rule.min_score)
        self.state = "inactive"
        self._pend = 0
        self._clear: int | None = None

    def step(self, ts_ns: int) -> str | None:
        """The transition at the sample at ``ts_ns`` (just scored), if any."""
        open_ = self.episode.since is not None
        st = self.state
        if st in ("inactive", "resolved"):
            if not open_:
                return None
            if self.rule._for.value == 0:
                self.state, self._clear = "firing", None
            else:
                self.state, self._pend = "pending", ts_ns
            return self.state
        if st == "pending":
            if not open_:
                self.state = "resolved"
                return "resolved"
            if ts_ns - self._pend >= self.rule._for.value:
                self.state, self._clear = "firing", None
                return "firing"
            return None
        if open_:
            self._clear = None
            return None
        if self._clear is None:
            self._clear = ts_ns
        if ts_ns - self._clear >= self.rule._keep.value:
            self.state, self._clear = "resolved", None
            return "resolved"
        return None


def anomaly_run(s: Series, rule: AlertRule) -> list[tuple[int, str, float, str]]:
    """Transitions of an anomaly rule over one series, with the episode's peak score and
    pattern at each."""
    st = AnomalyState()
    run = AnomalyRuleRun(rule, st)
    out = []
    for i, (t, v) in enumerate(zip(s.ts.tolist(), s.values.tolist())):
        st.step(t, v)
        state = run.step(t)
        if state is not None:
            out.append((i, state, run.episode.peak_score, run.episode.peak_reason))
    return out


def anomaly_message(name: str, state: str, score: float, pattern: str, rule: AlertRule) -> str:
    """The alert message of an anomaly rule's transition (``name`` is metric{labels})."""
    if state == "firing":
        extra = f" for {format_duration(rule._for)}" if rule._for > pd.Timedelta(0) else ""
        return f"anomaly: {name} unusual ({pattern}, score {score:.2f}){extra}"
    if state == "pending":
        return (f"anomaly pending: {name} unusual ({pattern}, score {score:.2f}); fires after "
                f"{format_duration(rule._for)}")
    return f"anomaly resolved: {name} back to its usual behaviour"
