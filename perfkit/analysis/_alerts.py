"""Threshold alerts with Prometheus-style ``for``, ``keep_firing_for`` and hysteresis.

The state machine, per series (metric + labels) and severity, evaluated at every
sample in time order:

* **inactive → pending** at the first sample at or past the threshold (in the
  metric's bad direction). With ``for_ = 0`` it goes straight to **firing**.
* **pending → firing** at the first sample, still past the threshold, whose
  time is at least ``for_`` after the pending sample (Prometheus ``for``).
  A sample back on the good side first cancels the pending alert (recorded as
  ``resolved``).
* **firing** stays firing while the value is past ``threshold ∓ hysteresis``
  (for a ``higher`` metric: ``value >= threshold - hysteresis``). At the first
  sample beyond that margin the condition has *cleared*; the alert resolves at
  the first clear sample at least ``keep_firing_for`` after the clearing one
  (if the value comes back inside the margin meanwhile, the clock restarts).
  With ``keep_firing_for = 0`` it resolves at the clearing sample itself.
* **resolved → pending / firing** as from inactive.

Gaps between samples are not special: the rule sees the next sample whenever
it comes. Warning and critical are independent rules.

An **anomaly rule** (``AlertRule(metric, kind="anomaly", min_score=0.6, for_="1min")``)
runs the same state machine on "an anomaly episode is open" instead of
"the value is past a threshold": an episode opens at a sample whose online
anomaly score (:func:`perfkit.anomaly_scores`) is at least ``min_score`` and
ends after ``AnomalyParams.hold`` (10) samples in a row score below it. Its severity
is ``anomaly``, its value the episode's peak score and its threshold
``min_score``. It replaces a threshold rule of the same metric and labels.
A Monitor runs its anomaly rules on its online states (``AnomalyRuleRun`` in
``perfkit.analysis._anomaly_rules``,
O(1) per sample) instead of replaying its window; the transitions are the same
as this module's replay of the same samples.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import numpy as np
import pandas as pd

from perfkit._format import format_duration, format_value
from perfkit._time import Duration, as_timedelta
from perfkit.analysis._anomaly_rules import anomaly_message, anomaly_run
from perfkit.analysis._input import (
    SamplesLike,
    WhenLike,
    split_series,
    to_ns,
)
from perfkit.catalog import find_metric, get_metric
from perfkit.frames import format_labels

__all__ = [
    "ALERT_COLUMNS",
    "TRANSITION_COLUMNS",
    "AlertRule",
    "alert_transitions",
    "alerts",
    "resolve_rules",
]

TRANSITION_COLUMNS = ["ts", "metric", "labels", "severity", "state", "value", "threshold",
                      "message"]
ALERT_COLUMNS = ["metric", "labels", "severity", "state", "since", "value", "threshold",
                 "message"]


@dataclass(frozen=True)
class AlertRule:
    """An alert rule for one metric (and optionally one label set).

    ``warning`` / ``critical`` / ``direction`` default to the catalogue's.
    ``for_`` (pending time), ``keep_firing_for`` are durations (``"5min"``, a
    Timedelta or seconds); ``hysteresis`` is in the metric's unit. ``labels``
    (``{"endpoint": "GET /x"}`` or ``"endpoint=GET /x"``) targets one label set;
    without it the rule applies to the aggregate series. An unknown metric
    name raises ``ValueError`` listing close matches. ``kind="anomaly"`` fires on
    anomaly episodes scoring at least ``min_score`` (see the module docstring)
    instead of on thresholds.
    """

    metric: str
    warning: float | None = None
    critical: float | None = None
    direction: str | None = None
    for_: Duration | float = "0s"
    keep_firing_for: Duration | float = "0s"
    hysteresis: float = 0.0
    labels: object = None
    kind: str = "threshold"
    min_score: float = 0.5
    _for: pd.Timedelta = field(init=False, repr=False, compare=False, default=pd.Timedelta(0))
    _keep: pd.Timedelta = field(init=False, repr=False, compare=False, default=pd.Timedelta(0))

    def __post_init__(self) -> None:
        m = get_metric(self.metric)
        if self.kind not in ("threshold", "anomaly"):
            raise ValueError(f"kind must be 'threshold' or 'anomaly', got {self.kind!r}")
        ms = self.min_score
        if isinstance(ms, bool) or not isinstance(ms, (int, float)) or not 0 < ms < 1:
            raise ValueError(f"min_score must be a number between 0 and 1 (exclusive), got {ms!r}")
        if self.kind == "anomaly":
            if self.warning is not None or self.critical is not None:
                raise ValueError("an anomaly rule has no warning/critical thresholds; "
                                 "give min_score instead")
            # the episode flag is 'bad' when high; the metric's own direction does not apply
            object.__setattr__(self, "direction", "higher")
        d = self.direction if self.direction is not None else m.direction
        if d not in ("higher", "lower", "none"):
            raise ValueError(f"direction must be 'higher' or 'lower', got {d!r}")
        object.__setattr__(self, "direction", d)
        for name in ("warning", "critical"):
            v = getattr(self, name)
            if v is None and self.kind == "anomaly":
                continue
            if v is None:
                object.__setattr__(self, name, getattr(m, name))
            elif isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ValueError(f"{name} threshold must be a finite number, got {v!r}")
            else:
                object.__setattr__(self, name, float(v))
        h = self.hysteresis
        if isinstance(h, bool) or not isinstance(h, (int, float)) or not (h >= 0):
            raise ValueError(f"hysteresis must be a number >= 0, got {h!r}")
        object.__setattr__(self, "hysteresis", float(h))
        lab = self.labels
        if lab and not isinstance(lab, (str, Mapping)):
            raise TypeError("labels must be a mapping or a 'k=v,k=v' string, "
                            f"got {type(lab).__name__}")
        object.__setattr__(self, "labels", format_labels(lab) if lab else "")  # type: ignore[arg-type]
        object.__setattr__(self, "_for", as_timedelta(self.for_, "for_", allow_zero=True))
        object.__setattr__(self, "_keep", as_timedelta(self.keep_firing_for,
                                                             "keep_firing_for", allow_zero=True))

    def thresholds(self) -> list[tuple[str, float]]:
        """``(severity, threshold)`` pairs this rule evaluates."""
        if self.kind == "anomaly":
            return [("anomaly", float(self.min_score))]
        return [(s, getattr(self, s)) for s in ("warning", "critical")
                if getattr(self, s) is not None]


Rules: TypeAlias = "Iterable[AlertRule] | Mapping[str, AlertRule | Mapping[str, Any]]"
"""Alert rules: a list of :class:`AlertRule`, or ``{metric: {warning:, critical:, ...}}``."""


def _rule_from(metric: str, spec: AlertRule | Mapping[str, Any]) -> AlertRule:
    if isinstance(spec, AlertRule):
        return spec
    if not isinstance(spec, Mapping):
        raise TypeError(f"rule for {metric!r} must be a dict or AlertRule, "
                        f"got {type(spec).__name__}")
    kw = dict(spec)
    if "for" in kw:
        kw["for_"] = kw.pop("for")
    kw.pop("metric", None)
    return AlertRule(metric, **kw)


def resolve_rules(rules: Rules | None = None,
                  metrics: Iterable[str] = ()) -> dict[tuple[str, str], AlertRule]:
    """Catalogue defaults for ``metrics``, overridden by ``rules``; keyed by (metric, labels).

    ``rules`` is a list of :class:`AlertRule`, or a dict ``{metric: {warning:,
    critical:, for_: (or "for"), keep_firing_for:, hysteresis:, direction:, labels:}}``
    (a dict value may also be an AlertRule or a list of such dicts, one per label set).
    """
    out: dict[tuple[str, str], AlertRule] = {}
    for name in metrics:
        m = find_metric(name)
        if m is not None and m.direction in ("higher", "lower") and \
                (m.warning is not None or m.critical is not None):
            out[(name, "")] = AlertRule(name)
    if rules is None:
        return out
    if isinstance(rules, AlertRule):
        rules = [rules]
    items: list[AlertRule] = []
    if isinstance(rules, Mapping):
        for name, spec in rules.items():
            specs = spec if isinstance(spec, (list, tuple)) else [spec]
            items.extend(_rule_from(name, s) for s in specs)
    else:
        items = [r if isinstance(r, AlertRule) else _rule_from(r["metric"], r) for r in rules]
    for r in items:
        out[(r.metric, str(r.labels))] = r
    return out


def _worse(v: np.ndarray, thr: float, direction: str) -> np.ndarray:
    return v >= thr if direction == "higher" else v <= thr


def _run(ts: np.ndarray, v: np.ndarray, rule: AlertRule, severity: str,
         thr: float) -> list[tuple[int, str]]:
    """Yield (index, state) transitions of one rule over one series."""
    d = str(rule.direction)
    bad = _worse(v, thr, d)
    if not bad.any():
        return []
    margin = thr - rule.hysteresis if d == "higher" else thr + rule.hysteresis
    held = _worse(v, margin, d)
    f_ns, k_ns = rule._for.value, rule._keep.value
    out = []
    state, pend, clear = "inactive", 0, None
    i = int(np.argmax(bad))                   # nothing can happen before the first bad sample
    n = len(v)
    while i < n:
        t = ts[i]
        if state in ("inactive", "resolved"):
            if bad[i]:
                if f_ns == 0:
                    state = "firing"
                    clear = None
                else:
                    state = "pending"
                    pend = t
                out.append((i, state))
            else:                              # jump to the next bad sample
                nxt = np.argmax(bad[i:])
                if not bad[i + nxt]:
                    break
                i += int(nxt)
                continue
        elif state == "pending":
            if not bad[i]:
                state = "resolved"
                out.append((i, "resolved"))
            elif t - pend >= f_ns:
                state = "firing"
                clear = None
                out.append((i, "firing"))
        else:  # firing
            if held[i]:
                clear = None
            else:
                if clear is None:
                    clear = t
                if t - clear >= k_ns:
                    state = "resolved"
                    clear = None
                    out.append((i, "resolved"))
        i += 1
    return out


def _message(metric: str, lab: str, unit: str, severity: str, state: str, value: float,
             thr: float, rule: AlertRule) -> str:
    name = metric + (f"{{{lab}}}" if lab else "")
    op = ">=" if rule.direction == "higher" else "<="
    val, tv = format_value(value, unit), format_value(thr, unit)
    if state == "firing":
        extra = f" for {format_duration(rule._for)}" if rule._for > pd.Timedelta(0) else ""
        return f"{severity}: {name} {val} {op} {tv}{extra}"
    if state == "pending":
        wait = format_duration(rule._for)
        return f"{severity} pending: {name} {val} {op} {tv} (fires after {wait})"
    return f"{severity} resolved: {name} back to {val} (threshold {tv})"


def alert_transitions(frame: SamplesLike, rules: Rules | None = None, *,
                      now: WhenLike | None = None,
                      since: WhenLike | None = None) -> pd.DataFrame:
    """Every alert state change over the whole history in ``frame``.

    Columns ``ts, metric, labels, severity, state, value, threshold, message``,
    in time order; ``state`` is ``pending``, ``firing`` or ``resolved``. Rules
    default to the catalogue thresholds of the metrics present (aggregate
    series); see :func:`resolve_rules` for overrides and per-label rules.

    ``now`` ignores samples after it. ``since`` (a timestamp) still evaluates the
    whole history, so the state at ``since`` is right, but returns only the
    transitions after it — what a loop that evaluates every interval should
    store. (A history that starts mid-incident starts the state machine at its
    first sample, so give it at least ``for_`` + ``keep_firing_for`` of lead time.)
    """
    return transitions(frame, rules, now=now, since=since)


def transitions(frame: SamplesLike, rules: Rules | None = None, *,
                now: WhenLike | None = None, since: WhenLike | None = None,
                kinds: tuple[str, ...] = ("threshold", "anomaly")) -> pd.DataFrame:
    """:func:`alert_transitions` of the rules of ``kinds`` only (the Monitor evaluates its
    anomaly rules online, so it replays only the threshold rules)."""
    all_series = split_series(frame, labels=True)
    if now is not None:
        end = to_ns(now)
        all_series = [s.until(end) for s in all_series]
    rmap = resolve_rules(rules, {s.metric for s in all_series})
    rows = []
    for s in all_series:
        rule = rmap.get((s.metric, s.labels))
        if rule is None or rule.direction not in ("higher", "lower") or s.n == 0:
            continue
        if rule.kind == "anomaly":
            if "anomaly" not in kinds:
                continue
            name = s.metric + (f"{{{s.labels}}}" if s.labels else "")
            for i, state, peak, pattern in anomaly_run(s, rule):
                rows.append((pd.Timestamp(int(s.ts[i]), tz="UTC"), s.metric, s.labels, "anomaly",
                             state, peak, float(rule.min_score),
                             anomaly_message(name, state, peak, pattern, rule)))
            continue
        if "threshold" not in kinds:
            continue
        m = find_metric(s.metric)
        unit = m.unit if m else ""
        for sev, thr in rule.thresholds():
            for i, state in _run(s.ts, s.values, rule, sev, thr):
                rows.append((pd.Timestamp(int(s.ts[i]), tz="UTC"), s.metric, s.labels, sev, state,
                             float(s.values[i]), float(thr),
                             _message(s.metric, s.labels, unit, sev, state, float(s.values[i]),
                                      thr, rule)))
    out = pd.DataFrame(rows, columns=TRANSITION_COLUMNS)
    out["ts"] = pd.to_datetime(out["ts"], utc=True)
    if since is not None:
        out = out[out["ts"] > pd.Timestamp(to_ns(since), tz="UTC")]
    return out.sort_values(["ts", "metric", "labels", "severity"], kind="stable") \
        .reset_index(drop=True)


def alerts(frame: SamplesLike, rules: Rules | None = None, *,
           now: WhenLike | None = None) -> pd.DataFrame:
    """The current alert state per metric (+ labels) and severity.

    Evaluates the whole history with :func:`alert_transitions` and reports, for
    every rule that has ever left *inactive*, its latest state (``pending``,
    ``firing`` or ``resolved``), ``since`` (when it entered that state), the
    latest ``value`` of the series and the ``threshold``. Sorted firing first,
    then critical before warning.
    """
    return current(frame, rules, now=now)


def current(frame: SamplesLike, rules: Rules | None = None, *, now: WhenLike | None = None,
            kinds: tuple[str, ...] = ("threshold", "anomaly")) -> pd.DataFrame:
    """:func:`alerts` of the rules of ``kinds`` only (a Monitor takes its anomaly rules'
    states from its online states)."""
    tr = transitions(frame, rules, now=now, kinds=kinds)
    if tr.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in ALERT_COLUMNS}) \
            .astype({"since": "datetime64[ns, UTC]", "value": float, "threshold": float})
    last = tr.groupby(["metric", "labels", "severity"], sort=False).tail(1)
    latest = {(s.metric, s.labels): float(s.values[-1])
              for s in split_series(frame, labels=True) if s.n}
    if now is not None:
        end = to_ns(now)
        latest = {(s.metric, s.labels): float(s.until(end).values[-1])
                  for s in split_series(frame, labels=True) if s.until(end).n}
    out = pd.DataFrame({
        "metric": last["metric"].to_numpy(), "labels": last["labels"].to_numpy(),
        "severity": last["severity"].to_numpy(), "state": last["state"].to_numpy(),
        "since": last["ts"].to_numpy(),
        "value": [latest.get((m, lab), np.nan) for m, lab in zip(last["metric"], last["labels"])],
        "threshold": last["threshold"].to_numpy(), "message": last["message"].to_numpy(),
    })
    out["since"] = pd.to_datetime(out["since"], utc=True)
    return order_alerts(out)


def order_alerts(frame: pd.DataFrame) -> pd.DataFrame:
    """Current alert states (:data:`ALERT_COLUMNS`) firing first, then pending, then
    resolved; critical before warning before anomaly; then by metric and labels."""
    order = {"firing": 0, "pending": 1, "resolved": 2}
    sev = {"critical": 0, "warning": 1, "anomaly": 2}
    out = frame.assign(_o=frame["state"].map(order), _s=frame["severity"].map(sev)) \
        .sort_values(["_o", "_s", "metric", "labels"]).drop(columns=["_o", "_s"])
    return out.reset_index(drop=True)
