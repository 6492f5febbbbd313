"""Files beneath one root directory, reached through its descriptor, no link followed.

Every name is walked one component at a time from a descriptor of the root: each directory is
opened with ``O_DIRECTORY | O_NOFOLLOW`` relative to its parent's descriptor (``openat``), and
the last component is opened, created, renamed, stat'ed or removed relative to the descriptor of
its directory, never through a path string. A symbolic link anywhere in a name is refused, even
one pointing inside the root: a link swapped in between a check and an open can then never
make a call reach outside the root, because there is no check separate from the open.

The root itself (the operator's ``rootPath``) is opened once, links and all, when the store
starts; a descriptor of it is duplicated for each call, so closing the store while a call runs
in a thread never leaves that call with a descriptor number reused by another file.
"""

from __future__ import annotations

import errno
import os
import stat
import threading
from collections.abc import Sequence
from contextlib import suppress
from pathlib import Path, PurePosixPath

from pylotto.core.errors import InvalidArgument, Unavailable

DIRECTORY_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
"""``O_NONBLOCK`` so that opening a FIFO never waits for a writer (it is refused after)."""
NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
DIRECTORY_MODE = 0o777
"""Mode of a directory created by a put (less the process umask), as ``mkdir -p``."""


def name_parts(name: str, *, allow_root: bool = False, what: str = "file name") -> tuple[str, ...]:
    """The components of ``name`` below a root, refusing any name that is not one: a NUL byte,
    an absolute name, ``..`` anywhere; the root itself (an empty name, ``.``) only with
    ``allow_root``. The one rule of every component confined to a root directory."""
    if "\x00" in name:
        raise InvalidArgument(f"{what} {name!r} contains a NUL byte")
    pure = PurePosixPath(name)
    if pure.is_absolute() or name.startswith("\\"):
        raise InvalidArgument(f"{what} {name!r} must be relative to the store root")
    if ".." in pure.parts:
        raise InvalidArgument(f"{what} {name!r} may not contain '..'")
    if not pure.parts and not allow_root:
        raise InvalidArgument(f"{what} {name!r} names the store root, not a file")
    return pure.parts


def refused_link(what: str, component: str) -> InvalidArgument:
    """``what``: how messages name the file (``file 'a/b' in file store local``)."""
    return InvalidArgument(f"{what}: {component!r} is a symbolic link (the store follows no links)")


class Root:
    """A descriptor of the store's root directory; see the module docstring."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def descriptor(self) -> int:
        """A new descriptor of the root, the caller's to close."""
        with self._lock:
            if self._fd is None:
                raise Unavailable(f"file store root {self.path} is closed")
            return os.dup(self._fd)

    def still_there(self) -> bool:
        """Whether the root path still leads to the directory opened at start."""
        fd = self.descriptor()
        try:
            held = os.fstat(fd)
        finally:
            os.close(fd)
        try:
            return held.st_nlink > 0 and os.path.samestat(held, os.stat(self.path))
        except OSError:
            return False

    def directory(self, parts: Sequence[str], what: str, *, create: bool = False) -> int:
        """A descriptor of the directory ``parts`` (components below the root), the caller's to
        close; with ``create``, missing directories are made. FileNotFoundError when one is
        missing (and not created); InvalidArgument for a link or a file on the way."""
        fd = self.descriptor()
        try:
            for part in parts:
                child = self._open_child(fd, part, what, create)
                os.close(fd)
                fd = child
        except BaseException:
            os.close(fd)
            raise
        return fd

    @staticmethod
    def _open_child(parent: int, part: str, what: str, create: bool) -> int:
        try:
            try:
                return os.open(part, DIRECTORY_FLAGS, dir_fd=parent)
            except FileNotFoundError:
                if not create:
                    raise
                with suppress(FileExistsError):  # made meanwhile by another call: open it
                    os.mkdir(part, DIRECTORY_MODE, dir_fd=parent)
                return os.open(part, DIRECTORY_FLAGS, dir_fd=parent)
        except OSError as exc:
            if exc.errno not in (errno.ENOTDIR, errno.ELOOP):
                raise
            if is_link(parent, part):
                raise refused_link(what, part) from None
            raise InvalidArgument(f"{what}: a parent is not a directory") from None


def is_link(directory: int, leaf: str) -> bool:
    try:
        return stat.S_ISLNK(os.stat(leaf, dir_fd=directory, follow_symlinks=False).st_mode)
    except OSError:
        return False


def entry_stat(directory: int, leaf: str) -> os.stat_result | None:
    """``lstat`` of ``leaf`` in ``directory``; None when it does not exist."""
    try:
        return os.stat(leaf, dir_fd=directory, follow_symlinks=False)
    except FileNotFoundError:
        return None


def open_regular_file(directory: int, leaf: str, what: str) -> int:
    """A read descriptor of the regular file ``leaf``; InvalidArgument for a link, a directory
    or anything that is not a regular file."""
    try:
        fd = os.open(leaf, READ_FLAGS, dir_fd=directory)
    except OSError as exc:
        if exc.errno == errno.ELOOP and is_link(directory, leaf):
            raise refused_link(what, leaf) from None
        raise
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise InvalidArgument(f"{what} is a directory")
        if not stat.S_ISREG(mode):
            raise InvalidArgument(f"{what} is not a regular file")
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd
