"""Conformal offsets around a point forecast, or a quantile head conformalised (CQR): which
gives narrower intervals at the same coverage. Chosen on validation; the test part read once.

Trains `ltsf.py`'s preset twice on the same data, seed and settings (Weather, the LTSF
protocol, H=96 by default): the point model (`intervals.method: conformal`, MSE loss) and the
same model with a quantile head (`cqr`: pinball loss at 0.05, 0.1, 0.5, 0.9, 0.95). Each is
scored two ways:
- validation replay (the choice): the first half of the validation windows calibrates, the
  second half is scored: coverage, mean width (scaled units) and interval score of the 80% and
  90% intervals. Both methods reach their level there, so the narrower one wins;
- test (reported once): calibrated on the whole validation part as the logged model is, the
  same scores on the test part, the CRPS and the point forecast's MSE.

Output: a table and one JSON line `{"results": [{"method", "part", "coverage", ...}]}`.

Usage:
    python benchmarks/quantile_head.py --data FILE [--horizon 96] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
from ltsf import harness, run_config

from models.quantiles import head_quantiles_of
from pipelines.data.prepare import run as prepare_data
from pipelines.runtime.intervals import (
    Calibration,
    calibrate,
    calibrate_quantile_head,
    interval_quantiles,
)
from pipelines.training.evaluation import point_forecast, predict_part, target_windows
from pipelines.training.train import fit_model, windowed_data

LEVELS = (80.0, 90.0)
METHODS = ("conformal", "cqr")


def scores(
    calibration: Calibration,
    actual: np.ndarray,
    point: np.ndarray,
    head: np.ndarray | None,
) -> dict[str, dict[str, float]]:
    """Coverage, mean width and mean interval score of each level, in scaled units."""
    quantiles = [q for level in LEVELS for q in interval_quantiles(level)]
    ids = np.zeros(len(actual), dtype="int64").astype(str)
    bounds = calibration.bounds(quantiles, point, ids, head)
    result = {}
    for index, level in enumerate(LEVELS):
        lower, upper = bounds[2 * index], bounds[2 * index + 1]
        alpha = 1 - level / 100
        penalty = 2 / alpha * (np.maximum(lower - actual, 0) + np.maximum(actual - upper, 0))
        result[f"{level:g}"] = {
            "coverage": float(((lower <= actual) & (actual <= upper)).mean()),
            "width": float((upper - lower).mean()),
            "interval_score": float((upper - lower + penalty).mean()),
        }
    return result


def calibrated(
    actual: np.ndarray, point: np.ndarray, head: np.ndarray | None, levels: tuple[float, ...]
) -> Calibration:
    if head is None:
        return calibrate(actual - point)
    return calibrate_quantile_head(actual, head, levels)


def evaluate(outputs: dict[str, np.ndarray], actual: dict[str, np.ndarray], levels: tuple) -> list:
    """The validation replay and the test scores of one model's (scaled) outputs."""
    point = {part: point_forecast(outputs[part], levels) for part in outputs}
    head = {part: outputs[part] if levels else None for part in outputs}
    half = len(actual["validation"]) // 2
    first, second = slice(None, half), slice(half, None)

    def part_of(part: str, rows: slice) -> tuple:
        return (
            actual[part][rows],
            point[part][rows],
            None if head[part] is None else head[part][rows],
        )

    replay = calibrated(*part_of("validation", first), levels)
    whole = calibrated(*part_of("validation", slice(None)), levels)
    test_actual, test_point, _ = part_of("test", slice(None))
    return [
        {"part": "validation replay", **scores(replay, *part_of("validation", second))},
        {
            "part": "test",
            **scores(whole, *part_of("test", slice(None))),
            "mse": float(((test_actual - test_point) ** 2).mean()),
        },
    ]


def format_table(results: list[dict]) -> str:
    names = [f"{level:g}" for level in LEVELS]
    lines = [
        "| method | part | "
        + " | ".join(f"cov {n} | width {n} | score {n}" for n in names)
        + " | MSE |",
        "|---|---|" + "---|---|---|" * len(names) + "---|",
    ]
    for row in results:
        cells = " | ".join(
            f"{row[n]['coverage']:.1%} | {row[n]['width']:.3f} | {row[n]['interval_score']:.3f}"
            for n in names
        )
        mse = f"{row['mse']:.4f}" if "mse" in row else ""
        lines.append(f"| {row['method']} | {row['part']} | {cells} | {mse} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="LTSF-layout CSV (Weather)")
    parser.add_argument("--horizon", type=int, default=96)
    parser.add_argument("--quick", action="store_true", help="smoke test (ltsf.py --quick)")
    args = parser.parse_args(argv)
    settings = harness(
        args.data, preset="best", quick=args.quick, horizons=(args.horizon,), levels=LEVELS
    )
    horizon = settings.horizons[0]
    results = []
    for method in METHODS:
        overrides = {"intervals.method": method, "intervals.update": "static"}
        config = run_config(settings, settings.models[-1], horizon, overrides)
        prepared = prepare_data(config.data)
        windowed = windowed_data(prepared)
        fitted = fit_model(config, prepared, windowed)
        parts = ("validation", "test")
        outputs = {
            part: predict_part(fitted.model, windowed, part, config.training.batch_size)
            for part in parts
        }
        actual = {part: target_windows(prepared, windowed, part).scaled for part in parts}
        levels = head_quantiles_of(fitted.model)
        for row in evaluate(outputs, actual, levels):
            results.append({"method": method, **row, "train_seconds": fitted.seconds})
    print(f"\n{args.data}, H={horizon}, {settings.models[-1]}: conformal against CQR")
    print(format_table(results))
    print(json.dumps({"results": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
