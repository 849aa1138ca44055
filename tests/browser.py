"""Headless Chromium for tests and pictures of the MLflow UI: the page's DOM after its scripts
ran, a screenshot, the rows of an ag-grid table (the UI's runs table) read from the DOM, and a
page driven over the DevTools protocol (`DevToolsPage`) where a picture needs a click first."""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import ClientConnection, connect

SCRIPT_TIME_MS = 25_000
"""Virtual time the page's scripts get before the DOM is read (the UI fetches its runs first)."""
BROWSER_SECONDS = 120


def find_chromium() -> str | None:
    """The Chromium executable on PATH, if any."""
    return next(
        filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None
    )


def chromium_or_skip() -> str:
    """The Chromium executable; missing is a skip on a laptop but a failure in CI, whose
    `.ci/run` installs Debian's `chromium`."""
    path = find_chromium()
    if path:
        return path
    message = "headless Chromium is not installed (Debian: apt-get install chromium)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


def _headless(chromium: str, window: tuple[int, int]) -> list[str]:
    return [
        chromium,
        "--headless",
        "--no-sandbox",  # CI containers run as root
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        f"--window-size={window[0]},{window[1]}",
    ]


def _run(chromium: str, url: str, *options: str, window: tuple[int, int]) -> str:
    command = [
        *_headless(chromium, window),
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


class DevToolsPage:
    """A headless Chromium page driven over the DevTools protocol: open a URL, wait for what its
    scripts draw, run JavaScript (a click, as a person would), take a screenshot. The
    command-line `--screenshot` cannot click: the MLflow UI's banners and panels stay open.

    Use it as a context manager; the browser and its profile go away on exit.
    """

    def __init__(self, chromium: str, window: tuple[int, int]) -> None:
        self.window = window
        self._profile = tempfile.TemporaryDirectory(prefix="chromium-", ignore_cleanup_errors=True)
        self._process = subprocess.Popen(
            [
                *_headless(chromium, window),
                "--remote-debugging-port=0",
                f"--user-data-dir={self._profile.name}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its renderer and helper processes go with it on exit
        )
        self._ids = itertools.count(1)
        self._socket: ClientConnection | None = None

    def __enter__(self) -> DevToolsPage:
        try:
            self._socket = connect(self._page_socket_url(), max_size=None, open_timeout=30)
            self.call("Page.enable")
            width, height = self.window
            self.call(
                "Emulation.setDeviceMetricsOverride",
                width=width,
                height=height,
                deviceScaleFactor=1,
                mobile=False,
            )
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._socket is not None:
            self._socket.close()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._process.pid, signal.SIGKILL)
        self._process.wait(timeout=30)
        self._profile.cleanup()

    def _page_socket_url(self) -> str:
        """The page's DevTools address, read from the port file Chromium writes on start."""
        port_file = Path(self._profile.name) / "DevToolsActivePort"
        deadline = time.monotonic() + BROWSER_SECONDS
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"Chromium exited with {self._process.returncode}")
            lines = port_file.read_text().split() if port_file.exists() else []
            if lines:
                with urllib.request.urlopen(f"http://127.0.0.1:{lines[0]}/json/list") as answer:
                    targets = json.load(answer)
                pages = [target for target in targets if target["type"] == "page"]
                if pages:
                    return pages[0]["webSocketDebuggerUrl"]
            time.sleep(0.1)
        raise TimeoutError(f"Chromium opened no DevTools port in {BROWSER_SECONDS} s")

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Sends one DevTools command and returns its result (events in between are skipped)."""
        assert self._socket is not None, "use DevToolsPage as a context manager"
        identifier = next(self._ids)
        self._socket.send(json.dumps({"id": identifier, "method": method, "params": params}))
        while True:
            message = json.loads(self._socket.recv(timeout=BROWSER_SECONDS))
            if message.get("id") != identifier:
                continue
            if "error" in message:
                raise RuntimeError(f"{method}: {message['error']}")
            return message["result"]

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (JSON values only)."""
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout_s: float = SCRIPT_TIME_MS / 1000) -> Any:
        """Polls a JavaScript expression until it is truthy; returns its value."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.25)
        raise TimeoutError(f"not true after {timeout_s} s: {expression}")

    def open(self, url: str) -> None:
        """Navigates to `url` and waits for the document to load."""
        self.call("Page.navigate", url=url)
        self.wait_for("document.readyState === 'complete' && location.href !== 'about:blank'")

    def dom(self) -> str:
        """The page's DOM now."""
        return self.evaluate("document.documentElement.outerHTML")

    def screenshot(self, path: Path) -> Path:
        """A PNG of the page (the window's size) at `path`."""
        data = self.call("Page.captureScreenshot", format="png")["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path


SHARED_VIEW_BANNER = "mlflow.experiment_page.shared_view.dismiss"
ASSISTANT_PANEL = "mlflow.assistant.chat_panel.close"
"""The MLflow UI's close buttons (their `data-component-id`) of the banner a shared view shows
("You're viewing a shared view ...") and of the Assistant panel that opens on a first visit."""


def close_ui_panels(page: DevToolsPage) -> list[str]:
    """Clicks the shared-view banner's and the Assistant panel's close buttons, as a person
    would before reading the page, and waits until both are gone; returns those it closed."""
    closed = []
    for component in (SHARED_VIEW_BANNER, ASSISTANT_PANEL):
        selector = json.dumps(f'[data-component-id="{component}"]')
        if page.evaluate(f"Boolean(document.querySelector({selector}))"):
            page.evaluate(f"document.querySelector({selector}).click()")
            page.wait_for(f"!document.querySelector({selector})")
            closed.append(component)
    return closed


def wait_for_grid_rows(page: DevToolsPage, count: int) -> None:
    """Waits until the runs table (ag-grid) draws `count` rows."""
    page.wait_for(f"document.querySelectorAll('[role=row][row-index]').length >= {count}")
