"""Install a plugin package (default ``examples/plugins/pylotto-example``) the way a user
would, once per test run.

``pip install --no-deps --target <folder>`` puts the package and its ``.dist-info`` (with the
entry points) in a private folder; a sidecar started with ``PYTHONPATH=<folder>`` — or this
process, after :func:`activate` — then finds the plugin's component type and API plugin.
"""

from __future__ import annotations

import atexit
import shutil
import subprocess
import sys
import tempfile
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "plugins" / "pylotto-example"


@cache
def install(package: Path = EXAMPLE) -> Path:
    """The folder holding the installed ``package`` (installed on the first call)."""
    target = Path(tempfile.mkdtemp(prefix="pylotto-example-plugin-"))
    # Build from a copy: setuptools leaves build/ and *.egg-info next to the sources.
    build = Path(tempfile.mkdtemp(prefix="pylotto-example-build-"))
    for folder in (target, build):
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
    source = build / package.name
    shutil.copytree(package, source, ignore=shutil.ignore_patterns(
        "build", "*.egg-info", "__pycache__", ".mypy_cache"))
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--no-cache-dir", "--target", str(target), str(source)],
        check=True, cwd=source,
    )
    return target


def activate(package: Path = EXAMPLE) -> Path:
    """Install ``package`` (once) and put it on this process's ``sys.path``."""
    target = install(package)
    if str(target) not in sys.path:
        sys.path.append(str(target))
    return target
