"""Servers that tests start on 127.0.0.1: a free port, waiting until ready, stopping."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_ready(url: str, process: subprocess.Popen, log: Path, deadline_s: float) -> None:
    """Polls `url` until it answers 200; fails early when the server dies, late at the deadline."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the server exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.25)
    pytest.fail(f"no answer on {url} in {deadline_s} s:\n{log.read_text()[-3000:]}")


def stop(process: subprocess.Popen) -> None:
    """Stops a server started with `start_new_session=True`: its whole process group, since
    MLflow's servers fork workers."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=15)


@contextlib.contextmanager
def mlflow_server(
    folder: Path, *options: str, lifetime_s: int = 600, start_s: float = 120
) -> Iterator[str]:
    """`mlflow server <options>` on a free 127.0.0.1 port, run from `folder` (its log there too)
    under coreutils `timeout`, so it stops by itself even if the test process dies; yields its
    URL once `/health` answers and stops its process group afterwards."""
    if shutil.which("timeout") is None:
        pytest.skip("coreutils `timeout` is needed to bound the server's life")
    port = free_port()
    command = [
        "timeout",
        "--kill-after=10",
        str(lifetime_s),
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--host=127.0.0.1",
        f"--port={port}",
        "--workers=1",
        *options,
    ]
    # MLflow's job runner (a handful of huey consumer processes, each importing MLflow) runs
    # GenAI jobs that no test submits; left on, it costs CPU-seconds that the test waits for.
    environment = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    with loopback_server(command, folder, environment, port, "/health", start_s):
        yield f"http://127.0.0.1:{port}"


@contextlib.contextmanager
def loopback_server(
    command: list[str],
    folder: Path,
    environment: Mapping[str, str],
    port: int,
    ready_path: str,
    start_s: float,
) -> Iterator[subprocess.Popen[bytes]]:
    """Runs `command`, a server that listens on 127.0.0.1:`port`, from `folder` (its output in
    `folder/server.log`) in a process group of its own; yields the process once `ready_path`
    answers 200 and stops the whole group afterwards."""
    log = folder / "server.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            command,
            cwd=folder,
            env=dict(environment),
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_until_ready(f"http://127.0.0.1:{port}{ready_path}", process, log, start_s)
        yield process
    finally:
        stop(process)
