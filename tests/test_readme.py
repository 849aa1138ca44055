"""The README's quick start runs what the project has: its `make` targets are the Makefile's,
its `mlflow run` and `python -m pipelines.cli` commands name MLproject entry points and their
parameters, every picture it shows is in `docs/`, and its headline benchmark tables are rows of
`benchmarks/README.md`, where each has its command line."""

from __future__ import annotations

import re
import shlex

import pytest
import yaml

from pipelines.paths import REPOSITORY_ROOT

README = (REPOSITORY_ROOT / "README.md").read_text()
ENTRY_POINTS = yaml.safe_load((REPOSITORY_ROOT / "MLproject").read_text())["entry_points"]
MAKEFILE = (REPOSITORY_ROOT / "Makefile").read_text()
MAKE_TARGETS = set(re.findall(r"^([a-z][a-z-]*):", MAKEFILE, re.MULTILINE))


def quick_start_commands() -> list[list[str]]:
    section = README[README.index("## Quick start") :]
    block = re.search(r"```bash\n(.*?)```", section, re.DOTALL).group(1)
    return [shlex.split(line, comments=True) for line in block.splitlines() if line.strip()]


def entry_point_parameters(name: str) -> set[str]:
    assert name in ENTRY_POINTS, f"MLproject has no entry point {name!r}"
    return set(ENTRY_POINTS[name].get("parameters", {}))


def check_mlflow_run(arguments: list[str]) -> str:
    """Checks `mlflow run` arguments against MLproject; returns the entry point."""
    assert arguments[:1] == ["."], arguments
    entry, parameters = "main", []
    options = iter(arguments[1:])
    for option in options:
        value = next(options)
        if option == "-e":
            entry = value
        elif option == "-P":
            parameters.append(value.partition("=")[0])
        else:
            assert option == "--env-manager" and value == "local", option
    assert set(parameters) <= entry_point_parameters(entry), (entry, parameters)
    return entry


def check_cli_module(module: str, arguments: list[str]) -> None:
    entry = module.removeprefix("pipelines.cli.")
    given = {argument[2:].replace("-", "_") for argument in arguments if argument.startswith("--")}
    assert given <= entry_point_parameters(entry), (entry, given)


def test_the_quick_start_commands_are_the_projects() -> None:
    commands = quick_start_commands()
    assert commands[:3] == [["make", "run"], ["make", "ui"], ["source", ".venv/bin/activate"]]
    kinds = set()
    for command in commands:
        program, arguments = command[0], command[1:]
        if program == "make":
            assert set(arguments) <= MAKE_TARGETS, arguments
            kinds.update(f"make {target}" for target in arguments)
        elif program == "source":
            assert arguments == [".venv/bin/activate"], arguments
            assert re.search(r"^VENV := \.venv$", MAKEFILE, re.MULTILINE)  # the venv it makes
        elif program == "mlflow" and arguments[0] == "run":
            kinds.add(f"mlflow run {check_mlflow_run(arguments[1:])}")
        else:
            assert program == "python" and arguments[0] == "-m", command
            check_cli_module(arguments[1], arguments[2:])
            kinds.add("cli")
    # What the quick start promises: the main job, the UI, a forecast and a backtest.
    assert {"make run", "make ui", "mlflow run forecast", "mlflow run backtest"} <= kinds


def test_a_wrong_parameter_would_be_caught() -> None:
    with pytest.raises(AssertionError, match="fold"):
        check_mlflow_run([".", "-e", "backtest", "-P", "fold=3"])
    with pytest.raises(AssertionError, match="no entry point 'predict'"):
        check_cli_module("pipelines.cli.predict", [])


def test_every_picture_in_the_readme_is_in_docs() -> None:
    pictures = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", README)
    assert len(pictures) >= 4
    for picture in pictures:
        path = REPOSITORY_ROOT / picture
        assert picture.startswith("docs/") and path.read_bytes()[:4] == b"\x89PNG", picture


def test_the_readme_names_every_entry_point_and_parameter_of_mlproject() -> None:
    table = README[README.index("## The MLflow project") :].split("\n\n")[1]
    assert set(re.findall(r"^\| `(\w+)`", table, re.MULTILINE)) == set(ENTRY_POINTS)
    section = README[README.index("Parameters (all strings") :]
    common = set(re.findall(r"`([a-z_]+)`", section.split("\n\n")[0])) - {"input_width"}
    bullets = re.findall(r"^- `(\w+)`: (.*?)(?=^- |\Z)", section.split("\n\n")[1], re.M | re.S)
    assert {name for name, _ in bullets} == set(ENTRY_POINTS)
    for name, text in bullets:
        named = common | set(re.findall(r"`([a-z_]+)`", text))
        declared = entry_point_parameters(name)
        assert named == declared, (name, sorted(declared - named), sorted(named - declared))


def test_the_headline_figures_are_the_benchmark_records() -> None:
    section = README[README.index("### Headline figures") :]
    table_lines = [line for line in section.splitlines() if line.startswith("|")]
    records = set((REPOSITORY_ROOT / "benchmarks" / "README.md").read_text().splitlines())
    assert len(table_lines) > 20
    missing = [line for line in table_lines if line not in records]
    assert not missing, f"README rows not in benchmarks/README.md: {missing}"
