#!/usr/bin/env bash
# One scheduled run: reads the settings, runs `python -m pipelines.cli.forecast`, then (unless
# MONITOR=false) `python -m pipelines.cli.monitor` on the forecasts so far, logs timestamped
# lines and exits with one code cron and systemd understand: the forecast's when it failed (2 bad
# input, 1 failure, 75 locked), else the monitor's when it failed or alarmed (4), else the
# forecast's (0 ok, 3 partial). See deploy/README.md.
#
# Settings come from the environment, or from FORECAST_ENV_FILE (default deploy/forecast.env):
#   MODEL_URI (required), DATASET or SOURCE (default: the training run's data), OUTPUT (default: data/forecasts, git-ignored),
#   MLFLOW_TRACKING_URI, SERIES, AS_OF, LOCK_TIMEOUT, EXPERIMENT_NAME, PYTHON (default .venv),
#   MONITOR (default true), MONITOR_OUTPUT (default: data/monitoring, git-ignored).
# Extra arguments are passed on to the forecast (e.g. `forecast.sh --as-of 2026-01-01` to backfill).
set -euo pipefail

install_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$install_dir"

env_file="${FORECAST_ENV_FILE:-$install_dir/deploy/forecast.env}"
if [[ -f $env_file ]]; then
    # systemd has already read it (EnvironmentFile); cron has not. Plain KEY=value lines work
    # in both.
    set -a
    # shellcheck source=/dev/null
    source "$env_file"
    set +a
fi

# Under systemd (JOURNAL_STREAM is set) a "<N>" prefix sets the journal priority, so
# `journalctl -p warning` finds partial runs; cron's log file gets UTC timestamps instead.
log() {
    local priority=$1
    shift
    if [[ -n ${JOURNAL_STREAM:-} ]]; then
        printf '<%d>%s\n' "$priority" "$*"
    else
        printf '%s lstm-forecast[%d]: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$$" "$*"
    fi
}

meaning() {
    case $1 in
        0) echo "all series forecast" ;;
        3) echo "partition written, some series skipped (listed above)" ;;
        4) echo "forecast written; the monitor raised an alarm (listed above, alarm.json)" ;;
        2) echo "bad input or settings, nothing written" ;;
        75) echo "another run holds the lock, nothing written" ;;
        *) echo "unexpected failure" ;;
    esac
}

python="${PYTHON:-$install_dir/.venv/bin/python}"
if [[ -z ${MODEL_URI:-} ]]; then
    log 3 "error: set MODEL_URI (in $env_file or the environment)"
    exit 2
fi
if [[ ! -x $python ]]; then
    log 3 "error: no Python at $python; create the venv with 'make test' or set PYTHON"
    exit 1
fi

output="${OUTPUT:-$install_dir/data/forecasts}"
data=()
# Without either, the forecast reads the data set the model was trained on (its run's config).
if [[ -n ${SOURCE:-} ]]; then
    data=(--source "$SOURCE")
elif [[ -n ${DATASET:-} ]]; then
    data=(--dataset "$DATASET")
fi
# ${data[@]+...}: an empty array under `set -u` is an error in bash before 4.4.
arguments=(-m pipelines.cli.forecast --model-uri "$MODEL_URI" --forecast-output "$output" ${data[@]+"${data[@]}"})
if [[ -n ${SERIES:-} ]]; then arguments+=(--series "$SERIES"); fi
if [[ -n ${AS_OF:-} ]]; then arguments+=(--as-of "$AS_OF"); fi
if [[ -n ${LOCK_TIMEOUT:-} ]]; then arguments+=(--lock-timeout "$LOCK_TIMEOUT"); fi
if [[ -n ${EXPERIMENT_NAME:-} ]]; then arguments+=(--forecast-experiment-name "$EXPERIMENT_NAME"); fi
arguments+=("$@")

log 6 "start: model ${MODEL_URI}, output $output, tracking ${MLFLOW_TRACKING_URI:-default}"
started=$SECONDS
status=0
# Every line of the command's output is logged through `log`; with pipefail the pipeline's
# status is the command's, and `|| status=$?` keeps `set -e` from ending the script first.
"$python" "${arguments[@]}" 2>&1 | while IFS= read -r line; do log 6 "$line"; done || status=$?

# The monitor scores what the day's actuals made scorable, so it runs after a forecast that
# wrote its partition (0, 3); the same data settings, so it reads the same actuals.
case ${MONITOR:-true} in
    true | yes | on | 1) monitor_on=true ;;
    *) monitor_on=false ;;
esac
if [[ $monitor_on == true && ($status == 0 || $status == 3) ]]; then
    monitor=(-m pipelines.cli.monitor --forecast-output "$output"
        --monitor-output "${MONITOR_OUTPUT:-$install_dir/data/monitoring}" ${data[@]+"${data[@]}"})
    if [[ -n ${LOCK_TIMEOUT:-} ]]; then monitor+=(--lock-timeout "$LOCK_TIMEOUT"); fi
    log 6 "monitor: scores in ${MONITOR_OUTPUT:-$install_dir/data/monitoring}"
    monitor_status=0
    "$python" "${monitor[@]}" 2>&1 | while IFS= read -r line; do log 6 "$line"; done \
        || monitor_status=$?
    log 6 "monitor: exit $monitor_status (the forecast's was $status)"
    if [[ $monitor_status != 0 ]]; then status=$monitor_status; fi
fi

case $status in
    0) priority=6 ;;
    3 | 75) priority=4 ;;
    *) priority=3 ;;
esac
log "$priority" "finished: exit $status ($(meaning "$status")) after $((SECONDS - started)) s"
exit "$status"
