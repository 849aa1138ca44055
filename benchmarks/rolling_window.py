"""How many residuals a rolling recalibration should rest on, chosen on the validation part only.

Trains `ltsf.py`'s preset once (Weather, the LTSF protocol, H=96 by default) and replays its
validation part as a scheduled job would see it: the first half calibrates, the second half is
forecast. The static calibration (the first half's residuals) and the rolling one
(`intervals.update: rolling`: recalibrated every `--every` windows on the last W residuals
known at that origin, its width factor learning from the misses at each rate of `--feedback`)
are scored on the second half for every W of `--windows`: coverage of the
80% and 90% intervals, the lowest and highest coverage of a horizon step, and the mean width
(scaled units). The test part is not read. The static calibration's last windows have targets
up to H-1 rows into the replayed half: a slight advantage that it lacks on the test part, whose
targets all come after the validation part's.

Output: a table and one JSON line `{"results": [{"scheme", "window", "coverage", ...}]}`.

Usage:
    python benchmarks/rolling_window.py --data FILE [--horizon 96] [--windows 144,...,2016]
        [--every 144] [--reaches 0,21] [--feedback 0,0.5,1,2,4]
        [--variants shared,step,shared-undelayed]
        [--residuals FILE.npz] [--quick]

`--residuals` keeps the validation residuals of the trained model: read from FILE when it
exists (no training), written to it otherwise, so more schemes can be replayed on one model.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
from ltsf import harness, run_config

from pipelines.data.prepare import run as prepare_data
from pipelines.runtime.intervals import Calibration, calibrate, interval_quantiles
from pipelines.training.calibration import rolling_calibration
from pipelines.training.evaluation import predict_part, target_windows
from pipelines.training.train import fit_model, windowed_data

LEVELS = (80.0, 90.0)


def scores(
    calibration: Calibration, groups: np.ndarray, residuals: np.ndarray
) -> dict[str, dict[str, float | list[float]]]:
    """Coverage, per-step coverage range and mean width of each level, in scaled units."""
    result: dict[str, dict[str, float | list[float]]] = {}
    for level in LEVELS:
        lower, upper = calibration.quantile_offsets(list(interval_quantiles(level)), groups)
        inside = (lower <= residuals) & (residuals <= upper)
        by_step = inside.mean(axis=(0, 2))
        result[f"{level:g}"] = {
            "coverage": float(inside.mean()),
            "steps": [float(by_step.min()), float(by_step.max())],
            "width": float((upper - lower).mean()),
        }
    return result


VARIANTS = {
    "shared": {"feedback_by": "shared", "delay_scaled": True},
    "delay": {"feedback_by": "delay", "delay_scaled": True},
    "step": {"feedback_by": "step", "delay_scaled": True},
    "shared-undelayed": {"feedback_by": "shared", "delay_scaled": False},
}
"""The width factors `rolling_calibration` can learn: one per series at a rate scaled by the
last step's delay, one per delay (the steps known at the same recalibration; the default), one
per step at its own step's, one per series at the full rate."""


def replay(
    residuals: np.ndarray,
    starts: np.ndarray,
    windows: list[int],
    every: int,
    feedbacks: tuple[float, ...] = (0.0,),
    variants: tuple[str, ...] = ("shared",),
    reaches: tuple[int, ...] = (0,),
) -> list:
    """The static and rolling schemes (each window with each feedback rate, each rate with
    each variant of `VARIANTS`, each reach back in horizons of `reaches`) on the second half of
    one series' validation windows."""
    half = len(residuals) // 2
    forecast = np.arange(len(residuals)) >= half
    ids = np.zeros(len(residuals), dtype="int64").astype(str)
    static = calibrate(residuals[:half])
    results = [
        {
            "scheme": "static",
            "window": half,
            "feedback": 0.0,
            "horizons": 0,
            **scores(static, ids[half:], residuals[half:]),
        }
    ]
    horizon = residuals.shape[1]
    for window, reach, feedback in itertools.product(windows, reaches, feedbacks):
        for variant in variants if feedback > 0 else variants[:1]:
            rolling, groups = rolling_calibration(
                residuals,
                starts,
                ids,
                forecast,
                window,
                every,
                feedback,
                LEVELS,
                span=reach * horizon,
                **VARIANTS[variant],
            )
            scored = scores(rolling, groups, residuals[half:])
            scheme = f"rolling {variant}" if feedback > 0 else "rolling"
            results.append(
                {
                    "scheme": scheme,
                    "window": window,
                    "feedback": feedback,
                    "horizons": reach,
                    **scored,
                }
            )
    return results


OVERALL_TOLERANCE = 0.02
"""How far from nominal a scheme's coverage over every step may be (the issue's 2 points)."""


def worst_step(row: dict) -> float:
    """How far the coverage of the scheme's worst horizon step is from nominal, at either
    level."""
    return max(abs(bound - level / 100) for level in LEVELS for bound in row[f"{level:g}"]["steps"])


def chosen(results: list[dict]) -> dict | None:
    """The rule (session 19): among the rolling schemes within `OVERALL_TOLERANCE` of nominal
    overall at both levels, the one whose worst step is nearest nominal, the narrower 80% band
    between equals; None when no scheme qualifies. Session 18 took the narrowest within 5
    points per step, and its choice passed on this replay but missed a step on the test part:
    an 18-day replay leaves a thin margin for ten weeks, so the steps come first now."""
    qualifying = [
        row
        for row in results
        if row["scheme"] != "static"
        and all(
            abs(row[f"{level:g}"]["coverage"] - level / 100) <= OVERALL_TOLERANCE
            for level in LEVELS
        )
    ]
    if not qualifying:
        return None
    return min(qualifying, key=lambda row: (round(worst_step(row), 6), row["80"]["width"]))


def format_table(results: list[dict]) -> str:
    names = [f"{level:g}" for level in LEVELS]
    lines = [
        "| scheme | W | reach | feedback | "
        + " | ".join(f"cov {n} | steps {n} | width {n}" for n in names)
        + " | worst step |",
        "|---|---|---|---|" + "---|---|---|" * len(names) + "---|",
    ]
    for row in results:
        cells = " | ".join(
            f"{row[n]['coverage']:.1%} | {row[n]['steps'][0]:.1%}-{row[n]['steps'][1]:.1%} | "
            f"{row[n]['width']:.3f}"
            for n in names
        )
        lines.append(
            f"| {row['scheme']} | {row['window']} | {row['horizons'] or '-'} | "
            f"{row['feedback']:g} | {cells} | "
            f"{worst_step(row):.1%} |"
        )
    return "\n".join(lines)


def validation_residuals(config: Any) -> tuple[np.ndarray, np.ndarray]:
    """The scaled residuals of the validation windows of `config`'s model, trained here, and
    the windows' starts."""
    prepared = prepare_data(config.data)
    windowed = windowed_data(prepared)
    fitted = fit_model(config, prepared, windowed)
    actual = target_windows(prepared, windowed, "validation")
    forecast = predict_part(fitted.model, windowed, "validation", config.training.batch_size)
    return actual.scaled - forecast, windowed.starts["validation"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="LTSF-layout CSV (Weather)")
    parser.add_argument("--horizon", type=int, default=96)
    parser.add_argument("--windows", default="144,288,720,1008,2016")
    parser.add_argument("--every", type=int, default=144, help="windows between recalibrations")
    parser.add_argument(
        "--reaches",
        default="0",
        help="how far back each recalibration reaches, in horizons (intervals.rolling_horizons; "
        "0: the last W windows)",
    )
    parser.add_argument("--feedback", default="0,0.5,1,2,4", help="feedback rates to replay")
    parser.add_argument(
        "--variants", default="shared", help=f"width factors to replay: {','.join(VARIANTS)}"
    )
    parser.add_argument(
        "--residuals", help="an .npz of the validation residuals: read if it exists, else written"
    )
    parser.add_argument("--quick", action="store_true", help="smoke test (ltsf.py --quick)")
    args = parser.parse_args(argv)
    variants = tuple(args.variants.split(","))
    if unknown := sorted(set(variants) - set(VARIANTS)):
        parser.error(f"--variants: unknown {', '.join(unknown)}; choose from {', '.join(VARIANTS)}")
    windows = [int(item) for item in args.windows.split(",")]
    settings = harness(args.data, preset="best", quick=args.quick, horizons=(args.horizon,))
    horizon = settings.horizons[0]
    config = run_config(settings, settings.models[-1], horizon, {})
    if args.residuals and Path(args.residuals).exists():
        with np.load(args.residuals) as saved:
            residuals, starts = saved["residuals"], saved["starts"]
        if residuals.shape[1] != horizon:
            parser.error(
                f"--residuals: {args.residuals} holds H={residuals.shape[1]}, not {horizon}"
            )
    else:
        residuals, starts = validation_residuals(config)
        if args.residuals:
            np.savez(args.residuals, residuals=residuals, starts=starts)
    feedbacks = tuple(float(item) for item in args.feedback.split(","))
    reaches = tuple(int(item) for item in args.reaches.split(","))
    results = replay(residuals, starts, windows, args.every, feedbacks, variants, reaches)
    print(f"\n{args.data}, H={horizon}, {config.model.name}: validation's second half replayed")
    print(format_table(results))
    best = chosen(results)
    print(
        "chosen (within 2 points overall, the worst step nearest nominal): "
        + (
            f"{best['scheme']}, W={best['window']}, reach {best['horizons']} horizons, "
            f"feedback {best['feedback']:g}"
            if best
            else "none qualifies"
        )
    )
    print(json.dumps({"results": results, "chosen": best}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
