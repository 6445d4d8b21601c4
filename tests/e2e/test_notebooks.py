"""The notebooks run top to bottom in a real kernel, in a temp dir with a temp store.

They are stored without outputs; this test executes them (nbclient, the
current interpreter's ``python3`` kernel) and fails on the first cell that
raises. Timing is reported by pytest's ``--durations``, never asserted.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
EXPECTED = {"01_quickstart.ipynb", "02_forecasting_real_data.ipynb", "03_optimisation.ipynb",
            "04_anomalies_real_data.ipynb"}


def test_the_four_notebooks_exist() -> None:
    assert {p.name for p in NOTEBOOKS} >= EXPECTED


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_stored_without_outputs(path: Path) -> None:
    nb = json.loads(path.read_text())
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None, \
                f"{path.name} cell {i} has outputs; clear them before committing"


@pytest.fixture(scope="session")
def kernel_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A Jupyter path whose ``python3`` kernel is this interpreter (not whatever is installed)."""
    from ipykernel.kernelspec import write_kernel_spec

    root = tmp_path_factory.mktemp("jupyter")
    write_kernel_spec(str(root / "kernels" / "python3"))
    return str(root)


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                       kernel_path: str) -> None:
    monkeypatch.setenv("JUPYTER_PATH", os.pathsep.join(filter(None, [
        kernel_path, os.environ.get("JUPYTER_PATH")])))
    monkeypatch.setenv("PERFKIT_STORE_URL", f"sqlite:///{tmp_path}/perfkit.db")
    monkeypatch.setenv("PERFKIT_DATA_DIR", str(ROOT / "data"))
    # The kernel must import this checkout's perfkit even when it is not pip-installed.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT),
                                                                   os.environ.get("PYTHONPATH")])))
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=180, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError, naming the cell, on the first error
    # the notebook must not have written into the checkout
    assert not (ROOT / "notebooks" / ".perfkit").exists()
