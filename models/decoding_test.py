"""`SegmentQueries` and `RepeatRows` against NumPy layouts, their configs and their errors."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from models.decoding import RepeatRows, SegmentQueries


def test_queries_put_segments_in_the_batch_with_each_rows_channel() -> None:
    layer = SegmentQueries(segments=3, position_dim=2, channels=2, channel_dim=1)
    queries = keras.ops.convert_to_numpy(layer(np.zeros((4, 5), "float32")))
    position = keras.ops.convert_to_numpy(layer.position_embedding)
    channel = keras.ops.convert_to_numpy(layer.channel_embedding)
    # Row r of the input is channel r % 2; output row r * 3 + m is its segment m.
    expected = np.stack(
        [np.concatenate([position[m], channel[r % 2]]) for r in range(4) for m in range(3)]
    )
    np.testing.assert_array_equal(queries, expected[:, None, :])


def test_queries_without_a_channel_embedding_are_positions_only() -> None:
    layer = SegmentQueries(segments=2, position_dim=3)
    queries = keras.ops.convert_to_numpy(layer(np.zeros((2, 1), "float32")))
    position = keras.ops.convert_to_numpy(layer.position_embedding)
    np.testing.assert_array_equal(queries[:, 0], np.concatenate([position, position]))
    assert layer.channel_embedding is None


def test_repeat_rows_matches_numpy_repeat() -> None:
    rows = np.arange(6.0, dtype="float32").reshape(3, 2)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(RepeatRows(4)(rows)), np.repeat(rows, 4, axis=0)
    )


def test_configs_rebuild_the_layers() -> None:
    queries = SegmentQueries(segments=3, position_dim=2, channels=5, channel_dim=4, name="q")
    again = SegmentQueries.from_config(queries.get_config())
    assert (again.segments, again.position_dim, again.channels, again.channel_dim) == (3, 2, 5, 4)
    assert RepeatRows.from_config(RepeatRows(7).get_config()).times == 7


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"segments": 0, "position_dim": 2}, "parameter segments: expected a positive integer"),
        ({"segments": 2, "position_dim": 2, "channel_dim": -1}, "parameter channel_dim"),
        ({"segments": 2, "position_dim": 2, "channels": 0}, "parameter channels"),
    ],
)
def test_bad_arguments_are_named(arguments: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SegmentQueries(**arguments)
