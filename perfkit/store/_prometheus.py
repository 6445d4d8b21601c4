"""A read-only store over a Prometheus server: ``Store("prometheus://127.0.0.1:9090")``.

Reads speak the Prometheus HTTP API (``query_range``, ``series``, label values)
and return the samples-frame contract, so everything downstream (forecast,
score, alerts, the dashboard) works unchanged.

Names
    perfkit's own exposition names (``perfkit_system_cpu_usage``, what
    ``perfkit serve``'s ``/metrics`` exports) map back to catalogue names; a
    family shared by two perfkit names carries ``perfkit_metric``. Other
    metrics come from ``metrics={"system.cpu_usage": "<PromQL>"}``, for example
    ``100 * (1 - avg by (instance) (rate(node_cpu_seconds_total{mode="idle"}[1m])))``.
Hosts
    perfkit series use their ``host`` label (the host the exporter measured);
    everything else uses ``host_label`` (default ``instance``). The remaining
    labels, less ``job``, become the frame's ``labels``.
Steps and paging
    A read evaluates on the grid ``step``: at least ``step`` (default 15 s, the
    scrape interval Prometheus ships with), coarser when the window would
    need more than ``max_points`` (default 11,000) points per series; ranges of
    more than 11,000 points (Prometheus' own limit) are read in pages.
    ``since=None`` reads the last hour.
Faults
    Unreachable or 5xx: :class:`~perfkit.errors.StoreUnavailableError`; a query
    Prometheus refuses: ``PromQLError`` (an ``InvalidInputError``) quoting it.
    More than ``max_series`` series in one answer: the first ``max_series`` (by
    label set) are kept and a warning says how many were dropped. ``NaN`` and
    ``±Inf`` samples are not measurements: dropped and counted in ``health()``.
    Two series that land on the same (host, metric, labels) (one host scraped
    through two targets) keep the first by label set; the rest are counted.
    Timestamps are Prometheus' scrape times, so the hosts' clocks do not
    matter; ``until=None`` means the server's now (its offset from this
    machine's clock is ``health()["clock_offset_s"]``), so no future point is read.
Writes
    Samples reach Prometheus by scraping; alert events and the actions queue
    live in a SQL store given as ``actions_store=`` (or ``PERFKIT_ACTIONS_STORE_URL``;
    :mod:`perfkit.store._promside` hands them over).
    Without one, those writes raise :class:`~perfkit.errors.ReadOnlyStoreError`
    and their reads return empty frames.
"""

from __future__ import annotations

import logging
import os
import re
import time
import urllib.parse
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from perfkit.catalog import find_metric, unknown_name_error
from perfkit.catalog import metrics as catalog_metrics
from perfkit.errors import ConfigError
from perfkit.frames import empty_samples, format_labels
from perfkit.prometheus import prometheus_name
from perfkit.store import _rollups as rollups
from perfkit.store._engine import ENV_VAR
from perfkit.store._promhttp import MAX_POINTS, PromClient, base_url, pages, step_for
from perfkit.store._promopts import positive_int, read_map, seconds
from perfkit.store._promside import ActionsStoreSide
from perfkit.store._reads import label_filter, labels_match, names, window_means_of
from perfkit.store._store import Store
from perfkit.store._when import to_ns

__all__ = ["ACTIONS_ENV", "PrometheusStore"]

log = logging.getLogger("perfkit.store")

ACTIONS_ENV = "PERFKIT_ACTIONS_STORE_URL"
"""The SQL store for alert events and actions beside a Prometheus source, when not given."""

_OWN = '{__name__=~"perfkit_.+"}'
_DROP = ("__name__", "job", "perfkit_metric")
_OPTIONS = {"host_label", "step", "max_points", "max_series", "timeout", "page_points", "map"}


def _quote(v: str) -> str:
    return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'


class PrometheusStore(ActionsStoreSide, Store):
    """A read-only :class:`~perfkit.store.Store` over Prometheus (see the module docstring).

    Options come from keyword arguments or the URL's query string
    (``prometheus://h:9090?step=1s&host_label=instance``): ``host_label``,
    ``step``, ``max_points``, ``max_series`` (default 1,000), ``timeout``
    (seconds, default 10), ``page_points``, ``map`` (a JSON file of catalogue name →
    PromQL, so ``perfkit dashboard --store 'prometheus://…?map=FILE'`` gets a mapping);
    ``metrics`` maps catalogue names to PromQL (it wins over ``map``); ``actions_store``
    is a SQL store URL or Store.
    """

    def __init__(self, url: str | None = None, *, actions_store: str | Store | None = None,
                 metrics: Mapping[str, str] | None = None, **options: Any) -> None:
        if url is None:
            url = os.environ.get(ENV_VAR)
        if not isinstance(url, str):
            raise ConfigError("a Prometheus source needs a URL such as prometheus://HOST:9090")
        parts = urllib.parse.urlsplit(url)
        given = dict(urllib.parse.parse_qsl(parts.query))
        given.update({k: v for k, v in options.items() if v is not None})
        unknown = sorted(set(given) - _OPTIONS)
        if unknown:
            raise ConfigError(f"unknown Prometheus option(s) {unknown}; known: {sorted(_OPTIONS)}")
        self.url = url
        self.dialect = "prometheus"
        self.host = ""
        self.host_label = str(given.get("host_label", "instance"))
        self.step_s = seconds(given.get("step", "15s"), "step")
        self.max_points = positive_int(given.get("max_points", MAX_POINTS), "max_points")
        self.page_points = positive_int(given.get("page_points", MAX_POINTS), "page_points",
                                         MAX_POINTS)
        self.max_series = positive_int(given.get("max_series", 1000), "max_series")
        self.client = PromClient(base_url(url), seconds(given.get("timeout", 10), "timeout"))
        from_file = read_map(given["map"]) if "map" in given else {}
        self.mapping = self._check_mapping({**from_file, **(metrics or {})})
        if actions_store is None:
            actions_store = os.environ.get(ACTIONS_ENV) or None
        if isinstance(actions_store, str):
            if actions_store.startswith("prometheus"):
                raise ConfigError("actions_store must be a SQL store (sqlite:/// or "
                                  "postgresql://), not another Prometheus")
            actions_store = Store(actions_store)
        self.actions_store: Store | None = actions_store
        self._closed = False
        self._offset_s = 0.0
        self._offset_at = -1e9
        self.counters = {"non_finite_dropped": 0, "duplicates_dropped": 0, "series_capped": 0}

    @staticmethod
    def _check_mapping(mapping: Mapping[str, str]) -> dict[str, str]:
        bad = [k for k, v in mapping.items() if not isinstance(k, str) or not isinstance(v, str)
               or not v.strip()]
        if bad:
            raise ConfigError(f"metrics= maps a catalogue name to a PromQL expression (str to "
                              f"str); these entries are not: {bad}")
        return dict(mapping)

    def __repr__(self) -> str:
        return f"PrometheusStore({self.client.base!r})"

    # -- state --------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        """reachable, last_error, url, dialect ('prometheus'), clock_offset_s, the fault
        counters, and the actions store's health (None without one)."""
        side = self.actions_store.health() if self.actions_store is not None else None
        return {"reachable": self.client.reachable, "last_error": self.client.last_error,
                "url": self.client.base, "dialect": self.dialect, "buffered": 0, "dropped": 0,
                "written": 0, "clock_offset_s": self._offset_s, **self.counters,
                "actions_store": side}

    def _server_now_s(self) -> float:
        """Prometheus' clock now (its ``time()``), re-measured every 30 s."""
        local = time.time()
        if local - self._offset_at > 30:
            data = self.client.call("query", [("query", "time()")])
            rtt = time.time() - local
            self._offset_s = float(data["result"][0]) - (local + rtt / 2)
            self._offset_at = local
        return time.time() + self._offset_s

    # -- names --------------------------------------------------------------------------
    def _catalogue_names(self) -> dict[str, str]:
        return {prometheus_name(m.name): m.name for m in catalog_metrics()}

    def _metric_of(self, labels: Mapping[str, str], back: Mapping[str, str]) -> str:
        name = labels.get("__name__", "")
        return labels.get("perfkit_metric") or back.get(name) or name.removeprefix("perfkit_")

    def metric_names(self) -> list[str]:
        """Catalogue names of the perfkit series Prometheus holds, plus the mapped names."""
        self._open()
        back = self._catalogue_names()
        found = self.client.call("label/__name__/values", [("match[]", _OWN)]) or []
        shared = self.client.call("label/perfkit_metric/values", [("match[]", _OWN)]) or []
        out = {back.get(n, n.removeprefix("perfkit_")) for n in found} | set(shared)
        return sorted(out | set(self.mapping))

    def hosts(self) -> list[str]:
        """Hosts of the perfkit series (their ``host`` label) and of the mapped metrics."""
        self._open()
        out = set(self.client.call("label/host/values", [("match[]", _OWN)]) or [])
        if self.host_label != "host":
            bare = '{__name__=~"perfkit_.+",host=""}'
            out |= set(self.client.call(f"label/{self.host_label}/values",
                                        [("match[]", bare)]) or [])
        for expr in self.mapping.values():
            res = self.client.call("query", [("query", expr)])
            out |= {s["metric"].get(self.host_label, "") for s in res.get("result", [])}
        return sorted(h for h in out if h)

    # -- reading ------------------------------------------------------------------------
    def samples(self, metric: str | list[str] | None = None, host: str | list[str] | None = None,
                since: Any = None, until: Any = None, labels: str | Mapping[str, str] | None = None
                ) -> pd.DataFrame:
        """Samples as a contract frame sorted by ts (see the module docstring for steps)."""
        metrics, hosts = names(metric, "metric"), names(host, "host")
        lo, hi = to_ns(since, "since"), to_ns(until, "until")
        want = label_filter(labels)
        self._open()
        end = min(hi / 1e9, self._server_now_s()) if hi is not None else self._server_now_s()
        start = lo / 1e9 if lo is not None else end - 3600.0
        if start > end:
            return empty_samples()
        queries = self._queries(metrics, hosts)
        step = step_for(end - start, self.step_s, self.max_points)
        start = np.ceil(start / step) * step  # one grid for every read, so refreshes line up
        back = self._catalogue_names()
        parts = [self._range(expr, mapped, start, end, step, back) for expr, mapped in queries]
        frame = pd.concat([p for p in parts if len(p)], ignore_index=True) \
            if any(len(p) for p in parts) else empty_samples()
        if hosts is not None and len(frame):
            frame = frame[frame["host"].isin(hosts)]
        if want is not None and len(frame):
            frame = frame[[labels_match(lab, want) for lab in frame["labels"]]]
        if metrics is not None:
            self._check_known(metrics, frame)
            if len(frame):
                frame = frame[frame["metric"].isin(metrics)]
        return self._dedupe(frame)

    def _queries(self, metrics: list[str] | None, hosts: list[str] | None
                 ) -> list[tuple[str, bool]]:
        host_match = ""
        if hosts is not None:
            host_match = ",host=~" + _quote("|".join(re.escape(h) for h in hosts))
        if metrics is None:
            own = f'{{__name__=~"perfkit_.+"{host_match}}}'
            return [(own, False)] + [(e, True) for e in self.mapping.values()]
        out: list[tuple[str, bool]] = []
        for m in dict.fromkeys(metrics):
            if m in self.mapping:
                out.append((self.mapping[m], True))
            else:
                out.append((f'{{__name__="{prometheus_name(m)}"{host_match}}}', False))
        return out

    def _check_known(self, wanted: list[str], frame: pd.DataFrame) -> None:
        """A name neither catalogued, mapped nor held by Prometheus: ValueError, close matches."""
        found = set(frame["metric"]) if len(frame) else set()
        odd = [m for m in wanted if m not in found and m not in self.mapping
               and find_metric(m) is None]
        if odd:
            known = self.metric_names()
            for m in odd:
                if m not in known:
                    raise unknown_name_error("metric", m, sorted(
                        set(known) | set(self._catalogue_names().values())))

    def _range(self, expr: str, mapped: bool, start: float, end: float, step: float,
               back: Mapping[str, str]) -> pd.DataFrame:
        series: dict[tuple[tuple[str, str], ...], list[list[Any]]] = {}
        for s, e in pages(start, end, step, self.page_points):
            data = self.client.call("query_range", [
                ("query", expr), ("start", f"{s:.3f}"), ("end", f"{e:.3f}"),
                ("step", f"{step:g}"), ("timeout", f"{self.client.timeout:g}s")])
            for r in data.get("result", []):
                series.setdefault(tuple(sorted(r["metric"].items())), []).extend(r["values"])
        keys = sorted(series)
        if len(keys) > self.max_series:
            self.counters["series_capped"] += len(keys) - self.max_series
            log.warning("Prometheus query %r returned %d series; kept the first %d "
                        "(max_series); narrow the metric or host filter, or raise max_series",
                        expr, len(keys), self.max_series)
            keys = keys[:self.max_series]
        chunks = []
        for key in keys:
            lab = dict(key)
            vals = np.asarray(series[key], dtype=object)
            if not len(vals):
                continue
            v = vals[:, 1].astype(float)
            ok = np.isfinite(v)
            self.counters["non_finite_dropped"] += int((~ok).sum())
            if mapped:
                host, metric = lab.get(self.host_label, ""), next(
                    k for k, e in self.mapping.items() if e == expr)
            else:
                host = lab.get("host") or lab.get(self.host_label, "")
                metric = self._metric_of(lab, back)
            rest = {k: val for k, val in lab.items()
                    if k not in _DROP and k not in ("host", self.host_label)}
            ts = np.round(vals[ok, 0].astype(float) * 1e9).astype("int64")
            chunks.append(pd.DataFrame({"ts": ts, "host": host, "metric": metric,
                                        "value": v[ok], "labels": format_labels(rest)}))
        if not chunks:
            return empty_samples()
        out = pd.concat(chunks, ignore_index=True)
        out["ts"] = pd.to_datetime(out["ts"], unit="ns", utc=True)
        return out

    def _dedupe(self, frame: pd.DataFrame) -> pd.DataFrame:
        if not len(frame):
            return empty_samples()
        dup = frame.duplicated(["host", "metric", "labels", "ts"], keep="first")
        if dup.any():
            self.counters["duplicates_dropped"] += int(dup.sum())
            log.warning("Prometheus: %d sample(s) of series reported twice for the same host "
                        "(two targets exporting one host?) were dropped, keeping the first",
                        int(dup.sum()))
            frame = frame[~dup]
        frame = frame.sort_values(["ts", "host", "metric", "labels"], kind="stable",
                                  ignore_index=True)
        empty = empty_samples()
        return frame.astype({c: empty[c].dtype for c in ("host", "metric", "labels", "value")})

    def latest(self, host: str | None = None) -> pd.DataFrame:
        """The last sample of each (host, metric, labels) within Prometheus' 5-minute lookback."""
        frame = self.samples(host=host, since=pd.Timedelta("5min"))
        if not len(frame):
            return frame
        last = frame.groupby(["host", "metric", "labels"], sort=True).tail(1)
        return last.sort_values(["host", "metric", "labels"], ignore_index=True)

    def window_means(self, window: Any = "5min", *, since: Any = "6min", until: Any = None,
                     host: str | list[str] | None = None, exact: bool = True) -> pd.DataFrame:
        """:meth:`Store.window_means` over the samples read on the query grid (``exact``
        changes nothing: the grid is already Prometheus' downsampling)."""
        w = pd.Timedelta(window)
        if not w > pd.Timedelta(0):
            raise ValueError(f"window must be a positive duration such as '5min', got {window!r}")
        return window_means_of(self.samples(host=host, since=since, until=until, labels=""), w)

    def rollups(self, metric: str | list[str] | None = None, host: str | list[str] | None = None,
                since: Any = None, until: Any = None,
                labels: str | Mapping[str, str] | None = None, *, every: str = "1min"
                ) -> pd.DataFrame:
        """:meth:`Store.rollups` computed from the samples read (Prometheus' step already
        keeps a long window to at most ``max_points`` per series)."""
        rollups.level(every)
        return rollups.from_samples(self.samples(metric, host, since, until, labels), every)

    def rebuild_rollups(self, since: Any = None, until: Any = None) -> dict[str, int]:
        """Nothing to rebuild: the source computes rollups when read."""
        return {}

    def _open(self) -> None:
        if self._closed:
            raise RuntimeError(f"{self!r} is closed; open a new Store to read")

    def close(self) -> None:
        """Close the actions store (if any). Idempotent."""
        if not self._closed:
            self._closed = True
            if self.actions_store is not None:
                self.actions_store.close()
