"""Training and prediction speed of `PeepholeLSTM` vs `keras.layers.LSTM` vs `keras.layers.GRU`.

Same random data and shapes for all (batch 256, 19 features, 32 units, a Dense(1) head): a
24-step case and a long 144-step case. Every layer runs in its default configuration: Keras'
LSTM and GRU with a symbolic time loop, `PeepholeLSTM` with its measured policy (unrolled up to
48 steps, a symbolic loop beyond). Each contender is built three times (three copies, each
traced on its own; two with `--quick`) and each copy is warmed up (traced) first; then all
copies alternate, one training epoch and one prediction pass each per repeat. A copy's figure
is the median of its 3 repeats and a contender's the median of its copies; the training of
every copy is printed too.
Copies, because separately traced copies of the same model were seen to train at two distinct
speeds in one process (benchmarks/README.md, session 14): with one copy per contender the
comparison was partly a draw. Prediction of the peephole model is measured twice: in Keras'
default mode and compiled with XLA (`jit_compile=True`).

Wall-clock time on the 2-core VMs this was written on was seen to snap to multiples of about
0.33 s, so each timed pass lasts about three seconds, and samples per second of process CPU
time are reported beside wall-clock ones (`cpu_*` keys). Each pass is timed from the start of
its first batch to the end of its last (`BatchClock`): about one `fit` call in six returned
2-2.5 s after its last batch, for every layer alike, which made the medians jump.

The last line is JSON. `train_ratio_vs_lstm` is peephole / LSTM training samples per second;
`predict_ratio_vs_lstm` is the BEST peephole prediction rate (default or XLA, whichever is
higher) / LSTM prediction in default mode; `predict_default_ratio_vs_lstm` and
`predict_jit_ratio_vs_lstm` give both. Keys starting with `long_` are the 144-step case.

A second, lower-noise measure of training follows the tables: the training step alone
(forward, gradient and Adam update of the same models) as one `tf.function` traced with an
unknown batch size, as `fit` traces it, on one constant batch, with no data pipeline, callbacks
or metrics. Three copies of PeepholeLSTM and of keras LSTM alternate in rounds of several
steps; a round's ratio is the median copy's rate over the median copy's, and the median of the
per-round ratios is reported with its quartiles (`step_train_ratio_vs_lstm`). The per-round
pairs show the same comparison without `fit`. `train_ratios_by_instance` and
`lstm_train_ratios_by_instance` list each PeepholeLSTM and each keras LSTM copy's `fit` training
rate over keras LSTM's median copy.

Usage:
    python benchmarks/peephole.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import tensorflow as tf

from models.peephole import PeepholeLSTM

BATCH_SIZE, FEATURES, UNITS = 256, 19, 32
SHORT_STEPS, LONG_STEPS = 24, 144
# Passes per copy of each model in `main`, in both modes, to keep a full run with three copies
# under ten minutes (`pass_sizes`' own repeats serve `cell_speed.py`, which builds one copy).
REPEATS_PER_COPY = 3


def build_model(kind: str, steps: int, jit_compile: bool = False) -> keras.Model:
    """A recurrent layer of `UNITS` units and a Dense(1) head, compiled with Adam and MSE."""
    keras.utils.set_random_seed(0)
    recurrent = {
        "peephole": lambda: PeepholeLSTM(UNITS),
        "lstm": lambda: keras.layers.LSTM(UNITS),
        "gru": lambda: keras.layers.GRU(UNITS),
    }[kind]()
    model = keras.Sequential(
        [keras.Input((steps, FEATURES)), recurrent, keras.layers.Dense(1)], name=kind
    )
    model.compile(optimizer="adam", loss="mse", jit_compile=jit_compile)
    return model


class BatchClock(keras.callbacks.Callback):
    """Wall-clock and process CPU time from the start of the first batch to the end of the last.

    `fit` and `predict` also spend a fixed time outside the batches (building the iterator,
    and, in about one call in six on the 2-core VMs, a stall of 2-2.5 s after the last batch,
    seen with Keras' LSTM and ours alike); the batches are what grows with the work, so only
    they are timed.
    """

    def __init__(self) -> None:
        super().__init__()
        self.wall = self.cpu = 0.0

    def _begin(self, batch: int) -> None:
        if batch == 0:
            self._started = (time.perf_counter(), time.process_time())

    def _end(self) -> None:
        self.wall = time.perf_counter() - self._started[0]
        self.cpu = time.process_time() - self._started[1]

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        self._begin(batch)

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self._end()

    def on_predict_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        self._begin(batch)

    def on_predict_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self._end()


def samples_per_second(work: Callable[[BatchClock], object], samples: int) -> tuple[float, float]:
    """Samples per wall-clock second and per second of this process's CPU time, over the
    batches of one `fit` or `predict` call (the first batch's own time included)."""
    clock = BatchClock()
    work(clock)
    return samples / clock.wall, samples / clock.cpu


TRAINED = ("peephole", "lstm", "gru")
# Only prediction is timed under XLA: on these CPUs XLA made training slower.
CONTENDERS = (*TRAINED, "peephole_jit")


def instance_name(contender: str, instance: int) -> str:
    return f"{contender}#{instance}"


def measure_case(steps: int, batches: int, repeats: int, instances: int) -> dict[str, Any]:
    """Training and prediction samples/s per contender for one sequence length: the median over
    `instances` separately built and traced copies of each contender of their median over
    `repeats` passes (`by_instance` keeps every copy's figure)."""
    models = {
        instance_name(contender, instance): build_model(
            contender.removesuffix("_jit"), steps, jit_compile=contender.endswith("_jit")
        )
        for instance in range(instances)
        for contender in CONTENDERS
    }
    trained = tuple(instance_name(c, i) for i in range(instances) for c in TRAINED)
    return median_over_instances(measure_rates(models, trained, steps, batches, repeats))


def median_over_instances(rates: dict[str, Any]) -> dict[str, Any]:
    """`measure_rates`' figures per `contender#instance` folded into one figure per contender
    (the median over its instances); `by_instance` lists each contender's figures in instance
    order."""
    folded: dict[str, Any] = {"samples": rates["samples"], "by_instance": {}}
    for measure in ("train", "predict", "train_cpu", "predict_cpu"):
        by_contender: dict[str, list[float]] = {}
        for name, rate in rates[measure].items():
            by_contender.setdefault(name.split("#")[0], []).append(rate)
        folded[measure] = {name: statistics.median(r) for name, r in by_contender.items()}
        folded["by_instance"][measure] = by_contender
    return folded


def measure_rates(
    models: dict[str, keras.Model],
    trained: tuple[str, ...],
    steps: int,
    batches: int,
    repeats: int,
) -> dict[str, dict[str, float]]:
    """Median training (the `trained` models) and prediction (all) samples/s of compiled
    models taking `(steps, FEATURES)` inputs, timed in turns on the same random data."""
    rng = np.random.default_rng(0)
    samples = BATCH_SIZE * batches
    inputs = rng.normal(size=(samples, steps, FEATURES)).astype("float32")
    targets = rng.normal(size=(samples, 1)).astype("float32")

    # Batches come from one in-memory dataset, filled by the first (untimed) pass and shared by
    # every pass: given NumPy arrays, each `fit` call converted and sliced them anew, beside its
    # timed batches, and single passes of the same model scattered from 0.71x to 1.28x.
    training_batches = (
        tf.data.Dataset.from_tensor_slices((inputs, targets)).batch(BATCH_SIZE).cache()
    )
    prediction_batches = tf.data.Dataset.from_tensor_slices(inputs).batch(BATCH_SIZE).cache()

    def fit(model: keras.Model, clock: BatchClock | None = None) -> None:
        callbacks = [clock] if clock else []
        model.fit(training_batches, epochs=1, verbose=0, callbacks=callbacks)

    def predict(model: keras.Model, clock: BatchClock | None = None) -> None:
        model.predict(prediction_batches, verbose=0, callbacks=[clock] if clock else [])

    for name, model in models.items():  # warm-up: tracing and compilation stay untimed
        if name in trained:
            fit(model)
        predict(model)
    train: dict[str, list[tuple[float, float]]] = {name: [] for name in trained}
    prediction: dict[str, list[tuple[float, float]]] = {name: [] for name in models}
    for _ in range(repeats):
        for name, model in models.items():
            if name in trained:
                train[name].append(samples_per_second(lambda c, m=model: fit(m, c), samples))
            prediction[name].append(samples_per_second(lambda c, m=model: predict(m, c), samples))

    def medians(rates: dict[str, list[tuple[float, float]]], column: int) -> dict[str, float]:
        return {
            name: statistics.median(r[column] for r in values) for name, values in rates.items()
        }

    return {
        "train": medians(train, 0),
        "predict": medians(prediction, 0),
        "train_cpu": medians(train, 1),
        "predict_cpu": medians(prediction, 1),
        "samples": samples,
    }


def train_step_function(model: keras.Model, inputs: tf.Tensor, targets: tf.Tensor) -> Callable:
    """One training step of a compiled model (forward, MSE gradient, its optimizer's update)
    as a `tf.function` traced with an unknown batch size, as `fit` traces it, bound to one
    batch: calling it trains on that batch once and returns the loss."""
    variables = model.trainable_variables
    model.optimizer.build(variables)
    signature = [
        tf.TensorSpec((None, *inputs.shape[1:]), inputs.dtype),
        tf.TensorSpec((None, *targets.shape[1:]), targets.dtype),
    ]

    @tf.function(input_signature=signature)
    def step(batch_inputs: tf.Tensor, batch_targets: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(model(batch_inputs, training=True) - batch_targets))
        model.optimizer.apply(tape.gradient(loss, variables), variables)
        return loss

    return lambda: step(inputs, targets)


def paired_ratio(rates: list[float], baseline: list[float]) -> tuple[float, float, float]:
    """Median and quartiles of the per-round ratios `rates[i] / baseline[i]`."""
    per_round = [rate / base for rate, base in zip(rates, baseline, strict=True)]
    first, _, third = statistics.quantiles(per_round, n=4)
    return statistics.median(per_round), first, third


def measure_train_steps(
    steps: int, rounds: int, steps_per_round: int, instances: int
) -> tuple[float, ...]:
    """PeepholeLSTM's training-step rate over keras LSTM's (`paired_ratio` of the per-round
    medians over `instances` copies of each), timed in alternating rounds of `steps_per_round`
    steps on one random batch."""
    rng = np.random.default_rng(0)
    inputs = tf.constant(rng.normal(size=(BATCH_SIZE, steps, FEATURES)).astype("float32"))
    targets = tf.constant(rng.normal(size=(BATCH_SIZE, 1)).astype("float32"))
    functions = {
        (name, instance): train_step_function(build_model(name, steps), inputs, targets)
        for instance in range(instances)
        for name in ("peephole", "lstm")
    }
    for function in functions.values():  # tracing stays untimed
        function().numpy()
    rates: dict[str, list[float]] = {"peephole": [], "lstm": []}
    for _ in range(rounds):
        round_rates: dict[str, list[float]] = {name: [] for name in rates}
        for (name, _), function in functions.items():
            started = time.perf_counter()
            for _ in range(steps_per_round):
                loss = function()
            loss.numpy()
            elapsed = time.perf_counter() - started
            round_rates[name].append(steps_per_round * BATCH_SIZE / elapsed)
        for name, values in round_rates.items():
            rates[name].append(statistics.median(values))
    return paired_ratio(rates["peephole"], rates["lstm"])


def ratios(case: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    train, prediction = case["train"], case["predict"]
    best_peephole = max(prediction["peephole"], prediction["peephole_jit"])
    return {
        f"{prefix}train_ratio_vs_lstm": round(train["peephole"] / train["lstm"], 3),
        f"{prefix}predict_ratio_vs_lstm": round(best_peephole / prediction["lstm"], 3),
        f"{prefix}predict_default_ratio_vs_lstm": round(
            prediction["peephole"] / prediction["lstm"], 3
        ),
        f"{prefix}predict_jit_ratio_vs_lstm": round(
            prediction["peephole_jit"] / prediction["lstm"], 3
        ),
        f"{prefix}gru_train_ratio_vs_lstm": round(train["gru"] / train["lstm"], 3),
        f"{prefix}gru_predict_ratio_vs_lstm": round(prediction["gru"] / prediction["lstm"], 3),
        f"{prefix}cpu_train_ratio_vs_lstm": round(
            case["train_cpu"]["peephole"] / case["train_cpu"]["lstm"], 3
        ),
        f"{prefix}cpu_predict_default_ratio_vs_lstm": round(
            case["predict_cpu"]["peephole"] / case["predict_cpu"]["lstm"], 3
        ),
        f"{prefix}cpu_predict_jit_ratio_vs_lstm": round(
            case["predict_cpu"]["peephole_jit"] / case["predict_cpu"]["lstm"], 3
        ),
        f"{prefix}peephole_train_samples_per_s": round(train["peephole"]),
        f"{prefix}lstm_train_samples_per_s": round(train["lstm"]),
        f"{prefix}lstm_predict_samples_per_s": round(prediction["lstm"]),
        f"{prefix}peephole_predict_jit_samples_per_s": round(prediction["peephole_jit"]),
        f"{prefix}train_ratios_by_instance": [
            round(rate / train["lstm"], 3) for rate in case["by_instance"]["train"]["peephole"]
        ],
        f"{prefix}lstm_train_ratios_by_instance": [
            round(rate / train["lstm"], 3) for rate in case["by_instance"]["train"]["lstm"]
        ],
    }


def print_table(steps: int, case: dict[str, Any], repeats: int) -> None:
    lstm_train, lstm_predict = case["train"]["lstm"], case["predict"]["lstm"]
    instances = len(case["by_instance"]["train"]["lstm"])
    print(
        f"{steps} steps: batch {BATCH_SIZE}, {FEATURES} features, {UNITS} units, "
        f"{case['samples']:,} samples per pass; median over {instances} copies of each model "
        f"of the median of {repeats} passes"
    )
    cpu_train, cpu_predict = case["train_cpu"], case["predict_cpu"]
    print(
        f"  {'model':<22} {'train/s':>10} {'x LSTM':>7} {'predict/s':>11} {'x LSTM':>7}"
        f"   per CPU-second: {'train x LSTM':>12} {'predict x LSTM':>14}"
    )
    for name, label in (
        ("peephole", "PeepholeLSTM"),
        ("peephole_jit", "PeepholeLSTM (XLA)"),
        ("lstm", "keras LSTM"),
        ("gru", "keras GRU"),
    ):
        train = case["train"].get(name)
        train_text = (
            f"{train:>10,.0f} {train / lstm_train:>7.2f}" if train else f"{'-':>10} {'-':>7}"
        )
        predict = case["predict"][name]
        cpu_train_text = (
            f"{cpu_train[name] / cpu_train['lstm']:>12.2f}" if name in cpu_train else f"{'-':>12}"
        )
        print(
            f"  {label:<22} {train_text} {predict:>11,.0f} {predict / lstm_predict:>7.2f}"
            f"   {'':>16} {cpu_train_text} {cpu_predict[name] / cpu_predict['lstm']:>14.2f}"
        )
    for name, label in (("peephole", "PeepholeLSTM"), ("lstm", "keras LSTM")):
        copies = " ".join(f"{rate / lstm_train:.2f}" for rate in case["by_instance"]["train"][name])
        print(f"  training of each copy of {label}, x LSTM (median copy): {copies}")


def pass_sizes(quick: bool) -> tuple[int, int, int]:
    """Repeats, and batches per pass at 24 and 144 steps. Passes of about three seconds: on
    these 2-core VMs passes under a second or two were seen to snap to multiples of ~0.33 s and
    to carry each fit() call's fixed start-up cost, which made the same code measure 0.5x in one
    run and 1.0x in the next."""
    return (3, 8, 4) if quick else (5, 800, 134)


def instance_count(quick: bool) -> int:
    """Copies of each model: separately traced copies of the same model, in one process, were
    seen to train at two distinct speeds (benchmarks/README.md, session 14), so one copy per
    contender made the comparison a draw."""
    return 2 if quick else 3


def step_round_sizes(quick: bool) -> dict[int, tuple[int, int]]:
    """Rounds and training steps per round of `measure_train_steps`, per sequence length:
    in full mode, about a quarter of a second per copy and round."""
    if quick:
        return {SHORT_STEPS: (3, 2), LONG_STEPS: (3, 1)}
    return {SHORT_STEPS: (40, 60), LONG_STEPS: (20, 10)}


def machine_line() -> str:
    return (
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
        f"tensorflow {tf.__version__}, keras {keras.__version__}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer batches and repeats")
    arguments = parser.parse_args()
    _, short_batches, long_batches = pass_sizes(arguments.quick)
    repeats = REPEATS_PER_COPY
    instances = instance_count(arguments.quick)
    short = measure_case(SHORT_STEPS, short_batches, repeats, instances)
    long = measure_case(LONG_STEPS, long_batches, repeats, instances)
    rounds = step_round_sizes(arguments.quick)
    step_ratios = {
        steps: measure_train_steps(steps, *sizes, instances) for steps, sizes in rounds.items()
    }
    print(machine_line())
    print_table(SHORT_STEPS, short, repeats)
    print_table(LONG_STEPS, long, repeats)
    print(
        "predict_ratio_vs_lstm = best PeepholeLSTM prediction (default or XLA) / keras LSTM "
        "prediction in default mode; train ratios are both in default mode."
    )
    print(
        "Per CPU-second ratios count the work of both cores; wall-clock ratios are what a user "
        "waits for. PeepholeLSTM unrolls sequences of up to 48 steps by default."
    )
    for steps, (median, first, third) in step_ratios.items():
        print(
            f"training step alone ({steps} steps; one tf.function, unknown batch size, no fit; "
            f"{instances} copies each; median [quartiles] of {rounds[steps][0]} paired rounds): "
            f"PeepholeLSTM {median:.2f}x keras LSTM [{first:.2f}-{third:.2f}]"
        )
    summary = {
        **ratios(short),
        **ratios(long, prefix="long_"),
        "step_train_ratio_vs_lstm": round(step_ratios[SHORT_STEPS][0], 3),
        "long_step_train_ratio_vs_lstm": round(step_ratios[LONG_STEPS][0], 3),
        "quick": arguments.quick,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
