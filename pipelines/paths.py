"""Locations derived from the repository root (computed, never created on import)."""

from pathlib import Path

REPOSITORY_ROOT = Path(__file__).resolve().parent.parent
DATA_DIRECTORY = REPOSITORY_ROOT / "data"
CATALOG_PATH = DATA_DIRECTORY / "catalog.yaml"
RAW_DATA_DIRECTORY = DATA_DIRECTORY / "raw"
PROCESSED_DATA_DIRECTORY = DATA_DIRECTORY / "processed"
SHARED_DATASETS_DIRECTORY = REPOSITORY_ROOT.parent / "shared" / "datasets"


def resolve_path(path: str | Path, base: Path = REPOSITORY_ROOT) -> Path:
    """`path` made absolute: as is when absolute, else relative to `base` (the repository root)."""
    candidate = Path(path).expanduser()
    return (candidate if candidate.is_absolute() else base / candidate).resolve()
