"""The champion rule on crafted runs: validation MAE decides, test metrics never do."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from typing import Any

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient

from pipelines.tracking.registry import CHAMPION_ALIAS, SELECTION_METRIC, register_and_promote

EXPERIMENT = "registry"


class EchoModel(mlflow.pyfunc.PythonModel):
    """The cheapest loggable pyfunc model: it returns its input."""

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        return model_input


@pytest.fixture(scope="module")
def tracking(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowClient]:
    """One SQLite store for the module (creating one takes seconds); artifacts beside it.

    Each test registers its own model name (`model_name`), so tests never see each other's
    versions.
    """
    root = tmp_path_factory.mktemp("registry-store")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root}/mlflow.db")
        for name in ("MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME"):
            patch.delenv(name, raising=False)
        mlflow.set_tracking_uri(None)
        client = MlflowClient()
        experiment_id = client.create_experiment(
            EXPERIMENT, artifact_location=(root / "artifacts").as_uri()
        )
        patch.setenv("MLFLOW_EXPERIMENT_ID", experiment_id)
        yield client
        while mlflow.active_run() is not None:
            mlflow.end_run()
    mlflow.set_tracking_uri(None)


@pytest.fixture
def model_name(request: pytest.FixtureRequest) -> str:
    """A registered model name of this test's own."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", request.node.name)


def new_version(
    name: str, validation_mae: float, test_mae: float, *, log_validation: bool = True
) -> tuple[str, bool, str]:
    """Logs a run with the given metrics and a model, registers it and applies the rule.

    Args:
        name: the registered model.
        validation_mae: the run's `val_mae`, also passed to `register_and_promote`.
        test_mae: the run's `test_mae` (which must never matter).
        log_validation: False leaves `val_mae` out of the run (an old or foreign run).

    Returns:
        The new version, whether it became the champion, and its run id.
    """
    # The experiment by id: an earlier test's `mlflow.set_experiment` would otherwise win.
    experiment_id = MlflowClient().get_experiment_by_name(EXPERIMENT).experiment_id
    with mlflow.start_run(experiment_id=experiment_id) as run:
        if log_validation:
            mlflow.log_metric(SELECTION_METRIC, validation_mae)
        mlflow.log_metric("test_mae", test_mae)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # MLflow's advice about pickling python_model
            logged = mlflow.pyfunc.log_model(
                name="model", python_model=EchoModel(), pip_requirements=[]
            )
    version, promoted = register_and_promote(
        logged.model_uri, name, run_id=run.info.run_id, validation_mae=validation_mae
    )
    return version, promoted, run.info.run_id


def champion(client: MlflowClient, name: str) -> str:
    """The version the champion alias of `name` points at."""
    return str(client.get_model_version_by_alias(name, CHAMPION_ALIAS).version)


def champion_tag(client: MlflowClient, run_id: str) -> str:
    """The run's `champion` tag, as `register_and_promote` set it."""
    return client.get_run(run_id).data.tags["champion"]


def test_the_first_version_becomes_the_champion(tracking: MlflowClient, model_name: str) -> None:
    version, promoted, run_id = new_version(model_name, validation_mae=0.8, test_mae=0.9)
    assert (version, promoted) == ("1", True)
    assert champion(tracking, model_name) == "1"
    assert champion_tag(tracking, run_id) == "true"


def test_better_on_validation_but_worse_on_test_becomes_the_champion(
    tracking: MlflowClient, model_name: str
) -> None:
    _, _, first_run = new_version(model_name, validation_mae=0.50, test_mae=0.40)
    version, promoted, second_run = new_version(model_name, validation_mae=0.45, test_mae=0.90)
    assert (version, promoted) == ("2", True)
    assert champion(tracking, model_name) == "2"
    assert champion_tag(tracking, second_run) == "true"
    assert champion_tag(tracking, first_run) == "true"  # it was the champion when it was made


def test_worse_on_validation_but_better_on_test_leaves_the_champion(
    tracking: MlflowClient, model_name: str
) -> None:
    new_version(model_name, validation_mae=0.50, test_mae=0.90)
    # Better on test than the champion's test MAE and than its validation MAE: neither counts.
    version, promoted, second_run = new_version(model_name, validation_mae=0.55, test_mae=0.10)
    assert (version, promoted) == ("2", False)
    assert champion(tracking, model_name) == "1"
    assert champion_tag(tracking, second_run) == "false"


def test_a_tie_on_validation_keeps_the_champion(tracking: MlflowClient, model_name: str) -> None:
    new_version(model_name, validation_mae=0.50, test_mae=0.90)
    version, promoted, second_run = new_version(model_name, validation_mae=0.50, test_mae=0.10)
    assert (version, promoted) == ("2", False)
    assert champion(tracking, model_name) == "1"
    assert champion_tag(tracking, second_run) == "false"


def test_a_champion_whose_run_lacks_the_validation_metric_is_replaced(
    tracking: MlflowClient, model_name: str
) -> None:
    new_version(model_name, validation_mae=0.10, test_mae=0.10, log_validation=False)
    assert champion(tracking, model_name) == "1"
    # Worse than the 0.10 passed for version 1, but version 1's run has no val_mae to compare.
    version, promoted, second_run = new_version(model_name, validation_mae=0.70, test_mae=0.90)
    assert (version, promoted) == ("2", True)
    assert champion(tracking, model_name) == "2"
    assert champion_tag(tracking, second_run) == "true"


def test_a_new_version_is_compared_with_the_current_champion_only(
    tracking: MlflowClient, model_name: str
) -> None:
    new_version(model_name, validation_mae=0.90, test_mae=0.20)
    assert new_version(model_name, validation_mae=0.40, test_mae=0.80)[:2] == ("2", True)
    # Better than version 1 and its test MAE is the best of all, but worse than version 2.
    version, promoted, third_run = new_version(model_name, validation_mae=0.60, test_mae=0.05)
    assert (version, promoted) == ("3", False)
    assert champion(tracking, model_name) == "2"
    assert champion_tag(tracking, third_run) == "false"
    # And better than version 2 on validation, however bad on test: the new champion.
    assert new_version(model_name, validation_mae=0.30, test_mae=5.0)[:2] == ("4", True)
    assert champion(tracking, model_name) == "4"
    versions = tracking.search_model_versions(f"name='{model_name}'")
    assert sorted(int(item.version) for item in versions) == [1, 2, 3, 4]
