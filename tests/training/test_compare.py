"""Comparison pipeline: parent and nested runs, summary, registration of the best, failures."""

from __future__ import annotations

import io
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.entities import Run

from models import zoo
from pipelines.cli import compare as compare_command
from pipelines.cli import exit_codes
from pipelines.training import compare, train

MODELS = ("last", "dense", "lstm")
EXPERIMENT = "tiny-compare"
REGISTERED = "tiny-compare-model"
ARGUMENTS = [
    "--dataset=seattle-weather",
    "--input-width=14",
    "--horizon=7",
    f"--models={','.join(MODELS)}",
    "--set=model.hparams.units=4",
    "--epochs=1",
    "--batch-size=64",
    f"--experiment-name={EXPERIMENT}",
    f"--registered-model-name={REGISTERED}",
]


def with_experiment(client: MlflowClient, folder: Path) -> MlflowClient:
    """`client`'s store with this module's experiment, keeping its artifacts in `folder`."""
    client.create_experiment(EXPERIMENT, artifact_location=(folder / "artifacts").as_uri())
    return client


@pytest.fixture
def tracking(tracking_store: MlflowClient, tmp_path: Path) -> MlflowClient:
    """A store of the test's own, for comparisons that change it."""
    return with_experiment(tracking_store, tmp_path)


@pytest.fixture(scope="module")
def compared(module_tracking_store: MlflowClient) -> tuple[MlflowClient, Run, dict[str, Run]]:
    """One comparison of MODELS, run once for the tests that only read it: the store, the
    parent run and its children by model name."""
    client = with_experiment(module_tracking_store, Path.cwd())
    assert compare_command.main(ARGUMENTS) == 0
    return client, *parent_and_children(client)


def parent_and_children(client: MlflowClient) -> tuple[Run, dict[str, Run]]:
    experiment_id = client.get_experiment_by_name(EXPERIMENT).experiment_id
    (parent,) = client.search_runs([experiment_id], filter_string="tags.mlflow.parentRunId IS NULL")
    children = client.search_runs(
        [experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    )
    return parent, {child.data.tags["model_name"]: child for child in children}


def test_one_nested_child_per_model_with_the_same_metric_keys(
    compared: tuple[MlflowClient, Run, dict[str, Run]],
) -> None:
    _, parent, children = compared
    assert parent.info.status == "FINISHED"
    assert set(children) == set(MODELS)
    key_sets = {name: set(child.data.metrics) for name, child in children.items()}
    assert key_sets["last"] == key_sets["dense"] == key_sets["lstm"]
    assert {"val_mae", "test_mae_original", "test_skill_vs_last"} <= key_sets["dense"]
    for name, child in children.items():
        assert child.info.status == "FINISHED"
        assert child.info.run_name == name
        assert child.data.tags["model_family"] == zoo.model_family(name)
        assert child.data.tags["variant"]
    assert children["dense"].data.tags["variant"].startswith("normalization=none")
    assert children["last"].data.tags["variant"] == compare.VARIANT_DEFAULT


def test_the_summary_matches_the_children(
    compared: tuple[MlflowClient, Run, dict[str, Run]],
) -> None:
    tracking, parent, children = compared
    run_id = parent.info.run_id
    names = {item.path for item in tracking.list_artifacts(run_id)}
    assert {"comparison.csv", "comparison.md", "comparison.png", "config.yaml"} <= names
    table = pd.read_csv(io.StringIO(mlflow.artifacts.load_text(f"runs:/{run_id}/comparison.csv")))
    assert list(table.columns) == list(compare.SUMMARY_COLUMNS)
    assert list(table.model) == list(MODELS)
    assert set(table.status) == {"finished"}
    for row in table.itertuples():
        assert row.val_mae == children[row.model].data.metrics["val_mae"]
        assert row.test_mae_original == children[row.model].data.metrics["test_mae_original"]
    best = table.loc[table.val_mae.idxmin(), "model"]
    assert parent.data.tags["best_model"] == best
    assert parent.data.metrics["best_val_mae"] == table.val_mae.min()
    markdown = mlflow.artifacts.load_text(f"runs:/{run_id}/comparison.md")
    assert len(markdown.strip().splitlines()) == 2 + len(MODELS)
    # The run's description in the UI: the headline columns, the best model, a link to the
    # compare view of every child.
    description = parent.data.tags["mlflow.note.content"].strip().splitlines()
    assert description[0] == "| model | family | status | val_mae | test_mae | test_mae_original |"
    rows = description[2 : 2 + len(MODELS)]
    assert [line.split(" | ")[0] for line in rows] == [f"| {m}" for m in MODELS]
    assert description[2 + len(MODELS)].startswith(f"best: {best} ")
    link = description[-1]
    assert link.startswith("[Compare the models side by side](/#/compare-runs?runs=")
    assert all(child.info.run_id in link for child in children.values())
    assert parent.info.run_name == "compare seattle-weather"


def test_only_the_best_child_on_validation_is_registered(
    compared: tuple[MlflowClient, Run, dict[str, Run]],
) -> None:
    tracking, _, children = compared
    (version,) = tracking.search_model_versions(f"name='{REGISTERED}'")
    best = min(children.values(), key=lambda child: child.data.metrics["val_mae"])
    assert version.run_id == best.info.run_id
    assert tracking.get_model_version_by_alias(REGISTERED, "champion").version == version.version
    assert best.data.tags["champion"] == "true"
    loaded = mlflow.pyfunc.load_model(f"models:/{REGISTERED}@champion")
    assert loaded.metadata.run_id == best.info.run_id


def test_a_failing_model_fails_its_child_only(
    tracking: MlflowClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    build_model = zoo.build_model

    def broken_for_dense(name: str, *arguments: object, **keywords: object) -> object:
        if name == "dense":
            raise RuntimeError("dense broke")
        return build_model(name, *arguments, **keywords)

    monkeypatch.setattr(train.zoo, "build_model", broken_for_dense)
    assert compare_command.main(ARGUMENTS) == exit_codes.EXIT_FAILED
    parent, children = parent_and_children(tracking)
    assert parent.info.status == "FINISHED"
    assert children["dense"].info.status == "FAILED"
    assert "dense broke" in children["dense"].data.tags["error"]
    assert {children[name].info.status for name in ("last", "lstm")} == {"FINISHED"}
    table = pd.read_csv(
        io.StringIO(mlflow.artifacts.load_text(f"runs:/{parent.info.run_id}/comparison.csv"))
    )
    assert dict(zip(table.model, table.status, strict=True))["dense"] == "failed"
    assert parent.data.tags["failed_models"] == "dense"


def test_a_config_error_exits_2_before_any_run(
    tracking: MlflowClient, capsys: pytest.CaptureFixture[str]
) -> None:
    assert compare_command.main([*ARGUMENTS, "--models=last,nonsense"]) == exit_codes.EXIT_BAD_INPUT
    error_lines = capsys.readouterr().err.strip().splitlines()
    assert len(error_lines) == 1
    assert error_lines[0].startswith("error: config key 'model.models'")
    experiments = tracking.search_experiments()
    assert not tracking.search_runs([experiment.experiment_id for experiment in experiments])


def test_ctrl_c_marks_the_child_and_the_parent_killed(
    tracking: MlflowClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(*arguments: object, **keywords: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(train.zoo, "build_model", interrupted)
    with pytest.raises(KeyboardInterrupt):
        compare_command.main([*ARGUMENTS, "--models=dense,lstm"])
    parent, children = parent_and_children(tracking)
    assert parent.info.status == "KILLED"
    assert set(children) == {"dense"}  # nothing runs after the interrupt
    assert children["dense"].info.status == "KILLED"


def ramp_then_alternating_csv(rows: int = 200) -> str:
    """A daily series on which validation favours `last` and test favours `repeat`.

    Rows 0-139 (train and validation, split 0.6,0.1,0.3) climb by 0.01 a day, so repeating the
    last value is nearly exact and repeating the last two days is twice as far off. The test
    rows alternate 0, 10, 0, 10, a season of 2 (the horizon) that `repeat` forecasts exactly
    and `last` misses by 10 on every other step.
    """
    lines = ["date,value"]
    for day in range(rows):
        value = 1 + 0.01 * day if day < 140 else 10.0 * (day % 2)
        lines.append(f"{pd.Timestamp('2020-01-01') + pd.Timedelta(days=day):%Y-%m-%d},{value}")
    return "\n".join(lines) + "\n"


def test_the_champion_is_chosen_on_validation_when_test_disagrees(
    tracking: MlflowClient, write_csv
) -> None:
    source = write_csv(ramp_then_alternating_csv(), "crafted.csv")
    arguments = [
        f"--source={source}",
        "--set=data.dataset=none",
        "--set=data.timestamp_column=date",
        "--targets=value",
        "--input-width=4",
        "--horizon=2",
        "--split=0.6,0.1,0.3",
        "--models=repeat,last",
        f"--experiment-name={EXPERIMENT}",
        f"--registered-model-name={REGISTERED}",
    ]
    assert compare_command.main(arguments) == 0
    parent, children = parent_and_children(tracking)
    last, repeat = children["last"].data.metrics, children["repeat"].data.metrics
    # The crafted disagreement: test prefers `repeat`, validation prefers `last`.
    assert repeat["test_mae"] < last["test_mae"]
    assert last["val_mae"] < repeat["val_mae"]
    assert parent.data.tags["best_model"] == "last"
    champion = tracking.get_model_version_by_alias(REGISTERED, "champion")
    assert champion.run_id == children["last"].info.run_id
