"""perfkit.plots' SVG charts: what a first visit sees before plotly.js has loaded."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import numpy as np
import pandas as pd

from perfkit import plots

NS = "{http://www.w3.org/2000/svg}"
END = pd.Timestamp("2026-06-01 12:00", tz="UTC")


def _frame(values, host: str = "h", metric: str = "system.cpu_usage") -> pd.DataFrame:
    ts = pd.date_range(end=END, periods=len(values), freq="2s")
    return pd.DataFrame({"ts": ts, "host": host, "metric": metric, "labels": "",
                         "value": np.asarray(values, float)})


def _svg(text: str) -> ET.Element:
    return ET.fromstring(text)  # well-formed XML, or this raises


def _points(el: ET.Element) -> np.ndarray:
    return np.array([[float(v) for v in p.split(",")] for p in el.get("points", "").split()])


def _level_y(root: ET.Element, label: str) -> float:
    """The y of the threshold line whose label starts with ``label``."""
    texts = [t for t in root.iter(f"{NS}text") if (t.text or "").startswith(label)]
    assert texts, label
    lines = [ln for ln in root.iter(f"{NS}line") if ln.get("stroke-dasharray") == "2,3"]
    y = float(texts[0].get("y")) - 4
    return min((float(ln.get("y1")) for ln in lines), key=lambda v: abs(v - y))


def test_lines_sit_where_their_values_are_against_the_threshold_lines() -> None:
    f = _frame([70.0] * 50 + [90.0] * 50)   # exactly on warning, then on critical
    root = _svg(plots.metric_svg(f, "system.cpu_usage"))
    (line,) = list(root.iter(f"{NS}polyline"))
    pts = _points(line)
    assert len(pts) == 100 and np.all(np.diff(pts[:, 0]) > 0)  # time runs left to right
    assert np.allclose(pts[:50, 1], _level_y(root, "warning 70 %"), atol=0.11)
    assert np.allclose(pts[50:, 1], _level_y(root, "critical 90 %"), atol=0.11)
    assert _level_y(root, "critical") < _level_y(root, "warning")  # higher value, higher up
    assert root.get("aria-label") == "system.cpu_usage chart"


def test_one_line_per_host_a_gap_breaks_it_and_nan_is_not_drawn() -> None:
    a = _frame(np.linspace(10, 20, 200), host="a")
    a = a.drop(index=range(80, 120))        # monitoring stopped for 80 s
    b = _frame(np.r_[np.full(99, 30.0), np.nan, np.full(100, 40.0)], host="b")
    root = _svg(plots.metric_svg(pd.concat([a, b]), "system.cpu_usage"))
    by_color: dict[str, int] = {}
    for line in root.iter(f"{NS}polyline"):
        assert np.isfinite(_points(line)).all()
        by_color[line.get("stroke")] = by_color.get(line.get("stroke"), 0) + 1
    assert sorted(by_color.values()) == [2, 2]  # two hosts, each broken once


def test_the_forecast_band_starts_at_the_last_sample_and_holds_the_mean() -> None:
    f = _frame(np.full(100, 50.0))
    fc = pd.DataFrame({"metric": "system.cpu_usage",
                       "ts": pd.date_range(END + pd.Timedelta("1min"), periods=5, freq="1min"),
                       "mean": [52.0, 54, 56, 58, 60], "lower": [45.0, 44, 43, 42, 41],
                       "upper": [59.0, 64, 69, 74, 79]})
    root = _svg(plots.metric_svg(f, "system.cpu_usage", forecast=fc, now=END,
                                 x_range=(f.ts.min(), END + pd.Timedelta("6min"))))
    (band,) = list(root.iter(f"{NS}polygon"))
    dashed = [ln for ln in root.iter(f"{NS}polyline") if ln.get("stroke-dasharray")]
    (history,) = [ln for ln in root.iter(f"{NS}polyline") if not ln.get("stroke-dasharray")]
    mean, edge = _points(dashed[0]), _points(band)
    assert np.allclose(mean[0], _points(history)[-1])  # forecast meets the line
    upper, lower = edge[:len(mean)], edge[len(mean):][::-1]
    assert np.all(upper[:, 1] <= mean[:, 1] + 1e-9) and np.all(lower[:, 1] >= mean[:, 1] - 1e-9)
    assert "forecast" in [t.text for t in root.iter(f"{NS}text")]   # the "now" mark
    plain = _svg(plots.metric_svg(f, "system.cpu_usage"))
    assert not list(plain.iter(f"{NS}polygon"))


def test_an_empty_chart_says_why_and_names_are_escaped() -> None:
    empty = plots.metric_svg(_frame([]), "system.cpu_usage", note="no samples from <b>x</b>")
    root = _svg(empty)
    assert "no samples from <b>x</b>" in [t.text for t in root.iter(f"{NS}text")]
    assert "<b>" not in empty and not list(root.iter(f"{NS}polyline"))
    f = _frame([1.0, 2.0, 3.0], metric='shop.<script>"x"')
    text = plots.metric_svg(f, 'shop.<script>"x"', title='<script>"x"')
    assert "<script>" not in text and _svg(text).get("aria-label") == '<script>"x" chart'
    # each chart's clip path has its own id: several charts share one page
    ids = re.findall(r'clipPath id="([^"]+)"', plots.metric_svg(_frame([1.0]), "system.cpu_usage")
                     + plots.metric_svg(_frame([1.0], metric="system.memory_usage"),
                                        "system.memory_usage"))
    assert len(set(ids)) == 2


def test_anomaly_and_phase_bands_are_labelled_where_they_happened() -> None:
    f = _frame(np.full(100, 50.0))
    ts = f["ts"]
    root = _svg(plots.metric_svg(
        f, "system.cpu_usage", x_range=(ts.min(), ts.max()), now=END,
        phases=pd.DataFrame({"kind": ["cpu_heavy", "steady"], "start": [ts[10], ts[40]],
                             "end": [ts[30], ts[60]]}),
        anomalies=pd.DataFrame({"metric": ["system.cpu_usage"], "labels": [""], "host": ["h"],
                                "start": [ts[70]], "end": [ts[70]], "pattern": ["spike"]})))
    texts = [t.text for t in root.iter(f"{NS}text")]
    assert "cpu heavy" in texts and "steady" not in texts and "unusual: spike" in texts
    (line,) = list(root.iter(f"{NS}polyline"))
    x = _points(line)[:, 0]
    rects = {float(r.get("x")): float(r.get("width")) for r in root.iter(f"{NS}rect")
             if r.get("fill-opacity")}
    assert any(abs(x0 - x[10]) < 0.11 and abs(x0 + w - x[30]) < 0.2 for x0, w in rects.items())
    assert any(abs(x0 - x[70]) < 0.11 and w > 0 for x0, w in rects.items())  # a spike shows


def test_the_alert_timeline_draws_each_firing_period_where_it_was() -> None:
    t = pd.date_range(END - pd.Timedelta("10min"), periods=4, freq="2min")
    ev = pd.DataFrame({"ts": [t[0], t[1], t[2], t[3]],
                       "metric": ["system.cpu_usage", "system.cpu_usage", "cache.hit_rate",
                                  "system.cpu_usage"],
                       "severity": ["warning", "warning", "critical", "warning"],
                       "state": ["firing", "resolved", "firing", "firing"]})
    x_range = (END - pd.Timedelta("10min"), END)
    root = _svg(plots.alert_timeline_svg(ev, until=END, x_range=x_range))
    bars = [r for r in root.iter(f"{NS}rect") if r.find(f"{NS}title") is not None]
    got = sorted((r.find(f"{NS}title").text, r.get("fill")) for r in bars)
    assert got == [("cache.hit_rate critical: 11:54:00 → now", plots.COLORS["critical"]),
                   ("system.cpu_usage warning: 11:50:00 → 11:52:00", plots.COLORS["warning"]),
                   ("system.cpu_usage warning: 11:56:00 → now", plots.COLORS["warning"])]
    x = {r.find(f"{NS}title").text: (float(r.get("x")), float(r.get("width"))) for r in bars}
    # the closed period spans a fifth of the axis; the open one runs to its end
    first = x["system.cpu_usage warning: 11:50:00 → 11:52:00"]
    last = x["system.cpu_usage warning: 11:56:00 → now"]
    left = first[0]
    right = last[0] + last[1]
    assert abs(first[1] / (right - left) - 0.2) < 1e-3
    assert abs((last[0] - left) / (right - left) - 0.6) < 1e-3
    empty = _svg(plots.alert_timeline_svg(ev.iloc[:0], until=END, x_range=x_range))
    assert any("no alert events" in (t.text or "") for t in empty.iter(f"{NS}text"))
    anomaly_only = ev.assign(severity="anomaly-episode")  # the charts' bands, not alerts
    assert not [r for r in _svg(plots.alert_timeline_svg(anomaly_only, until=END))
                .iter(f"{NS}rect") if r.find(f"{NS}title") is not None]
