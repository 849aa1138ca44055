"""Chronological split and scalers: fitted on training rows only, saved, restored, inverted."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from pipelines.data.split import TEST, TRAIN, VALIDATION, SplitSpec, assign_parts
from pipelines.runtime.contract import DataValidationError
from pipelines.runtime.scaling import FittedScaler, fit_scaler


def two_series(rows_a: int = 50, rows_b: int = 30) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    frames = []
    for name, rows, level in (("A", rows_a, 100.0), ("B", rows_b, 5.0)):
        frames.append(
            pd.DataFrame(
                {
                    "series_id": name,
                    "segment": 0 if name == "A" else 1,
                    "timestamp": pd.date_range("2024-01-01", periods=rows, freq="D", tz="UTC"),
                    "price": level + rng.normal(size=rows).cumsum(),
                    "volume": rng.uniform(1e3, 1e6, size=rows),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def test_fraction_split_per_series_uses_the_ltsf_rounding():
    frame = two_series(50, 31)
    parts = assign_parts(frame, SplitSpec(fractions=(0.7, 0.1, 0.2)))
    a, b = parts[:50], parts[50:]
    assert (np.bincount(a, minlength=3) == [35, 5, 10]).all()
    # 31 rows: int(21.7) = 21 train, int(6.2) = 6 test, the rest (4) validation.
    assert (np.bincount(b, minlength=3) == [21, 4, 6]).all()
    assert (np.diff(a) >= 0).all() and (np.diff(b) >= 0).all()


def test_date_split_cuts_every_series_at_the_same_time():
    frame = two_series()
    split = SplitSpec.parse("2024-01-20,2024-01-25")
    parts = assign_parts(frame, split)
    times = frame["timestamp"]
    assert (parts[(times < "2024-01-20").to_numpy()] == TRAIN).all()
    assert (
        parts[((times >= "2024-01-20") & (times < "2024-01-25")).to_numpy()] == VALIDATION
    ).all()
    assert (parts[(times >= "2024-01-25").to_numpy()] == TEST).all()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0.7,0.2,0.2", "sum to 1"),
        ("0,0.5,0.5", "train fraction > 0"),
        ("0.7,0.3", "validation_start,test_start"),
        ("2024-02-01,2024-01-01", "is after test start"),
        ("tomorrow,later", "parameter split"),
    ],
)
def test_bad_split_names_the_parameter(text, message):
    with pytest.raises(DataValidationError, match=message):
        SplitSpec.parse(text)


def test_scaler_is_fitted_on_training_rows_only():
    frame = two_series()
    parts = assign_parts(frame, SplitSpec())
    scaler = fit_scaler(frame, parts, ["price", "volume"])
    train_a = frame.loc[(frame["series_id"] == "A").to_numpy() & (parts == TRAIN), "price"]
    np.testing.assert_allclose(scaler.scalers["A"].mean_[0], train_a.mean())
    # Changing every validation and test value must not change the fitted scaler.
    altered = frame.copy()
    altered.loc[parts != TRAIN, ["price", "volume"]] = 1e9
    altered_scaler = fit_scaler(altered, parts, ["price", "volume"])
    np.testing.assert_array_equal(altered_scaler.scalers["A"].mean_, scaler.scalers["A"].mean_)
    np.testing.assert_array_equal(altered_scaler.scalers["B"].scale_, scaler.scalers["B"].scale_)


@pytest.mark.parametrize(
    ("kind", "reference"), [("standard", StandardScaler), ("minmax", MinMaxScaler)]
)
@pytest.mark.parametrize("per_series", [True, False])
def test_transform_equals_sklearn_and_round_trips_through_json(
    tmp_path, kind, reference, per_series
):
    frame = two_series()
    parts = assign_parts(frame, SplitSpec())
    scaler = fit_scaler(frame, parts, ["price", "volume"], kind=kind, per_series=per_series)
    scaled = scaler.transform(frame)
    groups = frame["series_id"] if per_series else pd.Series("all", index=frame.index)
    for _, rows in frame.groupby(groups):
        train_rows = rows.loc[parts[rows.index] == TRAIN, ["price", "volume"]]
        expected = (
            reference().fit(train_rows.to_numpy()).transform(rows[["price", "volume"]].to_numpy())
        )
        np.testing.assert_allclose(scaled[rows.index], expected, rtol=1e-5, atol=1e-5)
    scaler.save(tmp_path / "scaler.json")
    restored = FittedScaler.load(tmp_path / "scaler.json")
    np.testing.assert_array_equal(restored.transform(frame), scaled)
    # Inverse of the target column, batched as forecasts (batch, horizon, targets).
    forecasts = scaled[:, [0]].reshape(-1, 1, 1)
    original = restored.inverse_transform(forecasts, frame["series_id"].to_numpy(), ["price"])
    # float32 scaled values carry about 7 significant digits.
    np.testing.assert_allclose(original[:, 0, 0], frame["price"], rtol=1e-4)


def test_series_without_training_rows_is_an_error():
    frame = two_series()
    parts = np.where(frame["series_id"] == "B", VALIDATION, TRAIN).astype("int8")
    with pytest.raises(DataValidationError, match=r"series \['B'\] have no training rows"):
        fit_scaler(frame, parts, ["price"])
