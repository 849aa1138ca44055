"""Windowing speed and training feed, measured side by side in one process.

1. Windows per second, iterating every window once in batches of 256 on the LTSF Weather file
   (input width 144, horizon 96, all 21 channels in and out):
   - ours: `WindowedData.dataset` (start rows gathered per batch inside tf.data);
   - `keras.utils.timeseries_dataset_from_array` on the same array, split into inputs/targets;
   - for reference, our NumPy gather over `sliding_window_view`, batch by batch.
2. Training throughput of a small LSTM (32 units) fed by our pipeline vs fed from pre-built
   in-memory arrays (`model.fit(x, y)`), same windows, same batch size, shuffled both ways.

Runs alternate between the contenders and the median of the repeats is reported. The last line
is JSON with `speedup_vs_keras` (ours / keras windows per second) and `train_feed_ratio`
(samples per second with our pipeline / with arrays).

Usage:
    python benchmarks/windowing.py [--quick] [--source PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import tensorflow as tf

from pipelines.data.prepare import run
from pipelines.data.settings import DataConfig
from pipelines.runtime.windows import WindowedData, WindowSpec, gather_windows

INPUT_WIDTH, HORIZON, BATCH_SIZE = 144, 96, 256


def load_weather(source: str | None) -> np.ndarray:
    """The cleaned Weather file, scaled on its training part: (rows, 21) float32."""
    result = run(
        DataConfig(dataset="weather-ltsf", source=source, input_width=INPUT_WIDTH, horizon=HORIZON)
    )
    return result.scaler.transform(result.frame, result.spec.features)


def windowed(values: np.ndarray, windows: int) -> WindowedData:
    """Every window of the first rows of `values`, all in the training part, one segment."""
    rows = min(len(values), windows + INPUT_WIDTH + HORIZON - 1)
    columns = tuple(f"c{i}" for i in range(values.shape[1]))
    spec = WindowSpec(INPUT_WIDTH, HORIZON, features=columns, targets=columns)
    zeros = np.zeros(rows, dtype="int64")
    return WindowedData(values[:rows], values[:rows], zeros, zeros.astype("int8"), spec)


def keras_dataset(values: np.ndarray) -> tf.data.Dataset:
    dataset = keras.utils.timeseries_dataset_from_array(
        values,
        targets=None,
        sequence_length=INPUT_WIDTH + HORIZON,
        batch_size=BATCH_SIZE,
        shuffle=False,
    )
    return dataset.map(lambda window: (window[:, :INPUT_WIDTH], window[:, INPUT_WIDTH:]))


def numpy_batches(data: WindowedData):
    """Our NumPy gather, one batch at a time (memory O(batch), as in training)."""
    starts = data.starts["train"]
    for first in range(0, len(starts), BATCH_SIZE):
        yield gather_windows(
            data.inputs, data.targets, starts[first : first + BATCH_SIZE], data.spec
        )


def windows_per_second(make_iterable, expected: int, min_seconds: float = 2.0) -> float:
    """Windows per second over whole passes, repeated until at least `min_seconds` have passed.

    Short timings on these VMs were seen to snap to multiples of ~0.33 s, so a fast pipeline is
    timed over several passes rather than one of a few hundredths of a second.
    """
    start = time.perf_counter()
    seen = 0
    while True:
        passed = 0
        for inputs, targets in make_iterable():
            passed += int(inputs.shape[0])
            assert targets.shape[1] == HORIZON
        assert passed == expected, (passed, expected)
        seen += passed
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return seen / elapsed


def small_lstm(features: int, targets: int, seed: int) -> keras.Model:
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input((INPUT_WIDTH, features)),
            keras.layers.LSTM(32),
            keras.layers.Dense(HORIZON * targets),
            keras.layers.Reshape((HORIZON, targets)),
        ]
    )
    model.compile(optimizer="adam", loss="mse")
    return model


def training_samples_per_second(fit, samples: int) -> float:
    start = time.perf_counter()
    fit()
    return samples / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, one repeat (seconds)")
    parser.add_argument("--source", help="path of weather.csv.gz (default: the catalog's)")
    arguments = parser.parse_args()
    repeats = 1 if arguments.quick else 5
    min_seconds = 0.0 if arguments.quick else 2.0
    window_count = 3_000 if arguments.quick else 50_000
    train_windows = 1_024 if arguments.quick else 49_152

    values = load_weather(arguments.source)
    data = windowed(values, window_count)
    expected = data.counts()["train"]
    keras_values = data.inputs  # the same rows, so the same number of windows

    rates: dict[str, list[float]] = {"ours": [], "keras": [], "numpy": []}
    for _ in range(repeats):
        rates["ours"].append(
            windows_per_second(
                lambda: data.dataset("train", batch_size=BATCH_SIZE), expected, min_seconds
            )
        )
        rates["keras"].append(
            windows_per_second(lambda: keras_dataset(keras_values), expected, min_seconds)
        )
        rates["numpy"].append(
            windows_per_second(lambda: numpy_batches(data), expected, min_seconds)
        )
    medians = {name: statistics.median(values) for name, values in rates.items()}

    train_data = windowed(values, train_windows)
    x, y = train_data.arrays("train")
    samples = len(x)
    ours_model = small_lstm(x.shape[-1], y.shape[-1], seed=0)
    arrays_model = small_lstm(x.shape[-1], y.shape[-1], seed=0)
    ours_dataset = train_data.dataset("train", batch_size=BATCH_SIZE, shuffle=True, seed=0)
    # One warm-up epoch each traces and compiles the training step outside the timing.
    ours_model.fit(ours_dataset, epochs=1, verbose=0)
    arrays_model.fit(x, y, batch_size=BATCH_SIZE, shuffle=True, epochs=1, verbose=0)
    training: dict[str, list[float]] = {"ours": [], "arrays": []}
    for _ in range(repeats if not arguments.quick else 1):
        training["ours"].append(
            training_samples_per_second(
                lambda: ours_model.fit(ours_dataset, epochs=1, verbose=0), samples
            )
        )
        training["arrays"].append(
            training_samples_per_second(
                lambda: arrays_model.fit(
                    x, y, batch_size=BATCH_SIZE, shuffle=True, epochs=1, verbose=0
                ),
                samples,
            )
        )
    train_medians = {name: statistics.median(values) for name, values in training.items()}

    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
        f"tensorflow {tf.__version__}, keras {keras.__version__}"
    )
    print(
        f"windows: input {INPUT_WIDTH}, horizon {HORIZON}, {values.shape[1]} channels, "
        f"{expected:,} windows, batch {BATCH_SIZE}, median of {repeats}"
    )
    for name, rate in medians.items():
        print(f"  {name:<6} {rate:>12,.0f} windows/s")
    print(f"training: LSTM(32), {samples:,} windows per epoch, median of {len(training['ours'])}")
    for name, rate in train_medians.items():
        print(f"  {name:<6} {rate:>12,.0f} samples/s")
    summary = {
        "speedup_vs_keras": round(medians["ours"] / medians["keras"], 2),
        "numpy_speedup_vs_keras": round(medians["numpy"] / medians["keras"], 2),
        "train_feed_ratio": round(train_medians["ours"] / train_medians["arrays"], 3),
        "ours_windows_per_s": round(medians["ours"]),
        "keras_windows_per_s": round(medians["keras"]),
        "numpy_windows_per_s": round(medians["numpy"]),
        "ours_train_samples_per_s": round(train_medians["ours"]),
        "arrays_train_samples_per_s": round(train_medians["arrays"]),
        "windows": expected,
        "quick": arguments.quick,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
