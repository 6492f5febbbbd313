"""pyproject.toml states ranges (so that pylotto shares a venv with an app's own libraries) and
requirements/lock.txt the one tested set within them, which this venv holds."""

from __future__ import annotations

import importlib.metadata
import sysconfig
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.packaging.conftest import ROOT

PROJECTS = [ROOT / "pyproject.toml", ROOT / "clients" / "python" / "pyproject.toml"]
SELF = {"pylotto"}
"""Extras naming the project's own other extras (pylotto[all])."""


def declared(project: Path) -> Iterator[Requirement]:
    data = tomllib.loads(project.read_text())
    yield from map(Requirement, data["build-system"]["requires"])
    yield from map(Requirement, data["project"].get("dependencies", []))
    for extra in data["project"].get("optional-dependencies", {}).values():
        yield from (r for r in map(Requirement, extra) if canonicalize_name(r.name) not in SELF)


def locked() -> dict[str, str]:
    lines = (ROOT / "requirements" / "lock.txt").read_text().splitlines()
    pins = [Requirement(line) for line in lines if line and not line.startswith("#")]
    assert all(len(pin.specifier) == 1 and next(iter(pin.specifier)).operator == "=="
               for pin in pins)
    return {canonicalize_name(pin.name): next(iter(pin.specifier)).version for pin in pins}


@pytest.mark.parametrize("project", PROJECTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_dependency_is_a_range_holding_the_locked_version(project: Path) -> None:
    lock = locked()
    for req in declared(project):
        operators = {spec.operator for spec in req.specifier}
        assert operators in ({">=", "<"}, {"~="}), f"{project.name}: {req} is not a range"
        name = canonicalize_name(req.name)
        if name in {"pylotto-client"}:  # built from this tree, not locked
            continue
        assert name in lock, f"{req}: not in requirements/lock.txt"
        assert req.specifier.contains(lock[name]), f"{req}: the lock has {lock[name]}"


def test_this_venv_holds_the_locked_versions() -> None:
    # the venv's own site-packages, not sys.path: other tests of the run add folders of their
    # own to it (tests/support/example_plugin.py installs a plugin into a temporary folder)
    site = sorted({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]})
    installed = {canonicalize_name(d.metadata["Name"]): d.version
                 for d in importlib.metadata.distributions(path=site)}
    drift = {name: (version, installed.get(name)) for name, version in locked().items()
             if installed.get(name) != version}
    assert drift == {}
    unlocked = set(installed) - set(locked()) - {"pip", "pylotto", "pylotto-client"}
    assert unlocked == set()
