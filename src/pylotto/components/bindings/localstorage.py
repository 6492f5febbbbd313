"""``bindings.localstorage``: files in one local directory (Dapr's local storage binding).

Metadata ``rootPath`` (required; relative to the working directory; created when missing;
``/proc``, ``/sys``, ``/boot`` and ``/var/run/secrets`` refused, as Dapr's). Operations, with
request metadata ``fileName``:

- ``create``: writes the data to ``fileName`` (a new random UUID when absent), making its
  directories; answers ``{"fileName": "<name relative to rootPath>"}``. As Dapr's, data that is
  a quoted Go string literal is unquoted first, and data that is then valid standard base64 is
  decoded (send base64 to store binary data; plain text that happens to be valid base64, such as
  ``abcd``, is decoded too);
- ``get``: the file's content; ``file not found: <path>`` when missing;
- ``delete``: removes the file;
- ``list``: a JSON array of the absolute paths of every file below ``fileName`` (the root when
  absent), depth first in lexical order (``null`` when there are none).

Names are confined to the root by the file store's rule
(:mod:`pylotto.components.file.beneath`): every name is walked from a descriptor of the root, a
symbolic link and ``..`` are refused (Dapr's clamps ``..`` to the root instead), and a leading
``/`` is relative to the root, as Dapr's.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import errno
import json
import os
import stat
import uuid
from pathlib import Path

from pydantic import Field

from pylotto.components.base import ComponentContext
from pylotto.components.bindings.base import (
    BindingRequest,
    BindingResponse,
    BindingSettings,
    OutputBinding,
)
from pylotto.components.file.beneath import Root, name_parts, open_regular_file
from pylotto.core.errors import (
    ConfigError,
    Internal,
    InvalidArgument,
    NotFound,
    PylottoError,
    Unavailable,
)
from pylotto.core.gojson import go_json

DISALLOWED_ROOTS = ("/proc", "/sys", "/boot", "/var/run/secrets")
FILE_MODE = 0o666
WRITE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC


class LocalStorageSettings(BindingSettings):
    root_path: str = Field(alias="rootPath", min_length=1)


def decoded_payload(data: bytes) -> bytes:
    """The bytes Dapr's ``create`` writes: a quoted string literal unquoted, then valid
    standard base64 decoded."""
    if len(data) >= 2 and data[:1] == data[-1:] == b'"':
        try:
            text = json.loads(data)
            if isinstance(text, str):
                data = text.encode()
        except ValueError:
            pass
    elif len(data) >= 2 and data[:1] == data[-1:] == b"`" and b"`" not in data[1:-1]:
        data = data[1:-1].replace(b"\r", b"")
    try:
        return base64.b64decode(data.replace(b"\r", b"").replace(b"\n", b""), validate=True)
    except (binascii.Error, ValueError):
        return data


def resolved_root(configured: str) -> Path:
    """``rootPath`` made absolute (links of its existing part resolved), as Dapr checks it."""
    root = Path(os.path.normpath(Path.cwd() / configured))
    existing = root
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        raise ConfigError("property rootPath represents a file and not a directory")
    root = existing.resolve() / root.relative_to(existing)
    for banned in DISALLOWED_ROOTS:
        if root == Path(banned) or Path(banned) in root.parents:
            raise ConfigError("property rootPath points to a disallowed location")
    return root


class LocalStorageBinding(OutputBinding):
    Settings = LocalStorageSettings
    operations = ("create", "get", "list", "delete")

    def __init__(self, name: str, settings: LocalStorageSettings,
                 context: ComponentContext) -> None:
        super().__init__(name, settings, context)
        self.config = settings
        self.root_path = Path(settings.root_path)
        self._root: Root | None = None

    async def init(self) -> None:
        def prepare() -> tuple[Path, Root]:
            root = resolved_root(self.config.root_path)
            try:
                root.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ConfigError(f"unable to create directory specified by 'rootPath' "
                                  f"{root}: {exc.strerror or exc}") from None
            return root, Root(root)

        try:
            self.root_path, self._root = await asyncio.to_thread(prepare)
        except ConfigError as exc:
            raise ConfigError(f"binding {self.name}: failed to parse metadata: "
                              f"{exc.message}") from None

    async def close(self) -> None:
        if self._root is not None:
            self._root.close()
            self._root = None

    async def ping(self) -> None:
        if not await asyncio.to_thread(self._held().still_there):
            raise Unavailable(f"binding {self.name}: root {self.root_path} is gone")

    def _held(self) -> Root:
        if self._root is None:
            raise Unavailable(f"binding {self.name} is not open")
        return self._root

    def _parts(self, name: str, *, allow_root: bool = False) -> tuple[str, ...]:
        return name_parts(name.lstrip("/"), allow_root=allow_root, what="fileName")

    async def invoke(self, request: BindingRequest) -> BindingResponse:
        name = request.metadata.get("fileName", "")
        operation = request.operation
        try:
            if operation == "create":
                return await asyncio.to_thread(self._create, name or str(uuid.uuid4()),
                                               request.data)
            if operation in ("get", "delete", "list"):
                return await asyncio.to_thread(getattr(self, f"_{operation}"), name)
        except PylottoError:
            raise
        except OSError as exc:
            raise Internal(f"binding {self.name}: {name or '.'}: "
                           f"{exc.strerror or exc}") from None
        raise InvalidArgument(f"unsupported operation {operation}")

    def _path(self, parts: tuple[str, ...]) -> str:
        return str(self.root_path.joinpath(*parts))

    def _create(self, name: str, data: bytes) -> BindingResponse:
        parts = self._parts(name)
        payload = decoded_payload(data)
        directory = self._held().directory(parts[:-1], f"fileName {name!r}", create=True)
        try:
            fd = os.open(parts[-1], WRITE_FLAGS, FILE_MODE, dir_fd=directory)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.EISDIR):
                raise InvalidArgument(f"error creating file {self._path(parts)}: "
                                      "not a regular file") from None
            raise
        finally:
            os.close(directory)
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
        relative = "/".join(parts)
        return BindingResponse(data=go_json({"fileName": relative}).encode())

    def _get(self, name: str) -> BindingResponse:
        parts = self._parts(name)
        try:
            directory = self._held().directory(parts[:-1], f"fileName {name!r}")
            try:
                fd = open_regular_file(directory, parts[-1], f"fileName {name!r}")
            finally:
                os.close(directory)
        except FileNotFoundError:
            raise NotFound(f"file not found: {self._path(parts)}") from None
        with os.fdopen(fd, "rb") as handle:
            return BindingResponse(data=handle.read())

    def _delete(self, name: str) -> BindingResponse:
        parts = self._parts(name)
        try:
            directory = self._held().directory(parts[:-1], f"fileName {name!r}")
            try:
                os.remove(parts[-1], dir_fd=directory)
            finally:
                os.close(directory)
        except FileNotFoundError:
            raise NotFound(f"error deleting file {self._path(parts)}: no such file or "
                           "directory") from None
        except IsADirectoryError:
            raise InvalidArgument(f"error deleting file {self._path(parts)}: is a "
                                  "directory") from None
        return BindingResponse()

    def _list(self, name: str) -> BindingResponse:
        parts = self._parts(name, allow_root=True)
        try:
            directory = self._held().directory(parts, f"fileName {name!r}")
        except FileNotFoundError:
            raise NotFound(f"error getting stats for path {self._path(parts)}: no such file "
                           "or directory") from None
        except InvalidArgument:
            raise InvalidArgument("unable to list files as the file specified is not a "
                                  f"directory: {self._path(parts)}") from None
        found: list[str] = []
        try:
            self._walk(directory, Path(self._path(parts)), found)
        finally:
            os.close(directory)
        return BindingResponse(data=go_json(found or None).encode())

    def _walk(self, directory: int, path: Path, found: list[str]) -> None:
        """Every file below ``directory`` (links not followed), in filepath.Walk's order."""
        with os.scandir(directory) as scan:
            entries = sorted(scan, key=lambda entry: entry.name)
        for entry in entries:
            st = entry.stat(follow_symlinks=False)
            if not stat.S_ISDIR(st.st_mode):
                found.append(str(path / entry.name))
                continue
            try:
                child = os.open(entry.name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
                                | os.O_CLOEXEC, dir_fd=directory)
            except OSError:
                continue
            try:
                self._walk(child, path / entry.name, found)
            finally:
                os.close(child)
