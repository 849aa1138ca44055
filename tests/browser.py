"""Headless Chromium for tests and pictures of the MLflow UI: the page's DOM after its scripts
ran, a screenshot, and the rows of an ag-grid table (the UI's runs table) read from the DOM."""

from __future__ import annotations

import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

SCRIPT_TIME_MS = 25_000
"""Virtual time the page's scripts get before the DOM is read (the UI fetches its runs first)."""
BROWSER_SECONDS = 120


def chromium_or_skip() -> str:
    """The Chromium executable; missing is a skip on a laptop but a failure in CI, whose
    `.ci/run` installs Debian's `chromium`."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    message = "headless Chromium is not installed (Debian: apt-get install chromium)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


def _run(chromium: str, url: str, *options: str, window: tuple[int, int]) -> str:
    command = [
        chromium,
        "--headless",
        "--no-sandbox",  # CI containers run as root
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        f"--window-size={window[0]},{window[1]}",
        f"--virtual-time-budget={SCRIPT_TIME_MS}",
        *options,
        url,
    ]
    finished = subprocess.run(
        command, capture_output=True, text=True, timeout=BROWSER_SECONDS, check=False
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    return finished.stdout


def page_dom(chromium: str, url: str, window: tuple[int, int] = (1800, 900)) -> str:
    """The page's DOM once its scripts have run."""
    return _run(chromium, url, "--dump-dom", window=window)


def screenshot(chromium: str, url: str, path: Path, window: tuple[int, int]) -> Path:
    """A PNG of the page at `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _run(chromium, url, f"--screenshot={path}", window=window)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return path


class _GridReader(HTMLParser):
    """Collects the text of every ag-grid cell by (row index, column id)."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: dict[tuple[int, str], str] = {}
        self._row: int | None = None
        self._stack: list[tuple[str, bool]] = []  # (tag, opens a cell)
        self._cell: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if attributes.get("role") == "row" and attributes.get("row-index", "").isdigit():
            self._row = int(attributes["row-index"])
        opens_cell = (
            attributes.get("role") == "gridcell"
            and self._row is not None
            and self._cell is None
            and attributes.get("col-id") is not None
        )
        if opens_cell:
            self._cell, self._text = attributes["col-id"], []
        if tag not in ("br", "img", "input", "meta", "link", "hr", "path"):
            self._stack.append((tag, opens_cell))

    def handle_endtag(self, tag: str) -> None:
        while self._stack:
            opened, closes_cell = self._stack.pop()
            if closes_cell:
                self.cells[(self._row, self._cell)] = " ".join("".join(self._text).split())
                self._cell = None
            if opened == tag:
                break

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._text.append(data)


def grid_rows(dom: str) -> list[dict[str, str]]:
    """The grid's rows in display order, each `{column id: cell text}` (ag-grid draws pinned
    and scrolling columns as separate row elements with the same row index)."""
    reader = _GridReader()
    reader.feed(dom)
    rows: dict[int, dict[str, str]] = {}
    for (row, column), text in reader.cells.items():
        rows.setdefault(row, {})[column] = text
    return [rows[index] for index in sorted(rows)]
