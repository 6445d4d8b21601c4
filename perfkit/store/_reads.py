"""The read side: filter arguments, unknown-metric errors, and the queries behind
``Store.samples`` / ``latest`` / ``alert_events`` (each takes an open connection)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from perfkit.catalog import metrics as catalog_metrics
from perfkit.catalog import unknown_name_error
from perfkit.frames import empty_samples, format_labels, parse_labels
from perfkit.store import _fastio as fastio
from perfkit.store import _records as records
from perfkit.store import _schema as sc


def names(value: str | Iterable[str] | None, field: str) -> list[str] | None:
    """``value`` as a list of names (one str is one name); None means no filter."""
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    try:
        out = list(value)
    except TypeError:
        raise TypeError(f"{field} must be a str or a list of str, "
                        f"got {type(value).__name__}") from None
    if not all(isinstance(v, str) for v in out):
        raise TypeError(f"{field} must be a str or a list of str, got "
                        f"{sorted({type(v).__name__ for v in out if not isinstance(v, str)})}")
    return out


def label_filter(labels: str | Mapping[str, str] | None) -> dict[str, str] | None:
    """The ``k=v`` pairs a series must have; {} means unlabelled series only."""
    if labels is None:
        return None
    if isinstance(labels, Mapping):
        labels = format_labels(labels)
    if not isinstance(labels, str):
        raise TypeError("labels must be a 'k=v,k=v' string or a dict, "
                        f"got {type(labels).__name__}")
    try:
        return parse_labels(labels.strip())
    except ValueError:
        raise ValueError(f"labels={labels!r} is not a 'k=v,k=v' string (for example "
                         "'endpoint=GET /markets,status=200') or a dict") from None


def labels_match(stored: str, want: dict[str, str]) -> bool:
    if not want:
        return stored == ""
    have = parse_labels(stored)
    return all(have.get(k) == v for k, v in want.items())


def check_metrics(conn: sa.Connection, wanted: list[str], found: set[str],
                  extra: Iterable[str] = ()) -> None:
    """ValueError with close matches for a wanted metric neither catalogued nor stored."""
    catalogued = {m.name for m in catalog_metrics()}
    unknown = [m for m in wanted if m not in found and m not in catalogued]
    if unknown:
        stored = set(conn.execute(sa.select(sc.series.c.metric).distinct()).scalars())
        stored |= set(extra)
        for m in unknown:
            if m not in stored:
                raise unknown_name_error("metric", m, sorted(catalogued | stored))


def pick_series(conn: sa.Connection, metrics: list[str] | None, hosts: list[str] | None,
                want_labels: dict[str, str] | None) -> list[Any]:
    """(id, host, metric, labels) of the series matching the filters, by id."""
    s = sc.series
    q = sa.select(s.c.id, s.c.host, s.c.metric, s.c.labels).order_by(s.c.id)
    if metrics is not None:
        q = q.where(s.c.metric.in_(metrics))
    if hosts is not None:
        q = q.where(s.c.host.in_(hosts))
    rows = list(conn.execute(q).all())
    if metrics:
        check_metrics(conn, metrics, {r[2] for r in rows})
    if want_labels is not None:
        rows = [r for r in rows if labels_match(r[3], want_labels)]
    return rows


def samples(conn: sa.Connection, metrics: list[str] | None, hosts: list[str] | None,
            want_labels: dict[str, str] | None, lo: int | None, hi: int | None) -> pd.DataFrame:
    """The samples frame: pick the series first (a small table), then read their rows."""
    rows = pick_series(conn, metrics, hosts, want_labels)
    if not rows:
        return empty_samples()
    ids = [int(r[0]) for r in rows]
    raw = conn.connection.driver_connection
    read = fastio.sqlite_read if conn.dialect.name == "sqlite" else fastio.pg_read
    which, ts, value = read(raw, ids, lo, hi)
    return fastio.build_frame(which, ts, value, [r[1] for r in rows], [r[2] for r in rows],
                              [r[3] for r in rows])


def latest(conn: sa.Connection, host: str | None) -> pd.DataFrame:
    """The newest sample of each series, sorted by host, metric, labels."""
    s, x, y = sc.series, sc.samples, sc.samples.alias("y")
    newest = sa.select(sa.func.max(y.c.ts)).where(y.c.series_id == s.c.id).scalar_subquery()
    q = (sa.select(s.c.host, s.c.metric, s.c.labels, x.c.ts, x.c.value)
         .select_from(s.join(x, sa.and_(x.c.series_id == s.c.id, x.c.ts == newest)))
         .order_by(s.c.host, s.c.metric, s.c.labels))
    if host is not None:
        q = q.where(s.c.host == host)
    rows = conn.execute(q).all()
    if not rows:
        return empty_samples()
    return fastio.build_frame(np.arange(len(rows)), np.array([r[3] for r in rows], dtype=np.int64),
                              np.array([r[4] for r in rows], dtype=np.float64),
                              [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows],
                              sort=False)


def alert_events(conn: sa.Connection, lo: int | None, hi: int | None, hosts: list[str] | None,
                 metrics: list[str] | None) -> pd.DataFrame:
    """Alert events sorted by ts; an unknown metric name is a ValueError with close matches."""
    a = sc.alert_events
    q = sa.select(*[a.c[c] for c in records.ALERT_COLUMNS]).order_by(a.c.ts, a.c.id)
    if lo is not None:
        q = q.where(a.c.ts >= lo)
    if hi is not None:
        q = q.where(a.c.ts <= hi)
    if hosts is not None:
        q = q.where(a.c.host.in_(hosts))
    if metrics is not None:
        q = q.where(a.c.metric.in_(metrics))
    rows = conn.execute(q).all()
    if metrics:
        ev = set(conn.execute(sa.select(a.c.metric).distinct()).scalars())
        check_metrics(conn, metrics, {r[2] for r in rows}, ev)
    return records.alerts_frame(rows)


def latest_alert_events(conn: sa.Connection, severity: str, hosts: list[str] | None
                        ) -> pd.DataFrame:
    """The newest event of ``severity`` per (host, metric, labels), whatever its age,
    sorted by ts: whether each series' episode is open now, without reading the history.

    Among events with the same newest ts, the last written (highest id) wins."""
    a, b = sc.alert_events, sc.alert_events.alias("b")
    newest = (sa.select(sa.func.max(b.c.ts))
              .where(b.c.host == a.c.host, b.c.metric == a.c.metric, b.c.labels == a.c.labels,
                     b.c.severity == severity).scalar_subquery())
    q = (sa.select(*[a.c[c] for c in records.ALERT_COLUMNS])
         .where(a.c.severity == severity, a.c.ts == newest).order_by(a.c.ts, a.c.id))
    if hosts is not None:
        q = q.where(a.c.host.in_(hosts))
    out = records.alerts_frame(conn.execute(q).all())
    return out.drop_duplicates(["host", "metric", "labels"], keep="last").reset_index(drop=True)


def window_means(conn: sa.Connection, hosts: list[str] | None, lo: int | None, hi: int | None,
                 window_ns: int, exact: bool = True) -> pd.DataFrame:
    """One grouped query: per unlabelled series in [lo, hi], its newest ts and the mean of
    its samples after its host's newest sample minus ``window_ns`` (see Store.window_means).

    Each series' newest sample is one probe of the (series_id, ts) key, so only the
    window's rows are scanned, once; ``exact=False`` reads the 1 min rollups instead."""
    rng: list[str] = []
    params: dict[str, Any] = {"w": int(window_ns)}
    if lo is not None:
        rng.append("p.ts >= :lo")
        params["lo"] = int(lo)
    if hi is not None:
        rng.append("p.ts <= :hi")
        params["hi"] = int(hi)
    cond = "".join(f" AND {c}" for c in rng)
    hosts_sql = ""
    if hosts is not None:
        if not hosts:
            return empty_samples()
        hosts_sql = " AND host IN :hosts"
        params["hosts"] = tuple(hosts)
    sql = sa.text(
        "WITH l AS (SELECT s.id, s.host, (SELECT max(p.ts) FROM perfkit_samples p "
        f"WHERE p.series_id = s.id{cond}) AS last FROM perfkit_series s "
        f"WHERE s.labels = ''{hosts_sql}), "
        "h AS (SELECT host, max(last) AS last FROM l GROUP BY host) ")
    if exact:
        sql = sa.text(
            str(sql) + "SELECT p.series_id, max(p.ts), avg(p.value) FROM perfkit_samples p "
            "JOIN l ON l.id = p.series_id JOIN h ON h.host = l.host "
            f"WHERE p.ts > h.last - :w{cond} GROUP BY p.series_id ORDER BY p.series_id")
    else:  # the window's minute buckets, up to the one holding the host's newest sample
        m = 60 * 10**9
        first = f"h.last - (((h.last % {m}) + {m}) % {m}) - :w + {m}"
        edge = "" if lo is None else f" AND r.ts >= :lo - {m}"
        sql = sa.text(
            str(sql) + "SELECT r.series_id, max(l.last), sum(r.total) / sum(r.n) "
            "FROM perfkit_rollup_1m r JOIN l ON l.id = r.series_id JOIN h ON h.host = l.host "
            f"WHERE r.ts >= {first}{edge}{' AND r.ts <= :hi' if hi is not None else ''} "
            "GROUP BY r.series_id ORDER BY r.series_id")
    if hosts is not None:
        sql = sql.bindparams(sa.bindparam("hosts", expanding=True))
    got = conn.execute(sql, params).all()
    if not got:
        return empty_samples()
    s = sc.series
    info = {int(r[0]): r for r in conn.execute(
        sa.select(s.c.id, s.c.host, s.c.metric, s.c.labels).where(
            s.c.id.in_([int(g[0]) for g in got])))}
    rows = [info[int(g[0])] for g in got]
    return fastio.build_frame(np.arange(len(got)), np.array([g[1] for g in got], dtype=np.int64),
                              np.array([g[2] for g in got], dtype=np.float64),
                              [r[1] for r in rows], [r[2] for r in rows], [r[3] for r in rows])


def window_means_of(frame: pd.DataFrame, window: pd.Timedelta) -> pd.DataFrame:
    """:func:`window_means` computed from a samples frame (a source without SQL)."""
    f = frame[frame["labels"] == ""] if len(frame) else frame
    if not len(f):
        return empty_samples()
    last = f.groupby("host")["ts"].transform("max")
    r = f[f["ts"] > last - window]
    g = r.groupby(["host", "metric", "labels"], sort=True).agg(ts=("ts", "max"),
                                                               value=("value", "mean"))
    out = g.reset_index()[["ts", "host", "metric", "value", "labels"]]
    return out.sort_values("ts", kind="stable").reset_index(drop=True)
