"""perfkit's analysis layer: pure functions, a samples frame (or one Series) in, a frame out.

``trends`` / ``fit_summary``, ``forecast``, ``time_to_threshold``, ``predicted_alerts``,
``alerts``, ``alert_transitions``, ``AlertRule``, ``score`` / ``Score``, ``score_hosts``,
``summary`` and ``anomaly_scores`` / ``anomalies`` / ``AnomalyState``; the notebooks,
dashboard, HTTP API and Monitor all call these.
"""

from perfkit.analysis._alerts import AlertRule, alert_transitions, alerts, resolve_rules
from perfkit.analysis._anomaly import AnomalyParams, AnomalyState, anomalies, anomaly_scores
from perfkit.analysis._forecast import MAX_HISTORY_POINTS, MAX_HORIZON_STEPS, forecast
from perfkit.analysis._hosts import score_hosts
from perfkit.analysis._score import Score, score
from perfkit.analysis._shift import change_points, last_shift
from perfkit.analysis._summary import jsonable, summary
from perfkit.analysis._threshold import predicted_alerts, time_to_threshold
from perfkit.analysis._trend import fit_summary, trends

__all__ = [
           "MAX_HISTORY_POINTS",
           "MAX_HORIZON_STEPS",
           "AlertRule",
           "AnomalyParams",
           "AnomalyState",
           "Score",
           "alert_transitions",
           "alerts",
           "anomalies",
           "anomaly_scores",
           "change_points",
           "fit_summary",
           "forecast",
           "jsonable",
           "last_shift",
           "predicted_alerts",
           "resolve_rules",
           "score",
           "score_hosts",
           "summary",
           "time_to_threshold",
           "trends",
]
