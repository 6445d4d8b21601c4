"""HTTP errors the API answers with: 422 for what the client sent, 503 for a store that is down."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import HTTPException

__all__ = ["store_errors", "unprocessable"]


def unprocessable(message: str, **extra: Any) -> HTTPException:
    """A 422 whose body says what is wrong (``detail.message``) plus any ``extra`` fields.

    The message is cut to 500 characters: it may quote what the client sent.
    """
    if len(message) > 500:
        message = message[:500] + f"... ({len(message)} characters)"
    return HTTPException(status_code=422, detail={"message": message, **extra})


@contextmanager
def store_errors(monitor: Any) -> Iterator[None]:
    """Turn a database failure while reading the store into a 503 naming the store.

    A store that is down is the server's state, not the client's mistake, and
    not a bug either: 503 tells a scraper or a client to retry later.
    """
    import sqlalchemy as sa

    try:
        yield
    except sa.exc.SQLAlchemyError as exc:
        url = monitor.store.health().get("url", "?")
        raise HTTPException(status_code=503, detail={
            "message": f"the store {url} is unreachable ({type(exc).__name__}); samples already "
                       "recorded are kept and buffered writes are retried when it returns",
            "store": url}, headers={"Retry-After": "5"}) from exc
