"""Who may act from the page, and which stores its URL box may open.

Safe by default: a page reachable beyond this machine (any bind address but a
loopback one, including Streamlit's default of every interface) acts only for
a visitor who typed the server's token; without a token set it does not act at
all. The store URL box is off unless the operator enables it, and even then it
never creates a file and never reaches a host the operator did not allow.

The ``perfkit dashboard`` command passes its bind address and token through
:data:`HOST_ENV` and :data:`TOKEN_ENV`; :data:`ALLOW_URL_ENV` enables the box.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import sqlite3
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

__all__ = ["ALLOW_URL_ENV", "HOST_ENV", "TOKEN_ENV", "Access", "access_from_env"]

HOST_ENV = "PERFKIT_DASHBOARD_HOST"
"""The address the dashboard server listens on (set by ``perfkit dashboard --host``)."""

TOKEN_ENV = "PERFKIT_DASHBOARD_TOKEN"
"""The token a visitor types before acting, required once the bind is not loopback."""

ALLOW_URL_ENV = "PERFKIT_DASHBOARD_ALLOW_URL"
"""Enables the store URL box: ``1`` (perfkit stores on this machine) or comma-separated
URL patterns such as ``postgresql://*@db.internal/*,sqlite:////srv/perfkit/*.db``."""

_MAX_TOKEN = 256
_MAX_URL = 2_000
_LOCAL_NAMES = ("localhost", "")
_SERVERS = ("postgresql", "prometheus")  # backends that reach a host rather than open a file


def _is_loopback(host: str) -> bool:
    h = host.strip().strip("[]").lower()
    if h == "localhost":
        return True
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Access:
    """The page's access rules, read once from the environment and the server's options.

    ``bind`` is the listening address ("" for every interface); ``token`` the
    server's token (None: none set); ``url_patterns`` None when the URL box is
    off, ``("local",)`` for ``ALLOW_URL=1``, else the operator's patterns.
    """

    bind: str
    token: str | None = None
    url_patterns: tuple[str, ...] | None = None

    @property
    def local(self) -> bool:
        """Whether only this machine can reach the page (a loopback bind)."""
        return _is_loopback(self.bind)

    @property
    def needs_token(self) -> bool:
        """Whether acting needs the token (the page is reachable from other machines)."""
        return not self.local

    def can_act(self, offered: str | None) -> bool:
        """Whether a visitor who typed ``offered`` may act (timing-safe comparison)."""
        if not self.needs_token:
            return True
        if not self.token or not offered or len(offered) > _MAX_TOKEN:
            return False
        return hmac.compare_digest(offered.encode(), self.token.encode())

    def locked_reason(self) -> str:
        """Why the action buttons are off, and how to turn them on."""
        where = self.bind or "every interface"
        if not self.token:
            return (f"Actions are off: this dashboard listens on {where} and no token is set. "
                    f"Restart it with {TOKEN_ENV} (perfkit dashboard --token) or bind it to "
                    "127.0.0.1.")
        return f"This dashboard listens on {where}: type the access token to run actions."

    @property
    def url_box(self) -> bool:
        """Whether the page shows the store URL box at all."""
        return self.url_patterns is not None

    def check_url(self, url: str) -> str:
        """``url`` when the box may open it, else a ``ValueError`` saying what is allowed.

        Never a file the operator did not make a store: a SQLite URL must name an
        existing file that already holds perfkit's tables (so the box cannot create
        directories, or convert another application's database). PostgreSQL must be on
        this machine (``ALLOW_URL=1``) or match one of the operator's patterns.
        """
        import sqlalchemy as sa

        if self.url_patterns is None:
            raise ValueError(f"the store URL box is off; the operator enables it with "
                             f"{ALLOW_URL_ENV}")
        if len(url) > _MAX_URL:
            raise ValueError(f"a store URL is at most {_MAX_URL} characters")
        try:
            parsed = sa.engine.make_url(url)
        except Exception:  # noqa: BLE001 - any parse failure is "not a URL"
            raise ValueError("not a store URL; use sqlite:///path/to/perfkit.db or "
                             "postgresql://user@host/db") from None
        backend = parsed.get_backend_name()
        plain = parsed.set(password=None).render_as_string(hide_password=False)
        if self.url_patterns == ("local",):
            if backend in _SERVERS and (parsed.host or "") not in _LOCAL_NAMES \
                    and not _is_loopback(parsed.host or ""):
                raise ValueError(f"{plain} is not on this machine; {ALLOW_URL_ENV}=1 allows "
                                 "only local stores (list other URLs in it to allow them)")
        elif not any(fnmatchcase(plain, p) for p in self.url_patterns):
            raise ValueError(f"{plain} is not among the stores this dashboard may open "
                             f"({', '.join(self.url_patterns)})")
        if backend == "sqlite":
            _existing_store(parsed.database)
        elif backend not in _SERVERS:
            raise ValueError(f"{backend} is not a store backend; use sqlite, postgresql or "
                             "prometheus")
        return url


def _existing_store(path: str | None) -> None:
    if not path or path == ":memory:":
        raise ValueError("name the store's file: sqlite:///path/to/perfkit.db")
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"{p} does not exist; the URL box opens existing stores only "
                         "(start a Monitor on it first)")
    try:
        with sqlite3.connect(f"file:{p}?mode=ro", uri=True, timeout=2) as con:
            found = con.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND "
                                "name='perfkit_meta'").fetchone()
    except sqlite3.Error as exc:
        raise ValueError(f"{p} is not a readable SQLite database: {exc}") from None
    if found is None:
        raise ValueError(f"{p} is not a perfkit store (no perfkit tables); the box never "
                         "turns another database into one")


def _patterns(raw: str | None) -> tuple[str, ...] | None:
    v = (raw or "").strip()
    if v.lower() in ("", "0", "false", "no", "off"):
        return None
    if v.lower() in ("1", "true", "yes", "on"):
        return ("local",)
    return tuple(p.strip() for p in v.split(",") if p.strip())


def access_from_env(server_address: str | None = None) -> Access:
    """The rules for this server: bind from :data:`HOST_ENV`, else Streamlit's
    ``server.address`` (unset means every interface), token and URL box from the env."""
    bind = os.environ.get(HOST_ENV)
    if bind is None:
        bind = server_address or ""
    token = os.environ.get(TOKEN_ENV) or None
    return Access(bind.strip(), token, _patterns(os.environ.get(ALLOW_URL_ENV)))
