"""The plugin's per-session state: the ``--perf-*`` options (validated when given), the
store it writes to and the commit, opened on first use; the results the workers reported.

Imports only the standard library and pytest (the plugin is loaded into every pytest run).
"""

from __future__ import annotations

import os
import uuid
from typing import Any

import pytest

RESULT_ATTR = "perfkit"  # attribute on the call-phase TestReport (travels through xdist)
FAIL_ON_CHOICES = ("regression", "budget", "none")


class PerfSession:
    """Per-pytest-session state. Construction is cheap; everything heavy is lazy."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        opt = config.option
        self.save: str | None = opt.perf_save
        self.compare: str | None = opt.perf_compare        # None: no comparison; '': latest
        self.store_url: str | None = opt.perf_store
        self.disabled: bool = bool(opt.perf_disable)
        self.fail_on_raw: str | None = opt.perf_fail_on
        self.max_regression_raw: str | None = opt.perf_max_regression
        self.options_given = any(v not in (None, False) for v in (
            self.save, self.compare, self.store_url, self.fail_on_raw,
            self.max_regression_raw, opt.perf_disable or None))
        workerinput = getattr(config, "workerinput", None)
        self.worker: str = workerinput.get("workerid", "") if workerinput else ""
        self.run_id: str = (workerinput or {}).get("perfkit_run_id") or uuid.uuid4().hex
        self.results: list[dict] = []
        self._engine: Any = None
        self._defaults: Any = None
        self._fail_on: frozenset[str] | None = None
        self._commit: str | None = None

    # ---- option handling (validated at configure time only when given) ----
    def validate(self) -> None:
        self.fail_on  # noqa: B018 - parse now so a bad value is a usage error
        self.defaults  # noqa: B018
        if self.save is not None and not self.save.strip():
            raise pytest.UsageError("--perf-save needs a non-empty NAME")
        if self.compare and ("/" in self.compare or self.compare.endswith(".py")
                             or "::" in self.compare) and os.path.exists(
                                 self.compare.split("::")[0]):
            raise pytest.UsageError(
                f"--perf-compare took {self.compare!r} as the baseline NAME, but it is a path. "
                "Write --perf-compare=NAME, or put --perf-compare after the paths.")

    @property
    def fail_on(self) -> frozenset[str]:
        if self._fail_on is None:
            raw = self.fail_on_raw if self.fail_on_raw is not None else "regression,budget"
            parts = {p.strip() for p in raw.split(",") if p.strip()}
            bad = parts - set(FAIL_ON_CHOICES)
            if bad or not parts or ("none" in parts and len(parts) > 1):
                raise pytest.UsageError(
                    f"--perf-fail-on {raw!r}: expected 'regression', 'budget', "
                    "'regression,budget' or 'none'")
            self._fail_on = frozenset(parts - {"none"})
        return self._fail_on

    @property
    def defaults(self) -> Any:
        if self._defaults is None:
            from perfkit.pytest_plugin._options import PerfSettings, PerfUsageError, parse_fraction

            settings = PerfSettings()
            if self.max_regression_raw is not None:
                try:
                    settings = PerfSettings(max_regression=parse_fraction(
                        self.max_regression_raw, "--perf-max-regression"))
                except PerfUsageError as exc:
                    raise pytest.UsageError(str(exc)) from None
            self._defaults = settings
        return self._defaults

    # ---- lazily created resources ----
    @property
    def url(self) -> str:
        if self.store_url:
            return self.store_url
        if os.environ.get("PERFKIT_STORE_URL"):   # the same variable perfkit.Store reads
            return os.environ["PERFKIT_STORE_URL"]
        root = str(self.config.rootpath)
        return f"sqlite:///{os.path.join(root, '.perfkit', 'perfkit.db')}"

    @property
    def engine(self) -> Any:
        if self._engine is None:
            from perfkit.pytest_plugin._storage import engine_for

            self._engine = engine_for(self.url)
        return self._engine

    @property
    def commit(self) -> str:
        if self._commit is None:
            from perfkit.pytest_plugin._machine import git_commit

            self._commit = git_commit(self.config.rootpath)
        return self._commit

    @property
    def active(self) -> bool:
        return bool(self.results) or self.options_given

    # registered as a plugin object per config (works in-process with pytester and under
    # the xdist controller, which receives the workers' reports)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        summary = getattr(report, RESULT_ATTR, None)
        if summary and report.when == "call":
            self.results.append(summary)
