"""Request rate, error rate and latency from a Recorder's interval."""

from __future__ import annotations

from perfkit.collectors._base import Reading
from perfkit.frames import format_labels
from perfkit.integrations._naming import cap_name
from perfkit.recorder import Histogram, Recorder

__all__ = ["ApplicationCollector", "latency_readings"]

_P = (50, 95, 99)


def _clean(name: str) -> str:
    # ',' and '=' separate labels; an endpoint such as "GET /x?a=1" must not split.
    return cap_name(name).replace(",", ";").replace("=", ":")


def latency_readings(metric: str, h: Histogram, labels: str = "") -> list[Reading]:
    """Mean and p50/p95/p99 of ``h`` in milliseconds (nothing when it is empty)."""
    if h.count == 0:
        return []
    out = [Reading(metric, h.total / h.count * 1000.0, labels)]
    out += [Reading(f"{metric}.p{p}", h.quantile(p) * 1000.0, labels) for p in _P]
    return out


class ApplicationCollector:
    """Turns the recorder's per-interval counts into ``application.*`` metrics.

    Reported overall (no labels) and per endpoint (``endpoint=<name>``). Once
    any request has been seen, an interval without requests reports a real
    ``requests_per_second`` of 0 and no latency or error rate (there was none).
    """

    name = "application"

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder

    def collect(self) -> list[Reading]:
        """Drain the recorder and return its readings, including user metrics."""
        iv = self.recorder.drain()
        out: list[Reading] = []
        for (metric, labels), values in iv.values.items():
            out.append(Reading(metric, sum(values) / len(values), labels))
        if not self.recorder.seen_requests:
            return out
        seconds = max(iv.seconds, 1e-9)
        groups = [("", iv.overall())]
        groups += [(format_labels({"endpoint": _clean(n)}), h)
                   for n, h in sorted(iv.endpoints.items())]
        for labels, h in groups:
            out.append(Reading("application.requests_per_second", h.count / seconds, labels))
            if h.count:
                out.append(Reading("application.error_rate", 100.0 * h.errors / h.count, labels))
            out += latency_readings("application.api_response_time", h, labels)
        return out
