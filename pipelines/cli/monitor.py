"""`monitor`: score the forecast partitions as their actuals arrive, track them, raise alarms.

Usage:
    python -m pipelines.cli.monitor
    python -m pipelines.cli.monitor --forecast-output data/forecasts --source prices.csv \
        --monitor-output data/monitoring --window 7

What it does is `pipelines.serving.monitor.run`, logged by `pipelines.tracking.monitoring_run`.
Exit codes (`pipelines.cli.exit_codes`): 0 scored, no alarm; 1 failure; 2 bad input (nothing
written); 4 an alarm rule broke for the model version in service (`alarm.json` in the scores
folder says which, with the numbers, and the version is tagged `monitoring_status=degraded`);
75 another monitor run holds the lock.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Sequence

from pipelines.cli.exit_codes import (
    EXIT_ALARM,
    EXIT_OK,
    report_bad_input,
    report_failure,
    report_locked,
)
from pipelines.config.options import read_config
from pipelines.runtime.contract import DataValidationError
from pipelines.serving.monitor import ALARM_FILE, MonitorResult, run
from pipelines.serving.partitions import LockTimeoutError
from pipelines.settings import ConfigError
from pipelines.tracking.monitoring_run import log_monitoring
from pipelines.tracking.views import where_to_look


def summary(result: MonitorResult, runs: dict[tuple[str, str], str]) -> list[str]:
    """The lines printed after a run: partitions by outcome, each version's latest window."""
    outcomes = Counter(item.outcome for item in result.partitions)
    lines = [
        f"scored {len(result.partitions)} forecast partitions into {result.output}: "
        + ", ".join(f"{count} {outcome}" for outcome, count in sorted(outcomes.items()))
        + f"; {len(result.scores)} rows in the scores table"
    ]
    for (name, version), statuses in sorted(result.statuses.items()):
        as_of, status = statuses[-1]
        coverage = ", ".join(
            f"coverage {level}% {share:.3f}" for level, (share, _, _) in status.coverage.items()
        )
        state = "ALARM " + ", ".join(a.rule for a in status.alarms) if status.alarms else "ok"
        served = " (in service)" if (name, version) == result.in_service else ""
        lines.append(
            f"model {name} version {version}{served}, window of {status.forecasts} forecasts "
            f"to {as_of.isoformat()}: MAE {status.mae:.4g}, MAE ratio {status.mae_ratio:.3f} "
            f"(alarm above {status.mae_threshold:.3f}), skill vs last value "
            f"{status.skill_vs_last:.3f}"
            + (f", {coverage}" if coverage else "")
            + f": {state}"
            + (f"; run {runs[(name, version)]}" if (name, version) in runs else "")
        )
    lines.extend(f"note: {note}" for note in result.notes)
    if result.alarms is not None:
        for alarm in result.alarms.alarms:
            lines.append(f"alarm {alarm.rule}: {alarm.detail}")
        lines.append(f"written {result.output / ALARM_FILE}")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    """The `monitor` entry point; returns the exit code of the table in the module docstring."""
    runs: dict[tuple[str, str], str] = {}
    try:
        config = read_config("monitor", argv)
        result = run(config, publish=lambda result: runs.update(log_monitoring(result, config)))
    except (ConfigError, DataValidationError) as error:
        return report_bad_input(error)
    except LockTimeoutError as error:
        return report_locked(error)
    except Exception as error:
        return report_failure(error)
    for line in summary(result, runs):
        print(line)
    if runs:
        import mlflow

        experiment = mlflow.get_experiment_by_name(config.monitor.experiment_name)
        print(where_to_look(experiment.experiment_id))
    return EXIT_ALARM if result.alarms is not None else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
