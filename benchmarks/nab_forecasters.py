"""perfkit (and statsforecast anchors) as forecasters for ``forecast_eval.py``.

``forecast_eval.py`` calls ``f(history, h, level)`` with a regular ``pd.Series``
and wants a frame ``mean, lower, upper`` of ``h`` rows. Each function here is one
candidate: ``auto`` (perfkit's default), ``gate`` (auto's earlier rule), the
plain models, and statsforecast's ``AutoETS`` / ``AutoTheta`` (``[bench]`` extra)::

    python /work/shared/eval/forecast_eval.py data/nab --csv /tmp/pk.csv --methods ses,holt \\
        --forecaster benchmarks/nab_forecasters.py:auto \\
        --forecaster benchmarks/nab_forecasters.py:sf_autoets
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from perfkit.analysis._core import forecast_array
from perfkit.analysis._input import NS_PER_HOUR


def _run(history: pd.Series, h: int, level: float, method: str, rule: str = "") -> pd.DataFrame:
    ts = history.index.asi8 if history.index.tz is None else history.index.tz_convert(None).asi8
    x = (ts - ts[-1]) / NS_PER_HOUR
    step = float(np.median(np.diff(x)))
    fc = forecast_array(x, history.to_numpy(float), step, h, level, method, rule=rule)
    idx = history.index[-1] + pd.Timedelta(hours=step) * np.arange(1, h + 1)
    return pd.DataFrame({"mean": fc.mean, "lower": fc.lower, "upper": fc.upper}, index=idx)


def auto(history, h, level):
    """perfkit ``forecast(method="auto")``."""
    return _run(history, h, level, "auto")


def gate(history, h, level):
    """``auto`` with the earlier rule (damped Holt on a trend, else SES + median)."""
    return _run(history, h, level, "auto", "gate")


def pk_ses(history, h, level):
    return _run(history, h, level, "ses")


def pk_damped(history, h, level):
    return _run(history, h, level, "damped")


def _sf(model, history, h, level):
    y = history.to_numpy(float)
    pct = round(level * 100)
    out = model.forecast(y=y, h=h, level=[pct])
    idx = history.index[-1] + (history.index[1] - history.index[0]) * np.arange(1, h + 1)
    return pd.DataFrame({"mean": out["mean"], "lower": out[f"lo-{pct}"],
                         "upper": out[f"hi-{pct}"]}, index=idx)


def sf_autoets(history, h, level):
    """statsforecast AutoETS (non-seasonal), the M-competition style anchor."""
    from statsforecast.models import AutoETS

    return _sf(AutoETS(season_length=1), history, h, level)


def sf_autotheta(history, h, level):
    """statsforecast AutoTheta (non-seasonal)."""
    from statsforecast.models import AutoTheta

    return _sf(AutoTheta(season_length=1), history, h, level)
