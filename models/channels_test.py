"""`TargetChannels`, `FoldIntoBatch` and `UnfoldFromBatch` against NumPy, and a `.keras` round
trip."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest

from models.channels import FoldIntoBatch, TargetChannels, UnfoldFromBatch


def test_keeps_the_target_channels_in_their_order() -> None:
    window = np.arange(24.0).reshape(2, 3, 4)
    result = TargetChannels((3, 1))(window)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(result), window[..., [3, 1]])


def test_round_trips_through_a_keras_file(tmp_path: Path) -> None:
    inputs = keras.Input(shape=(3, 4))
    model = keras.Model(inputs, TargetChannels((2,), name="targets")(inputs))
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    assert loaded.get_layer("targets").target_indices == (2,)


def test_rejects_negative_indices() -> None:
    with pytest.raises(ValueError, match="expected indices >= 0"):
        TargetChannels((-1,))


def test_fold_and_unfold_match_numpy_reshapes_and_invert_each_other() -> None:
    window = np.arange(2.0 * 3 * 4, dtype="float32").reshape(2, 3, 4)
    folded = keras.ops.convert_to_numpy(FoldIntoBatch()(window))
    np.testing.assert_array_equal(folded, window.reshape(6, 4))  # row b * 3 + g
    unfolded = keras.ops.convert_to_numpy(UnfoldFromBatch(3)(folded))
    np.testing.assert_array_equal(unfolded, window)
    with pytest.raises(ValueError, match="parameter groups: expected an integer >= 1"):
        UnfoldFromBatch(0)
