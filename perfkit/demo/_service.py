"""A small prediction-market service: markets, prices and orders over SQLite, cache in front.

It is instrumented the way a user's app would be: every endpoint runs inside
``monitor.track()``, the engine goes through ``monitor.instrument_engine()`` and
the cache through ``monitor.attach_cache()``. Nothing here reports a number of
its own; the Monitor measures what the service really does.

The ``orders`` table deliberately has no index on ``user_id``: the
``GET /users/{id}/orders`` endpoint is the slow unindexed query that the
query optimiser is expected to find (and that ``CREATE INDEX`` fixes).
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import numpy as np
import sqlalchemy as sa

from perfkit.cache import Cache

if TYPE_CHECKING:
    from perfkit.monitor import Monitor

__all__ = ["CATEGORIES", "MarketService", "OrderRejected"]

CATEGORIES = ("politics", "sports", "crypto", "science", "economy", "weather")
"""Market categories the seed data and ``GET /markets?category=`` use."""

_meta = sa.MetaData()
markets = sa.Table(
    "markets", _meta,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("title", sa.String(200), nullable=False),
    sa.Column("category", sa.String(40), nullable=False),
    sa.Column("status", sa.String(10), nullable=False),
    sa.Column("last_price", sa.Float, nullable=False),
    sa.Column("volume", sa.Float, nullable=False),
)
prices = sa.Table(
    "prices", _meta,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("market_id", sa.Integer, nullable=False),
    sa.Column("ts", sa.Float, nullable=False),
    sa.Column("price", sa.Float, nullable=False),
    sa.Index("ix_prices_market_ts", "market_id", "ts"),
)
orders = sa.Table(
    "orders", _meta,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("market_id", sa.Integer, nullable=False),
    sa.Column("user_id", sa.Integer, nullable=False),  # no index: the slow query's column
    sa.Column("side", sa.String(4), nullable=False),
    sa.Column("qty", sa.Float, nullable=False),
    sa.Column("price", sa.Float, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Index("ix_orders_market", "market_id"),
)


class OrderRejected(ValueError):
    """An order the service refuses (unknown or closed market, bad side or quantity)."""


class MarketService:
    """The demo service. Create it, then call its endpoints from any thread.

    ``db_path`` is the SQLite file (default: a fresh one in a temporary
    directory, removed by :meth:`close`). Markets and prices are random but
    reproducible (``seed``). ``n_orders`` sizes the table the slow query
    scans; None (default) grows it in steps of 250,000 rows until that query
    takes ``slow_query_ms`` on this machine (at most ``max_orders`` rows), so
    the slow-query phase crosses the catalogue's query-time thresholds on a
    fast machine as on a slow one. ``probe_ms`` is the last measured time.
    With ``grow_later`` the service starts with 100,000 orders and
    :meth:`grow_orders` does the sizing (the demo runs it in the background,
    so the dashboard has live traffic within seconds).
    ``monitor`` may be None to run the service uninstrumented (benchmarks).
    """

    def __init__(self, monitor: Monitor | None = None, *, db_path: str | Path | None = None,
                 cache: Cache | None = None, n_markets: int = 200, n_users: int = 2_000,
                 n_orders: int | None = None, slow_query_ms: float = 150.0,
                 max_orders: int = 3_000_000, grow_later: bool = False,
                 cache_ttl: float = 30.0, seed: int = 0, busy_timeout: float = 0.25) -> None:
        for name, v in (("n_markets", n_markets), ("n_users", n_users), ("max_orders", max_orders)):
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive int, got {v!r}")
        if n_orders is not None and (not isinstance(n_orders, int) or n_orders < 0):
            raise ValueError(f"n_orders must be an int >= 0 or None (sized by slow_query_ms), "
                             f"got {n_orders!r}")
        if not slow_query_ms > 0:
            raise ValueError(f"slow_query_ms must be positive, got {slow_query_ms!r}")
        self._tmpdir = None
        if db_path is None:
            self._tmpdir = tempfile.mkdtemp(prefix="perfkit-demo-")
            db_path = Path(self._tmpdir) / "markets.db"
        self.db_path = Path(db_path)
        self.n_markets, self.n_users = n_markets, n_users
        self.cache_ttl = float(cache_ttl)
        # busy_timeout: how long a write waits for SQLite's lock before failing. Short, as a
        # web app's would be, so a long-running writer shows up as failed orders, not a hang.
        self.engine = sa.create_engine(f"sqlite:///{self.db_path}",
                                       connect_args={"timeout": busy_timeout,
                                                     "check_same_thread": False})
        sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        # Seeding, sizing and probing go through their own engine, never instrumented:
        # they are the demo's setup, not the service's traffic.
        self._setup = sa.create_engine(f"sqlite:///{self.db_path}",
                                       connect_args={"timeout": 30.0})
        sa.event.listen(self._setup, "connect", _sqlite_pragmas)
        self.cache = cache if cache is not None else Cache(default_ttl=cache_ttl,
                                                           max_entries=5_000,
                                                           max_bytes=256 * 2**20)
        self.monitor = monitor
        self._leak: list[list[dict[str, Any]]] = []
        self._leak_lock = threading.Lock()
        self.slow_query_ms, self.max_orders = float(slow_query_ms), max_orders
        self.n_orders = 0
        self.probe_ms: float | None = None
        self.sized = threading.Event()
        self._seed(np.random.default_rng(seed))
        if n_orders is not None:
            self._add_orders(n_orders, _CHUNK)
            self.sized.set()
        elif grow_later:
            self._add_orders(_START_ORDERS, _CHUNK)  # enough to serve; grow_orders() sizes it
        else:
            self.grow_orders()
        if monitor is not None:
            monitor.instrument_engine(self.engine)
            monitor.attach_cache(self.cache)

    # -- setup -------------------------------------------------------------------------
    def _seed(self, rng: np.random.Generator) -> None:
        _meta.drop_all(self._setup)
        _meta.create_all(self._setup)
        now = time.time()
        cats = rng.integers(0, len(CATEGORIES), self.n_markets)
        price0 = rng.uniform(0.05, 0.95, self.n_markets)
        mrows = [{"id": i + 1, "title": f"Will event #{i + 1} happen?",
                  "category": CATEGORIES[int(c)], "status": "open", "last_price": float(p),
                  "volume": 0.0} for i, (c, p) in enumerate(zip(cats, price0))]
        per_market = 50
        pm = np.repeat(np.arange(1, self.n_markets + 1), per_market)
        steps = rng.normal(0, 0.01, pm.size).reshape(self.n_markets, per_market).cumsum(axis=1)
        pv = np.clip(price0[:, None] + steps, 0.01, 0.99).ravel()
        pts = np.tile(now - 60.0 * np.arange(per_market)[::-1], self.n_markets)
        with self._setup.begin() as conn:
            conn.execute(markets.insert(), mrows)
            conn.execute(prices.insert(), [
                {"market_id": int(m), "ts": float(t), "price": float(p)}
                for m, t, p in zip(pm, pts, pv)])

    def _add_orders(self, k: int, chunk: int, pause: float = 0.0) -> None:
        """Insert ``k`` random orders inside SQLite (a recursive CTE, ~1 s per million)."""
        done = 0
        while done < k:
            n = min(chunk, k - done)
            with self._setup.begin() as conn:
                conn.exec_driver_sql(_FILL_ORDERS, (n, self.n_markets, self.n_users, time.time()))
            done += n
            self.n_orders += n
            if pause:
                time.sleep(pause)

    def grow_orders(self, stop: threading.Event | None = None, *, background: bool = False
                    ) -> None:
        """Add orders until the unindexed user query takes ``slow_query_ms`` (or ``max_orders``).

        ``background``: small transactions with pauses, so the service's own
        orders (busy timeout 0.25 s) wait a little instead of failing while it
        runs next to live traffic. Sets :attr:`sized` when done.
        """
        chunk, pause = (_BG_CHUNK, 0.05) if background else (_CHUNK, 0.0)
        while self.n_orders < self.max_orders and not (stop is not None and stop.is_set()):
            self._add_orders(min(_CHUNK, self.max_orders - self.n_orders), chunk, pause)
            self.probe_ms = self._probe_ms()
            if self.probe_ms >= self.slow_query_ms:
                break
        self.sized.set()

    def _probe_ms(self) -> float:
        # Best of two, so a scheduling hiccup does not stop the growth too early.
        best = float("inf")
        for u in (1, 2):
            t0 = time.perf_counter()
            with self._setup.connect() as conn:
                conn.execute(_user_orders_query(u, 20)).all()
            best = min(best, (time.perf_counter() - t0) * 1e3)
        return best

    # -- endpoints ---------------------------------------------------------------------
    def _track(self, name: str) -> Any:
        return self.monitor.track(name) if self.monitor is not None else _NoSpan()

    def list_markets(self, category: str | None = None) -> list[dict[str, Any]]:
        """``GET /markets``: open markets, optionally of one category (cached)."""
        with self._track("GET /markets"):
            if category is not None and category not in CATEGORIES:
                raise ValueError(f"unknown category {category!r}; one of {CATEGORIES}")
            key = f"markets:{category or 'all'}"
            return self.cache.get_or_set(key, lambda: self._query_markets(category))

    def _query_markets(self, category: str | None) -> list[dict[str, Any]]:
        q = sa.select(markets.c.id, markets.c.title, markets.c.category, markets.c.last_price) \
            .where(markets.c.status == "open").order_by(markets.c.volume.desc()).limit(50)
        if category is not None:
            q = q.where(markets.c.category == category)
        with self.engine.connect() as conn:
            return [_plain(r) for r in conn.execute(q)]

    def get_market(self, market_id: int) -> dict[str, Any]:
        """``GET /markets/{id}``: one market (cached); ``KeyError`` when it does not exist."""
        with self._track("GET /markets/{id}"):
            key = f"market:{market_id}"
            found = self.cache.get(key)
            if found is not None:
                return found
            with self.engine.connect() as conn:
                row = conn.execute(sa.select(markets).where(markets.c.id == market_id)).first()
            if row is None:
                raise KeyError(f"market {market_id} does not exist")
            value = _plain(row)
            # The cache's own default TTL, so tuning it (cache_optimization) has an effect.
            self.cache.set(key, value)
            return value

    def price_history(self, market_id: int, limit: int = 50) -> list[tuple[float, float]]:
        """``GET /markets/{id}/prices``: the latest ``limit`` prices (indexed query)."""
        with self._track("GET /markets/{id}/prices"):
            q = sa.select(prices.c.ts, prices.c.price).where(prices.c.market_id == market_id) \
                .order_by(prices.c.ts.desc()).limit(limit)
            with self.engine.connect() as conn:
                return [(r.ts, r.price) for r in conn.execute(q)]

    def place_order(self, user_id: int, market_id: int, side: str, qty: float) -> int:
        """``POST /orders``: insert an order, move the price, invalidate the cached market."""
        with self._track("POST /orders"):
            if side not in ("buy", "sell"):
                raise OrderRejected(f"side must be 'buy' or 'sell', got {side!r}")
            if not qty > 0:
                raise OrderRejected(f"qty must be positive, got {qty!r}")
            with self.engine.begin() as conn:
                row = conn.execute(sa.select(markets.c.last_price, markets.c.status)
                                   .where(markets.c.id == market_id)).first()
                if row is None or row.status != "open":
                    raise OrderRejected(f"market {market_id} is not open for orders")
                step = 0.001 * min(qty, 50.0) * (1 if side == "buy" else -1)
                new_price = min(0.99, max(0.01, row.last_price + step))
                now = time.time()
                oid = conn.execute(orders.insert().values(
                    market_id=market_id, user_id=user_id, side=side, qty=qty,
                    price=row.last_price, created_at=now)).lastrowid
                conn.execute(markets.update().where(markets.c.id == market_id)
                             .values(last_price=new_price, volume=markets.c.volume + qty))
                conn.execute(prices.insert().values(market_id=market_id, ts=now, price=new_price))
            self.cache.delete(f"market:{market_id}")
            return int(oid)

    def user_orders(self, user_id: int, limit: int = 20) -> list[dict[str, Any]]:
        """``GET /users/{id}/orders``: a user's latest orders (scans ``orders``: no index)."""
        with self._track("GET /users/{id}/orders"), self.engine.connect() as conn:
            return [_plain(r) for r in conn.execute(_user_orders_query(user_id, limit))]

    def order_book(self, market_id: int, depth: int = 200, *, retain: bool = False
                   ) -> list[dict[str, Any]]:
        """``GET /markets/{id}/book``: the market's latest orders.

        With ``retain`` the snapshot is also kept in an in-process "audit
        history" that nothing trims (the memory-growth phase's leak) and cached
        for the cache TTL; :meth:`release_memory` drops that history.
        """
        with self._track("GET /markets/{id}/book"):
            q = sa.select(orders.c.id, orders.c.user_id, orders.c.side, orders.c.qty,
                          orders.c.price, orders.c.created_at) \
                .where(orders.c.market_id == market_id).order_by(orders.c.id.desc()).limit(depth)
            with self.engine.connect() as conn:
                book = [_plain(r) for r in conn.execute(q)]
            if retain:
                # One snapshot per request, keyed by time, so each one is a new cache entry.
                self.cache.set(f"book:{market_id}:{time.monotonic_ns()}", book,
                               ttl=max(self.cache_ttl, 120.0))
                with self._leak_lock:
                    self._leak.append(book)
            return book

    # -- scenario helpers (used by the load generator's phases) ------------------------
    @property
    def retained_snapshots(self) -> int:
        """How many order-book snapshots the memory-growth history holds."""
        return len(self._leak)

    def release_memory(self) -> int:
        """Drop the retained order-book history; returns how many snapshots were dropped."""
        with self._leak_lock:
            n = len(self._leak)
            self._leak = []
        return n

    def price_model(self, markets: int = 20, paths: int = 200, steps: int = 20) -> np.ndarray:
        """A pricing job step: Monte Carlo fair prices of ``markets`` random markets.

        Each last price drifts as a bounded random walk over ``steps`` steps; the
        fair price is the mean terminal price of ``paths`` paths. A few
        milliseconds of real CPU work per call; nothing is written.
        """
        rng = np.random.default_rng()
        p0 = rng.uniform(0.05, 0.95, (min(markets, self.n_markets), 1, 1))
        walk = rng.normal(0.0, 0.01, (p0.shape[0], paths, steps)).cumsum(axis=2)
        return np.clip(p0 + walk, 0.01, 0.99)[:, :, -1].mean(axis=1)

    def hold_write_lock(self, seconds: float) -> None:
        """A settlement job: hold SQLite's write lock for ``seconds`` (orders then fail)."""
        with self.engine.connect() as conn:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            try:
                conn.exec_driver_sql("UPDATE markets SET volume = volume WHERE id = 1")
                time.sleep(seconds)
            finally:
                conn.exec_driver_sql("COMMIT")

    def has_index_on(self, table: str, column: str) -> bool:
        """Whether some index of ``table`` starts with ``column`` (the optimiser may add one)."""
        insp = sa.inspect(self.engine)
        if table not in insp.get_table_names():
            raise ValueError(f"unknown table {table!r}; one of {insp.get_table_names()}")
        return any(ix["column_names"][:1] == [column] for ix in insp.get_indexes(table))

    def close(self) -> None:
        """Dispose of the engine and remove the temporary database, if this service made it."""
        self.release_memory()
        self.engine.dispose()
        self._setup.dispose()
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)


_CHUNK = 250_000        # rows between two probes of the slow query
_BG_CHUNK = 20_000      # rows per transaction when growing next to live traffic
_START_ORDERS = 100_000
_FILL_ORDERS = """
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
INSERT INTO orders (market_id, user_id, side, qty, price, created_at)
SELECT abs(random()) % ?2 + 1, abs(random()) % ?3 + 1,
       CASE WHEN random() & 1 THEN 'buy' ELSE 'sell' END,
       abs(random()) % 99 + 1, (abs(random()) % 980 + 10) / 1000.0,
       ?4 - abs(random()) % 2592000
FROM n
"""


def _user_orders_query(user_id: int, limit: int) -> sa.Select[Any]:
    return sa.select(orders.c.id, orders.c.market_id, orders.c.side, orders.c.qty,
                     orders.c.price, orders.c.created_at) \
        .where(orders.c.user_id == user_id).order_by(orders.c.created_at.desc()).limit(limit)


class _NoSpan:
    """Stands in for ``monitor.track()`` when the service runs uninstrumented."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def _plain(row: Any) -> dict[str, Any]:
    # Row keys are SQLAlchemy's str subclass, which the cache (rightly) refuses to serialise.
    return {str(k): v for k, v in row._mapping.items()}


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # WAL lets readers run while an order is written, as a production SQLite app would.
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()
