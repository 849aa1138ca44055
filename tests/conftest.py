"""Shared fixtures: the real data sets beside the checkout, and small CSV writers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipelines.paths import SHARED_DATASETS_DIRECTORY


@pytest.fixture(scope="session")
def shared_datasets() -> Path:
    """`../shared/datasets`; missing is a skip on a laptop but a failure in CI."""
    if not (SHARED_DATASETS_DIRECTORY / "weather.csv.gz").exists():
        message = f"{SHARED_DATASETS_DIRECTORY} is missing"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{message}; CI must run with shared/ beside the checkout")
        pytest.skip(message)
    return SHARED_DATASETS_DIRECTORY


@pytest.fixture
def write_csv(tmp_path: Path):
    """Writes text (or bytes) to a file under tmp_path and returns its path."""

    def write(text: str | bytes, name: str = "data.csv") -> Path:
        path = tmp_path / name
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8", newline="")
        return path

    return write
