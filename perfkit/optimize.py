"""Moved to :mod:`perfkit.actions`; this alias keeps old imports working and will be removed."""

import warnings

from perfkit.actions import *  # noqa: F403
from perfkit.actions import __all__  # noqa: F401

warnings.warn("perfkit.optimize moved to perfkit.actions; import from there", DeprecationWarning,
              stacklevel=2)
