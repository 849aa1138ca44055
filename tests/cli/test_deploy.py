"""The scheduling files in deploy/: units that parse, a crontab line, a wrapper that runs the
forecast then the monitor, logs, and passes one exit code through (checked with a stub Python,
no systemd needed)."""

from __future__ import annotations

import configparser
import datetime
import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from pipelines.config.options import read_config
from pipelines.paths import REPOSITORY_ROOT

DEPLOY = REPOSITORY_ROOT / "deploy"
WRAPPER = DEPLOY / "forecast.sh"
INSTALL_DIR = "/opt/lstm-forecaster"  # where the unit files expect the checkout


def unit(name: str) -> configparser.ConfigParser:
    """A unit file as sections of keys; repeated keys keep the last value, as in systemd."""
    parser = configparser.ConfigParser(interpolation=None, strict=False, delimiters=("=",))
    parser.optionxform = str  # systemd keys are case-sensitive
    parser.read(DEPLOY / name, encoding="utf-8")
    return parser


def test_service_runs_the_wrapper_once_with_documented_exit_codes() -> None:
    service = unit("lstm-forecast.service")["Service"]
    assert service["Type"] == "oneshot"
    assert service["ExecStart"] == f"{INSTALL_DIR}/deploy/forecast.sh"
    assert service["WorkingDirectory"] == INSTALL_DIR
    assert service["EnvironmentFile"] == f"{INSTALL_DIR}/deploy/forecast.env"
    assert service["SuccessExitStatus"].split() == ["3"]  # partial forecast is a success
    # Bad input and a monitoring alarm are never retried; a failure tells a person.
    assert service["RestartPreventExitStatus"].split() == ["2", "4"]
    assert unit("lstm-forecast.service")["Unit"]["OnFailure"] == ("lstm-forecast-notify@%n.service")
    notifier = unit("lstm-forecast-notify@.service")["Service"]
    assert notifier["Type"] == "oneshot" and "mail" in notifier["ExecStart"]
    assert service["Restart"] == "on-failure"
    assert service["NoNewPrivileges"] == "yes"
    assert service["ProtectSystem"] == "strict"
    # ProtectSystem=strict makes everything read-only: the output and tracking store in the
    # example env file must sit under a writable path.
    writable = service["ReadWritePaths"].split()
    settings = dict(
        line.split("=", 1)
        for line in (DEPLOY / "forecast.env.example").read_text().splitlines()
        if line and not line.startswith("#")
    )
    store = settings["MLFLOW_TRACKING_URI"].removeprefix("sqlite:///")
    for path in (settings["OUTPUT"], settings["MONITOR_OUTPUT"], store):
        assert any(path.startswith(root + "/") for root in writable), (path, writable)


def test_timer_starts_the_service_daily_and_catches_up() -> None:
    timer = unit("lstm-forecast.timer")
    assert timer["Timer"]["Unit"] == "lstm-forecast.service"
    assert re.fullmatch(r"\*-\*-\* 06:15:00 UTC", timer["Timer"]["OnCalendar"])
    assert timer["Timer"]["Persistent"] == "true"
    assert timer["Install"]["WantedBy"] == "timers.target"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_systemd_accepts_the_units(tmp_path: Path) -> None:
    # verify checks that ExecStart exists, so the units are pointed at this checkout.
    for name in ("lstm-forecast.service", "lstm-forecast.timer", "lstm-forecast-notify@.service"):
        text = (DEPLOY / name).read_text().replace(INSTALL_DIR, str(REPOSITORY_ROOT))
        (tmp_path / name).write_text(text)
    completed = subprocess.run(
        ["systemd-analyze", "verify", *(str(tmp_path / n) for n in sorted(os.listdir(tmp_path)))],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # Unknown or misspelt keys are only warnings (exit 0), so the output must be clean too.
    assert completed.returncode == 0, completed.stderr
    assert not re.search(r"Unknown|Failed|Invalid|ignoring", completed.stderr), completed.stderr


def test_crontab_has_one_daily_line_that_runs_the_wrapper_and_logs() -> None:
    lines = [
        line
        for line in (DEPLOY / "crontab").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert len(lines) == 2 and lines[0].startswith("MAILTO=")
    minute, hour, day, month, weekday, command = lines[1].split(maxsplit=5)
    assert (minute, hour, day, month, weekday) == ("15", "6", "*", "*", "*")
    assert command.startswith(f"{INSTALL_DIR}/deploy/forecast.sh ")
    # The log goes to a file; only a failure prints (so cron mails it).
    logged, on_failure = command.split(" || ", 1)
    assert re.search(r">>\s*/\S+\.log 2>&1$", logged)
    on_failure = on_failure.replace("/var/log/lstm-forecast/forecast.log", "/dev/null")
    completed = subprocess.run(
        ["sh", "-c", f"false || {on_failure}"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert "lstm-forecast exited 1" in completed.stdout


def test_wrapper_is_valid_bash_and_executable() -> None:
    assert WRAPPER.stat().st_mode & stat.S_IXUSR
    completed = subprocess.run(["bash", "-n", str(WRAPPER)], capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr


def run_wrapper(
    tmp_path: Path, exit_code: int, *extra: str, monitor_code: int = 0, **settings: str
) -> subprocess.CompletedProcess[str]:
    """Runs forecast.sh with a stub Python that records each command's arguments (in
    `arguments.forecast`, `arguments.monitor`) and exits as told."""
    stub = tmp_path / "python"
    stub.write_text(
        "#!/usr/bin/env bash\n"
        'command="${2##*.}"\n'
        f'printf "%s\\n" "$@" > {tmp_path}/arguments.$command\n'
        'if [[ $command == monitor ]]; then echo "alarm mae: MAE ratio 2.1" >&2; '
        f"exit {monitor_code}; fi\n"
        'echo "forecast: series beta skipped: history too short" >&2\n'
        f"exit {exit_code}\n"
    )
    stub.chmod(0o755)
    environment = {
        "PATH": os.environ["PATH"],
        "PYTHON": str(stub),
        "FORECAST_ENV_FILE": str(tmp_path / "absent.env"),
        **settings,
    }
    return subprocess.run(
        ["bash", str(WRAPPER), *extra],
        env=environment,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.mark.parametrize(
    ("code", "meaning"),
    [(0, "all series forecast"), (3, "some series skipped"), (75, "holds the lock")],
)
def test_wrapper_passes_the_exit_code_through_and_logs_it(
    tmp_path: Path, code: int, meaning: str
) -> None:
    completed = run_wrapper(
        tmp_path,
        code,
        "--as-of",
        "2026-01-01",
        MODEL_URI="models:/forecaster@champion",
        DATASET="seattle-weather",
        OUTPUT=str(tmp_path / "out"),
        SERIES="alpha,beta",
    )
    assert completed.returncode == code
    lines = completed.stdout.splitlines()
    timestamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ lstm-forecast\[\d+\]: "
    assert all(re.match(timestamp, line) for line in lines), lines
    assert "start: model models:/forecaster@champion" in lines[0]
    assert "series beta skipped" in completed.stdout  # the forecast's own stderr is logged
    assert f"finished: exit {code} (" in lines[-1] and meaning in lines[-1]
    arguments = (tmp_path / "arguments.forecast").read_text().splitlines()
    assert arguments == [
        "-m",
        "pipelines.cli.forecast",
        "--model-uri",
        "models:/forecaster@champion",
        "--forecast-output",
        str(tmp_path / "out"),
        "--dataset",
        "seattle-weather",
        "--series",
        "alpha,beta",
        "--as-of",
        "2026-01-01",
    ]
    # ... and the real command reads them as the settings they name.
    config = read_config("forecast", arguments[2:])
    assert config.forecast.output == str(tmp_path / "out")
    assert config.forecast.series == (
        "alpha",
        "beta",
    ) and config.forecast.as_of == datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    assert config.data.dataset == "seattle-weather"


def test_wrapper_reads_the_env_file_and_prefers_source(tmp_path: Path) -> None:
    env_file = tmp_path / "forecast.env"
    env_file.write_text(
        "MODEL_URI=runs:/abc/model\nSOURCE=/srv/history.csv\nDATASET=ignored\n"
        "MLFLOW_TRACKING_URI=http://tracking:5000\n"
    )
    completed = run_wrapper(tmp_path, 0, FORECAST_ENV_FILE=str(env_file))
    assert completed.returncode == 0, completed.stdout
    arguments = (tmp_path / "arguments.forecast").read_text().splitlines()
    assert arguments[arguments.index("--model-uri") + 1] == "runs:/abc/model"
    assert arguments[arguments.index("--source") + 1] == "/srv/history.csv"
    assert "--dataset" not in arguments
    assert "tracking http://tracking:5000" in completed.stdout


def test_wrapper_uses_journal_priorities_under_systemd(tmp_path: Path) -> None:
    completed = run_wrapper(tmp_path, 3, MODEL_URI="m", DATASET="d", JOURNAL_STREAM="8:12345")
    assert completed.returncode == 3
    assert completed.stdout.splitlines()[-1].startswith("<4>finished: exit 3")


def test_wrapper_without_settings_exits_2_and_says_what_is_missing(tmp_path: Path) -> None:
    completed = run_wrapper(tmp_path, 0)
    assert completed.returncode == 2
    assert "set MODEL_URI" in completed.stdout
    assert not (tmp_path / "arguments.forecast").exists()  # the forecast never ran


@pytest.mark.parametrize(
    ("forecast_code", "monitor_code", "final", "monitored"),
    [
        (0, 4, 4, True),  # an alarm is the run's outcome
        (3, 0, 3, True),  # a partial forecast, monitored, stays partial
        (3, 4, 4, True),
        (0, 75, 75, True),  # another monitor holds the lock
        (2, 0, 2, False),  # a forecast that wrote nothing is not monitored
        (75, 0, 75, False),
    ],
)
def test_wrapper_monitors_after_a_written_forecast_and_reports_one_code(
    tmp_path: Path, forecast_code: int, monitor_code: int, final: int, monitored: bool
) -> None:
    completed = run_wrapper(
        tmp_path,
        forecast_code,
        monitor_code=monitor_code,
        MODEL_URI="models:/forecaster@champion",
        SOURCE="/srv/history.csv",
        OUTPUT=str(tmp_path / "out"),
        MONITOR_OUTPUT=str(tmp_path / "scores"),
        LOCK_TIMEOUT="5",
    )
    assert completed.returncode == final
    assert f"finished: exit {final} (" in completed.stdout.splitlines()[-1]
    monitor_arguments = tmp_path / "arguments.monitor"
    assert monitor_arguments.exists() == monitored
    if monitored:
        arguments = monitor_arguments.read_text().splitlines()
        assert arguments[:2] == ["-m", "pipelines.cli.monitor"]
        config = read_config("monitor", arguments[2:])
        assert config.forecast.output == str(tmp_path / "out")
        assert config.monitor.output == str(tmp_path / "scores")
        assert config.data.source == "/srv/history.csv"
        assert config.forecast.lock_timeout == 5
        assert ("alarm mae" in completed.stdout) == monitored


def test_wrapper_skips_the_monitor_when_switched_off(tmp_path: Path) -> None:
    completed = run_wrapper(
        tmp_path, 0, monitor_code=4, MODEL_URI="m", DATASET="d", MONITOR="false"
    )
    assert completed.returncode == 0
    assert not (tmp_path / "arguments.monitor").exists()
