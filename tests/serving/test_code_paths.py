"""A logged model ships only the code it runs, and runs from it in a process without the checkout.

`save_forecast_model` copies, as MLflow `code_paths`, the `models` and `pipelines.runtime`
packages whole (with the top-level `pipelines/__init__.py`), not the rest of `pipelines`; the
model is logged as code (`pipelines/runtime/logged_model.py`), so nothing is pickled.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import mlflow.pyfunc
import pandas as pd
import pytest
import yaml

import models
from pipelines.paths import REPOSITORY_ROOT
from pipelines.runtime.history import to_model_input
from pipelines.serving.pyfunc import LOGGED_MODEL_FILE
from tests.three_series import SPEC, save_untrained_forecaster, series_frame

# The runtime package, whole, and the `__init__.py` that makes it a subpackage.
SHIPPED_PIPELINES_FILES = (
    "pipelines/__init__.py",
    "pipelines/runtime/__init__.py",
    "pipelines/runtime/contract.py",
    "pipelines/runtime/forecaster.py",
    "pipelines/runtime/history.py",
    "pipelines/runtime/intervals.py",
    "pipelines/runtime/logged_model.py",
    "pipelines/runtime/monitoring.py",
    "pipelines/runtime/readiness.py",
    "pipelines/runtime/scaling.py",
    "pipelines/runtime/windows.py",
)
# The modules a fresh process has imported after loading and predicting: every shipped one but
# the model file, which MLflow runs under a name of its own, and the monitoring rules, which the
# monitor job reads and a forecast never needs.
IMPORTED_PIPELINES_MODULES = tuple(
    sorted(
        name.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
        for name in SHIPPED_PIPELINES_FILES
        if name not in ("pipelines/runtime/logged_model.py", "pipelines/runtime/monitoring.py")
    )
)
NOT_SHIPPED_PACKAGES = ("data", "config", "training", "tracking", "serving", "cli")


def _models_files() -> list[str]:
    """`models/...` paths of every non-test module of the `models` package in the checkout."""
    root = Path(models.__file__).resolve().parent
    return sorted(
        f"models/{path.name}"
        for path in root.glob("*.py")
        if not path.name.endswith("_test.py") and not path.name.startswith("test_")
    )


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained segment LSTM(4) over three daily series, saved as a pyfunc model folder."""
    frame = series_frame(days=60, seed=0)
    return save_untrained_forecaster(tmp_path_factory.mktemp("code-paths") / "model", frame)


def test_models_package_is_shipped_whole_without_tests() -> None:
    assert _models_files() == [
        "models/__init__.py",
        "models/autoregressive.py",
        "models/baselines.py",
        "models/cell_layer.py",
        "models/channels.py",
        "models/clockwork.py",
        "models/decoding.py",
        "models/depth_gated.py",
        "models/gates.py",
        "models/hyperparameters.py",
        "models/names.py",
        "models/normalization.py",
        "models/peephole.py",
        "models/peephole_loop.py",
        "models/quantiles.py",
        "models/recurrent.py",
        "models/registry.py",
        "models/shape.py",
        "models/zoo.py",
    ]


def test_runtime_package_is_shipped_whole_without_tests() -> None:
    runtime = REPOSITORY_ROOT / "pipelines" / "runtime"
    on_disk = sorted(
        path.relative_to(REPOSITORY_ROOT).as_posix()
        for path in runtime.glob("*.py")
        if not path.name.endswith("_test.py") and not path.name.startswith("test_")
    )
    assert on_disk == sorted(SHIPPED_PIPELINES_FILES[1:])


def test_model_is_logged_as_code_and_nothing_is_pickled(saved_model: Path) -> None:
    flavor = yaml.safe_load((saved_model / "MLmodel").read_text(encoding="utf-8"))["flavors"]
    pyfunc = flavor["python_function"]
    assert pyfunc["loader_module"] == "mlflow.pyfunc.loaders.code_model"
    assert Path(pyfunc["model_code_path"]).name == LOGGED_MODEL_FILE.name
    assert not list(saved_model.rglob("*.pkl")), "a pickled python model"


def test_code_folder_holds_exactly_the_runtime_and_models_packages(saved_model: Path) -> None:
    code = saved_model / "code"
    files = [path for path in code.rglob("*") if path.is_file()]
    shipped = sorted(path.relative_to(code).as_posix() for path in files)
    assert shipped == sorted([*SHIPPED_PIPELINES_FILES, *_models_files()])
    for package in NOT_SHIPPED_PACKAGES:
        assert not (code / "pipelines" / package).exists(), package
    # The copies are the checkout's files, byte for byte.
    for name in SHIPPED_PIPELINES_FILES:
        assert (code / name).read_bytes() == (REPOSITORY_ROOT / name).read_bytes(), name


@pytest.mark.slow
def test_fresh_process_without_the_checkout_predicts_what_this_process_predicts(
    saved_model: Path, tmp_path: Path
) -> None:
    history = to_model_input(series_frame(days=60, seed=1), SPEC.features, last_rows=20)
    history.to_pickle(tmp_path / "history.pkl")
    history = pd.read_pickle(tmp_path / "history.pkl")
    script = textwrap.dedent(
        f"""
        import importlib.util, json, sys
        from pathlib import Path

        repository = Path({str(REPOSITORY_ROOT)!r}).resolve()
        model_path = Path({str(saved_model)!r}).resolve()
        on_path = [Path(entry or ".").resolve() for entry in sys.path]
        assert repository not in on_path, sys.path
        assert importlib.util.find_spec("pipelines") is None, "pipelines importable before load"
        assert importlib.util.find_spec("models") is None, "models importable before load"

        import mlflow.pyfunc
        import pandas as pd

        model = mlflow.pyfunc.load_model(str(model_path))
        forecast = model.predict(pd.read_pickle("history.pkl"))
        forecast.to_pickle("forecast.pkl")

        import models, pipelines, pipelines.runtime.forecaster
        print(json.dumps({{
            "files": [
                module.__file__ for module in (pipelines, pipelines.runtime.forecaster, models)
            ],
            "code": str(model_path / "code"),
            "pipelines_modules": sorted(
                name for name in sys.modules if name.split(".")[0] == "pipelines"
            ),
        }}))
        """
    )
    # -I: no PYTHON* variables, no user site, and neither the working directory nor the
    # script's folder on sys.path; -B: no __pycache__ written into the model's code folder.
    completed = subprocess.run(
        [sys.executable, "-I", "-B", "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    answer = json.loads(completed.stdout.strip().splitlines()[-1])
    for file in answer["files"]:
        assert Path(file).is_relative_to(answer["code"]), file
    assert answer["pipelines_modules"] == list(IMPORTED_PIPELINES_MODULES)

    fresh = pd.read_pickle(tmp_path / "forecast.pkl")
    expected = mlflow.pyfunc.load_model(str(saved_model)).predict(history)
    assert len(expected) == len(("alpha", "beta", "gamma")) * SPEC.horizon
    pd.testing.assert_frame_equal(fresh, expected, check_exact=True)
