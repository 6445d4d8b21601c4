"""The default host name of a Monitor or Store."""

from __future__ import annotations

import os
import socket

__all__ = ["default_host"]


def default_host() -> str:
    """``hostname:pid``: one Monitor per service process, told apart in a shared store."""
    return f"{socket.gethostname()}:{os.getpid()}"
