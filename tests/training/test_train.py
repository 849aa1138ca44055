"""Training pipeline: metrics, early stopping, seeding, the MLflow round trip and failures."""

from __future__ import annotations

import io
import json
from pathlib import Path

import keras
import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from pipelines.cli import exit_codes
from pipelines.cli import train as train_command
from pipelines.config.loading import load_config
from pipelines.config.schema import RunConfig
from pipelines.data.prepare import PrepareResult
from pipelines.data.prepare import run as prepare_data
from pipelines.runtime.monitoring import REFERENCE_ARTIFACT, MonitoringReference
from pipelines.tracking import training_run
from pipelines.training import train

INPUT_WIDTH = 14
HORIZON = 7
TINY = {
    "dataset": "seattle-weather",
    "input_width": str(INPUT_WIDTH),
    "horizon": str(HORIZON),
    "model": "dense",
    "model.hparams.units": "4",
    "epochs": "2",
    "batch_size": "64",
}
TINY_ARGUMENTS = [
    "--dataset=seattle-weather",
    f"--input-width={INPUT_WIDTH}",
    f"--horizon={HORIZON}",
    "--model=dense",
    "--set=model.hparams.units=4",
    "--epochs=2",
    "--batch-size=64",
]


def tiny_config(**overrides: str) -> RunConfig:
    return load_config(overrides={**TINY, **overrides})


@pytest.fixture(scope="module")
def prepared() -> PrepareResult:
    return prepare_data(tiny_config().data)


@pytest.fixture(scope="module")
def trained(prepared: PrepareResult) -> train.TrainResult:
    return train.train_model(tiny_config(learning_rate="0.01"), prepared)


@pytest.fixture
def tracking(tracking_store: MlflowClient, tmp_path: Path) -> MlflowClient:
    """The shared store, with this module's experiment keeping artifacts in tmp_path."""
    tracking_store.create_experiment("tiny", artifact_location=(tmp_path / "artifacts").as_uri())
    return tracking_store


def test_last_baseline_matches_numpy(trained: train.TrainResult) -> None:
    prepared = trained.prepared
    target = prepared.spec.features.index("temp_max")
    scaled = prepared.scaler.transform(prepared.frame)[:, target].astype("float64")
    first_test_row = int(np.flatnonzero(prepared.parts == 2)[0])
    starts = np.arange(first_test_row - INPUT_WIDTH, len(scaled) - INPUT_WIDTH - HORIZON + 1)
    last_values = scaled[starts + INPUT_WIDTH - 1][:, np.newaxis]
    actual = np.stack(
        [scaled[start + INPUT_WIDTH : start + INPUT_WIDTH + HORIZON] for start in starts]
    )
    expected = float(np.mean(np.abs(actual - last_values)))
    test = trained.baseline_evaluations["last"]["test"]
    assert test.overall["mae"] == pytest.approx(expected, rel=1e-5)
    assert trained.window_counts["test"] == len(starts)
    assert test.by_step["mae"].shape == (HORIZON,)
    assert np.mean(test.by_step["mae"]) == pytest.approx(expected, rel=1e-5)
    assert set(trained.evaluations["test"].overall) >= {"mae", "rmse", "mape", "smape", "mase"}


def test_early_stopping_restores_the_best_weights(prepared: PrepareResult) -> None:
    # A large learning rate makes the validation loss jump around, so the last epoch is
    # unlikely to be the best one; whichever it is, the kept weights must be the best epoch's.
    config = tiny_config(epochs="4", learning_rate="0.3", patience="1")
    result = train.train_model(config, prepared)
    windowed = train.windowed_data(prepared)
    validation = windowed.dataset("validation", batch_size=64)
    restored = result.model.evaluate(validation, verbose=0, return_dict=True)["loss"]
    assert restored == pytest.approx(min(result.history["val_loss"]), rel=1e-4)
    assert result.best_epoch == int(np.argmin(result.history["val_loss"])) + 1
    # Seeded, this run stops after epoch 3 with epoch 2 best, so restoring is not a no-op.
    assert result.best_epoch < len(result.history["val_loss"])


def test_one_seed_gives_the_same_metrics(
    prepared: PrepareResult, trained: train.TrainResult
) -> None:
    again = train.train_model(tiny_config(learning_rate="0.01"), prepared)
    assert again.evaluations["test"].overall["mae"] == trained.evaluations["test"].overall["mae"]
    assert again.history == trained.history


def test_mlflow_round_trip_and_champion_on_validation(
    tracking: MlflowClient, prepared: PrepareResult
) -> None:
    common = [*TINY_ARGUMENTS, "--experiment-name=tiny", "--registered-model-name=tiny-model"]
    assert train_command.main([*common, "--learning-rate=0.01"]) == 0
    # An almost-zero learning rate leaves the untrained weights: a worse validation MAE.
    assert train_command.main([*common, "--learning-rate=1e-9"]) == 0

    experiment = tracking.get_experiment_by_name("tiny")
    first, second = tracking.search_runs(
        [experiment.experiment_id], order_by=["attributes.start_time ASC"]
    )
    assert first.info.status == "FINISHED"
    assert first.data.params["model.name"] == "dense"
    assert first.data.params["training.epochs"] == "2"
    # Params are the values the run used, not the `none` of settings left to their defaults.
    params = first.data.params
    assert params["model.hparams.units"] == "4"
    assert params["data.input_width"] == "14" and params["data.horizon"] == str(HORIZON)
    assert params["data.timestamp_column"] == "date" and params["data.frequency"] == "D"
    assert params["tracking.run_name"] == first.info.run_name == "train dense seattle-weather"
    assert not any(key.startswith(("forecast.", "backtest.", "prepare.")) for key in params)
    # A dozen headline metrics for the runs table; everything else in two artifacts.
    metrics = first.data.metrics
    assert set(training_run.HEADLINE_METRICS) <= set(metrics)
    assert not any(key.startswith("baseline_") or "_original_" in key for key in metrics)
    assert len(metrics) <= 30
    # Intervals: test coverage and width per level and the CRPS as run metrics; the logged
    # model carries the validation calibration and forecasts the bands.
    intervals = {"test_coverage_80", "test_coverage_90", "test_width_80", "test_width_90"}
    assert intervals | {"test_crps"} <= set(metrics)
    assert 0 <= metrics["test_coverage_80"] <= metrics["test_coverage_90"] <= 1
    assert 0 < metrics["test_width_80"] < metrics["test_width_90"]
    run_uri = f"runs:/{first.info.run_id}"
    overall = mlflow.artifacts.load_dict(f"{run_uri}/{training_run.OVERALL_ARTIFACT}")
    assert overall["test_mae"] == metrics["test_mae"]
    assert metrics["test_skill_vs_last"] == pytest.approx(
        1 - overall["test_mae"] / overall["baseline_last_test_mae"]
    )
    assert {"baseline_repeat_val_mae", "val_mape_original", "test_smape"} <= set(overall)
    assert {"val_coverage_80", "test_interval_score_90", "val_crps"} <= set(overall)
    assert overall["test_coverage_90"] == metrics["test_coverage_90"]
    by_step_table = pd.read_csv(
        io.StringIO(mlflow.artifacts.load_text(f"{run_uri}/{training_run.BY_STEP_ARTIFACT}"))
    )
    assert list(by_step_table["step"]) == list(range(1, HORIZON + 1))
    assert "baseline_last_test_mae_original_by_step" in by_step_table
    by_step = tracking.get_metric_history(first.info.run_id, "test_mae_by_step")
    assert sorted(entry.step for entry in by_step) == list(range(1, HORIZON + 1))
    assert [entry.value for entry in sorted(by_step, key=lambda e: e.step)] == pytest.approx(
        by_step_table["test_mae_by_step"].tolist()
    )
    # The monitoring reference: the validation errors per step (the logged val_mae_by_step)
    # and coverage (val_coverage_80), which `monitor` checks the scheduled forecasts against.
    reference = MonitoringReference.from_dict(
        mlflow.artifacts.load_dict(f"{run_uri}/{REFERENCE_ARTIFACT}")
    )
    assert reference.targets == tuple(prepared.spec.targets)
    assert reference.mae_by_step.mean(axis=1) == pytest.approx(
        by_step_table["val_mae_by_step"].tolist()
    )
    assert reference.coverage["80"] == pytest.approx(overall["val_coverage_80"])
    assert reference.design_effect["80"] >= 1 and reference.ratio_sd > 0
    losses = tracking.get_metric_history(first.info.run_id, "val_loss")
    assert sorted(entry.step for entry in losses) == [1, 2]
    assert first.data.tags["model_family"] == "direct"
    assert first.data.tags["keras"]
    artifacts = {item.path for item in tracking.list_artifacts(first.info.run_id, "plots")}
    assert artifacts == {
        "plots/forecast_vs_actual.png",
        "plots/error_by_horizon.png",
        "plots/coverage_by_step.png",
    }
    (logged,) = mlflow.get_run(first.info.run_id).inputs.dataset_inputs
    logged_schema = json.loads(logged.dataset.schema)["mlflow_colspec"]
    assert logged_schema == mlflow.data.from_pandas(prepared.frame).schema.to_dict()

    assert second.data.metrics["val_mae"] > first.data.metrics["val_mae"]
    champion = tracking.get_model_version_by_alias("tiny-model", "champion")
    assert champion.run_id == first.info.run_id
    assert len(tracking.search_model_versions("name='tiny-model'")) == 2
    assert second.data.tags["champion"] == "false"


def test_the_dataset_schema_is_the_one_mlflow_infers_from_every_row() -> None:
    frame = pd.DataFrame(
        {
            "timestamp": pd.to_datetime(["2024-01-01", "2024-01-02", None, "2024-01-04"]),
            "series_id": ["a", "a", "b", None],
            "count": np.array([1, 2, 3, 4], "int64"),
            "value": [1.0, 2.0, 3.0, np.nan],
            "complete": [0.5, 0.25, 0.125, 1.0],
            "flag": [True, False, True, True],
            "label": pd.Series([None, "b", "c", "d"], dtype="str"),
            "kind": pd.Categorical(["x", None, "y", "x"]),
            "mixed": pd.Series([1, 2.5, 3, 4], dtype=object),  # MLflow reads every value
        }
    )
    typed = frame.drop(columns="mixed")  # read from a few rows
    for part in (typed, typed.iloc[:2], typed.iloc[2:], typed.iloc[1:], frame):
        expected = mlflow.data.from_pandas(part).schema.to_dict()
        assert training_run.dataset_schema(part).to_dict() == expected
    required = {spec.name: spec.required for spec in training_run.dataset_schema(frame).inputs}
    assert required == {
        "timestamp": False,
        "series_id": False,
        "count": True,
        "value": False,
        "complete": True,
        "flag": True,
        "label": False,
        "kind": False,
        "mixed": True,
    }


def test_a_run_that_raises_ends_failed(
    tracking: MlflowClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_builder(*arguments: object, **keywords: object) -> None:
        raise RuntimeError("the builder broke")

    monkeypatch.setattr(train.zoo, "build_model", broken_builder)
    assert train_command.main([*TINY_ARGUMENTS, "--experiment-name=tiny"]) == exit_codes.EXIT_FAILED
    (run,) = tracking.search_runs([tracking.get_experiment_by_name("tiny").experiment_id])
    assert run.info.status == "FAILED"
    assert "the builder broke" in run.data.tags["error"]


def test_a_config_error_exits_2_before_any_run(
    tracking: MlflowClient, capsys: pytest.CaptureFixture[str]
) -> None:
    assert train_command.main(["--epochs=0", "--experiment-name=tiny"]) == exit_codes.EXIT_BAD_INPUT
    error_lines = capsys.readouterr().err.strip().splitlines()
    assert len(error_lines) == 1
    assert error_lines[0].startswith("error: config key 'training.epochs'")
    experiments = tracking.search_experiments()
    assert not tracking.search_runs([experiment.experiment_id for experiment in experiments])


def test_cosine_schedule_decays_to_zero_over_every_step_of_the_epochs(
    prepared: PrepareResult,
) -> None:
    config = tiny_config(lr_schedule="cosine", learning_rate="0.01", patience="5")
    fitted = train.fit_model(config, prepared)
    optimizer = fitted.model.optimizer
    steps_per_epoch = int(np.ceil(len(train.windowed_data(prepared).starts["train"]) / 64))
    assert int(optimizer.iterations) == 2 * steps_per_epoch  # both epochs ran
    # Keras' CosineDecay at step t of T: lr * (1 + cos(pi * t / T)) / 2: half at T/2, 0 at T.
    assert float(optimizer.learning_rate) == pytest.approx(0.0, abs=1e-9)
    schedule = train.learning_rate_schedule(config.training, steps_per_epoch)
    assert float(schedule(steps_per_epoch)) == pytest.approx(0.005, rel=1e-6)


def test_plateau_schedule_halves_the_rate_after_an_epoch_without_a_better_loss(
    prepared: PrepareResult,
) -> None:
    # patience 2 -> halved after max(1, 2 // 2) = 1 epoch without a better validation loss
    # (Keras' ReduceLROnPlateau: better means lower by more than 1e-4).
    config = tiny_config(lr_schedule="plateau", learning_rate="0.5", patience="2", epochs="5")
    history = train.fit_model(config, prepared).history
    rates, losses = history["learning_rate"], history["val_loss"]
    expected, best = [0.5], np.inf
    for loss in losses[:-1]:
        improved = loss < best - 1e-4
        best = min(best, loss)
        expected.append(expected[-1] if improved else expected[-1] / 2)
    assert rates == pytest.approx(expected, rel=1e-6)
    assert train.learning_rate_schedule(config.training, 10) == 0.5


def test_unknown_schedule_is_named() -> None:
    from pipelines.settings import ConfigError

    with pytest.raises(ConfigError, match=r"training\.lr_schedule.*expected one of constant"):
        tiny_config(lr_schedule="linear")


def test_weight_averaging_validates_and_keeps_the_moving_average_of_the_best_epoch(
    prepared: PrepareResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    momentum = 0.9
    raw_weights_per_step: list[list[np.ndarray]] = []
    steps_per_epoch: list[int] = []

    class RawWeights(keras.callbacks.Callback):
        def on_train_batch_end(self, batch: int, logs: object = None) -> None:
            raw_weights_per_step.append([w.numpy().copy() for w in self.model.trainable_weights])

        def on_epoch_end(self, epoch: int, logs: object = None) -> None:
            steps_per_epoch.append(len(raw_weights_per_step))

    callbacks = train._callbacks
    monkeypatch.setattr(train, "_callbacks", lambda training: [RawWeights(), *callbacks(training)])
    config = tiny_config(ema_momentum=str(momentum), learning_rate="0.05", epochs="3", patience="5")
    fitted = train.fit_model(config, prepared)

    # Keras' use_ema: the first step copies the weights, each later one mixes in 1 - momentum.
    average = raw_weights_per_step[0]
    averages_per_step = [average]
    for raw in raw_weights_per_step[1:]:
        average = [momentum * a + (1 - momentum) * w for a, w in zip(average, raw, strict=True)]
        averages_per_step.append(average)
    best = int(np.argmin(fitted.history["val_loss"]))
    expected = averages_per_step[steps_per_epoch[best] - 1]
    kept = [w.numpy() for w in fitted.model.trainable_weights]
    for kept_weight, expected_weight in zip(kept, expected, strict=True):
        np.testing.assert_allclose(kept_weight, expected_weight, rtol=1e-5, atol=1e-6)
    raw_at_best = raw_weights_per_step[steps_per_epoch[best] - 1]
    assert not np.allclose(kept[0], raw_at_best[0], rtol=1e-3)
    # The validation loss of the best epoch was computed with these averaged weights.
    validation = train.windowed_data(prepared).dataset("validation", batch_size=64)
    loss = fitted.model.evaluate(validation, verbose=0, return_dict=True)["loss"]
    assert loss == pytest.approx(fitted.history["val_loss"][best], rel=1e-5)


@pytest.mark.parametrize("momentum", ["1", "-0.1", "nan"])
def test_weight_averaging_momentum_outside_0_1_is_named(momentum: str) -> None:
    from pipelines.settings import ConfigError

    with pytest.raises(ConfigError, match=r"training\.ema_momentum.*expected a number in \[0, 1\)"):
        tiny_config(ema_momentum=momentum)


def test_intervals_are_calibrated_on_validation_and_scored_on_test_by_hand(
    prepared: PrepareResult, trained: train.TrainResult
) -> None:
    from pipelines.runtime.intervals import calibrate
    from pipelines.training.evaluation import predict_part, target_windows

    windowed = train.windowed_data(prepared)
    forecast = {
        part: predict_part(trained.model, windowed, part, 64) for part in ("validation", "test")
    }
    validation = target_windows(prepared, windowed, "validation")
    expected = calibrate(validation.scaled - forecast["validation"])  # pooled, the default
    np.testing.assert_array_equal(trained.calibration.offsets, expected.offsets)
    test = target_windows(prepared, windowed, "test")
    # Level 80: the 10% and 90% conformal offsets around the scaled forecast; the share of
    # test values inside, counted in scaled units (no round-off); the width in original units,
    # through the scaler.
    low, high = (expected.quantile_offsets([q], test.series_ids)[0] for q in (0.1, 0.9))
    lower, upper = (
        prepared.scaler.inverse_transform(
            forecast["test"] + offset, test.series_ids, prepared.spec.targets
        )
        for offset in (low, high)
    )
    residual = test.scaled - forecast["test"]
    inside = (low <= residual) & (residual <= high)
    scores = trained.interval_evaluations["test"]
    assert scores.coverage["80"] == pytest.approx(inside.mean())
    assert scores.width["80"] == pytest.approx((upper - lower).mean())
    assert scores.coverage_by_step["80"] == pytest.approx(inside.mean(axis=(0, 2)))
    assert scores.crps is not None and scores.crps > 0


def test_intervals_scored_in_blocks_equal_the_scores_of_the_whole_part(
    prepared: PrepareResult, trained: train.TrainResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipelines.training import calibration as scoring
    from pipelines.training.evaluation import predict_part, target_windows

    windowed = train.windowed_data(prepared)
    forecast = predict_part(trained.model, windowed, "test", 64)
    test = target_windows(prepared, windowed, "test")

    def scored() -> scoring.IntervalEvaluation:
        return scoring.evaluate_intervals(
            trained.calibration,
            (80.0, 90.0),
            forecast,
            test.scaled,
            test.original,
            test.series_ids,
            prepared.scaler,
            prepared.spec.targets,
        )

    whole = scored()
    # Blocks of 3 windows, the last one shorter (the test part's windows are not a multiple).
    assert len(forecast) % 3 != 0
    monkeypatch.setattr(scoring, "SCORED_VALUES", 3 * int(np.prod(forecast.shape[1:])) + 1)
    blocks = scored()
    for name in ("coverage", "width", "width_scaled", "interval_score"):
        assert getattr(blocks, name) == pytest.approx(getattr(whole, name), rel=1e-12)
    for name in ("80", "90"):
        np.testing.assert_allclose(blocks.coverage_by_step[name], whole.coverage_by_step[name])
    assert blocks.crps == pytest.approx(whole.crps, rel=1e-12)
    assert blocks.crps_scaled == pytest.approx(whole.crps_scaled, rel=1e-12)


def test_no_intervals_when_switched_off_or_too_few_validation_windows(
    prepared: PrepareResult,
) -> None:
    off = train.train_model(tiny_config(**{"intervals.calibration": "none"}), prepared)
    assert off.calibration is None and off.interval_evaluations == {}
    windows = off.window_counts["validation"]
    # A level needs (100 + L) / (100 - L) residuals: 99.9 needs 1999, more than there are.
    with pytest.warns(UserWarning, match=r"intervals left out: \d+ validation windows"):
        few = train.train_model(tiny_config(**{"intervals.levels": "80,99.9"}), prepared)
    assert windows < 1999 and few.calibration is None


def test_rolling_update_recalibrates_the_test_part_on_known_residuals_by_hand(
    prepared: PrepareResult,
) -> None:
    from pipelines.tracking.training_run import metric_values
    from pipelines.training.evaluation import predict_part, target_windows

    settings = {
        "intervals.update": "rolling",
        "intervals.rolling_window": "20",
        "intervals.rolling_every": "4",
        "intervals.rolling_feedback": "0",
        "intervals.rolling_horizons": "0",  # the last 20 windows, not spread further back
    }
    rolling = train.train_model(tiny_config(learning_rate="0.01", **settings), prepared)
    windowed = train.windowed_data(prepared)
    parts = ("validation", "test")
    actual = {part: target_windows(prepared, windowed, part) for part in parts}
    forecast = {part: predict_part(rolling.model, windowed, part, 64) for part in parts}
    residuals = {part: actual[part].scaled - forecast[part] for part in parts}
    starts = {part: windowed.starts[part] for part in parts}
    ids = {part: actual[part].series_ids for part in parts}
    # By hand: every test window takes its block's origin (each series' 1st, 5th, 9th... test
    # window); each step h the last 20 residuals of that series whose targets end by then
    # (start + h <= the origin's start); the conformal 10% and 90% order statistics of them.
    offsets = np.zeros((2, *forecast["test"].shape))
    for series in sorted(set(ids["test"])):
        pool_starts = np.concatenate([starts[p][ids[p] == series] for p in parts])
        pool = np.concatenate([residuals[p][ids[p] == series] for p in parts])
        pool, pool_starts = pool[np.argsort(pool_starts)], np.sort(pool_starts)
        mine = np.flatnonzero(ids["test"] == series)
        for position, window in enumerate(mine):
            origin = starts["test"][mine[position - position % 4]]
            for step in range(prepared.spec.horizon):
                values = np.sort(pool[pool_starts + step + 1 <= origin][-20:, step], axis=0)
                n = len(values)
                offsets[0, window, step] = values[int(np.floor((n + 1) * 0.1)) - 1]
                offsets[1, window, step] = values[int(np.ceil((n + 1) * 0.9)) - 1]
    lower, upper = (
        prepared.scaler.inverse_transform(
            forecast["test"] + offset, ids["test"], prepared.spec.targets
        )
        for offset in offsets
    )
    # Coverage counts in scaled units, where the offsets were computed (no round-off).
    scaled = actual["test"].scaled - forecast["test"]
    scores = rolling.interval_evaluations
    assert set(scores) == {"validation", "test", "test_static"}
    assert scores["test"].coverage["80"] == pytest.approx(
        ((offsets[0] <= scaled) & (scaled <= offsets[1])).mean(), abs=1e-12
    )
    assert scores["test"].width["80"] == pytest.approx((upper - lower).mean())
    # Static beside it: the validation calibration, as without the rolling update.
    static = train.train_model(tiny_config(learning_rate="0.01"), prepared)
    assert scores["test_static"].coverage == static.interval_evaluations["test"].coverage
    overall, _ = metric_values(rolling)
    assert overall["test_static_coverage_80"] == scores["test_static"].coverage["80"]
    assert overall["test_coverage_80"] == scores["test"].coverage["80"]
    # With feedback, the test part is scored with rolling_calibration's widened intervals,
    # grouped over the steps as rolling_feedback_by says.
    from pipelines.training.calibration import rolling_calibration

    feedback = train.train_model(
        tiny_config(
            learning_rate="0.01",
            **{
                **settings,
                "intervals.rolling_feedback": "3",
                "intervals.rolling_feedback_by": "step",
                "intervals.rolling_horizons": "5",
            },
        ),
        prepared,
    )
    forecast = {part: predict_part(feedback.model, windowed, part, 64) for part in parts}

    def widened_offsets(feedback_by: str, span: int = 5 * HORIZON) -> tuple[np.ndarray, ...]:
        widened, groups = rolling_calibration(
            np.concatenate([actual[p].scaled - forecast[p] for p in parts]),
            np.concatenate([starts[p] for p in parts]),
            np.concatenate([ids[p] for p in parts]),
            np.concatenate([np.full(len(starts[p]), p == "test") for p in parts]),
            20,
            4,
            3.0,
            (80.0, 90.0),
            feedback_by=feedback_by,
            span=span,
        )
        return widened.quantile_offsets([0.1, 0.9], groups)

    low, high = widened_offsets("step")  # 20 residuals spread over the last 35 windows
    assert not np.allclose(widened_offsets("shared"), (low, high))
    assert not np.allclose(widened_offsets("step", span=20), (low, high))
    lower, upper = (
        prepared.scaler.inverse_transform(forecast["test"] + o, ids["test"], prepared.spec.targets)
        for o in (low, high)
    )
    scaled = actual["test"].scaled - forecast["test"]
    assert feedback.interval_evaluations["test"].coverage["80"] == pytest.approx(
        ((low <= scaled) & (scaled <= high)).mean(), abs=1e-12
    )
    assert feedback.interval_evaluations["test"].width["80"] == pytest.approx(
        (upper - lower).mean()
    )
    assert feedback.interval_evaluations["test"].width["80"] != scores["test"].width["80"]


def test_rolling_window_too_small_for_a_level_is_refused_before_any_work() -> None:
    from pipelines.settings import ConfigError

    with pytest.raises(
        ConfigError, match=r"intervals\.rolling_window.*at least 19 residuals for level 90"
    ):
        tiny_config(**{"intervals.update": "rolling", "intervals.rolling_window": "18"})


def test_a_negative_reach_is_refused_before_any_work() -> None:
    from pipelines.settings import ConfigError

    with pytest.raises(ConfigError, match=r"intervals\.rolling_horizons"):
        tiny_config(**{"intervals.update": "rolling", "intervals.rolling_horizons": "-1"})


def test_an_unknown_feedback_grouping_is_refused_before_any_work() -> None:
    from pipelines.settings import ConfigError

    with pytest.raises(ConfigError, match=r"intervals\.rolling_feedback_by.*'day'"):
        tiny_config(**{"intervals.update": "rolling", "intervals.rolling_feedback_by": "day"})
