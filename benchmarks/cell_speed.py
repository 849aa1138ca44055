"""Training and prediction speed of `ClockworkRNN` and `DepthGatedLSTM` against Keras' LSTM.

The shapes and the timing of `peephole.py` (batch 256, 19 features, 32 units, a Dense(1) head;
24 and 144 steps; the contenders alternate, one training epoch and one prediction pass each per
repeat, only the batches timed, the median of the repeats reported), for:

- `clockwork`: `ClockworkRNN(32)` with periods 1, 2, 4 and 8 (the zoo's default);
- `depth_gated`: `DepthGatedLSTM(32, layers=2)`, the zoo's default depth;
- `lstm`: `keras.layers.LSTM(32)`, the reference of every ratio;
- `lstm_2_layers`: two stacked `keras.layers.LSTM(32)`, the same depth as `depth_gated`;
- `simple_rnn`: `keras.layers.SimpleRNN(32)`, the cell the Clockwork RNN extends.

Every layer runs in its default configuration (Keras' symbolic time loop). The last line is
JSON: `{name}_train_ratio_vs_lstm` and `{name}_predict_ratio_vs_lstm` (samples per second
against `lstm`'s), the rates as `{name}_train_samples_per_s` and `{name}_predict_samples_per_s`;
keys starting with `long_` are the 144-step case.

Usage:
    python benchmarks/cell_speed.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCHMARKS.parent))
sys.path.insert(0, str(BENCHMARKS))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import peephole

from models.clockwork import ClockworkRNN
from models.depth_gated import DepthGatedLSTM

UNITS, FEATURES, BATCH_SIZE = peephole.UNITS, peephole.FEATURES, peephole.BATCH_SIZE
REFERENCE = "lstm"
CONTENDERS: dict[str, Callable[[], list[keras.layers.Layer]]] = {
    "clockwork": lambda: [ClockworkRNN(UNITS, periods=(1, 2, 4, 8))],
    "depth_gated": lambda: [DepthGatedLSTM(UNITS, layers=2)],
    "lstm": lambda: [keras.layers.LSTM(UNITS)],
    "lstm_2_layers": lambda: [
        keras.layers.LSTM(UNITS, return_sequences=True),
        keras.layers.LSTM(UNITS),
    ],
    "simple_rnn": lambda: [keras.layers.SimpleRNN(UNITS)],
}
"""Name -> the recurrent layers of its model (a Dense(1) head follows)."""


def build_model(name: str, steps: int) -> keras.Model:
    """`CONTENDERS[name]`'s layers and a Dense(1) head, compiled with Adam and MSE."""
    keras.utils.set_random_seed(0)
    layers = [keras.Input((steps, FEATURES)), *CONTENDERS[name](), keras.layers.Dense(1)]
    model = keras.Sequential(layers, name=name)
    model.compile(optimizer="adam", loss="mse")
    return model


def measure_case(steps: int, batches: int, repeats: int) -> dict[str, dict[str, float]]:
    """Median training and prediction samples/s of every contender at one length."""
    models = {name: build_model(name, steps) for name in CONTENDERS}
    return peephole.measure_rates(models, tuple(CONTENDERS), steps, batches, repeats)


def ratios(case: dict[str, dict[str, float]], prefix: str = "") -> dict[str, float]:
    """Every contender's rates, and their ratios to `REFERENCE`'s."""
    figures: dict[str, float] = {}
    for name in CONTENDERS:
        for kind, rates in (("train", case["train"]), ("predict", case["predict"])):
            figures[f"{prefix}{name}_{kind}_samples_per_s"] = round(rates[name])
            figures[f"{prefix}{name}_{kind}_ratio_vs_lstm"] = round(
                rates[name] / rates[REFERENCE], 3
            )
    return figures


def print_table(steps: int, case: dict[str, dict[str, float]], repeats: int) -> None:
    train, predict = case["train"], case["predict"]
    print(
        f"{steps} steps: batch {BATCH_SIZE}, {FEATURES} features, {UNITS} units, "
        f"{case['samples']:,} samples per pass, median of {repeats}"
    )
    print(f"  {'model':<16} {'train/s':>10} {'x LSTM':>7} {'predict/s':>11} {'x LSTM':>7}")
    for name in CONTENDERS:
        print(
            f"  {name:<16} {train[name]:>10,.0f} {train[name] / train[REFERENCE]:>7.2f} "
            f"{predict[name]:>11,.0f} {predict[name] / predict[REFERENCE]:>7.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer batches and repeats")
    arguments = parser.parse_args()
    repeats, short_batches, long_batches = peephole.pass_sizes(arguments.quick)
    short = measure_case(peephole.SHORT_STEPS, short_batches, repeats)
    long = measure_case(peephole.LONG_STEPS, long_batches, repeats)
    print(peephole.machine_line())
    print_table(peephole.SHORT_STEPS, short, repeats)
    print_table(peephole.LONG_STEPS, long, repeats)
    summary = {**ratios(short), **ratios(long, prefix="long_"), "quick": arguments.quick}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
