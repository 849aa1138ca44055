"""The single-shot recurrent models `lstm`, `gru`, `peephole`, `clockwork` (`ClockworkRNN`) and
`depth-gated` (`DepthGatedLSTM`): how they read a window and how they decode the horizon.

Reading (after SegRNN, Lin et al. 2023):
- all channels in one state (default), or each target channel alone through shared weights
  (`channel_independent`): the channels are folded into the batch, so the model has the same
  size for 1 channel as for 21;
- step by step (default), or in segments of `segment_length` steps, each embedded by a Dense
  layer into one recurrent step (720 steps read as 15 segments of 48).

Decoding:
- `dense`: the last hidden state goes through one Dense layer to the whole horizon;
- `parallel`: the horizon is cut into segments of `segment_length` steps and every segment is
  decoded at once by one more step of the same cells, started from the encoder's final states
  and fed a learned position embedding (and, with `channel_embedding`, a learned embedding of the
  channel); a Dense layer turns each decoded state into its segment's steps
  (`models.decoding`);
- with `linear_skip`, a Dense layer from the whole (normalised) window to the horizon is added
  to the decoder's forecast, so the recurrent part learns what a linear forecast misses (as
  xLSTM-Mixer, NeurIPS 2025, refines a linear forecast); with channels read alone it is one
  map shared by every channel.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import keras
from keras import layers as keras_layers

from models.autoregressive import recurrent_layer
from models.channels import FoldIntoBatch, TargetChannels, UnfoldFromBatch
from models.decoding import RepeatRows, SegmentQueries
from models.normalization import normalized_model
from models.shape import ModelShape


def build_recurrent(
    name: str, cell: str, shape: ModelShape, cell_options: Mapping[str, Any], **hparams: Any
) -> keras.Model:
    """Builds a single-shot recurrent model from checked hyper-parameters (see the module).

    Args:
        name: the model's name (its layers are named after it).
        cell: a registered cell (`models.registry.CELLS`).
        shape: the window's and the forecast's shapes.
        cell_options: the cell's own arguments; a cell that takes `layers` itself joins the
            whole stack into one recurrent layer (the depth-gated LSTM's depth gates).
        **hparams: the rest of the model's hyper-parameters.
    """
    segment_length = hparams["segment_length"]
    independent = hparams["channel_independent"]
    layer_count = 1 if "layers" in cell_options else hparams["layers"]

    def forecast(features: Any) -> Any:
        rows = _channel_rows(features, shape) if independent else features
        hidden = _segments(rows, shape, segment_length, independent)
        if segment_length is not None:
            hidden = keras_layers.Dense(
                hparams["units"], activation="relu", name="segment_embedding"
            )(hidden)
        cells = [
            recurrent_layer(
                cell,
                hparams["units"],
                hparams["dropout"],
                hparams["recurrent_dropout"],
                cell_options,
                return_sequences=index < layer_count - 1,
                return_state=hparams["decoder"] == "parallel",
                name=f"{name}_{index}",
            )
            for index in range(layer_count)
        ]
        # Per row (a window, or one channel of a window): the horizon's steps x the values per
        # step.
        per_step = (1 if independent else shape.n_targets) * shape.n_quantiles
        if hparams["decoder"] == "dense":
            outputs = _dense_decoder(hidden, cells, shape, per_step, hparams["head_dropout"])
        else:
            outputs = _parallel_decoder(hidden, cells, shape, per_step, hparams)
        if hparams["linear_skip"]:
            window = keras_layers.Flatten(name="skip_window")(rows)
            linear = keras_layers.Dense(shape.horizon * per_step, name="linear_skip")(window)
            outputs = keras_layers.Add(name="with_linear_skip")([outputs, linear])
        if independent:
            outputs = UnfoldFromBatch(shape.n_targets, name="channels_from_batch")(outputs)
            if shape.quantiles:  # (B, T, H * K) -> (B, H, K, T)
                outputs = keras_layers.Reshape(
                    (shape.n_targets, shape.horizon, shape.n_quantiles), name="channel_quantiles"
                )(outputs)
                return keras_layers.Permute((2, 3, 1), name="forecast")(outputs)
            return keras_layers.Permute((2, 1), name="forecast")(outputs)
        return keras_layers.Reshape(shape.output_shape, name="forecast")(outputs)

    return normalized_model(
        name, shape, forecast, hparams["normalization"], affine=hparams["affine"]
    )


def segment_count(shape: ModelShape, segment_length: int | None) -> int:
    """How many recurrent steps read the window: one per segment of `segment_length` steps (a
    divisor of the input width: `models.registry.resolve_for_window`)."""
    return shape.input_width // (segment_length or 1)


def _channel_rows(features: Any, shape: ModelShape) -> Any:
    """(B, L, F) -> (B * T, L): each target channel's window as a row of its own."""
    channels = TargetChannels(shape.target_indices, name="target_channels")(features)
    channels = keras_layers.Permute((2, 1), name="channels_first")(channels)
    return FoldIntoBatch(name="channels_into_batch")(channels)


def _segments(rows: Any, shape: ModelShape, segment_length: int | None, independent: bool) -> Any:
    """The sequence the cells read: windows (B, L, F) -> (B, steps, F * length), or channel
    rows (B * T, L) -> (B * T, steps, length)."""
    segments = segment_count(shape, segment_length)
    width = shape.input_width // segments
    if not independent:
        if segment_length is None:
            return rows
        return keras_layers.Reshape((segments, width * shape.n_features), name="segments")(rows)
    return keras_layers.Reshape((segments, width), name="segments")(rows)


def _dense_decoder(
    hidden: Any, cells: list[Any], shape: ModelShape, per_step: int, head_dropout: float
) -> Any:
    for cell in cells:
        hidden = cell(hidden)
    if head_dropout:
        hidden = keras_layers.Dropout(head_dropout, name="head_dropout")(hidden)
    return keras_layers.Dense(shape.horizon * per_step, name="head")(hidden)


def _parallel_decoder(
    hidden: Any, cells: list[Any], shape: ModelShape, per_step: int, hparams: Mapping[str, Any]
) -> Any:
    """Encodes, then decodes every horizon segment from the final states in one step each:
    rows (N, ...) -> (N, horizon * per_step)."""
    states = []
    for cell in cells:
        hidden, *cell_states = cell(hidden)
        states.append(cell_states)
    segment_length, units = hparams["segment_length"], hparams["units"]
    segments = math.ceil(shape.horizon / segment_length)
    channel_dim = units // 2 if hparams["channel_embedding"] else 0
    queries = SegmentQueries(
        segments,
        position_dim=units - channel_dim,
        channels=shape.n_targets if hparams["channel_independent"] else 1,
        channel_dim=channel_dim,
        name="segment_queries",
    )(hidden)
    repeat = RepeatRows(segments, name="states_per_segment")
    decoded = queries
    for cell, cell_states in zip(cells, states, strict=True):
        decoded, *_ = cell(decoded, initial_state=[repeat(state) for state in cell_states])
    if hparams["head_dropout"]:
        decoded = keras_layers.Dropout(hparams["head_dropout"], name="head_dropout")(decoded)
    steps = keras_layers.Dense(segment_length * per_step, name="head")(decoded)
    steps = UnfoldFromBatch(segments, name="horizon_segments")(steps)
    steps = keras_layers.Reshape((segments * segment_length, per_step), name="segment_steps")(steps)
    if segments * segment_length > shape.horizon:
        steps = keras_layers.Cropping1D(
            (0, segments * segment_length - shape.horizon), name="horizon"
        )(steps)
    return keras_layers.Flatten(name="horizon_steps")(steps)
