"""A local wheelhouse for the packaging tests: the two wheels built from this tree, plus a wheel
of every distribution they need, repacked from this venv (which ``make .venv/.installed`` filled
at the lock file's versions).

Installing into a clean venv from PyPI would download each dependency again (grpcio alone takes
~15 s here); from this wheelhouse with ``--no-index``, pip still resolves every requirement of the
built wheels' metadata, but offline and in seconds. A repacked wheel holds what pip installed
for the distribution under site-packages (its modules and ``.dist-info``, a fresh RECORD);
console scripts are made again by pip from ``entry_points.txt`` on install.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import re
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

SKIPPED_METADATA = {"INSTALLER", "REQUESTED", "RECORD", "direct_url.json"}
"""Files pip writes at install time: the installing pip writes its own."""


def requirements_of(wheel: Path) -> list[Requirement]:
    """The ``Requires-Dist`` of a built wheel."""
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        text = archive.read(name).decode()
    return [Requirement(line.split(":", 1)[1].strip())
            for line in text.splitlines() if line.startswith("Requires-Dist:")]


def closure(roots: Iterable[Requirement],
            provided: set[str]) -> dict[str, importlib.metadata.Distribution]:
    """Every installed distribution the ``roots`` need (markers evaluated here, extras followed),
    by canonical name, less the ``provided`` ones (the wheels built from this tree)."""
    found: dict[str, importlib.metadata.Distribution] = {}
    pending = [(req, frozenset[str]()) for req in roots]
    while pending:
        req, extras = pending.pop()
        if req.marker and not any(req.marker.evaluate({"extra": e}) for e in (extras or {""})):
            continue
        name = canonicalize_name(req.name)
        if name in provided:
            continue
        dist = importlib.metadata.distribution(req.name)
        if not req.specifier.contains(dist.version, prereleases=True):
            raise AssertionError(f"{req}: {dist.version} installed here")
        key = f"{name}[{','.join(sorted(req.extras))}]"
        if key in found:
            continue
        found[key] = dist
        pending.extend((Requirement(r), frozenset(req.extras)) for r in dist.requires or ())
    return {canonicalize_name(d.metadata["Name"]): d for d in found.values()}


def _tag(wheel_metadata: str) -> str:
    """The compressed tag set of a WHEEL file's ``Tag:`` lines (python-abi-platform)."""
    tags = [line.split(":", 1)[1].strip() for line in wheel_metadata.splitlines()
            if line.startswith("Tag:")]
    parts = [sorted({tag.split("-")[i] for tag in tags}) for i in range(3)]
    return "-".join(".".join(part) for part in parts)


def _files(dist: importlib.metadata.Distribution) -> Iterator[tuple[str, Path]]:
    if dist.files is None:
        raise AssertionError(f"{dist.metadata['Name']}: installed without a RECORD")
    for entry in dist.files:
        if entry.parts[0] == ".." or "__pycache__" in entry.parts:
            continue  # scripts (made again from entry_points.txt), byte code
        if entry.parent.name.endswith(".dist-info") and entry.name in SKIPPED_METADATA:
            continue
        yield entry.as_posix(), Path(str(dist.locate_file(entry)))


def repack(dist: importlib.metadata.Distribution, folder: Path) -> Path:
    """A wheel in ``folder`` of the installed ``dist``."""
    info = next(p for p in dist.files or () if p.name == "METADATA"
                and p.parent.name.endswith(".dist-info")).parent.as_posix()
    name = re.sub(r"[-_.]+", "_", dist.metadata["Name"]).lower()
    wheel = folder / f"{name}-{dist.version}-{_tag(dist.read_text('WHEEL') or '')}.whl"
    record = []
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_STORED) as archive:
        for arcname, path in _files(dist):
            data = path.read_bytes()
            archive.writestr(arcname, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            record.append(f"{arcname},sha256={digest.decode()},{len(data)}")
        record.append(f"{info}/RECORD,,")
        archive.writestr(f"{info}/RECORD", "\n".join(record) + "\n")
    return wheel


def fill(folder: Path, built: Iterable[Path]) -> list[Path]:
    """Repack into ``folder`` every dependency of the ``built`` wheels (already in ``folder``)."""
    built = list(built)
    provided = {canonicalize_name(w.name.split("-")[0]) for w in built}
    roots = [req for wheel in built for req in requirements_of(wheel)]
    return [repack(dist, folder) for dist in closure(roots, provided).values()]
