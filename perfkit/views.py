"""Moved to :mod:`perfkit.dashboard`; this alias keeps old imports working and will be removed."""

import warnings

from perfkit.dashboard import *  # noqa: F403
from perfkit.dashboard import __all__  # noqa: F401

warnings.warn("perfkit.views moved to perfkit.dashboard; import from there", DeprecationWarning,
              stacklevel=2)
