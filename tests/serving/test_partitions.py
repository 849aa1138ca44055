"""The forecast output lock, with the overlap forced: a second holder waits, times out or
serializes, whether it is another process or the forecast command itself."""

from __future__ import annotations

import itertools
import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from pipelines.cli import exit_codes
from pipelines.cli import forecast as forecast_command
from pipelines.serving import batch, partitions
from pipelines.serving.partitions import LockTimeoutError, output_lock
from tests.serving.test_batch import (  # noqa: F401  (`store` is a fixture)
    HORIZON,
    LAST_PARTITION,
    SERIES,
    Store,
    cli,
    forecast_runs,
    store,
    subprocess_environment,
)

HOLD_SECONDS = 0.5
"""How long a holder keeps the lock after the test tells it to let go."""
STARTUP_TIMEOUT = 60.0
"""Longest wait for a child process to import the project and take the lock."""
WRITER_ITERATIONS = 5
WRITER_HOLD_SECONDS = 0.05

HOLDER_PROGRAM = """
import fcntl, sys, time
from pathlib import Path

lock_file, held, release, released = (Path(argument) for argument in sys.argv[1:5])
lock_file.parent.mkdir(parents=True, exist_ok=True)
with open(lock_file, "a+b") as handle:
    fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
    held.write_text("held", encoding="utf-8")
    deadline = time.monotonic() + 120
    while not release.exists() and time.monotonic() < deadline:
        time.sleep(0.005)
    released.write_text(repr(time.monotonic()), encoding="utf-8")
    fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
"""
"""Takes an exclusive `flock` on the lock file, the protocol `partitions` documents (so it
starts in milliseconds, without importing the project); says so in `held`; keeps it until
`release` exists, then writes the time (`time.monotonic`, one clock for every process on the
machine) just before letting go."""

WRITER_PROGRAM = """
import json, os, sys, time
from pathlib import Path
from pipelines.serving.partitions import output_lock

output, ready, go, counter, log = (Path(argument) for argument in sys.argv[1:6])
iterations, hold = int(sys.argv[6]), float(sys.argv[7])
ready.write_text("ready", encoding="utf-8")
deadline = time.monotonic() + 120
while not go.exists() and time.monotonic() < deadline:
    time.sleep(0.001)
intervals = []
for _ in range(iterations):
    with output_lock(output, timeout=60):
        entered = time.monotonic()
        value = int(counter.read_text(encoding="utf-8"))
        time.sleep(hold)
        staged = counter.with_name(f"counter-{os.getpid()}")
        staged.write_text(str(value + 1), encoding="utf-8")
        os.replace(staged, counter)  # atomic: a reader sees one whole number, never a torn one
        intervals.append([entered, time.monotonic()])
log.write_text(json.dumps(intervals), encoding="utf-8")
"""
"""Waits for `go`, then `iterations` times under the lock: a read-sleep-write increment of the
counter file, recording when it entered and left the critical section."""


def start_child(program: str, *arguments: object) -> subprocess.Popen[str]:
    """Starts `python -c program arguments...` with the repository importable.

    Args:
        program: the Python source to run.
        arguments: its command-line arguments (turned into strings).

    Returns:
        The running process, stderr piped for failure messages.
    """
    return subprocess.Popen(
        [sys.executable, "-c", program, *(str(argument) for argument in arguments)],
        env=subprocess_environment(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_file(path: Path, process: subprocess.Popen[str]) -> None:
    """Polls until `path` exists; fails with the child's stderr if it dies first.

    Args:
        path: the file the child writes when it is ready.
        process: the child.
    """
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while not path.exists():
        if process.poll() is not None:
            pytest.fail(f"the child exited {process.returncode}: {process.stderr.read()}")
        if time.monotonic() > deadline:
            pytest.fail(f"the child never wrote {path.name}")
        time.sleep(0.01)


@dataclass
class Holder:
    """Another process holding the output lock, and the files it talks through."""

    process: subprocess.Popen[str]
    release_file: Path
    released_file: Path

    def release_after(self, seconds: float) -> threading.Timer:
        """Tells the holder to let go `seconds` from now (from a timer thread)."""
        timer = threading.Timer(seconds, self.release_file.touch)
        timer.start()
        return timer

    def released_at(self) -> float:
        """When (`time.monotonic`) the holder was about to release; waits for it to exit."""
        self.process.wait(timeout=STARTUP_TIMEOUT)
        assert self.process.returncode == 0, self.process.stderr.read()
        return float(self.released_file.read_text(encoding="utf-8"))


@contextmanager
def lock_held_by_another_process(output: Path, control: Path) -> Iterator[Holder]:
    """A child process that holds the lock of `output` until told to let go (or killed).

    Args:
        output: the forecast output folder.
        control: an empty folder for the files the child and the test exchange.

    Yields:
        The holder, once it holds the lock.
    """
    control.mkdir()
    held = control / "held"
    holder = Holder(
        process=start_child(
            HOLDER_PROGRAM,
            output / partitions.LOCK_FILE,
            held,
            control / "release",
            control / "released",
        ),
        release_file=control / "release",
        released_file=control / "released",
    )
    try:
        wait_for_file(held, holder.process)
        yield holder
    finally:
        holder.release_file.touch()
        if holder.process.poll() is None:
            try:
                holder.process.wait(timeout=STARTUP_TIMEOUT)
            except subprocess.TimeoutExpired:
                holder.process.kill()
                holder.process.wait()


# --------------------------------------------------------------------------------------------
# output_lock against another process


def test_a_second_lock_waits_until_the_other_process_releases(tmp_path: Path) -> None:
    output = tmp_path / "out"
    with lock_held_by_another_process(output, tmp_path / "control") as holder:
        timer = holder.release_after(HOLD_SECONDS)
        started = time.monotonic()
        with output_lock(output, timeout=STARTUP_TIMEOUT):
            acquired = time.monotonic()
        timer.join()
        released = holder.released_at()
    assert acquired - started >= HOLD_SECONDS * 0.9
    assert acquired >= released  # not a moment before the holder let go


def test_a_held_lock_times_out_at_once_with_zero_and_after_the_timeout_otherwise(
    tmp_path: Path,
) -> None:
    output = tmp_path / "out"
    with lock_held_by_another_process(output, tmp_path / "control"):
        started = time.monotonic()
        with (
            pytest.raises(LockTimeoutError, match="another forecast run holds the lock"),
            output_lock(output, timeout=0),
        ):
            pytest.fail("entered a lock that another process holds")
        assert time.monotonic() - started < HOLD_SECONDS

        started = time.monotonic()
        with (
            pytest.raises(LockTimeoutError, match=r"waited 0\.3 s"),
            output_lock(output, timeout=0.3),
        ):
            pytest.fail("entered a lock that another process holds")
        assert time.monotonic() - started >= 0.3
    # Released: no waiting any more.
    with output_lock(output, timeout=0):
        pass


def test_the_kernel_frees_the_lock_of_a_killed_holder(tmp_path: Path) -> None:
    output = tmp_path / "out"
    with lock_held_by_another_process(output, tmp_path / "control") as holder:
        with pytest.raises(LockTimeoutError), output_lock(output, timeout=0):
            pytest.fail("entered a lock that another process holds")
        holder.process.send_signal(signal.SIGKILL)
        holder.process.wait(timeout=STARTUP_TIMEOUT)
        assert holder.process.returncode == -signal.SIGKILL
        assert not holder.released_file.exists()  # it never let go by itself
        with output_lock(output, timeout=0):
            pass


def test_two_writers_never_overlap_in_the_critical_section(tmp_path: Path) -> None:
    output = tmp_path / "out"
    counter = tmp_path / "counter"
    counter.write_text("0", encoding="utf-8")
    go = tmp_path / "go"
    writers = []
    for index in range(2):
        ready = tmp_path / f"ready-{index}"
        log = tmp_path / f"intervals-{index}.json"
        process = start_child(
            WRITER_PROGRAM,
            output,
            ready,
            go,
            counter,
            log,
            WRITER_ITERATIONS,
            WRITER_HOLD_SECONDS,
        )
        writers.append((process, ready, log))
    try:
        for process, ready, _ in writers:
            wait_for_file(ready, process)
        go.touch()  # both start together, so without the lock they would overlap
        for process, _, _ in writers:
            process.wait(timeout=STARTUP_TIMEOUT)
            assert process.returncode == 0, process.stderr.read()
    finally:
        for process, _, _ in writers:
            if process.poll() is None:
                process.kill()
                process.wait()

    per_writer = [json.loads(log.read_text(encoding="utf-8")) for _, _, log in writers]
    assert [len(intervals) for intervals in per_writer] == [WRITER_ITERATIONS] * 2
    intervals = sorted(interval for writer in per_writer for interval in writer)
    for (_, left_at), (entered_at, _) in itertools.pairwise(intervals):
        assert entered_at >= left_at, f"critical sections overlap: {intervals}"
    # No lost update: every read-sleep-write increment saw the previous one's result.
    assert int(counter.read_text(encoding="utf-8")) == 2 * WRITER_ITERATIONS


# --------------------------------------------------------------------------------------------
# The forecast command against another process


def test_the_forecast_command_exits_75_while_another_process_holds_the_lock(
    store: Store,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    output = tmp_path / "out"
    with lock_held_by_another_process(output, tmp_path / "control"):
        code = forecast_command.main(cli(store, output, "--lock-timeout", "0"))
    assert code == exit_codes.EXIT_LOCKED
    assert capsys.readouterr().err.startswith("error: another forecast run holds the lock")
    assert sorted(path.name for path in output.iterdir()) == [partitions.LOCK_FILE]
    assert forecast_runs(output) == []


def test_the_forecast_command_waits_for_the_other_process_then_writes(
    store: Store,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    output = tmp_path / "out"
    moments: dict[str, float] = {}
    with lock_held_by_another_process(output, tmp_path / "control") as holder:
        timers: list[threading.Timer] = []

        @contextmanager
        def observed_lock(folder: Path, timeout: float) -> Iterator[None]:
            # The holder lets go HOLD_SECONDS after the command asks for the lock, not after
            # the command starts: loading the model and the data must not hide the wait.
            moments["asked"] = time.monotonic()
            timers.append(holder.release_after(HOLD_SECONDS))
            with output_lock(folder, timeout):
                moments["acquired"] = time.monotonic()
                yield

        monkeypatch.setattr(batch, "output_lock", observed_lock)
        code = forecast_command.main(cli(store, output, "--lock-timeout", str(STARTUP_TIMEOUT)))
        for timer in timers:
            timer.join()
        released = holder.released_at()
    assert code == exit_codes.EXIT_OK
    assert moments["acquired"] - moments["asked"] >= HOLD_SECONDS * 0.9
    assert moments["acquired"] >= released
    written = pd.read_parquet(output / LAST_PARTITION / partitions.FORECAST_FILE)
    assert len(written) == len(SERIES) * HORIZON
    assert [run.data.params["outcome"] for run in forecast_runs(output)] == ["written"]
