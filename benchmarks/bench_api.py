"""Prometheus exposition: perfkit vs prometheus_client on the same latest values, same run.

    python benchmarks/bench_api.py

For 100, 1,000 and 10,000 series (host x metric x endpoint label) it times

* rendering the text from the latest-values frame: ``perfkit.prometheus.render``
  against a prometheus_client custom collector (``GaugeMetricFamily`` per metric)
  rendered by ``generate_latest`` — the usual way to export values you already hold;
* a whole scrape over HTTP (ASGI, in process): perfkit's ``GET /metrics``, which
  also queries the SQLite store for the latest values, against
  ``prometheus_client.make_asgi_app`` serving the same collector from memory.

Best of 5 runs each; ratios are perfkit / prometheus_client (below 1 is faster).
"""

from __future__ import annotations

import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from functools import partial

import pandas as pd
from prometheus_client import CollectorRegistry, generate_latest, make_asgi_app
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

warnings.filterwarnings("ignore", category=DeprecationWarning)

from fastapi.testclient import TestClient

import perfkit.api
from perfkit.frames import parse_labels
from perfkit.monitor import Monitor
from perfkit.prometheus import prometheus_name, render

METRICS = ["application.api_response_time", "application.api_response_time.p95",
           "application.requests_per_second", "application.error_rate",
           "database.query_time", "system.cpu_usage", "system.memory_usage",
           "cache.hit_rate", "process.rss", "database.checked_out"]
REPEAT = 5


def latest_frame(n_series: int) -> pd.DataFrame:
    """``n_series`` distinct (host, metric, labels) rows, as ``Store.latest()`` returns them."""
    now = pd.Timestamp.now(tz="UTC")
    rows = []
    for i in range(n_series):
        host, metric = f"web-{i // 500}", METRICS[i % len(METRICS)]
        rows.append((now, host, metric, float(i % 97) + 0.5,
                     f"endpoint=GET /e{(i // len(METRICS)) % 50}"))
    return pd.DataFrame(rows, columns=["ts", "host", "metric", "value", "labels"])


class FrameCollector(Collector):
    """prometheus_client's idiom for exporting values held elsewhere."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame

    def collect(self) -> Iterator[GaugeMetricFamily]:
        for metric, g in self.frame.groupby("metric", sort=True):
            labels = [parse_labels(x) for x in g["labels"]]
            keys = sorted({k for d in labels for k in d})
            fam = GaugeMetricFamily(prometheus_name(metric), metric,
                                    labels=["host", *keys])
            for host, d, value in zip(g["host"], labels, g["value"]):
                fam.add_metric([host, *(d.get(k, "") for k in keys)], float(value))
            yield fam


def best(fn: Callable[[], object]) -> float:
    out = []
    for _ in range(REPEAT):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return min(out)


def main() -> None:
    print(f"{'series':>7} | {'render perfkit':>14} | {'render prom_client':>18} | {'ratio':>5} | "
          f"{'scrape perfkit':>14} | {'scrape prom_client':>18} | {'ratio':>5}")
    print("-" * 100)
    for n in (100, 1_000, 10_000):
        frame = latest_frame(n)
        registry = CollectorRegistry()
        registry.register(FrameCollector(frame))
        r_pk = best(partial(render, frame))
        r_pc = best(partial(generate_latest, registry))
        with tempfile.TemporaryDirectory() as tmp:
            mon = Monitor(f"sqlite:///{tmp}/bench.db", host="bench")
            mon.store.write(frame)
            mon.store.flush()
            pk = TestClient(perfkit.api.app(mon, token=""))
            pc = TestClient(make_asgi_app(registry))
            assert pk.get("/metrics").status_code == pc.get("/").status_code == 200
            s_pk = best(partial(pk.get, "/metrics"))
            s_pc = best(partial(pc.get, "/"))
            mon.store.close()
        print(f"{n:>7} | {r_pk * 1e3:>11.2f} ms | {r_pc * 1e3:>15.2f} ms | {r_pk / r_pc:>5.2f} | "
              f"{s_pk * 1e3:>11.2f} ms | {s_pc * 1e3:>15.2f} ms | {s_pk / s_pc:>5.2f}")


if __name__ == "__main__":
    main()
