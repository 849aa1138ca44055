"""Shared fixtures: the real data sets beside the checkout, small CSV writers, the daily CSV
and the prepare arguments that read it, an MLflow store in tmp_path, and the environment of a
test's subprocess."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from pipelines.paths import REPOSITORY_ROOT, SHARED_DATASETS_DIRECTORY


def daily_csv(rows: int = 30, start: str = "2024-01-01", newline: str = "\n") -> str:
    """A daily file outside the catalog: `date,temp,humidity`, temp rising by 0.5 a day."""
    dates = pd.date_range(start, periods=rows, freq="D")
    lines = ["date,temp,humidity"]
    lines += [f"{d:%Y-%m-%d},{10 + i * 0.5:.1f},{50 + i}" for i, d in enumerate(dates)]
    return newline.join(lines) + newline


def daily_prepare_arguments(source: Path | str) -> list[str]:
    """The options that read a `daily_csv` file as a data set outside the catalog."""
    return [
        "--dataset",
        "none",
        "--source",
        str(source),
        "--timestamp-column",
        "date",
        "--targets",
        "temp",
    ]


def subprocess_environment(**extra: str) -> dict[str, str]:
    """This process's environment for a child that imports the checkout, with `extra`."""
    environment = dict(os.environ)
    environment["PYTHONPATH"] = str(REPOSITORY_ROOT)
    environment["TF_CPP_MIN_LOG_LEVEL"] = "3"
    environment.update(extra)
    return environment


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


@pytest.fixture(autouse=True, scope="session")
def repository_stays_clean():
    """No test may leave an MLflow store or artifacts in the checkout."""
    names = ("mlruns", "mlflow.db")
    before = {name: (REPOSITORY_ROOT / name).exists() for name in names}
    yield
    after = {name: (REPOSITORY_ROOT / name).exists() for name in names}
    assert after == before, f"tests wrote into {REPOSITORY_ROOT}: {after}"


@pytest.fixture(scope="session")
def empty_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty MLflow SQLite store, its tables created once: a copy is ready in 0.1 s where
    creating one takes about 3 s, for each of the many tests that need a store.

    Created from its own folder: MLflow places the Default experiment's artifacts under the
    working directory of the store's creation, which must not be the checkout.
    """
    import mlflow

    path = tmp_path_factory.mktemp("empty-store") / "mlflow.db"
    with contextlib.chdir(path.parent):
        mlflow.MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    mlflow.set_tracking_uri(None)
    return path


@contextlib.contextmanager
def store_in(folder: Path, empty: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """An MlflowClient on a SQLite store in `folder` (a copy of the `empty` one), which is
    also the working directory.

    Experiments need an artifact location under `folder` too, or MLflow writes ./mlruns.
    """
    import mlflow

    shutil.copyfile(empty, folder / "mlflow.db")
    monkeypatch.chdir(folder)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{folder}/mlflow.db")
    # mlflow.set_experiment exports MLFLOW_EXPERIMENT_ID; deleting the variables here makes
    # monkeypatch remove them again afterwards, so no experiment leaks into the next test.
    for name in ("MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME"):
        monkeypatch.delenv(name, raising=False)
    mlflow.set_tracking_uri(None)  # read the variable again, whatever an earlier test set
    yield mlflow.MlflowClient()
    while mlflow.active_run() is not None:
        mlflow.end_run()


@pytest.fixture
def tracking_store(
    tmp_path: Path, empty_store: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Any]:
    """An MlflowClient on a SQLite store in tmp_path (`store_in`)."""
    with store_in(tmp_path, empty_store, monkeypatch) as client:
        yield client


@pytest.fixture(scope="module")
def module_tracking_store(
    tmp_path_factory: pytest.TempPathFactory, empty_store: Path
) -> Iterator[Any]:
    """`tracking_store` shared by a module's tests, for work done once and read by several
    (its tests must not use `tracking_store` too, which points MLflow elsewhere)."""
    import mlflow

    folder = tmp_path_factory.mktemp("store")
    with pytest.MonkeyPatch.context() as monkeypatch, store_in(folder, empty_store, monkeypatch):
        yield mlflow.MlflowClient()
    mlflow.set_tracking_uri(None)
