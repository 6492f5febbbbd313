"""Fixtures of the packaging tests: the wheels built once per run (by the image's own build
script), a wheelhouse holding them and their dependencies, and clean venvs made from it."""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

from tests.packaging import wheelhouse

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


@pytest.fixture(scope="session")
def wheels() -> Iterator[Path]:
    """A folder (readable by every user) holding pylotto-*.whl, pylotto_client-*.whl, lock.txt
    and the repacked wheels of their dependencies."""
    with tempfile.TemporaryDirectory(prefix="pylotto-wheels-") as folder:
        out = Path(folder)
        out.chmod(0o755)
        # the venv's setuptools (the lock's), checked against [build-system] requires
        subprocess.run([DEPLOY / "build-wheels.sh", out, "--no-build-isolation",
                        "--check-build-dependencies"], check=True, capture_output=True,
                       env={**os.environ, "PYTHON": sys.executable})
        wheelhouse.fill(out, [*out.glob("pylotto-*.whl"), *out.glob("pylotto_client-*.whl")])
        # pipx brings its shared venv's pip up to date (pip >= 26.1): this venv's
        wheelhouse.repack(importlib.metadata.distribution("pip"), out)
        yield out


def offline(wheels: Path) -> dict[str, str]:
    """The environment under which pip installs from ``wheels`` only."""
    return {**os.environ, "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(wheels),
            "PIP_DISABLE_PIP_VERSION_CHECK": "1"}


def distributions(python: Path) -> dict[str, str]:
    """Name → version of every distribution installed in the venv of ``python``."""
    listing = subprocess.run(
        [python, "-c", "import importlib.metadata as m, json; print(json.dumps("
         "{d.metadata['Name']: d.version for d in m.distributions()}))"],
        check=True, capture_output=True, text=True)
    return {canonicalize_name(name): version
            for name, version in json.loads(listing.stdout).items()}


def new_venv(folder: Path, wheels: Path, *requirements: str | Path) -> Path:
    """A venv at ``folder`` (without pip) holding ``requirements`` installed from ``wheels`` at
    the lock's versions; its python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", folder], check=True)
    python = folder / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", python, "install", "--quiet",
                    "--constraint", wheels / "lock.txt", *requirements],
                   check=True, env=offline(wheels))
    return python
