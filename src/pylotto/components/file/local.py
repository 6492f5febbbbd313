"""``local``: a file store kept in one directory of this machine.

File names are paths relative to ``rootPath`` (default ``<data_dir>/files``, created at start).
A name that is absolute or contains ``..`` is refused with InvalidArgument, and so is a name with
a symbolic link in any component: every call walks the name from a descriptor of the root without
following links (:mod:`.beneath`), so no swap of a link between two calls can lead it outside.
ListFile and GetFileMeta report entries themselves (``lstat``), never a link's target. Writes go
to a temporary file in the target's directory that is renamed over the target once complete, so
an interrupted PutFile never leaves a partial file.

Put metadata understood (Layotto's names): ``FileMode`` (permission bits, integer literal:
``"0644"`` octal, ``"420"`` decimal; default 0644) and ``FileFlag`` (``os.O_*`` bits; honoured:
``O_CREAT`` absent → the file must exist, ``O_CREAT|O_EXCL`` → it must not, ``O_APPEND`` → append).
"""

from __future__ import annotations

import asyncio
import errno
import os
import secrets
import shutil
import stat
from collections.abc import AsyncIterable, AsyncIterator, Callable
from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, TypeVar

from pydantic import Field

from pylotto.components.base import ComponentContext
from pylotto.components.file.base import FileInfo, FileMeta, FileStore, ListResult
from pylotto.components.file.beneath import (
    NEW_FILE_FLAGS,
    Root,
    entry_stat,
    name_parts,
    open_regular_file,
)
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


def _flush_and_sync(handle: BinaryIO, mode: int) -> None:
    """Set the final permission bits through the descriptor (a path could be a swapped link)
    and make the content durable."""
    handle.flush()
    os.fchmod(handle.fileno(), mode)
    os.fsync(handle.fileno())


class LocalFileStore(FileStore):
    Settings = LocalFileStoreSettings

    def __init__(self, name: str, settings: ComponentSettings, context: ComponentContext) -> None:
        super().__init__(name, settings, context)
        if not isinstance(settings, LocalFileStoreSettings):
            raise TypeError(f"{type(self).__name__} needs LocalFileStoreSettings")
        configured = settings.root_path
        self.root = Path(configured).expanduser() if configured else context.data_dir / "files"
        self.root_real = self.root
        self._root: Root | None = None

    async def init(self) -> None:
        def prepare() -> tuple[Path, Root]:
            self.root.mkdir(parents=True, exist_ok=True)
            real = self.root.resolve(strict=True)
            return real, Root(real)

        try:
            self.root_real, self._root = await asyncio.to_thread(prepare)
        except NotADirectoryError:
            raise ConfigError(
                f"file store {self.name}: rootPath {str(self.root)!r} is not a directory"
            ) from None
        except OSError as exc:
            raise ConfigError(
                f"file store {self.name}: rootPath {str(self.root)!r}: {exc.strerror or exc}"
            ) from None

    async def close(self) -> None:
        if self._root is not None:
            self._root.close()

    async def ping(self) -> None:
        if not await asyncio.to_thread(self._held_root().still_there):
            raise Unavailable(f"file store {self.name}: root {self.root_real} is gone")

    def _held_root(self) -> Root:
        if self._root is None:
            raise Unavailable(f"file store {self.name} is not open")
        return self._root

    # ---- names → components ----------------------------------------------------------------

    def _parts(self, name: str, *, allow_root: bool = False) -> tuple[str, ...]:
        """The components of ``name`` below the root, refusing any name that is not one."""
        parts = name_parts(name, allow_root=allow_root)
        if not parts:
            return ()
        if parts[-1].startswith(TEMP_PREFIX):
            raise InvalidArgument(f"file names starting with {TEMP_PREFIX!r} are reserved")
        return parts

    def _what(self, name: str) -> str:
        return f"file {name!r} in file store {self.name}"

    def _parent(self, name: str, *, create: bool = False) -> tuple[int, str]:
        """A descriptor of the directory holding ``name`` (the caller closes it) and the last
        component of ``name``."""
        parts = self._parts(name)
        return self._held_root().directory(parts[:-1], self._what(name), create=create), parts[-1]

    # ---- get -----------------------------------------------------------------------------

    async def get(self, name: str, metadata: Metadata, chunk_size: int) -> AsyncIterator[bytes]:
        handle = await in_thread(self._open_for_read, name)
        return self._chunks(handle, chunk_size)

    def _open_for_read(self, name: str) -> BinaryIO:
        try:
            parent, leaf = self._parent(name)
            try:
                fd = open_regular_file(parent, leaf, self._what(name))
            finally:
                os.close(parent)
        except OSError as exc:
            raise os_error(exc, name, self.name) from None
        return os.fdopen(fd, "rb")

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
            parent, leaf, fd, temp = await asyncio.shield(begun)
        except asyncio.CancelledError:
            with suppress(BaseException):  # the thread may still create the temp file
                parent, _, fd, temp = await begun
                os.close(fd)
                os.unlink(temp, dir_fd=parent)
                os.close(parent)
            raise
        try:
            with os.fdopen(fd, "wb") as out:
                if append:
                    await in_thread(self._copy_existing, name, parent, leaf, out)
                async for chunk in data:
                    if chunk:
                        await in_thread(out.write, chunk)
                await in_thread(_flush_and_sync, out, mode)
            await in_thread(self._commit, name, parent, temp, leaf, exclusive)
        except BaseException:
            with suppress(OSError):
                os.unlink(temp, dir_fd=parent)
            raise
        finally:
            os.close(parent)
        self.context.logger.debug("put %s", name)

    def _begin_put(self, name: str, flags: int | None) -> tuple[int, str, int, str]:
        """Check the target against ``flags``, create its directory and a temp file there;
        the directory's descriptor, the target's last component, the temp file's descriptor
        and name."""
        creates = flags is None or bool(flags & os.O_CREAT)
        try:
            try:
                parent, leaf = self._parent(name)
            except FileNotFoundError:
                if not creates:
                    raise
                parent, leaf = self._parent(name, create=True)
        except OSError as exc:
            raise os_error(exc, name, self.name) from None
        try:
            current = entry_stat(parent, leaf)
            if current is not None and stat.S_ISDIR(current.st_mode):
                raise InvalidArgument(f"{self._what(name)} is a directory")
            if flags is not None:
                if flags & os.O_CREAT and flags & os.O_EXCL and current is not None:
                    raise AlreadyExists(f"{self._what(name)} already exists")
                if not creates and current is None:
                    raise NotFound(f"{self._what(name)} not found (FileFlag has no O_CREAT)")
            temp = f"{TEMP_PREFIX}{secrets.token_hex(8)}"
            fd = os.open(temp, NEW_FILE_FLAGS, 0o600, dir_fd=parent)
        except OSError as exc:
            os.close(parent)
            raise os_error(exc, name, self.name) from None
        except BaseException:
            os.close(parent)
            raise
        return parent, leaf, fd, temp

    def _copy_existing(self, name: str, parent: int, leaf: str, out: BinaryIO) -> None:
        """O_APPEND: start the new content with the current one, if any."""
        try:
            fd = open_regular_file(parent, leaf, self._what(name))
        except FileNotFoundError:
            return
        except OSError as exc:
            raise os_error(exc, name, self.name) from None
        with os.fdopen(fd, "rb") as old:
            shutil.copyfileobj(old, out)

    def _commit(self, name: str, parent: int, temp: str, leaf: str, exclusive: bool) -> None:
        try:
            if exclusive:  # fails if the target appeared meanwhile
                os.link(temp, leaf, src_dir_fd=parent, dst_dir_fd=parent, follow_symlinks=False)
                os.unlink(temp, dir_fd=parent)
            else:  # a rename replaces a link itself, never its target
                os.replace(temp, leaf, src_dir_fd=parent, dst_dir_fd=parent)
        except OSError as exc:
            raise os_error(exc, name, self.name) from None
        with suppress(OSError):  # some filesystems refuse fsync on a directory
            os.fsync(parent)

    # ---- list / delete / stat -------------------------------------------------------------

    async def list(
        self, directory: str, page_size: int, marker: str, metadata: Metadata
    ) -> ListResult:
        return await in_thread(self._list, directory, page_size, marker)

    def _list(self, directory: str, page_size: int, marker: str) -> ListResult:
        parts = self._parts(directory, allow_root=True)
        try:
            fd = self._held_root().directory(parts, self._what(directory))
        except OSError as exc:
            raise os_error(exc, directory, self.name) from None
        try:
            with os.scandir(fd) as scan:
                names = sorted(e.name for e in scan if not e.name.startswith(TEMP_PREFIX))
            after = [n for n in names if n > marker] if marker else names
            page = after[:page_size] if page_size > 0 else after
            files = []
            for entry in page:
                st = entry_stat(fd, entry)  # the entry itself: a link is not followed
                if st is None:
                    continue  # removed while listing
                is_dir = stat.S_ISDIR(st.st_mode)
                files.append(FileInfo(entry, 0 if is_dir else st.st_size, modified(st),
                                      {IS_DIR: "true" if is_dir else "false"}))
        except OSError as exc:
            raise os_error(exc, directory, self.name) from None
        finally:
            os.close(fd)
        return ListResult(files, page[-1] if page else "", len(after) > len(page))

    async def delete(self, name: str, metadata: Metadata) -> None:
        await in_thread(self._delete, name)

    def _delete(self, name: str) -> None:
        try:
            parent, leaf = self._parent(name)
            try:
                current = entry_stat(parent, leaf)
                if current is None:
                    raise FileNotFoundError(errno.ENOENT, "not found")
                if stat.S_ISDIR(current.st_mode):
                    os.rmdir(leaf, dir_fd=parent)
                else:  # a link is removed itself, never its target
                    os.unlink(leaf, dir_fd=parent)
            finally:
                os.close(parent)
        except OSError as exc:
            raise os_error(exc, name, self.name) from None

    async def stat(self, name: str, metadata: Metadata) -> FileMeta:
        return await in_thread(self._stat, name)

    def _stat(self, name: str) -> FileMeta:
        try:
            parent, leaf = self._parent(name)
            try:
                st = entry_stat(parent, leaf)
            finally:
                os.close(parent)
        except OSError as exc:
            raise os_error(exc, name, self.name) from None
        if st is None:
            raise NotFound(f"{self._what(name)} not found")
        is_dir = stat.S_ISDIR(st.st_mode)
        return FileMeta(
            size=st.st_size,
            last_modified=modified(st),
            metadata={
                FILE_MODE: [f"0{stat.S_IMODE(st.st_mode):o}"],
                IS_DIR: ["true" if is_dir else "false"],
            },
        )
