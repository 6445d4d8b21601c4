"""A fresh venv gets exactly the dependencies a wheel declares, linked from this environment.

Installing pandas, SciPy, statsmodels and Streamlit into two fresh venvs took most of the
suite's wall time. The wheel still goes in through pip (``--no-deps``); its dependencies are
the transitive closure of the wheel's own ``Requires-Dist`` (for the extras asked for),
resolved against the distributions installed here and symlinked into one directory that the
venv puts on ``sys.path``. A requirement the wheel forgets is therefore missing in the venv,
an extra it should not pull in is absent, and ``pip check`` in the venv compares every
declared version range with what is linked.
"""

from __future__ import annotations

import importlib.metadata as md
import re
from email.parser import Parser
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name


def wheel_requirements(wheel: Path, extras: set[str]) -> list[Requirement]:
    """The wheel's ``Requires-Dist`` that apply with ``extras`` on this interpreter."""
    import zipfile

    with zipfile.ZipFile(wheel) as z:
        name = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        meta = Parser().parsestr(z.read(name).decode())
    return _applicable([Requirement(r) for r in meta.get_all("Requires-Dist") or []], extras)


def _applicable(reqs: list[Requirement], extras: set[str]) -> list[Requirement]:
    out = []
    for req in reqs:
        if req.marker is None:
            out.append(req)
            continue
        env = default_environment()
        if any(req.marker.evaluate({**env, "extra": e}) for e in extras or {""}):
            out.append(req)
    return out


def closure(reqs: list[Requirement], skip: str) -> list[md.Distribution]:
    """Installed distributions that ``reqs`` need, transitively (``skip``: the wheel itself,
    whose self-referencing extras such as ``perfkit[all]`` are expanded, not linked)."""
    seen: dict[str, md.Distribution] = {}
    todo = [(r, r.extras) for r in reqs]
    while todo:
        req, extras = todo.pop()
        key = canonicalize_name(req.name)
        if key == canonicalize_name(skip) or key in seen:
            continue
        try:
            dist = md.distribution(req.name)
        except md.PackageNotFoundError:
            raise AssertionError(f"the wheel needs {req}, which is not installed in this "
                                 'environment to link from (pip install -e ".[test]")') from None
        seen[key] = dist
        todo += [(r, r.extras) for r in _applicable(
            [Requirement(x) for x in dist.requires or []], set(extras))]
    return list(seen.values())


def link_into(dists: list[md.Distribution], target: Path) -> None:
    """Symlink each distribution's top-level modules, packages and metadata into ``target``.

    Namespace packages (a top-level directory without ``__init__.py``, e.g. ``google``) are
    made real directories holding links to just this distribution's sub-packages, so nothing
    undeclared comes along with them.
    """
    target.mkdir(parents=True, exist_ok=True)
    for dist in dists:
        root = Path(str(dist.locate_file("")))
        assert dist.files is not None, f"{dist.metadata['Name']} has no RECORD to link from"
        tops: set[tuple[str, ...]] = set()
        for f in dist.files or []:
            parts = Path(str(f)).parts
            if not parts or parts[0] == ".." or re.search(r"\.pth$", parts[0]):
                continue
            top = root / parts[0]
            if top.is_dir() and not (top / "__init__.py").exists() \
                    and not parts[0].endswith((".dist-info", ".libs", ".data")) and len(parts) > 2:
                tops.add(parts[:2])
            else:
                tops.add(parts[:1])
        for parts in sorted(tops):
            dest = target.joinpath(*parts)
            if dest.exists() or dest.is_symlink():
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.symlink_to(root.joinpath(*parts))
