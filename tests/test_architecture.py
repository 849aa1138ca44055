"""The code's shape: small modules, no private names across modules, import contracts kept.

Covers the modules of `pipelines/` and `models/` and the benchmark scripts: none is longer than
600 lines, test modules included; only non-test modules are held to the private-name rule (test
modules, `*_test.py` and `test_*.py`, may reach into what they test). The import contracts
themselves live in pyproject.toml (`[tool.importlinter]`) and are checked by `lint-imports`,
here and in `make lint`.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPOSITORY_ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("pipelines", "models")
MAX_MODULE_LINES = 600


@dataclass(frozen=True)
class Module:
    """A source file of the project and its dotted module name."""

    name: str
    path: Path

    @property
    def is_package(self) -> bool:
        """True for a package's `__init__.py`."""
        return self.path.name == "__init__.py"

    @property
    def location(self) -> str:
        """The path relative to the repository root, for messages."""
        return self.path.relative_to(REPOSITORY_ROOT).as_posix()


def _is_test_file(path: Path) -> bool:
    return path.name.endswith("_test.py") or path.name.startswith("test_")


def _all_modules() -> dict[str, Module]:
    """Every module of the project packages, tests included, by dotted name."""
    modules = {}
    for package in PACKAGES:
        for path in sorted((REPOSITORY_ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(REPOSITORY_ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = Module(".".join(parts), path)
    return modules


MODULES = _all_modules()
SOURCE_MODULES = [module for module in MODULES.values() if not _is_test_file(module.path)]


def _is_private(name: str) -> bool:
    """`_name` and `__name`, not dunders such as `__version__`."""
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _absolute(node: ast.ImportFrom, importer: Module) -> str:
    """The absolute module name of a `from ... import` (relative imports resolved)."""
    if not node.level:
        return node.module or ""
    anchor = importer.name.split(".")
    if not importer.is_package:
        anchor = anchor[:-1]
    anchor = anchor[: len(anchor) - (node.level - 1)]
    return ".".join([*anchor, node.module] if node.module else anchor)


def private_imports(importer: Module, source: str | None = None) -> list[str]:
    """`file:line: what` for each private name `importer` takes from another project module.

    Finds `from X import _name`, `import X._private` and `module._name` where `module` is a
    name bound to a project module by an import anywhere in the file (module or function
    level).

    Args:
        importer: the module to scan.
        source: its text; read from `importer.path` when not given.
    """
    if source is None:
        source = importer.path.read_text(encoding="utf-8")
    tree = ast.parse(source, filename=str(importer.path))
    found: list[str] = []
    bound: dict[str, str] = {}  # local name -> the project module it refers to
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] not in PACKAGES:
                    continue
                if any(_is_private(part) for part in alias.name.split(".")):
                    found.append(f"{importer.location}:{alias.lineno}: import {alias.name}")
                top_level = alias.name.split(".")[0]
                bound[alias.asname or top_level] = alias.name if alias.asname else top_level
        elif isinstance(node, ast.ImportFrom):
            module = _absolute(node, importer)
            if module.split(".")[0] not in PACKAGES:
                continue
            for alias in node.names:
                if _is_private(alias.name) or any(_is_private(p) for p in module.split(".")):
                    found.append(
                        f"{importer.location}:{alias.lineno}: from {module} import {alias.name}"
                    )
                if f"{module}.{alias.name}" in MODULES:
                    bound[alias.asname or alias.name] = f"{module}.{alias.name}"
    parents = {id(child): node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    for node in ast.walk(tree):
        # The innermost attribute of a chain `name.a.b...` whose name is a project module.
        if not (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)):
            continue
        if node.value.id not in bound:
            continue
        what = _private_attribute(node, bound[node.value.id], parents)
        if what is not None:
            found.append(f"{importer.location}:{node.lineno}: {what}")
    return found


def _private_attribute(
    first: ast.Attribute, module: str, parents: dict[int, ast.AST]
) -> str | None:
    """`module._name` when the chain `first` starts reaches a private name of a module."""
    current, node = module, first
    while True:
        if _is_private(node.attr):
            return f"{current}.{node.attr}"
        if f"{current}.{node.attr}" not in MODULES:
            return None
        current = f"{current}.{node.attr}"
        parent = parents.get(id(node))
        if not isinstance(parent, ast.Attribute):
            return None
        node = parent


def test_the_scan_covers_both_packages() -> None:
    names = {module.name for module in SOURCE_MODULES}
    assert {"pipelines", "pipelines.serving.pyfunc", "models", "models.zoo"} <= names
    assert "models.zoo_test" not in names


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (
            "from pipelines.runtime.contract import _hidden, VISIBLE\n",
            ["from pipelines.runtime.contract import _hidden"],
        ),
        ("from .contract import _hidden\n", ["from pipelines.data.contract import _hidden"]),
        ("from .. import _hidden\n", ["from pipelines import _hidden"]),
        ("import pipelines.data._hidden\n", ["import pipelines.data._hidden"]),
        (
            "from pipelines.runtime import contract\ncontract._hidden()\n",
            ["pipelines.runtime.contract._hidden"],
        ),
        (
            "import pipelines.runtime.contract as c\nx = c._hidden\n",
            ["pipelines.runtime.contract._hidden"],
        ),
        (
            "import pipelines.runtime.contract\npipelines.runtime.contract._hidden\n",
            ["pipelines.runtime.contract._hidden"],
        ),
        (
            "def f():\n    from models import zoo\n    return zoo._private\n",
            ["models.zoo._private"],
        ),
        ("import numpy as np\nfrom pandas import _libs\nnp._x\n", []),
        (
            "from pipelines.runtime.contract import DataValidationError\nDataValidationError._x\n",
            [],
        ),
        ("from pipelines.runtime import contract\ncontract.DataValidationError._x\n", []),
        ("from pipelines import __doc__\n", []),
    ],
)
def test_private_import_finder_on_known_code(source: str, expected: list[str]) -> None:
    probe = Module("pipelines.data.probe", REPOSITORY_ROOT / "pipelines" / "data" / "probe.py")
    found = private_imports(probe, source)
    assert [finding.split(": ", 1)[1] for finding in found] == expected
    assert all(finding.startswith("pipelines/data/probe.py:") for finding in found)


def test_no_module_is_longer_than_the_limit() -> None:
    """Packages (the test modules beside the layers included) and benchmark scripts alike."""
    too_long = []
    paths = [module.path for module in MODULES.values()]
    paths += sorted((REPOSITORY_ROOT / "benchmarks").glob("*.py"))
    for path in paths:
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > MAX_MODULE_LINES:
            too_long.append(f"{path.relative_to(REPOSITORY_ROOT).as_posix()}: {lines} lines")
    assert not too_long, f"modules over {MAX_MODULE_LINES} lines:\n" + "\n".join(too_long)


def test_no_private_name_is_imported_from_another_module() -> None:
    found = [finding for module in SOURCE_MODULES for finding in private_imports(module)]
    assert not found, "private names used across modules:\n" + "\n".join(found)


def test_import_contracts_are_kept() -> None:
    executable = Path(sys.executable).parent / "lint-imports"
    if not executable.exists():
        found = shutil.which("lint-imports")
        if found is None:
            message = "lint-imports is not installed (pip install -r requirements.txt)"
            if os.environ.get("CI", "").lower() == "true":
                pytest.fail(f"{message}; CI must check the import contracts")
            pytest.skip(message)
        executable = Path(found)
    completed = subprocess.run(
        [str(executable), "--no-cache", "--no-logo"],
        cwd=REPOSITORY_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout[-6000:] + completed.stderr[-2000:]
    assert "0 broken" in completed.stdout


def test_checking_settings_imports_no_tensorflow() -> None:
    """The configuration checks every model setting against `models.registry` without Keras:
    a bad setting is refused in a fraction of the seconds TensorFlow takes to import."""
    script = (
        "import sys\n"
        "from pipelines.config.loading import load_config\n"
        "load_config(overrides={'model': 'peephole', 'model.hparams.units': '8'})\n"
        "print(sorted(name for name in ('keras', 'tensorflow') if name in sys.modules))\n"
    )
    finished = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPOSITORY_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert finished.stdout.strip() == "[]"
