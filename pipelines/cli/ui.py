"""`make ui`: the MLflow UI, opened where a comparison is read.

Prints the link to the experiment's runs table in model-training mode and the `models` view
(`pipelines.tracking.views`), then replaces itself with `mlflow ui` on the same store (the
tracking URI of `MLFLOW_TRACKING_URI`, else `./mlflow.db`, as every entry point). MLflow's own
home page opens in GenAI mode and lists experiments, not runs: the link is the page to open.
With a tracking server (`MLFLOW_TRACKING_URI=http...`) the UI is the server's: only the link is
printed.

Usage:
    python -m pipelines.cli.ui [--experiment-name NAME] [--host HOST] [--port PORT]

Exit status: 2, with one `error:` line, when the store has no such experiment (run `make run`
first); otherwise that of `mlflow ui`.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from pipelines.cli.exit_codes import EXIT_BAD_INPUT, EXIT_OK
from pipelines.config.schema import TrackingConfig
from pipelines.tracking.views import is_tracking_server, runs_table_url, ui_base_url


def models_view_link(experiment_name: str, base_url: str) -> str | None:
    """The link to `experiment_name`'s runs in the `models` view; None when it does not exist."""
    from mlflow import MlflowClient

    experiment = MlflowClient().get_experiment_by_name(experiment_name)
    return None if experiment is None else runs_table_url(base_url, experiment.experiment_id)


def main(argv: Sequence[str] | None = None) -> int:
    import mlflow

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--experiment-name", default=TrackingConfig().experiment_name)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", default="5000")
    arguments = parser.parse_args(argv)
    server = mlflow.get_tracking_uri()
    remote = is_tracking_server(server)
    base_url = ui_base_url(server) if remote else f"http://{arguments.host}:{arguments.port}"
    link = models_view_link(arguments.experiment_name, base_url)
    if link is None:
        print(
            f"error: parameter experiment_name: no experiment {arguments.experiment_name!r} in "
            f"{server}; run `make run` first",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    print(f"open {link}", flush=True)
    if remote:
        return EXIT_OK
    beside = Path(sys.executable).with_name("mlflow")  # this venv's, whatever the PATH says
    command = [str(beside) if beside.exists() else "mlflow", "ui", "--host", arguments.host]
    command += ["--port", arguments.port, "--backend-store-uri", server]
    os.execvp(command[0], command)
    return EXIT_OK  # not reached: execvp replaces this process


if __name__ == "__main__":
    sys.exit(main())
