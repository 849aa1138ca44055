"""Layers of parallel multi-step decoding (after SegRNN's parallel multi-step forecasting).

The horizon is cut into `segments` segments. Every segment is decoded at once, independently
of the others: one recurrent step from the encoder's final state, whose input is a learned
position embedding of the segment (beside, for channel-independent models, a learned embedding
of the channel). `SegmentQueries` builds those inputs and `RepeatRows` gives each of them its
copy of the final state; both put the segments into the batch, row `n * segments + m` being
segment `m` of row `n`, so that the decoder is a plain recurrent layer run for one step.
Registered as serializable (package "forecaster").
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from models.shape import require_positive


@keras.saving.register_keras_serializable(package="forecaster")
class SegmentQueries(keras.layers.Layer):
    """`(rows, ...)` -> `(rows * segments, 1, position_dim + channel_dim)` decoder inputs.

    Only the number of rows is read from the input (the encoder's final state). Each output is
    one step: the segment's position embedding, then, when `channel_dim > 0`, the embedding of
    the row's channel. Rows are channels folded into the batch (`FoldIntoBatch`): row `r` is
    channel `r % channels`.

    Args:
        segments: horizon segments decoded per row.
        position_dim: size of a position embedding.
        channels: channels folded into the batch (1 when they are not).
        channel_dim: size of a channel embedding; 0 for none.

    Example:
        >>> queries = SegmentQueries(segments=3, position_dim=4, channels=2, channel_dim=2)
        >>> keras.ops.convert_to_numpy(queries(np.zeros((10, 8)))).shape
        (30, 1, 6)
    """

    def __init__(
        self,
        segments: int,
        position_dim: int,
        channels: int = 1,
        channel_dim: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.segments = require_positive("segments", segments)
        self.position_dim = require_positive("position_dim", position_dim)
        self.channels = require_positive("channels", channels)
        if isinstance(channel_dim, bool) or not isinstance(channel_dim, int) or channel_dim < 0:
            raise ValueError(
                f"parameter channel_dim: expected an integer >= 0, got {channel_dim!r}"
            )
        self.channel_dim = channel_dim

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        # Standard normal, as the segment embeddings the same cell reads in the encoder are of
        # order one: the queries are the decoder's only input.
        initializer = keras.initializers.RandomNormal(stddev=1.0)
        self.position_embedding = self.add_weight(
            shape=(self.segments, self.position_dim),
            initializer=initializer,
            name="position_embedding",
        )
        self.channel_embedding = (
            self.add_weight(
                shape=(self.channels, self.channel_dim),
                initializer=initializer,
                name="channel_embedding",
            )
            if self.channel_dim
            else None
        )

    def call(self, states: Any) -> Any:
        rows = ops.shape(states)[0]
        queries = ops.tile(self.position_embedding[None], (rows, 1, 1))
        if self.channel_embedding is not None:
            channel = ops.tile(self.channel_embedding, (rows // self.channels, 1))
            channel = ops.repeat(channel[:, None, :], self.segments, axis=1)
            queries = ops.concatenate([queries, channel], axis=-1)
        return ops.reshape(queries, (-1, 1, self.position_dim + self.channel_dim))

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return (None, 1, self.position_dim + self.channel_dim)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "segments": self.segments,
            "position_dim": self.position_dim,
            "channels": self.channels,
            "channel_dim": self.channel_dim,
        }


@keras.saving.register_keras_serializable(package="forecaster")
class RepeatRows(keras.layers.Layer):
    """`(rows, ...)` -> `(rows * times, ...)`, each row repeated `times` times in place.

    Example:
        >>> keras.ops.convert_to_numpy(RepeatRows(2)(np.array([[1.0], [2.0]]))).ravel().tolist()
        [1.0, 1.0, 2.0, 2.0]
    """

    def __init__(self, times: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.times = require_positive("times", times)

    def call(self, inputs: Any) -> Any:
        return ops.repeat(inputs, self.times, axis=0)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return (None, *input_shape[1:])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "times": self.times}
