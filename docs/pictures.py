"""The README's pictures from the notebooks: runs every notebook whose code cells carry the
metadata `docs_picture` (a file name) and writes the first image each such cell displays to
`docs/<file name>`. `make docs` runs this and the MLflow UI test, which saves the UI's
screenshots here too.

Usage:
    python docs/pictures.py [NOTEBOOK ...]     # default: every notebook in notebooks/
"""

from __future__ import annotations

import base64
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

REPOSITORY_ROOT = Path(__file__).resolve().parent.parent
DOCS = REPOSITORY_ROOT / "docs"
CELL_SECONDS = 300


def pictures(notebook: nbformat.NotebookNode) -> dict[str, bytes]:
    """`{file name: PNG bytes}` of an executed notebook: the first image of each cell with
    `docs_picture` metadata."""
    found: dict[str, bytes] = {}
    for cell in notebook.cells:
        name = cell.get("metadata", {}).get("docs_picture")
        if cell.cell_type != "code" or not name:
            continue
        images = [
            out["data"]["image/png"] for out in cell.outputs if "image/png" in out.get("data", {})
        ]
        if not images:
            raise ValueError(f"cell for {name}: it displayed no image")
        found[name] = base64.b64decode(images[0])
    return found


def execute(path: Path, cell_seconds: float = CELL_SECONDS) -> nbformat.NotebookNode:
    """The notebook at `path` run top to bottom in a `python3` kernel from the repository root,
    as a reader runs it; a cell that raises raises nbclient's `CellExecutionError`."""
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(
        notebook,
        timeout=cell_seconds,
        kernel_name="python3",
        resources={"metadata": {"path": str(REPOSITORY_ROOT)}},
    ).execute()
    return notebook


def main(paths: list[str]) -> int:
    notebooks = [Path(p) for p in paths] or sorted((REPOSITORY_ROOT / "notebooks").glob("*.ipynb"))
    for path in notebooks:
        tagged = nbformat.read(path, as_version=4).cells
        if not any(cell.get("metadata", {}).get("docs_picture") for cell in tagged):
            continue
        notebook = execute(path)
        for name, data in pictures(notebook).items():
            (DOCS / name).write_bytes(data)
            print(f"{path.name} -> docs/{name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
