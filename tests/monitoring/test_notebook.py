"""The investigation notebook runs clean on generated data and is stored without outputs."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from tests.monitoring.conftest import force_promote
from tests.monitoring.test_respond import Trained
from tests.monitoring.tickets import add_tickets

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "regression_investigation.ipynb"


def test_the_notebook_is_stored_without_outputs() -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None


@pytest.mark.slow
@pytest.mark.e2e
def test_the_notebook_runs_clean_on_a_regression(
    trained: Trained, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, client, database, _ = trained
    force_promote(settings, client, database, "1")
    add_tickets(database, version="1", n=300, accuracy=0.95, seed=1)
    force_promote(settings, client, database, "2")
    add_tickets(database, version="2", n=200, accuracy=0.3, confidence=0.55, seed=2)
    # The kernel inherits this process's environment: that is how the notebook finds the state.
    monkeypatch.setenv("BOLTIT_STATE_DIR", str(settings.state_dir))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    runner = NotebookClient(
        notebook,
        kernel_name="python3",
        timeout=300,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    try:
        runner.execute()
    except CellExecutionError as exc:  # pragma: no cover - the message is the diagnosis
        pytest.fail(f"notebook failed:\n{exc}")
    text = "\n".join(
        output.get("text", "") or str(output.get("data", {}).get("text/plain", ""))
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
    )
    assert "Production v2, previous v1" in text
    assert "drift verdict" in text
    images = [
        output
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if "image/png" in output.get("data", {})
    ]
    assert len(images) >= 4  # per-category, confidence, drift, accuracy over time
