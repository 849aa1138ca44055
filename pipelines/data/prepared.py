"""The prepared-data files: `frame.parquet`, `scaler.json`, `window_spec.json` and
`summary.json` in one folder, written whole or not at all, and read back into a
`PrepareResult` (a round trip)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from pipelines.data.prepare import PART_COLUMN, PrepareResult
from pipelines.data.storage import write_folder_atomically
from pipelines.runtime.contract import PART_NAMES, DataValidationError
from pipelines.runtime.scaling import FittedScaler
from pipelines.runtime.windows import WindowSpec

# --------------------------------------------------------------------------------------------
# Output


FRAME_FILE, SCALER_FILE, WINDOW_SPEC_FILE, SUMMARY_FILE = (
    "frame.parquet",
    "scaler.json",
    "window_spec.json",
    "summary.json",
)
OUTPUT_FILES = (FRAME_FILE, SCALER_FILE, WINDOW_SPEC_FILE, SUMMARY_FILE)


def check_output_folder(output: Path) -> None:
    """Refuses an --output that exists and is not a previous prepare output.

    The folder is replaced whole, so anything else in it would be lost: a user's folder (or
    `--output .`) must never be mistaken for ours.
    """
    if not output.exists():
        return
    if not output.is_dir():
        raise DataValidationError(f"parameter output: {output} exists and is not a folder")
    unexpected = sorted(p.name for p in output.iterdir() if p.name not in OUTPUT_FILES)
    if unexpected or not (output / SUMMARY_FILE).is_file():
        shown = ", ".join(unexpected[:5]) or "no summary.json"
        raise DataValidationError(
            f"parameter output: {output} exists and is not a prepare output ({shown}); "
            "choose a new folder or remove it"
        )


def write_outputs(result: PrepareResult, output: Path) -> None:
    """Writes the prepared files into `output`, replacing it only once everything is written."""
    output = output.resolve()
    check_output_folder(output)

    def write(staging: Path) -> None:
        result.frame.to_parquet(staging / FRAME_FILE, index=False)
        result.scaler.save(staging / SCALER_FILE)
        (staging / WINDOW_SPEC_FILE).write_text(json.dumps(result.spec.to_dict(), indent=1))
        (staging / SUMMARY_FILE).write_text(json.dumps(result.summary, indent=1, default=str))

    write_folder_atomically(output, write)


def read_outputs(folder: Path) -> PrepareResult:
    """Reads what `write_outputs` wrote back into a `PrepareResult` (the inverse round trip).

    Raises:
        DataValidationError: `folder` is not a complete prepare output.
    """
    missing = [name for name in OUTPUT_FILES if not (folder / name).is_file()]
    if missing:
        raise DataValidationError(f"{folder}: not a prepare output (missing {', '.join(missing)})")
    frame = pd.read_parquet(folder / FRAME_FILE)
    parts = pd.Categorical(frame[PART_COLUMN], categories=PART_NAMES).codes.astype("int8")
    if (parts < 0).any():
        raise DataValidationError(f"{folder / 'frame.parquet'}: column {PART_COLUMN!r} is damaged")
    frame[PART_COLUMN] = pd.Categorical.from_codes(parts, categories=PART_NAMES)
    spec = WindowSpec.from_dict(json.loads((folder / WINDOW_SPEC_FILE).read_text()))
    summary = json.loads((folder / SUMMARY_FILE).read_text())
    return PrepareResult(
        frame=frame,
        parts=parts,
        scaler=FittedScaler.load(folder / SCALER_FILE),
        spec=spec,
        summary=summary,
    )
