"""Notebooks are stored without outputs and run top to bottom against the packages."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib
import pytest

from pipelines.paths import REPOSITORY_ROOT

NOTEBOOKS = sorted((REPOSITORY_ROOT / "notebooks").glob("*.ipynb"))


def code_cells(path: Path) -> list[dict]:
    return [cell for cell in json.loads(path.read_text())["cells"] if cell["cell_type"] == "code"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_notebook_is_stored_without_outputs(path):
    for cell in code_cells(path):
        assert cell["outputs"] == [] and cell["execution_count"] is None, path.name


def test_prepare_notebook_runs_and_shows_windows(monkeypatch, capsys):
    matplotlib.use("Agg")
    monkeypatch.chdir(REPOSITORY_ROOT)
    namespace: dict = {}
    for cell in code_cells(REPOSITORY_ROOT / "notebooks" / "01_prepare_data.ipynb"):
        exec(compile("".join(cell["source"]), "01_prepare_data.ipynb", "exec"), namespace)
    assert namespace["inputs"].shape[1:] == (28, 4)
    assert namespace["targets"].shape[1:] == (7, 1)
    assert len(namespace["inputs"]) == namespace["result"].summary["windows"]["validation"]
    assert "dataset      seattle-weather" in capsys.readouterr().out
