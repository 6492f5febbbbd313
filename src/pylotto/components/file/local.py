"""``local``: a file store kept in one directory of this machine.

File names are paths relative to ``rootPath`` (default ``<data_dir>/files``, created at start).
A name that is absolute, contains ``..`` or reaches outside the root through a symlink is refused
with InvalidArgument. Writes go to a temporary file in the target's directory that is renamed
over the target once complete, so an interrupted PutFile never leaves a partial file.

Put metadata understood (Layotto's names): ``FileMode`` (permission bits, integer literal:
``"0644"`` octal, ``"420"`` decimal; default 0644) and ``FileFlag`` (``os.O_*`` bits; honoured:
``O_CREAT`` absent → the file must exist, ``O_CREAT|O_EXCL`` → it must not, ``O_APPEND`` → append).
"""

from __future__ import annotations

import asyncio
import errno
import os
import shutil
import stat
import tempfile
from collections.abc import AsyncIterable, AsyncIterator, Callable
from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import BinaryIO, TypeVar

from pydantic import Field

from pylotto.components.base import ComponentContext
from pylotto.components.file.base import FileInfo, FileMeta, FileStore, ListResult
from pylotto.core.errors import (
    AlreadyExists,
    ConfigError,
    Internal,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    PylottoError,
    Unavailable,
)
from pylotto.core.metadata import ComponentSettings
from pylotto.core.types import Metadata

TEMP_PREFIX = ".pylotto-tmp-"
DEFAULT_MODE = 0o644
FILE_MODE = "FileMode"
FILE_FLAG = "FileFlag"
IS_DIR = "IsDir"

T = TypeVar("T")


class LocalFileStoreSettings(ComponentSettings):
    root_path: str | None = Field(None, alias="rootPath")
    """The directory holding the files; default ``<data_dir>/files``."""


def int_literal(text: str, what: str) -> int:
    """Parse an integer written as Go or C would: ``0x1A``, ``0o644``, ``0644`` (octal), ``420``."""
    value = text.strip().lower()
    try:
        if value.startswith(("0x", "0o", "0b")):
            number = int(value, 0)
        elif len(value) > 1 and value.startswith("0"):
            number = int(value, 8)
        else:
            number = int(value, 10)
    except ValueError:
        raise InvalidArgument(f"metadata {what}={text!r} is not an integer") from None
    if number < 0:
        raise InvalidArgument(f"metadata {what}={text!r} must not be negative")
    return number


def modified(st: os.stat_result) -> str:
    return datetime.fromtimestamp(st.st_mtime, tz=UTC).isoformat()


def os_error(exc: OSError, name: str, store: str) -> PylottoError:
    """The pylotto error for a failed filesystem call on ``name``."""
    code = exc.errno
    where = f"file {name!r} in file store {store}"
    if code == errno.ENOENT:
        return NotFound(f"{where} not found")
    if code == errno.EEXIST:
        return AlreadyExists(f"{where} already exists")
    if code in (errno.EACCES, errno.EPERM, errno.EROFS):
        return PermissionDenied(f"{where}: {exc.strerror}")
    if code in (errno.EISDIR, errno.ENOTDIR, errno.ENOTEMPTY, errno.ENAMETOOLONG, errno.ELOOP):
        return InvalidArgument(f"{where}: {exc.strerror}")
    return Internal(f"{where}: {exc.strerror or exc}")


async def in_thread(func: Callable[..., T], *args: object) -> T:
    """Run blocking ``func`` in a thread; if cancelled, let it finish before unwinding so
    clean-up never races a read or write still running on the same file."""
    future = asyncio.ensure_future(asyncio.to_thread(func, *args))
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        with suppress(BaseException):
            await future
        raise


def _flush_and_sync(handle: BinaryIO) -> None:
    handle.flush()
    os.fsync(handle.fileno())


def _sync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems refuse fsync on a directory; the rename is done anyway
    finally:
        os.close(fd)


class LocalFileStore(FileStore):
    Settings = LocalFileStoreSettings

    def __init__(self, name: str, settings: ComponentSettings, context: ComponentContext) -> None:
        super().__init__(name, settings, context)
        if not isinstance(settings, LocalFileStoreSettings):
            raise TypeError(f"{type(self).__name__} needs LocalFileStoreSettings")
        configured = settings.root_path
        self.root = Path(configured).expanduser() if configured else context.data_dir / "files"
        self.root_real = self.root

    async def init(self) -> None:
        def prepare() -> Path:
            self.root.mkdir(parents=True, exist_ok=True)
            return self.root.resolve(strict=True)

        try:
            self.root_real = await asyncio.to_thread(prepare)
        except OSError as exc:
            raise ConfigError(
                f"file store {self.name}: rootPath {str(self.root)!r}: {exc.strerror or exc}"
            ) from None
        if not self.root_real.is_dir():
            raise ConfigError(
                f"file store {self.name}: rootPath {str(self.root)!r} is not a directory"
            )

    async def ping(self) -> None:
        if not await asyncio.to_thread(self.root_real.is_dir):
            raise Unavailable(f"file store {self.name}: root {self.root_real} is gone")

    # ---- names → paths -------------------------------------------------------------------

    def _path(self, name: str, *, allow_root: bool = False) -> Path:
        """The path ``name`` designates, refusing any way out of the root."""
        if "\x00" in name:
            raise InvalidArgument(f"file name {name!r} contains a NUL byte")
        pure = PurePosixPath(name)
        if pure.is_absolute() or name.startswith("\\"):
            raise InvalidArgument(f"file name {name!r} must be relative to the store root")
        if ".." in pure.parts:
            raise InvalidArgument(f"file name {name!r} may not contain '..'")
        if not pure.parts:
            if allow_root:
                return self.root_real
            raise InvalidArgument(f"file name {name!r} names the store root, not a file")
        if pure.name.startswith(TEMP_PREFIX):
            raise InvalidArgument(f"file names starting with {TEMP_PREFIX!r} are reserved")
        try:
            parent = self.root_real.joinpath(*pure.parts[:-1]).resolve()
            candidate = parent / pure.name
            final = candidate.resolve()
        except (OSError, RuntimeError) as exc:  # RuntimeError: symlink loop
            raise InvalidArgument(f"file name {name!r} cannot be resolved: {exc}") from None
        if not (parent.is_relative_to(self.root_real) and final.is_relative_to(self.root_real)):
            raise InvalidArgument(f"file name {name!r} leads outside the store root")
        return candidate

    # ---- get -----------------------------------------------------------------------------

    async def get(self, name: str, metadata: Metadata, chunk_size: int) -> AsyncIterator[bytes]:
        handle = await in_thread(self._open_for_read, name)
        return self._chunks(handle, chunk_size)

    def _open_for_read(self, name: str) -> BinaryIO:
        path = self._path(name)
        try:
            if path.is_dir():
                raise InvalidArgument(f"file {name!r} in file store {self.name} is a directory")
            return path.open("rb")
        except OSError as exc:
            raise os_error(exc, name, self.name) from None

    @staticmethod
    async def _chunks(handle: BinaryIO, chunk_size: int) -> AsyncIterator[bytes]:
        try:
            while chunk := await in_thread(handle.read, chunk_size):
                yield chunk
        finally:
            handle.close()

    # ---- put -----------------------------------------------------------------------------

    async def put(self, name: str, data: AsyncIterable[bytes], metadata: Metadata) -> None:
        mode = DEFAULT_MODE
        if FILE_MODE in metadata:
            mode = int_literal(metadata[FILE_MODE], FILE_MODE) & 0o7777
        flags = int_literal(metadata[FILE_FLAG], FILE_FLAG) if FILE_FLAG in metadata else None
        exclusive = flags is not None and bool(flags & os.O_CREAT) and bool(flags & os.O_EXCL)
        append = flags is not None and bool(flags & os.O_APPEND)
        begun = asyncio.ensure_future(asyncio.to_thread(self._begin_put, name, flags))
        try:
            target, fd, temp = await asyncio.shield(begun)
        except asyncio.CancelledError:
            with suppress(BaseException):  # the thread may still create the temp file
                _, fd, temp = await begun
                os.close(fd)
                os.unlink(temp)
            raise
        try:
            with os.fdopen(fd, "wb") as out:
                if append:
                    await in_thread(self._copy_existing, name, target, out)
                async for chunk in data:
                    if chunk:
                        await in_thread(out.write, chunk)
                await in_thread(_flush_and_sync, out)
            await in_thread(self._commit, name, temp, target, mode, exclusive)
        except BaseException:
            with suppress(OSError):
                os.unlink(temp)
            raise
        self.context.logger.debug("put %s", target)

    def _begin_put(self, name: str, flags: int | None) -> tuple[Path, int, Path]:
        """Check the target against ``flags``, create its directory and a temp file."""
        target = self._path(name)
        try:
            exists = target.exists()
            if exists and target.is_dir():
                raise InvalidArgument(f"file {name!r} in file store {self.name} is a directory")
            if flags is not None:
                if flags & os.O_CREAT and flags & os.O_EXCL and exists:
                    raise AlreadyExists(f"file {name!r} in file store {self.name} already exists")
                if not flags & os.O_CREAT and not exists:
                    raise NotFound(f"file {name!r} in file store {self.name} not found "
                                   "(FileFlag has no O_CREAT)")
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
            except (FileExistsError, NotADirectoryError):
                raise InvalidArgument(
                    f"file {name!r} in file store {self.name}: a parent is not a directory"
                ) from None
            fd, temp = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=target.parent)
        except OSError as exc:
            raise os_error(exc, name, self.name) from None
        return target, fd, Path(temp)

    def _copy_existing(self, name: str, target: Path, out: BinaryIO) -> None:
        """O_APPEND: start the new content with the current one, if any."""
        try:
            with target.open("rb") as old:
                shutil.copyfileobj(old, out)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise os_error(exc, name, self.name) from None

    def _commit(self, name: str, temp: Path, target: Path, mode: int, exclusive: bool) -> None:
        try:
            os.chmod(temp, mode)
            if exclusive:
                os.link(temp, target)  # fails if the target appeared meanwhile
                os.unlink(temp)
            else:
                os.replace(temp, target)
        except OSError as exc:
            raise os_error(exc, name, self.name) from None
        _sync_directory(target.parent)

    # ---- list / delete / stat -------------------------------------------------------------

    async def list(
        self, directory: str, page_size: int, marker: str, metadata: Metadata
    ) -> ListResult:
        return await in_thread(self._list, directory, page_size, marker)

    def _list(self, directory: str, page_size: int, marker: str) -> ListResult:
        path = self._path(directory, allow_root=True)
        try:
            with os.scandir(path) as scan:
                names = sorted(e.name for e in scan if not e.name.startswith(TEMP_PREFIX))
        except OSError as exc:
            raise os_error(exc, directory, self.name) from None
        after = [n for n in names if n > marker] if marker else names
        page = after[:page_size] if page_size > 0 else after
        files = []
        for entry in page:
            try:
                st = os.stat(path / entry)
            except OSError:
                try:
                    st = os.lstat(path / entry)  # a dangling symlink
                except OSError:
                    continue  # removed while listing
            is_dir = stat.S_ISDIR(st.st_mode)
            files.append(FileInfo(entry, 0 if is_dir else st.st_size, modified(st),
                                  {IS_DIR: "true" if is_dir else "false"}))
        return ListResult(files, page[-1] if page else "", len(after) > len(page))

    async def delete(self, name: str, metadata: Metadata) -> None:
        await in_thread(self._delete, name)

    def _delete(self, name: str) -> None:
        path = self._path(name)
        try:
            if path.is_dir() and not path.is_symlink():
                path.rmdir()
            else:
                path.unlink()
        except OSError as exc:
            raise os_error(exc, name, self.name) from None

    async def stat(self, name: str, metadata: Metadata) -> FileMeta:
        return await in_thread(self._stat, name)

    def _stat(self, name: str) -> FileMeta:
        path = self._path(name)
        try:
            st = path.stat()
        except OSError as exc:
            raise os_error(exc, name, self.name) from None
        is_dir = stat.S_ISDIR(st.st_mode)
        return FileMeta(
            size=st.st_size,
            last_modified=modified(st),
            metadata={
                FILE_MODE: [f"0{stat.S_IMODE(st.st_mode):o}"],
                IS_DIR: ["true" if is_dir else "false"],
            },
        )

