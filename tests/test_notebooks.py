"""Notebooks are stored without outputs and run top to bottom against the packages, in a real
Jupyter kernel (`nbclient`), as a reader runs them: a cell that raises fails the test."""

from __future__ import annotations

import base64
import importlib.util
import json
import re
from pathlib import Path

import nbformat
import pytest

from pipelines.paths import REPOSITORY_ROOT

NOTEBOOKS = sorted((REPOSITORY_ROOT / "notebooks").glob("*.ipynb"))
CELL_SECONDS = 120
"""Each notebook runs in under two minutes on two cores; one cell may take all of it."""


def code_cells(path: Path) -> list[dict]:
    return [cell for cell in json.loads(path.read_text())["cells"] if cell["cell_type"] == "code"]


def docs_pictures():
    """`docs/pictures.py` (a script, not a package module): the notebook runner and the picture
    extraction that `make docs` uses."""
    spec = importlib.util.spec_from_file_location("pictures", REPOSITORY_ROOT / "docs/pictures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def executed(name: str) -> tuple[str, int]:
    """Runs a notebook from the repository root; returns its printed text and how many images
    its cells displayed."""
    notebook = docs_pictures().execute(REPOSITORY_ROOT / "notebooks" / name, CELL_SECONDS)
    outputs = [output for cell in notebook.cells for output in cell.get("outputs", [])]
    streams = [output for output in outputs if output["output_type"] == "stream"]
    text = "".join(output["text"] for output in streams)
    images = sum("image/png" in output.get("data", {}) for output in outputs)
    return text, images


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_notebook_is_stored_without_outputs(path):
    for cell in code_cells(path):
        assert cell["outputs"] == [] and cell["execution_count"] is None, path.name


def test_every_notebook_has_its_test():
    assert [path.name for path in NOTEBOOKS] == [
        "01_prepare_data.ipynb",
        "02_lstm_gates.ipynb",
        "03_train_and_compare.ipynb",
        "04_forecast_and_backtest.ipynb",
    ]


def test_the_prepare_notebook_shows_the_summary_the_windows_and_the_repairs(shared_datasets):
    text, images = executed("01_prepare_data.ipynb")
    assert "dataset      seattle-weather" in text
    assert re.search(r"validation inputs \(\d+, 28, 4\) targets \(\d+, 7, 1\)", text), text
    # Jena: the -9999 sentinels counted per column, and the gap table with the long gap that
    # splits the series (34 rows of sentinels on 2020-02-20).
    assert "dataset      weather-ltsf" in text
    assert re.search(r"^sentinels    .*\bOT 50$", text, re.MULTILINE), text
    assert re.search(r"^ *series_id +after +before +steps +missing_timestamps +action$", text, re.M)
    assert re.search(r"2020-02-20 07:20:00\+00:00 .* +34 +0 +split$", text, re.MULTILINE), text
    # Stocks: one series per ticker, the ticker too short for a window named.
    assert "dataset      stocks-5yr" in text
    assert "dropped      1 series: APTV" in text
    assert re.search(r"^split +\[DHR, ES\]$", text, re.MULTILINE), text
    assert images == 3


def test_the_gates_notebook_draws_every_model():
    text, images = executed("02_lstm_gates.ipynb")
    for model in ("lstm", "peephole", "gru", "clockwork"):
        assert re.search(rf"^{model} +validation MAE \d\.\d{{3}}$", text, re.MULTILINE), text
    for gate in ("forget", "input", "output"):
        assert re.search(rf"^{gate} +lstm 0\.\d{{3}}  peephole 0\.\d{{3}}$", text, re.MULTILINE)
    # Periods 1, 2, 4, 8 over 28 days: 28, 14, 7 and 4 updates, two units per module.
    assert "updates per unit over 28 days: [28, 28, 14, 14, 7, 7, 4, 4]" in text
    # The variant study, read from its committed record: five seeds of every variant.
    stocks = text[text.index("stocks: test mase") :]
    for variant in ("linear", "lstm", "peephole (output gate)", "cifg", "gru", "clockwork"):
        assert re.search(rf"^{re.escape(variant)} +5 +0\.\d{{4}} +0\.\d{{4}}$", stocks, re.M)
    assert re.search(r"^repeat-last +1 +1\.2511 +NaN$", stocks, re.MULTILINE), stocks
    weather = text[text.index("weather: test mse") : text.index("stocks: test mase")]
    for variant in ("linear", "lstm", "peephole (all gates)", "depth-gated", "clockwork"):
        assert re.search(rf"^{re.escape(variant)} +5 +0\.\d{{4}} +0\.\d{{4}}$", weather, re.M)
    assert re.search(r"^repeat-last +1 +0\.2591 +NaN$", weather, re.MULTILINE), weather
    assert images == 4


def test_the_compare_notebook_reads_its_runs_back(tmp_path):
    text, images = executed("03_train_and_compare.ipynb")
    assert "exit code 0" in text
    table = text[text.index("model_name") :].splitlines()
    assert table[0].split() == [
        "model_name",
        "val_mae",
        "test_mae",
        "test_mse",
        "test_skill_vs_last",
        "training_seconds",
    ]
    rows = [line.split() for line in table[1:5]]
    assert sorted(row[0] for row in rows) == ["gru", "last", "linear", "lstm"]
    assert [float(row[1]) for row in rows] == sorted(float(row[1]) for row in rows)
    assert images == 2


def test_the_forecast_notebook_forecasts_from_the_champion_and_backtests():
    text, images = executed("04_forecast_and_backtest.ipynb")
    assert "exit code 0" in text
    # The champion forecasts the 7 days after the data's last (2015-12-31), from version 1.
    # Each with its 80% interval (lower, upper) from the calibration the model carries.
    rows = re.findall(
        r"^(2016-01-0\d) 00:00:00\+00:00 +(\d) +([-\d.]+) +([-\d.]+) +([-\d.]+) +1$",
        text,
        re.MULTILINE,
    )
    assert [row[:2] for row in rows] == [(f"2016-01-0{day}", str(day)) for day in range(1, 8)]
    assert all(float(lower) < float(upper) for *_, lower, upper in rows)
    assert re.search(
        r"as_of 2015-10-01: MAE over the 7 days \d+\.\d\d °C; [0-7] of 7 days inside the 80%",
        text,
    )
    summary = text[text.index(" model  mean_mae  std_mae") :].splitlines()[1:4]
    assert sorted(line.split()[0] for line in summary) == ["gru", "last", "repeat"]
    assert images == 3


def test_the_docs_pictures_are_the_tagged_cells_first_images():
    pictures = docs_pictures()
    png = b"\x89PNG\r\n\x1a\nfirst"
    image = {"output_type": "display_data", "metadata": {}, "data": {"image/png": ""}}
    notebook = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell("a", metadata={"docs_picture": "a.png"}),
            nbformat.v4.new_code_cell("b"),
            nbformat.v4.new_code_cell("c", metadata={"docs_picture": "c.png"}),
        ]
    )
    first = {**image, "data": {"image/png": base64.b64encode(png).decode()}}
    second = {**image, "data": {"image/png": base64.b64encode(b"second").decode()}}
    notebook.cells[0].outputs = [nbformat.from_dict(first), nbformat.from_dict(second)]
    notebook.cells[1].outputs = [nbformat.from_dict(second)]
    with pytest.raises(ValueError, match=r"cell for c\.png: it displayed no image"):
        pictures.pictures(notebook)
    notebook.cells[2].outputs = [nbformat.from_dict(second)]
    assert pictures.pictures(notebook) == {"a.png": png, "c.png": b"second"}
