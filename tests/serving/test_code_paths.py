"""A logged model ships only the code it runs, and runs from it in a process without the checkout.

`save_forecast_model` copies, as MLflow `code_paths`, the `models` package and the `pipelines`
modules that `pipelines.serving.pyfunc` imports (traced through the source), not the whole
`pipelines` package.
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

import models
from pipelines.data.history import to_model_input
from pipelines.paths import REPOSITORY_ROOT
from pipelines.serving.pyfunc import _runtime_module_files
from tests.three_series import SPEC, save_untrained_forecaster, series_frame

# What `pipelines.serving.pyfunc` imports at load and predict time, transitively, with the
# `__init__.py` of each package on the way (the known answer of the trace).
SHIPPED_PIPELINES_FILES = (
    "pipelines/__init__.py",
    "pipelines/data/__init__.py",
    "pipelines/data/contract.py",
    "pipelines/data/history.py",
    "pipelines/data/readiness.py",
    "pipelines/data/scaling.py",
    "pipelines/data/windows.py",
    "pipelines/serving/__init__.py",
    "pipelines/serving/pyfunc.py",
)
# The same, as the modules a fresh process has imported after loading and predicting.
SHIPPED_PIPELINES_MODULES = tuple(
    sorted(
        name.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
        for name in SHIPPED_PIPELINES_FILES
    )
)
NOT_SHIPPED_PACKAGES = ("training", "cli", "tracking", "config")


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
        "models/recurrent.py",
        "models/registry.py",
        "models/shape.py",
        "models/zoo.py",
    ]


def test_code_folder_holds_exactly_the_traced_modules_and_models(saved_model: Path) -> None:
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

        import models, pipelines, pipelines.serving.pyfunc
        print(json.dumps({{
            "files": [module.__file__ for module in (pipelines, pipelines.serving.pyfunc, models)],
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
    assert answer["pipelines_modules"] == list(SHIPPED_PIPELINES_MODULES)

    fresh = pd.read_pickle(tmp_path / "forecast.pkl")
    expected = mlflow.pyfunc.load_model(str(saved_model)).predict(history)
    assert len(expected) == len(("alpha", "beta", "gamma")) * SPEC.horizon
    pd.testing.assert_frame_equal(fresh, expected, check_exact=True)


def test_trace_follows_function_level_and_relative_imports_but_not_type_checking(
    tmp_path: Path,
) -> None:
    root = tmp_path / "pkg"
    files = {
        "__init__.py": "",
        "entry.py": (
            "from typing import TYPE_CHECKING\n"
            "import numpy\n"
            "from pkg.sub import eager\n"
            "if TYPE_CHECKING:\n"
            "    from pkg import typing_only\n"
            "def run():\n"
            "    from . import lazy\n"
        ),
        "lazy.py": "from .sub.eager import NAME\n",
        "typing_only.py": "",
        "unused.py": "",
        "sub/__init__.py": "import pkg.sub.from_init\n",
        "sub/eager.py": "NAME = 1\nfrom ..helpers import tool\n",
        "sub/from_init.py": "",
        "helpers/__init__.py": "",
        "helpers/tool.py": "",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")

    traced = _runtime_module_files("pkg.entry", root)

    assert [path.relative_to(root).as_posix() for path in traced] == [
        "__init__.py",
        "entry.py",
        "helpers/__init__.py",
        "helpers/tool.py",
        "lazy.py",
        "sub/__init__.py",
        "sub/eager.py",
        "sub/from_init.py",
    ]


def test_trace_fails_on_an_import_it_cannot_find(tmp_path: Path) -> None:
    root = tmp_path / "pkg"
    root.mkdir()
    (root / "__init__.py").write_text("", encoding="utf-8")
    (root / "entry.py").write_text("import pkg.missing\n", encoding="utf-8")
    with pytest.raises(ImportError, match=r"'pkg\.missing'"):
        _runtime_module_files("pkg.entry", root)
