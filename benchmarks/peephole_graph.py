"""The ops of `PeepholeLSTM`'s traced training step, counted by type, to tell a change of the
layer's graph from the run-to-run scatter of `peephole.py`.

One training step (forward, loss, gradient of every weight) of `peephole.py`'s model (19
features, 32 units, a Dense(1) head) is traced with an unknown batch size, as `fit` traces it,
at 24 and 144 steps; the ops of its graph and of every function in its library (the time loop's
body and condition, the hand-written gradient) are counted by type. Run it on two commits (e.g.
in a `git worktree` of the older one) and compare the JSON lines: equal counts mean the same
computation, so a speed difference between them in `peephole.py` is measurement scatter.

Usage:
    python benchmarks/peephole_graph.py [--steps 24,144]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

FEATURES = 19
UNITS = 32


def op_counts(steps: int) -> dict[str, int]:
    """`{op type: count}` over the training step's graph and its function library."""
    import keras
    import tensorflow as tf

    from models.peephole import PeepholeLSTM

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((steps, FEATURES)), PeepholeLSTM(UNITS), keras.layers.Dense(1)]
    )

    @tf.function(input_signature=[tf.TensorSpec((None, steps, FEATURES)), tf.TensorSpec((None, 1))])
    def train_step(inputs: tf.Tensor, targets: tf.Tensor) -> tuple[tf.Tensor, list[tf.Tensor]]:
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean((model(inputs, training=True) - targets) ** 2)
        return loss, tape.gradient(loss, model.trainable_variables)

    graph = train_step.get_concrete_function().graph
    counts = collections.Counter(op.type for op in graph.get_operations())
    for function in graph.as_graph_def().library.function:
        counts.update(node.op for node in function.node_def)
    return dict(sorted(counts.items()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--steps",
        type=lambda text: tuple(int(part) for part in text.split(",")),
        default=(24, 144),
        help="sequence lengths, comma-separated",
    )
    args = parser.parse_args(argv)
    summary = {}
    for steps in args.steps:
        counts = op_counts(steps)
        summary[str(steps)] = {"total": sum(counts.values()), "by_type": counts}
        print(f"{steps} steps: {summary[str(steps)]['total']} ops")
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
