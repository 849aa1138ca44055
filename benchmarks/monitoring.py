"""Replay of the daily forecast and monitor jobs over Weather's test part: false alarms on clean
days, and how fast a level shift injected into the target is flagged.

    python benchmarks/monitoring.py [--data ../shared/datasets/weather.csv.gz] [--quick]

1. Chooses the champion as a user would: `compare --config configs/weather-ltsf.yaml --models
   last,lstm,gru` (the LTSF split 70/10/20, OT from all 21 channels, 96 steps in and out; the
   champion rule keeps the lowest validation MAE, the last-value baseline included), in a fresh
   MLflow store.
2. Clean replay: for every day of the test part, `forecast --as-of DAY HOUR` (the full file: the
   forecast cuts every row after as_of itself), then reveals that day's actuals (a copy of the
   file up to the next day's HOUR) and runs `monitor` on it. A monitor that exits 4 is an alarm.
3. Shifted replay: the same, with the actuals the monitor reads raised by `--shift` standard
   deviations (of the target on the training part) from `--shift-hour` (default: the
   forecasts' hour) of `--shift-day` (a day of the test part) on, while the forecasts read the
   file as it was: the forecasts have gone wrong by a level, as when a model's inputs stop
   showing what the actuals do (a feed that froze, a sensor recalibrated on one side only).
   With `--shift-inputs` the forecasts read the shifted file too: then a model that normalises
   each input window (this one, RevIN) or the last-value forecast follows the new level from
   the next forecast on, and only the forecast whose horizon straddles the shift errs; the
   shift starts inside that day's horizon (08:00, the horizon being 00:10 to 16:00) so that
   one does.

Clean days are the clean replay's days and the shifted replay's days before the shift; a false
alarm is a clean day whose monitor alarmed. The detection delay is the days from the shift's
start to the monitor run that first alarmed after it on a day the clean replay did not (the
actuals of a day are revealed at the next day's HOUR). JSON last line: `{"detection_delay_days",
"false_alarms", "clean_days", "scored_rows", ...}`, scored rows of the clean replay.

`--quick` compares `last` and an 8-unit LSTM trained for one epoch on the last 12,000 rows and
replays 6 days (a smoke test: its figures mean nothing).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipelines.paths import REPOSITORY_ROOT

DEFAULT_DATA = REPOSITORY_ROOT.parent / "shared" / "datasets" / "weather.csv.gz"
CONFIG = REPOSITORY_ROOT / "configs" / "weather-ltsf.yaml"
REGISTERED = "weather-ltsf-forecaster"
TIMESTAMP = "date"
TARGET = "OT"
QUICK_ROWS = 12_000
QUICK_DAYS = 6


@dataclass(frozen=True)
class DayResult:
    """One replayed day: its as_of, the monitor's exit code and the rules that broke."""

    as_of: pd.Timestamp
    exit_code: int
    rules: tuple[str, ...]


def read_raw(path: Path, rows: int | None) -> pd.DataFrame:
    """The file as published (the last `rows` rows when given), its timestamps as text."""
    frame = pd.read_csv(path)
    if rows is not None:
        frame = frame.tail(rows).reset_index(drop=True)
    return frame


def shifted(frame: pd.DataFrame, start: pd.Timestamp, size: float) -> pd.DataFrame:
    """The frame with `size` added to the target from `start` on."""
    result = frame.copy()
    times = pd.to_datetime(result[TIMESTAMP], utc=True)
    result.loc[(times >= start).to_numpy(), TARGET] += size
    return result


def write_until(frame: pd.DataFrame, until: pd.Timestamp, path: Path) -> Path:
    """Writes the rows at or before `until` (the actuals known then) as CSV."""
    times = pd.to_datetime(frame[TIMESTAMP], utc=True)
    frame.loc[(times <= until).to_numpy()].to_csv(path, index=False)
    return path


def quiet(function: Callable[..., int], *arguments: object) -> tuple[int, str]:
    """Calls `function(*arguments)` with its stdout captured; returns (result, output)."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        result = function(*arguments)
    return result, buffer.getvalue()


CHAMPION_MODELS = "last,lstm,gru"
QUICK_MODELS = "last,lstm"


def train_champion(data: Path, quick: bool) -> dict[str, object]:
    """Compares the models and registers the best with the `compare` entry point; the test
    part's dates and the target's training standard deviation."""
    from pipelines.cli import compare as compare_command
    from pipelines.config.loading import load_config
    from pipelines.data.prepare import run as prepare_data
    from pipelines.runtime.contract import TEST, TRAIN, VALIDATION

    options = ["--config", str(CONFIG), "--source", str(data)]
    options += ["--models", QUICK_MODELS if quick else CHAMPION_MODELS]
    if quick:
        options += ["--epochs", "1", "--set", "model.hparams.units=8"]
    started = time.perf_counter()
    code, output = quiet(compare_command.main, options)
    if code != 0:
        raise SystemExit(f"training failed (exit {code}): {output}")
    seconds = time.perf_counter() - started
    config = load_config(str(CONFIG), {"source": str(data)})
    prepared = prepare_data(config.data)
    times = pd.to_datetime(prepared.frame["timestamp"], utc=True)
    train_values = prepared.frame.loc[prepared.parts == TRAIN, TARGET]
    return {
        "seconds": seconds,
        "validation": (
            times[prepared.parts == VALIDATION].min(),
            times[prepared.parts == VALIDATION].max(),
        ),
        "test": (times[prepared.parts == TEST].min(), times.max()),
        "target_sd": float(train_values.std()),
        "lines": [line for line in output.strip().splitlines() if line.strip()],
    }


def replay(
    frame: pd.DataFrame,
    actuals: pd.DataFrame,
    days: list[pd.Timestamp],
    folder: Path,
    window: int,
) -> list[DayResult]:
    """Forecasts from `frame` at each day's as_of and monitors once the day's `actuals` are
    revealed."""
    from pipelines.cli import forecast as forecast_command
    from pipelines.cli import monitor as monitor_command

    folder.mkdir(parents=True)
    source = folder / "weather.csv"
    frame.to_csv(source, index=False)
    forecasts, scores, revealed = folder / "forecasts", folder / "scores", folder / "actuals.csv"
    results = []
    for as_of in days:
        code, output = quiet(
            forecast_command.main,
            [
                "--model-uri",
                f"models:/{REGISTERED}@champion",
                "--source",
                str(source),
                "--as-of",
                as_of.isoformat(),
                "--forecast-output",
                str(forecasts),
            ],
        )
        if code not in (0, 3):
            raise SystemExit(f"forecast at {as_of} failed (exit {code}): {output}")
        write_until(actuals, as_of + pd.Timedelta(days=1), revealed)
        code, output = quiet(
            monitor_command.main,
            [
                "--forecast-output",
                str(forecasts),
                "--monitor-output",
                str(scores),
                "--source",
                str(revealed),
                "--window",
                str(window),
            ],
        )
        if code not in (0, 4):
            raise SystemExit(f"monitor after {as_of} failed (exit {code}): {output}")
        rules = ()
        if code == 4:
            alarm = json.loads((scores / "alarm.json").read_text(encoding="utf-8"))
            rules = tuple(item["rule"] for item in alarm["alarms"])
        results.append(DayResult(as_of, code, rules))
        print(
            f"  {folder.name} {as_of:%Y-%m-%d %H:%M}: "
            + (f"ALARM {', '.join(rules)}" if rules else "ok"),
            flush=True,
        )
    return results


def replay_days(start: pd.Timestamp, end: pd.Timestamp, hour: int, count: int | None) -> list:
    """Each day's as_of at `hour` whose next-day reveal lies inside [start, end]."""
    first = start.normalize() + pd.Timedelta(hours=hour)
    if first < start:
        first += pd.Timedelta(days=1)
    days = list(pd.date_range(first, end - pd.Timedelta(days=1), freq="D"))
    return days[:count] if count else days


def summarise(
    clean: list[DayResult], shifted_days: list[DayResult], shift_start: pd.Timestamp
) -> dict[str, object]:
    """False alarms over clean days and the detection delay (see the module docstring): a
    detection is an alarm of the shifted replay on a day whose clean replay did not alarm (an
    alarm both raise is not the shift's doing)."""
    before = [day for day in shifted_days if day.as_of + pd.Timedelta(days=1) <= shift_start]
    clean_alarm = {day.as_of for day in clean if day.exit_code == 4}
    after = [day for day in shifted_days if day.as_of + pd.Timedelta(days=1) > shift_start]
    clean_days = clean + before
    false_alarms = sum(day.exit_code == 4 for day in clean_days)
    flagged = next(
        (day for day in after if day.exit_code == 4 and day.as_of not in clean_alarm), None
    )
    delay = (
        None
        if flagged is None
        else (flagged.as_of + pd.Timedelta(days=1) - shift_start) / pd.Timedelta(days=1)
    )
    return {
        "detection_delay_days": delay,
        "detection_rules": list(flagged.rules) if flagged else [],
        "false_alarms": int(false_alarms),
        "clean_days": len(clean_days),
        "false_alarms_per_30_days": round(30 * false_alarms / max(1, len(clean_days)), 3),
        "false_alarm_rules": sorted({rule for day in clean_days for rule in day.rules}),
    }


def offline_days(scores_folder: Path, days: list[pd.Timestamp], window: int) -> list[DayResult]:
    """The rules the monitor would have checked after each day, with another `window`, on the
    scores the replay wrote (each day's forecast is complete once its day is revealed, so the
    window ending at a day's as_of is what that day's monitor saw)."""
    from pipelines.runtime.monitoring import AlarmRules
    from pipelines.serving.monitor import load_reference, window_statuses
    from pipelines.serving.scores import read_scores_table

    scores = read_scores_table(scores_folder)
    reference = load_reference(str(scores["model_run_id"].iloc[0]))
    rules = dataclasses.replace(AlarmRules(), window=window)
    statuses = dict(window_statuses(scores, reference, rules))
    return [
        DayResult(
            day, 4 if statuses[day].alarms else 0, tuple(a.rule for a in statuses[day].alarms)
        )
        for day in days
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the Weather CSV")
    parser.add_argument("--quick", action="store_true", help="a smoke test (seconds)")
    parser.add_argument("--hour", type=int, default=0, help="the daily job's hour (UTC)")
    parser.add_argument("--shift", type=float, default=2.0, help="shift size, training sds")
    parser.add_argument(
        "--shift-day", type=int, default=35, help="test-part day the shift starts (0-based)"
    )
    parser.add_argument(
        "--shift-hour",
        type=int,
        default=None,
        help="hour the shift starts (UTC; default the forecasts' hour, 08:00 with --shift-inputs)",
    )
    parser.add_argument(
        "--shift-inputs",
        action="store_true",
        help="the forecasts read the shifted file too (default: only the actuals move)",
    )
    parser.add_argument("--window", type=int, default=None, help="monitor.window (default 7)")
    parser.add_argument(
        "--part",
        choices=("test", "validation"),
        default="test",
        help="the part replayed: test (the figures) or validation (to choose settings on)",
    )
    parser.add_argument(
        "--windows",
        default="",
        help="also check the rules of these windows (comma-separated) on the same scores",
    )
    parser.add_argument(
        "--work-dir",
        type=Path,
        default=None,
        help="keep the store, forecasts and scores in this new folder (default: a temporary one)",
    )
    arguments = parser.parse_args()
    if not arguments.data.is_file():
        raise SystemExit(f"error: no data file {arguments.data} (give --data)")
    from pipelines.config.schema import MonitorConfig

    window = arguments.window or MonitorConfig().window
    shift_day = (
        min(arguments.shift_day, QUICK_DAYS // 2) if arguments.quick else arguments.shift_day
    )
    started = time.perf_counter()
    if arguments.work_dir is not None:
        arguments.work_dir.mkdir(parents=True)  # new: a replay never mixes with an old one
    with (
        contextlib.nullcontext(str(arguments.work_dir.resolve()))
        if arguments.work_dir is not None
        else tempfile.TemporaryDirectory(prefix="monitoring-replay-")
    ) as folder:
        root = Path(folder)
        os.chdir(root)
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{root}/mlflow.db"
        raw = read_raw(arguments.data, QUICK_ROWS if arguments.quick else None)
        data = root / "weather.csv"
        raw.to_csv(data, index=False)
        champion = train_champion(data, arguments.quick)
        print("\n".join(champion["lines"]), flush=True)
        print(f"compared in {champion['seconds']:.0f} s", flush=True)
        start, end = champion[arguments.part]
        days = replay_days(
            start,
            end,
            arguments.hour,
            QUICK_DAYS if arguments.quick else None,
        )
        if shift_day >= len(days):
            raise SystemExit(f"error: --shift-day {shift_day}: the test part has {len(days)} days")
        shift_hour = arguments.shift_hour
        if shift_hour is None:
            shift_hour = 8 if arguments.shift_inputs else arguments.hour
        shift_start = days[shift_day].normalize() + pd.Timedelta(hours=shift_hour)
        size = arguments.shift * float(champion["target_sd"])
        print(
            f"replaying {len(days)} days at {arguments.hour:02d}:00 UTC, {days[0]:%Y-%m-%d} to "
            f"{days[-1]:%Y-%m-%d}; shift +{size:.3f} ({arguments.shift:g} sd) of {TARGET} from "
            f"{shift_start:%Y-%m-%d %H:%M}; window {window}",
            flush=True,
        )
        clean = replay(raw, raw, days, root / "clean", window)
        from pipelines.serving.scores import read_scores_table

        scored_rows = len(read_scores_table(root / "clean" / "scores"))
        moved = shifted(raw, shift_start, size)
        inputs = moved if arguments.shift_inputs else raw
        raised = replay(inputs, moved, days, root / "shifted", window)
        # The same rules checked offline on the replay's scores: equal to the daily runs at
        # the default window (a check of both), and at the other windows asked for.
        by_window = {}
        for other in sorted({window, *(int(w) for w in arguments.windows.split(",") if w)}):
            results = [
                offline_days(root / name / "scores", days, other) for name in ("clean", "shifted")
            ]
            by_window[other] = summarise(*results, shift_start)
            if other == window and [d.exit_code for d in results[0] + results[1]] != [
                d.exit_code for d in clean + raised
            ]:
                raise SystemExit("error: the offline rules disagree with the daily runs")
    for other, summary in by_window.items():
        print(
            f"window {other}: false alarms {summary['false_alarms']} in {summary['clean_days']} "
            f"clean days ({', '.join(summary['false_alarm_rules']) or 'none'}); detection delay "
            f"{summary['detection_delay_days']} days ({', '.join(summary['detection_rules'])})"
        )
    figures = {
        **summarise(clean, raised, shift_start),
        "scored_rows": scored_rows,
        "days": len(days),
        "window": window,
        "shift_sd": arguments.shift,
        "shift_inputs": arguments.shift_inputs,
        "shift_start": shift_start.isoformat(),
        "hour": arguments.hour,
        "part": arguments.part,
        "windows": {str(key): value for key, value in by_window.items()},
        "quick": arguments.quick,
        "seconds": round(time.perf_counter() - started, 1),
    }
    print(
        f"false alarms {figures['false_alarms']} in {figures['clean_days']} clean days "
        f"({figures['false_alarms_per_30_days']} per 30 days); detection delay "
        f"{figures['detection_delay_days']} days ({', '.join(figures['detection_rules'])}); "
        f"{scored_rows} rows scored in the clean replay"
    )
    print(json.dumps(figures, default=float))


if __name__ == "__main__":
    main()
