"""perfkit's exceptions: one root, :class:`PerfkitError`, and a few families.

Each specific error also subclasses the builtin a caller would have caught before it existed
(``ValueError``, ``TypeError``, ``LookupError``, ``ConnectionError``, ``ImportError``), so
``except ValueError`` keeps working while ``except perfkit.errors.PerfkitError`` catches
everything perfkit raises on purpose.
"""

from __future__ import annotations

__all__ = ["ConfigError", "InvalidInputError", "MissingExtraError", "PerfkitError",
           "ReadOnlyStoreError", "StoreUnavailableError", "UnknownNameError"]


class PerfkitError(Exception):
    """The root of every error perfkit raises on purpose."""


class InvalidInputError(PerfkitError, ValueError):
    """A value perfkit was given is malformed: a NaN sample, a bad duration, a bad label."""


class UnknownNameError(InvalidInputError, LookupError):
    """A metric, action, host or method name that matches nothing; the message lists the
    closest names."""


class ConfigError(InvalidInputError):
    """A setting or URL that cannot be used as given; the message says what to change."""


class StoreUnavailableError(PerfkitError, ConnectionError):
    """The store's database (or another backend) cannot be reached or does not answer."""


class ReadOnlyStoreError(PerfkitError, TypeError):
    """A write to a read-only source (such as Prometheus); the message names the store to use."""


class MissingExtraError(PerfkitError, ImportError):
    """An optional part of perfkit needs a package that is not installed; the message gives the
    ``pip install "perfkit[...]"`` that fixes it."""


def extra_error(exc: ModuleNotFoundError, extra: str, feature: str) -> MissingExtraError:
    """The error to raise when ``feature`` cannot import ``exc.name``: it names the extra.

    Used as ``except ModuleNotFoundError as exc: raise extra_error(exc, "redis", "...") from exc``.
    """
    return MissingExtraError(f"{feature} needs the {exc.name!r} package, which is not installed: "
                             f'pip install "perfkit[{extra}]"')
