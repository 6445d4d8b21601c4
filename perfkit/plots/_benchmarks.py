"""History of one pytest benchmark across runs / commits (plotly)."""

from __future__ import annotations

from typing import Any

_VERDICT_COLORS = {
    "regression": "#d62728", "inconclusive": "#ff7f0e", "improved": "#2ca02c",
    "ok": "#1f77b4", "saved": "#9467bd", "measured": "#7f7f7f", "no baseline": "#7f7f7f",
}


def benchmark_history_figure(frame: Any, test: str) -> Any:
    """Median (with the p95 as an upper whisker) of ``test`` per run, oldest to newest.

    ``frame`` is ``perfkit.Store(url).benchmarks()`` (or
    :func:`perfkit.pytest_plugin._storage.read_benchmarks`). Points are coloured by
    verdict; saved baselines are drawn as diamonds; hovering shows commit,
    ratio vs baseline with its CI, and the machine's CPU.
    """
    import json

    import plotly.graph_objects as go

    from perfkit.plots._common import STYLE

    rows = frame[frame["test"] == test].sort_values("ts")
    if rows.empty:
        raise ValueError(f"no stored results for test {test!r}")
    ms = rows["median_s"] * 1e3
    p95 = rows["p95_s"] * 1e3

    def cpu(text: Any) -> str:
        try:
            return json.loads(text).get("cpu", "") if isinstance(text, str) else ""
        except ValueError:
            return ""

    hover = []
    for _, r in rows.iterrows():
        ratio = ("-" if r["ratio"] != r["ratio"] or r["ratio"] is None else
                 f"{r['ratio']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}]")
        hover.append(
            f"commit {str(r['commit'])[:10] or '-'}<br>run {str(r['run_id'])[:12]}"
            f"{'<br>baseline ' + repr(r['baseline']) if r['baseline'] else ''}"
            f"<br>median {r['median_s'] * 1e3:.4g} ms, p95 {r['p95_s'] * 1e3:.4g} ms"
            f"<br>ratio {ratio}<br>verdict {r['verdict']}<br>{cpu(r['machine'])}")
    x = rows["ts"]
    fig = go.Figure()
    fig.add_trace(go.Scatter(
        x=x, y=ms, mode="lines", name="median", line={"color": "#aaaaaa", "width": 1},
        hoverinfo="skip", showlegend=False))
    for verdict, group in rows.groupby("verdict", sort=False):
        idx = group.index
        fig.add_trace(go.Scatter(
            x=x.loc[idx], y=ms.loc[idx], mode="markers", name=verdict or "-",
            marker={"color": _VERDICT_COLORS.get(verdict, "#333333"), "size": 9,
                    "symbol": ["diamond" if b else "circle" for b in group["baseline"]]},
            error_y={"type": "data", "symmetric": False,
                     "array": (p95.loc[idx] - ms.loc[idx]).clip(lower=0),
                     "arrayminus": [0] * len(idx), "thickness": 1},
            text=[hover[rows.index.get_loc(i)] for i in idx], hoverinfo="text"))
    fig.update_layout(
        title=f"{test}: median per run (whisker: p95)", xaxis_title="run time (UTC)",
        yaxis_title="ms per call", legend_title="verdict",
        **{**STYLE, "hovermode": "closest"})
    fig.update_yaxes(rangemode="tozero")
    return fig
