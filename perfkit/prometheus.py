"""The store's latest values in the Prometheus text exposition format (version 0.0.4).

``system.cpu_usage`` becomes the gauge ``perfkit_system_cpu_usage``; each
sample's ``host`` and its labels (``endpoint=GET /x``) become Prometheus
labels. No prometheus_client needed to produce it: the format is a few lines
of text, and keeping the dependency out lets any store be scraped.
"""

from __future__ import annotations

import logging
import math
import re
from typing import Any

import pandas as pd

from perfkit._ratelog import RepeatLog
from perfkit._time import Duration, as_timedelta
from perfkit.catalog import find_metric
from perfkit.frames import parse_labels

__all__ = ["CONTENT_TYPE", "exposition", "parse_max_age", "prometheus_name", "render"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""The HTTP Content-Type Prometheus expects for the text format."""

_INVALID = re.compile(r"[^a-zA-Z0-9_]")


_repeats = RepeatLog(logging.getLogger("perfkit.prometheus"))


def prometheus_name(metric: str, prefix: str = "perfkit_") -> str:
    """``system.cpu_usage`` → ``perfkit_system_cpu_usage`` (only ``[a-zA-Z0-9_]``)."""
    return prefix + _INVALID.sub("_", metric)


def _label_name(key: str) -> str:
    name = _INVALID.sub("_", key) or "_"
    if name[0].isdigit():
        name = "_" + name
    # names starting with __ are reserved for Prometheus itself
    return "label" + name if name.startswith("__") else name


def _escape_value(v: str) -> str:
    return v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(v: str) -> str:
    return v.replace("\\", "\\\\").replace("\n", "\\n")


def _format_value(v: float) -> str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return repr(float(v))


def parse_max_age(max_age: Duration) -> pd.Timedelta:
    """``max_age`` as a positive ``Timedelta``; anything else raises
    :class:`perfkit.errors.InvalidInputError` (a ``ValueError``) saying what to pass."""
    return as_timedelta(max_age, "max_age")


def exposition(store: Any, *, host: str | None = None, max_age: str | pd.Timedelta | None = None,
               prefix: str = "perfkit_") -> str:
    """The latest value of every (host, metric, labels) series in ``store`` as exposition text.

    ``host`` limits it to one host (default: all hosts of the store);
    ``max_age`` drops series whose latest sample is older than that, so a host
    that stopped reporting disappears instead of showing a frozen value.
    """
    age = parse_max_age(max_age) if max_age is not None else None
    frame = store.latest(host=host)
    if age is not None and len(frame):
        cutoff = pd.Timestamp.now(tz="UTC") - age
        frame = frame[frame["ts"] >= cutoff]
    return render(frame, prefix=prefix)


def render(frame: pd.DataFrame, *, prefix: str = "perfkit_") -> str:
    """Exposition text for a samples frame holding one row per series (its latest value).

    A series that cannot be rendered (malformed labels written by an old version, a
    name that maps to nothing) is skipped rather than failing the whole scrape; the
    number skipped is exported as ``<prefix>exposition_skipped_series`` and logged.
    """
    if frame.empty:
        return ""
    names: dict[str, str] = {}
    rows = []
    skipped = 0
    for m, h, lab, v in zip(frame["metric"], frame["host"], frame["labels"], frame["value"]):
        try:
            fam = names[m] if m in names else names.setdefault(m, prometheus_name(m, prefix))
            pairs = {_label_name(k): val for k, val in parse_labels(str(lab)).items()}
            rows.append((fam, m, str(h), str(lab), float(v), pairs))
        except (ValueError, TypeError, KeyError) as exc:
            skipped += 1
            _repeats.log(logging.WARNING, f"render:{type(exc).__name__}",
                         "/metrics skipped series %s{%s}: %s", str(m)[:80], str(lab)[:80],
                         str(exc)[:200])
    rows.sort(key=lambda r: r[:5])
    sources: dict[str, list[str]] = {}
    for m, fam_name in names.items():
        sources.setdefault(fam_name, []).append(m)
    lines: list[str] = []
    family: str | None = None
    seen: set[tuple[tuple[str, str], ...]] = set()
    for fam, metric, host, _lab, value, labels in rows:
        shared = len(sources[fam]) > 1
        if fam != family:
            family, seen = fam, set()
            meta = None if shared else find_metric(metric)
            text = f"{meta.description} ({meta.unit})" if meta and meta.description else \
                f"perfkit metric {', '.join(sorted(sources[fam]))}"
            lines.append(f"# HELP {fam} {_escape_help(text)}")
            lines.append(f"# TYPE {fam} gauge")
        pairs = {"host": host}
        for k, v in labels.items():
            pairs.setdefault(k, v)
        if shared:  # two perfkit names mapped onto one family: keep them apart
            pairs["perfkit_metric"] = metric
        key = tuple(sorted(pairs.items()))
        if key in seen:  # a series may appear once per scrape
            continue
        seen.add(key)
        body = ",".join(f'{k}="{_escape_value(v)}"' for k, v in key)
        lines.append(f"{fam}{{{body}}} {_format_value(value)}")
    if skipped:
        fam = f"{prefix}exposition_skipped_series"
        lines += [f"# HELP {fam} Series of this scrape that could not be rendered (see the log)",
                  f"# TYPE {fam} gauge", f"{fam} {skipped}"]
    return "\n".join(lines) + "\n" if lines else ""
