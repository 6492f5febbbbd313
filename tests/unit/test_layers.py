"""The layer rule of DESIGN.md, checked over every import in src (module-level, in functions and
under TYPE_CHECKING): facades → capabilities → components/appchannel; nothing low imports high."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "pylotto"

FORBIDDEN = {
    "appchannel": ("capabilities", "facades", "process"),
    "components": ("capabilities", "facades", "process", "appchannel"),
    "capabilities": ("facades", "process"),
    "deploy": ("capabilities", "facades", "process", "components", "appchannel"),
}
"""Package → the packages its modules may not import."""


def imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_nothing_low_imports_high(package: str) -> None:
    offences = [
        f"{path.relative_to(SRC)} imports {name}"
        for path in sorted((SRC / package).rglob("*.py"))
        for name in sorted(imported(path))
        if any(name == f"pylotto.{high}" or name.startswith(f"pylotto.{high}.")
               for high in FORBIDDEN[package])
    ]
    assert offences == []
