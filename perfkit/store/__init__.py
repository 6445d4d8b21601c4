"""perfkit's durable store: samples, alert events, the actions queue and its audit log.

SQLAlchemy Core on SQLite (the default, ``sqlite:///.perfkit/perfkit.db``, WAL
mode) or PostgreSQL (``postgresql://…`` through psycopg 3)::

    store = perfkit.Store()                       # or Store("postgresql://u:pw@db/perf")
    store.write(frame)                            # a samples frame (perfkit.frames)
    store.samples(metric="system.cpu_usage", since="15min")

``prometheus://HOST:9090`` opens a read-only source over a Prometheus server
instead (same ``samples``/``metric_names``/``hosts``/``latest``; alert events and
actions go to an ``actions_store=`` SQL store beside it): see
:mod:`perfkit.store._prometheus` for names, steps and faults.

Writing
    Each ``write`` is one batch (one transaction). A sample with the same
    (host, metric, labels, ts) as a stored one **overwrites** it (last write
    wins), so retrying a batch is harmless. Rows with a NaN/inf value, a missing
    ts or metric, or a wrong type are **rejected; the valid rows of the same
    frame are accepted**, then :class:`InvalidSamplesError` (a ``ValueError``)
    names the fields and metrics concerned (``on_invalid="drop"`` logs a warning
    instead of raising).

A store that is down, hung, or refuses a row
    ``write`` never fails because the database is unreachable, locked or hung:
    the rows wait in a bounded buffer (``buffer_limit`` rows) and are written on
    a later ``write`` or ``flush``, or by the background writer, once it answers
    again (retries back off from 0.5 s to 30 s; ``flush()`` always tries). When
    the buffer is full the *oldest* rows are dropped; they are counted in
    ``health()["dropped"]`` and logged (once, then once a minute). Alert events
    are buffered the same way. ``write(frame, wait=False)`` only buffers and
    wakes the background writer: the Monitor's collection never waits on the
    database. A database call running longer than ``Store(timeout=30)`` seconds
    is ended by the store's watchdog (a server that accepts but never answers
    trips no server-side timeout); PostgreSQL connections also carry
    ``connect_timeout``, ``statement_timeout``, ``lock_timeout`` and TCP
    keepalives (``perfkit.store._engine``; the URL's own settings win).
    ``health()`` never touches the database: ``state`` is ``ok``,
    ``unreachable`` or ``hung``. Rows the database refuses for good (SQLSTATE
    22/23/54: a value, a constraint, a key over an index limit) are isolated by
    bisecting the batch: those series are rejected (``health()["rejected"]``,
    ``["last_rejection"]``), the rest written. Limits on hosts, metrics and
    labels: ``perfkit.frames`` (``MAX_HOST_CHARS`` …); docs/reliability.md lists
    every promise and its test.

Several writers
    Threads share a Store (one lock) or open their own; processes open their
    own. SQLite: WAL, ``busy_timeout`` 10 s and ``BEGIN IMMEDIATE`` for every
    write transaction, so concurrent writers queue instead of failing.
    (``sqlite://``, in memory, is one connection: for tests and notebooks.)

Reading
    ``samples()`` returns the contract frame (``perfkit.frames.empty_samples()``
    dtypes) sorted by ts. ``since``/``until`` are inclusive and take a
    Timestamp/datetime (naive = UTC), an ISO string, or a duration such as
    ``"15min"`` meaning that long before now; anything else is a ``ValueError``
    listing the accepted forms. A metric name neither catalogued nor stored is
    a ``ValueError`` with close matches. Reads need the database: while it is
    down they raise SQLAlchemy's ``OperationalError``.

Actions
    ``request_action`` queues a row ('pending'); the target host's Monitor
    ``claim_actions`` it atomically ('running'), runs it and calls
    ``finish_action`` ('done' / 'failed' / 'rejected') with the metrics before
    and after. A running action older than ``action_lease`` becomes
    'abandoned' (its Monitor died), a pending one older than ``pending_ttl``
    'expired' (``expire_actions()``, also done by every claim).
    ``record_action`` logs an action run locally. ``actions()`` is the audit
    log. JSON columns are TEXT holding JSON; times are int64 ns UTC in the
    database and ``datetime64[ns, UTC]`` in frames.

Retention
    Nothing is deleted by itself. ``prune("7d")`` deletes samples and alert
    events older than seven days (a duration means that long before now; a
    Timestamp is an absolute cut-off; rows exactly at the cut-off stay) and
    returns the rows deleted per table. Pending and running actions are never
    deleted; finished ones (by ``finished_at``) only with
    ``what=("samples", "alert_events", "actions")``. Series names stay, so
    ``metric_names()`` and ``hosts()`` still list a metric whose samples are all
    gone. Run it from a cron job or a scheduled task; SQLite reuses the freed
    pages rather than shrinking the file. On PostgreSQL the samples table is
    partitioned by UTC day: whole days before the cut-off are dropped (no row
    deleted, nothing rewritten, writers wait at most a 0.5 s lock timeout), only
    the partial day is a range delete. A store created before partitioning
    keeps its plain table and prunes by deleting rows (logged once per prune).

Rollups
    Every write also adds its samples to 1 min and 1 h buckets (count, sum,
    min, max per series). ``rollups(metric, host, since, until, every="1min"|"1h")``
    reads them (``count, min, mean, max``): a 30-day chart reads 720 buckets per
    series instead of every sample. A sample rewritten at the same ts counts
    again until ``rebuild_rollups()`` recomputes the buckets from the raw
    samples (also how a store from before rollups fills them).
    ``prune(what="rollups")`` prunes them on their own schedule.
    ``window_means()`` is the fleet overview's read: per series the mean over
    its host's last five minutes, one grouped query.
"""

from perfkit.store._engine import DEFAULT_URL, ENV_VAR
from perfkit.store._store import Store
from perfkit.store._validate import InvalidSamplesError
from perfkit.store._when import ACCEPTED_WHEN

__all__ = ["ACCEPTED_WHEN", "DEFAULT_URL", "ENV_VAR", "InvalidSamplesError", "Store"]
