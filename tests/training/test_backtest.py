"""The rolling-origin backtest: where folds fall, what each fold may see, and its scores.

The data are ramps whose value is the row number (series `a`) or 1000 + 2 x the row number
(series `b`): every value names its own time, so a fold that saw a row after its origin is
caught by the largest value that reached its scaler, early stopping or model. On a ramp the
last-value forecast misses by `h` (times the slope) at step `h`, which gives known answers for
the metrics.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipelines.config.loading import config_from_dict
from pipelines.config.schema import BacktestConfig
from pipelines.runtime.contract import SERIES_COLUMN, DataValidationError
from pipelines.settings import ConfigError
from pipelines.training import backtest
from pipelines.training.backtest import fold_origins, plan_folds, run_backtest

ROWS = {"a": 120, "b": 100}
SLOPES = {"a": 1.0, "b": 2.0}
OFFSETS = {"a": 0.0, "b": 1000.0}
INPUT_WIDTH, HORIZON = 8, 4


def ramp_file(path: Path) -> Path:
    """Two daily ramps; `b` starts 20 days later, so both end on the same day."""
    frames = []
    for series_id, rows in ROWS.items():
        dates = pd.date_range("2024-01-01", periods=rows, freq="D") + pd.Timedelta(
            days=ROWS["a"] - rows
        )
        position = np.arange(ROWS["a"] - rows, ROWS["a"])
        frames.append(
            pd.DataFrame(
                {
                    "date": dates.strftime("%Y-%m-%d"),
                    "name": series_id,
                    "value": OFFSETS[series_id] + SLOPES[series_id] * position,
                }
            )
        )
    pd.concat(frames).to_csv(path, index=False)
    return path


def ramp_config(path: Path, models: list[str], **backtest_settings):
    return config_from_dict(
        {
            "data": {
                "dataset": None,
                "source": str(path),
                "timestamp_column": "date",
                "series_column": "name",
                "targets": ["value"],
                "input_width": INPUT_WIDTH,
                "horizon": HORIZON,
            },
            "model": {"models": models, "hparams": {"units": 4}},
            "training": {"epochs": 1, "batch_size": 16},
            "backtest": backtest_settings,
        }
    )


def day(position: int) -> pd.Timestamp:
    """The date of row `position` of series `a`."""
    return pd.Timestamp("2024-01-01", tz="UTC") + pd.Timedelta(days=position)


# --------------------------------------------------------------------------------------------
# Where folds fall


def test_the_last_origin_leaves_one_horizon_and_the_others_step_back() -> None:
    timeline = np.arange(100)
    assert fold_origins(timeline, BacktestConfig(folds=3), 8, 5) == [84, 89, 94]
    assert fold_origins(timeline, BacktestConfig(folds=3, step=10), 8, 5) == [74, 84, 94]


def test_fold_starts_are_the_first_forecast_times() -> None:
    timeline = np.array([day(i).value for i in range(100)])
    settings = BacktestConfig(fold_starts=("2024-02-20", "2024-03-01T00:00:00Z"))
    assert fold_origins(timeline, settings, 8, 5) == [49, 59]


def test_too_many_folds_is_an_error_that_says_how_many_fit() -> None:
    with pytest.raises(ConfigError, match=r"backtest.folds': expected at most 17 folds of step 5"):
        fold_origins(np.arange(100), BacktestConfig(folds=30), 8, 5)


def test_a_fold_start_outside_the_data_is_an_error() -> None:
    timeline = np.array([day(i).value for i in range(100)])
    with pytest.raises(ConfigError, match=r"backtest\.fold_starts': expected dates after"):
        fold_origins(timeline, BacktestConfig(fold_starts=("2030-01-01",)), 8, 5)


def test_sliding_windows_and_the_refit_schedule() -> None:
    timeline = np.array([day(i).value for i in range(100)])
    settings = BacktestConfig(folds=5, step=2, window="sliding", training_rows=30, refit=2)
    folds = plan_folds(timeline, settings, fold_origins(timeline, settings, 8, 5))
    assert [fold.refit for fold in folds] == [True, False, True, False, True]
    assert [fold.origin for fold in folds] == [day(i) for i in (86, 88, 90, 92, 94)]
    assert folds[0].training_start == day(57)
    never = plan_folds(timeline, BacktestConfig(folds=3, refit=0), [80, 85, 90])
    assert [fold.refit for fold in never] == [True, False, False]
    assert never[0].training_start is None


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("folds", 0, "an integer >= 1"),
        ("window", "rolling", "expanding"),
        ("refit", -1, "an integer >= 0"),
        ("validation_fraction", 1.0, r"a number in \(0, 1\), got 1.0"),
    ],
)
def test_bad_settings_name_their_key(key: str, value, expected: str) -> None:
    with pytest.raises(ConfigError, match=rf"backtest.{key}.*{expected}"):
        config_from_dict({"backtest": {key: value}})


# --------------------------------------------------------------------------------------------
# Leak-free folds


@pytest.fixture
def seen(monkeypatch: pytest.MonkeyPatch) -> dict[str, list]:
    """Records what every fit and every forecast input was given."""
    records: dict[str, list] = {"fits": [], "histories": []}
    fit_model, load_history = backtest.fit_model, backtest.load_history

    def recording_fit(config, prepared, windowed=None):
        records["fits"].append(prepared)
        return fit_model(config, prepared, windowed)

    def recording_history(config, as_of=None):
        history = load_history(config, as_of)
        if as_of is not None:
            records["histories"].append((as_of, history.frame))
        return history

    monkeypatch.setattr(backtest, "fit_model", recording_fit)
    monkeypatch.setattr(backtest, "load_history", recording_history)
    return records


def largest_position(frame: pd.DataFrame) -> dict[str, float]:
    """Per series, the largest row position that its values name."""
    return {
        str(series_id): float(
            ((rows["value"] - OFFSETS[str(series_id)]) / SLOPES[str(series_id)]).max()
        )
        for series_id, rows in frame.groupby(SERIES_COLUMN)
    }


def test_no_fold_sees_a_row_after_its_origin(tmp_path: Path, seen: dict[str, list]) -> None:
    config = ramp_config(
        ramp_file(tmp_path / "ramps.csv"), ["linear"], folds=3, step=5, validation_fraction=0.2
    )
    result = run_backtest(config)
    origins = [fold.origin for fold in result.folds]
    assert origins == [day(105), day(110), day(115)]
    # Every fold refits: one preparation per fold, shared by the three models.
    prepared_per_fold = seen["fits"][::3]
    assert len(seen["fits"]) == 9
    for origin, prepared in zip(origins, prepared_per_fold, strict=True):
        position = (origin - day(0)).days
        assert largest_position(prepared.frame) == {"a": position, "b": position}
        # The scaler was fitted on the training rows only, the first 80% of each series.
        for series_id, rows in prepared.frame.groupby(SERIES_COLUMN):
            count = len(rows)
            training = rows["value"].to_numpy()[: int(count * 0.8)]
            scaler = prepared.scaler.scalers[str(series_id)]
            assert scaler.mean_[0] == pytest.approx(training.mean())
        # Early stopping watched the rows just before the origin, never after it.
        validation = prepared.frame[prepared.frame["part"] == "validation"]
        assert largest_position(validation) == {"a": position, "b": position}
    for origin, history in seen["histories"]:
        position = (origin - day(0)).days
        assert largest_position(history) == {"a": position, "b": position}


def test_the_last_value_baseline_scores_the_known_answer(tmp_path: Path) -> None:
    config = ramp_config(ramp_file(tmp_path / "ramps.csv"), ["linear"], folds=2, refit=0)
    result = run_backtest(config)
    last = result.models["last"]
    steps = np.arange(1, HORIZON + 1)
    # Both series miss by h x slope at step h: MAE over series a (slope 1) and b (slope 2).
    expected_mae = (steps.mean() * 1 + steps.mean() * 2) / 2
    expected_mse = ((steps**2).mean() * 1 + (steps**2).mean() * 4) / 2
    for score in last.scores:
        assert score.series == 2
        # Forecasts pass through float32 in scaled units: values near 1,200 keep ~1e-4.
        assert score.metrics["mae_original"] == pytest.approx(expected_mae, rel=1e-5)
        assert score.metrics["mse_original"] == pytest.approx(expected_mse, rel=1e-5)
        # The in-sample naive error of a ramp is its slope, so MASE is the mean step.
        assert score.metrics["mase_original"] == pytest.approx(steps.mean(), rel=1e-5)
        assert score.metrics["mase"] == pytest.approx(steps.mean(), rel=1e-5)
    forecasts = last.forecast_frame()
    assert len(forecasts) == 2 * 2 * HORIZON  # folds x series x steps (one target)
    fold = forecasts[(forecasts["fold"] == 1) & (forecasts[SERIES_COLUMN] == "b")]
    origin = (result.folds[1].origin - day(0)).days
    assert fold["forecast"].to_numpy() == pytest.approx([1000 + 2 * origin] * HORIZON, rel=1e-6)
    assert fold["actual"].tolist() == [1000 + 2 * (origin + h) for h in steps]
    assert fold["step"].tolist() == steps.tolist()
    aggregate = last.aggregate()
    assert aggregate["mean_mae_original"] == pytest.approx(expected_mae, rel=1e-5)
    assert aggregate["std_mae_original"] == pytest.approx(0.0, abs=1e-4)


def test_refit_never_trains_once_and_sliding_windows_start_late(
    tmp_path: Path, seen: dict[str, list]
) -> None:
    path = ramp_file(tmp_path / "ramps.csv")
    result = run_backtest(ramp_config(path, ["linear"], folds=3, refit=0))
    assert len(seen["fits"]) == 3  # linear, last, repeat, once
    assert [len(model.scores) for model in result.models.values()] == [3, 3, 3]
    assert [score.train_seconds > 0 for score in result.models["linear"].scores] == [
        True,
        False,
        False,
    ]
    seen["fits"].clear()
    run_backtest(ramp_config(path, ["linear"], folds=1, window="sliding", training_rows=40))
    (prepared,) = seen["fits"][:1]
    smallest = prepared.frame.groupby(SERIES_COLUMN)["value"].min()
    positions = (smallest - pd.Series(OFFSETS)) / pd.Series(SLOPES)
    # One fold: origin at row 115 (one horizon before the end), 40 rows up to it.
    assert positions.to_dict() == {"a": 115 - 40 + 1, "b": 115 - 40 + 1}


def test_a_fold_start_within_the_last_horizon_is_an_error() -> None:
    timeline = np.array([day(i).value for i in range(100)])
    # Origin 97 would leave 2 of the 5 steps to score.
    with pytest.raises(ConfigError, match=r"up to 2024-04-05.*got 2024-04-08"):
        fold_origins(timeline, BacktestConfig(fold_starts=("2024-04-08",)), 8, 5)
    assert fold_origins(timeline, BacktestConfig(fold_starts=("2024-04-05",)), 8, 5) == [94]


def test_the_as_published_policy_is_refused(tmp_path: Path) -> None:
    config = ramp_config(ramp_file(tmp_path / "ramps.csv"), ["linear"])
    data = config.data.model_copy(update={"policy": "as_published", "series_column": None})
    with pytest.raises(ConfigError, match=r"data\.policy': expected validate"):
        run_backtest(config.model_copy(update={"data": data}))


def test_a_fold_too_short_to_train_names_the_backtest_settings(tmp_path: Path) -> None:
    config = ramp_config(
        ramp_file(tmp_path / "ramps.csv"),
        ["linear"],
        folds=1,
        window="sliding",
        training_rows=14,
    )
    with pytest.raises(DataValidationError, match=r"backtest fold 0 .*backtest.training_rows 14"):
        run_backtest(config)


def test_two_targets_pooled_scaling_and_the_repeat_baseline_left_out(tmp_path: Path) -> None:
    path = ramp_file(tmp_path / "ramps.csv")
    frame = pd.read_csv(path)
    frame["double"] = 2 * frame["value"]
    frame.to_csv(path, index=False)
    config = ramp_config(path, ["linear"], folds=2)
    data = config.data.model_copy(
        update={
            "targets": ("value", "double"),
            "per_series_scaling": False,
            "input_width": 3,  # shorter than the horizon: `repeat` cannot be built
        }
    )
    with pytest.warns(UserWarning, match="baseline 'repeat' left out"):
        result = run_backtest(config.model_copy(update={"data": data}))
    assert sorted(result.models) == ["last", "linear"]
    steps = np.arange(1, HORIZON + 1)
    value_mae = (steps.mean() * 1 + steps.mean() * 2) / 2
    for score in result.models["last"].scores:
        # `double` misses twice as much as `value`; the metric averages both targets.
        assert score.metrics["mae_original"] == pytest.approx(1.5 * value_mae, rel=1e-5)
    forecasts = result.models["last"].forecast_frame()
    assert set(forecasts["target"]) == {"value", "double"}
    assert str(forecasts["timestamp"].dtype) == "datetime64[ns, UTC]"


def test_a_series_the_first_fit_never_saw_is_not_scored_without_a_refit(tmp_path: Path) -> None:
    path = ramp_file(tmp_path / "ramps.csv")
    frame = pd.read_csv(path)
    late = frame[frame["name"] == "a"].tail(12).assign(name="c")
    pd.concat([frame, late]).to_csv(path, index=False)
    config = ramp_config(path, ["linear"], folds=3, step=1, refit=0)
    config = config.model_copy(update={"data": config.data.model_copy(update={"input_width": 4})})
    result = run_backtest(config)
    # `c` starts at row 108: up to the first origin (113) it has 6 rows, fewer than one window
    # (4 + 4), so the first fit drops it and its scaler never knows it; without a refit `c` is
    # never scored, and the notes count it.
    assert [score.series for score in result.models["linear"].scores] == [2, 2, 2]
    assert any(
        "1 series not scored" in note and note.endswith(": c (unknown)") for note in result.notes
    )
    # Refitted at every fold, `c` has a window's rows by the last origin (115) and is scored.
    every_fold = config.model_copy(
        update={"backtest": config.backtest.model_copy(update={"refit": 1})}
    )
    scores = run_backtest(every_fold).models["linear"].scores
    assert [score.series for score in scores] == [2, 2, 3]


def test_fold_forecasts_are_what_the_logged_model_predicts_from_the_same_history(
    tmp_path: Path, seen: dict[str, list]
) -> None:
    """The backtest forecasts through the pyfunc that ships: its last fold equals
    `mlflow.pyfunc.load_model(...).predict` of each fit, saved as `train` logs it."""
    import mlflow.pyfunc

    from pipelines.runtime.history import to_model_input
    from pipelines.serving.pyfunc import save_forecast_model

    config = ramp_config(ramp_file(tmp_path / "ramps.csv"), ["linear", "gru"], folds=2)
    result = run_backtest(config)
    origin, history = seen["histories"][-1]
    assert origin == result.folds[-1].origin
    for name in ("linear", "gru", "last"):
        forecaster = result.models[name].forecaster
        assert forecaster is not None
        path = tmp_path / name
        save_forecast_model(
            path,
            forecaster.keras_model,
            forecaster.scaler,
            forecaster.spec,
            frequency="D",
            model_name=name,
            input_example=history,
        )
        loaded = mlflow.pyfunc.load_model(str(path))
        predicted = loaded.predict(to_model_input(history, forecaster.spec.features))
        expected = predicted.melt(
            id_vars=[SERIES_COLUMN, "timestamp", "step"],
            var_name="target",
            value_name="forecast",
        ).sort_values([SERIES_COLUMN, "step", "target"], ignore_index=True)
        frame = result.models[name].forecast_frame()
        last_fold = frame[frame["fold"] == result.folds[-1].index]
        actual = last_fold[[SERIES_COLUMN, "timestamp", "step", "target", "forecast"]]
        actual = actual.sort_values([SERIES_COLUMN, "step", "target"], ignore_index=True)
        assert len(actual) == 2 * HORIZON
        pd.testing.assert_frame_equal(actual, expected, check_dtype=False, check_exact=True)
        metadata = loaded.unwrap_python_model().metadata
        assert metadata == forecaster.metadata
