"""ActionResult: what one executed (or refused) action did, as returned to the caller."""

from __future__ import annotations

import html
import json
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from perfkit._format import format_value
from perfkit._json import jsonable

__all__ = ["ActionResult"]


@dataclass
class ActionResult:
    """The outcome of one action run, mirrored by its audit row in the store.

    ``status``: ``done``, ``failed`` or ``rejected``. ``before``/``after``: metric →
    value. ``verdict``: ``improved``, ``no change``, ``worse``, ``inconclusive``
    (nothing measured on both sides) or None for a dry run; ``verdict_reason`` states
    how it was reached.
    """

    action: str
    status: str
    params: dict[str, Any] = field(default_factory=dict)
    target: str = ""
    requested_by: str = "user"
    dry_run: bool = False
    id: int | None = None
    before: dict[str, float] = field(default_factory=dict)
    after: dict[str, float] = field(default_factory=dict)
    verdict: str | None = None
    verdict_reason: str = ""
    detail: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    duration_s: float | None = None
    started_at: pd.Timestamp | None = None

    @property
    def ok(self) -> bool:
        """True when the action ran to completion."""
        return self.status == "done"

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form (JSON-friendly apart from ``started_at``)."""
        return asdict(self)

    def to_frame(self) -> pd.DataFrame:
        """One row per watched metric: metric, before, after, change, plus the verdict."""
        keys = list(dict.fromkeys([*self.before, *self.after]))
        rows = []
        for k in keys:
            b, a = self.before.get(k), self.after.get(k)
            rows.append({"action": self.action, "metric": k, "before": b, "after": a,
                         "change": (a - b) if a is not None and b is not None else None,
                         "verdict": self.verdict, "status": self.status})
        if not rows:
            rows.append({"action": self.action, "metric": None, "before": None, "after": None,
                         "change": None, "verdict": self.verdict, "status": self.status})
        return pd.DataFrame(rows, columns=["action", "metric", "before", "after", "change",
                                           "verdict", "status"])

    def __str__(self) -> str:
        head = f"{self.action} [{self.status}{', dry run' if self.dry_run else ''}]"
        if self.verdict:
            head += f" verdict: {self.verdict}"
        if self.error:
            head += f" error: {self.error}"
        return head

    def _repr_html_(self) -> str:
        esc = html.escape
        colour = {"improved": "#1a7f37", "worse": "#cf222e"}.get(self.verdict or "", "#57606a")
        rows = "".join(
            f"<tr><td>{esc(str(r.metric))}</td><td>{_fmt(r.before)}</td><td>{_fmt(r.after)}</td>"
            f"</tr>" for r in self.to_frame().itertuples() if r.metric is not None)
        detail = esc(json.dumps(jsonable(self.detail), indent=1)[:2000])
        error = f"<br><span style='color:#cf222e'>{esc(self.error)}</span>" if self.error else ""
        table = ("<table><tr><th>metric</th><th>before</th><th>after</th></tr>"
                 f"{rows}</table>") if rows else ""
        return (f"<div><b>{esc(self.action)}</b> → {esc(self.target)} · {esc(self.status)}"
                f"{' · dry run' if self.dry_run else ''} · <span style='color:{colour}'>"
                f"{esc(self.verdict or '—')}</span> · {_fmt(self.duration_s)} s{error}"
                f"<br><small>{esc(self.verdict_reason)}</small>{table}"
                f"<details><summary>detail</summary><pre>{detail}</pre></details></div>")


def _fmt(v: object) -> str:  # a float or None
    return format_value(v, missing="—")
