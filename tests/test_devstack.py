"""devstack/ holds the development tools: the runtime never imports it, the wheel does not
ship it, and its own settings are read like the runtime's."""

import ast
import tomllib
from pathlib import Path

import pytest

from devstack.settings import DevSettings, dev_settings_from_env
from parley.settings import SettingsError

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
SHIPPED = PYPROJECT["tool"]["setuptools"]["packages"]


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_the_wheel_does_not_ship_devstack_and_mypy_checks_it() -> None:
    assert "devstack" not in SHIPPED
    assert "devstack" in PYPROJECT["tool"]["mypy"]["packages"]
    assert (ROOT / "devstack" / "py.typed").is_file()


def test_no_runtime_module_imports_devstack() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}: {module}"
        for package in SHIPPED
        for path in sorted((ROOT / package).rglob("*.py"))
        for module in imported_modules(path)
        if module == "devstack" or module.startswith("devstack.")
    ]
    assert offenders == []


def test_dev_settings_default_and_from_the_environment() -> None:
    assert dev_settings_from_env({}) == DevSettings(graph_standin_port=8090)
    assert dev_settings_from_env({"PARLEY_GRAPH_STANDIN_PORT": ""}).graph_standin_port == 8090
    env = {"PARLEY_GRAPH_STANDIN_PORT": "9191", "PARLEY_HTTP_PORT": "8081"}
    assert dev_settings_from_env(env).graph_standin_port == 9191


@pytest.mark.parametrize("raw", ["0", "65536", "port"])
def test_a_bad_dev_setting_names_its_variable(raw: str) -> None:
    with pytest.raises(SettingsError, match=r"^PARLEY_GRAPH_STANDIN_PORT: "):
        dev_settings_from_env({"PARLEY_GRAPH_STANDIN_PORT": raw})
