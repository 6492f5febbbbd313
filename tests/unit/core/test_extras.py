"""The extras table says what pyproject.toml installs, and every component that imports a
driver (directly or through the shared backends) names the extra bringing it."""

from __future__ import annotations

import ast
import importlib.util
import re
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

from pylotto.core import extras, registry
from pylotto.core.errors import ConfigError

ROOT = Path(__file__).resolve().parents[3]
NOT_NEEDED = {
    "pylotto.components.sequencer.snowflake": {"mysql"},  # only for Layotto's MySQL worker ids
    "pylotto.components.state.memcached": {"redis"},  # takes redis_client's address parser
}
"""Drivers a component's imports reach that it does not need to start."""
DRIVER_MODULES = {module: extra for extra, modules in extras.EXTRAS.items()
                  for module in modules}


def _distribution(requirement: str) -> str:
    return re.split(r"[\[=<>!~; ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_extras_table_matches_pyproject() -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    providers = packages_distributions()
    for extra, modules in extras.EXTRAS.items():
        wanted = {_distribution(r) for r in declared[extra]}
        installed = {dist.lower().replace("_", "-") for module in modules
                     for dist in providers.get(module, [])}
        assert wanted <= installed, (extra, wanted, installed)
    assert set(extras.EXTRAS) == set(declared) - {"all", "dev"}


def _imports(module: str, seen: set[str]) -> set[str]:
    """Top-level modules imported anywhere in ``module`` and in the pylotto.components modules
    it imports (function-level imports too: drivers are imported lazily)."""
    if module in seen:
        return set()
    seen.add(module)
    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.origin is not None
    found: set[str] = set()
    for node in ast.walk(ast.parse(Path(spec.origin).read_text())):
        names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                 else [node.module] if isinstance(node, ast.ImportFrom) and node.module
                 and not node.level else [])
        for name in names:
            if name.startswith("pylotto.components."):
                found |= _imports(name, seen)
            found.add(name.partition(".")[0])
    return found


def _component_modules() -> set[str]:
    return {target.partition(":")[0] for capability in registry.CAPABILITIES
            for target in registry.aliases(capability).values()
            if target.startswith("pylotto.components.")}


@pytest.mark.parametrize("module", sorted(_component_modules()))
def test_a_component_importing_a_driver_names_its_extra(module: str) -> None:
    needed = {DRIVER_MODULES[m] for m in _imports(module, set())
              if m in DRIVER_MODULES} - NOT_NEEDED.get(module, set())
    listed = extras.COMPONENT_EXTRAS.get(module.rpartition(".")[2])
    assert needed <= {listed}, f"{module} imports drivers of {needed}; listed: {listed}"


def test_a_missing_driver_is_named_by_its_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, package: str | None = None) -> object:
        if name == "hiredis":
            raise ModuleNotFoundError("No module named 'hiredis'", name="hiredis")
        return real(name, package)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    with pytest.raises(ConfigError) as info:
        registry.resolve("lock", "redis")
    assert info.value.message == ("lock component type 'redis': its driver is not installed "
                                  "(no module 'hiredis'): pip install 'pylotto[redis]'")
    registry.resolve("lock", "in-memory")  # a component without drivers still resolves


def test_an_import_error_of_a_driver_names_the_extra() -> None:
    exc = ModuleNotFoundError("No module named 'aio_pika'", name="aio_pika")
    assert extras.named(exc).endswith("pip install 'pylotto[rabbitmq]'")
    other = ModuleNotFoundError("No module named 'mything'", name="mything")
    assert extras.named(other) == "No module named 'mything'"
