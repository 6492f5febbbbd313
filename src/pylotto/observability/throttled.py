"""Bad input is logged at most once per kind and interval: a hostile or broken client cannot
flood the log.

:class:`ThrottledLog` writes the first line of a *kind* (a short string naming what went wrong
and where, e.g. ``"grpc undecodable /dapr.proto.runtime.v1.Dapr/GetState"``) and drops the
next ones of that kind for ``interval`` seconds; the next line written after that says how many
were dropped in between. Lines are warnings without a traceback — the caller's mistake is
answered with its status code, the log only says it happens. The kinds remembered are bounded
(:data:`MAX_KINDS`): past that the oldest are forgotten, so an attacker inventing a new kind per
call gets at most one line per forgotten kind, never unbounded memory.
"""

from __future__ import annotations

import logging
import sys
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

DEFAULT_INTERVAL_SECONDS = 60.0
MAX_KINDS = 256
"""Kinds remembered at once; the least recently logged is forgotten first."""


def _admit(seen: OrderedDict[Any, list[float]], kind: Any, now: float, interval: float,
           max_kinds: int) -> int | None:
    """Whether a line of ``kind`` is written now: None (drop it), or how many lines of it were
    dropped since the last one. ``seen`` holds per kind [when last written, lines dropped
    since], at most ``max_kinds`` of them (the least recently written forgotten first)."""
    last = seen.get(kind)
    if last is not None and now - last[0] < interval:
        last[1] += 1
        return None
    dropped = int(last[1]) if last is not None else 0
    seen[kind] = [now, 0]
    seen.move_to_end(kind)
    while len(seen) > max_kinds:
        seen.popitem(last=False)
    return dropped


class ThrottledLog:
    """``logger``'s lines, one per kind per ``interval`` seconds."""

    def __init__(self, logger: logging.Logger, interval: float = DEFAULT_INTERVAL_SECONDS,
                 *, clock: Callable[[], float] = time.monotonic,
                 max_kinds: int = MAX_KINDS) -> None:
        if interval < 0 or max_kinds < 1:
            raise ValueError("interval must be >= 0 seconds and max_kinds >= 1")
        self.logger = logger
        self.interval = interval
        self.clock = clock
        self.max_kinds = max_kinds
        self._kinds: OrderedDict[str, list[float]] = OrderedDict()
        """Per kind: [when last written, lines dropped since]."""

    def warning(self, kind: str, message: str, *args: object) -> bool:
        """Write ``message % args`` at warning level unless a line of ``kind`` was written less
        than ``interval`` seconds ago; True when written."""
        return self.log(logging.WARNING, kind, message, *args)

    def log(self, level: int, kind: str, message: str, *args: object,
            exc_info: BaseException | None = None) -> bool:
        """Like :meth:`warning` at ``level``; ``exc_info`` adds a traceback to the line written
        (for an internal error: once per interval is enough to find the bug)."""
        if not self.logger.isEnabledFor(level):
            return False
        dropped = _admit(self._kinds, kind, self.clock(), self.interval, self.max_kinds)
        if dropped is None:
            return False
        if dropped:
            message += f" ({dropped} more like it since the last such line, not logged)"
        self.logger.log(level, message, *args, exc_info=exc_info)
        return True


class ThrottledServerLog:
    """The ``logger=`` of an HTTP server (aiohttp's RequestHandler calls ``debug`` and
    ``exception``): an exception that ``is_client_mistake`` (a malformed request) becomes a
    warning without a traceback, once per exception type and interval; any other (a bug) keeps
    its traceback, once per type and interval too."""

    def __init__(self, logger: logging.Logger,
                 is_client_mistake: Callable[[BaseException], bool],
                 interval: float = DEFAULT_INTERVAL_SECONDS) -> None:
        self.logger = logger
        self.is_client_mistake = is_client_mistake
        self.throttled = ThrottledLog(logger, interval)

    def debug(self, message: str, *args: Any, **kwargs: Any) -> None:
        self.logger.debug(message, *args, **kwargs)

    def exception(self, message: str, *args: Any, exc_info: Any = True, **_: Any) -> None:
        exc = exc_info if isinstance(exc_info, BaseException) else sys.exc_info()[1]
        kind = type(exc).__name__ if exc is not None else "error"
        if exc is not None and self.is_client_mistake(exc):
            self.throttled.warning(f"client {kind}", message + ": %s: %s", *args, kind,
                                   _short(exc))
        else:
            self.throttled.log(logging.ERROR, f"internal {kind}", message, *args,
                               exc_info=exc)


def _short(exc: BaseException) -> str:
    text = str(exc).replace("\n", " ")
    return text if len(text) <= 200 else text[:197] + "..."


class ThrottledRecords(logging.Filter):
    """A filter for a library's logger that logs per event, not per mistake of ours: grpcio's
    ``grpc._cython.cygrpc`` writes an ERROR with a traceback (``ExecuteBatchError``) for every
    stream whose client went away mid-write. One record per logger and message per
    ``interval`` seconds passes, without its traceback; the next says how many were dropped."""

    def __init__(self, interval: float = DEFAULT_INTERVAL_SECONDS, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.interval = interval
        self.clock = clock
        self._kinds: OrderedDict[tuple[str, str], list[float]] = OrderedDict()

    def filter(self, record: logging.LogRecord) -> bool:
        dropped = _admit(self._kinds, (record.name, str(record.msg)[:120]), self.clock(),
                         self.interval, MAX_KINDS)
        if dropped is None:
            return False
        if record.exc_info and record.exc_info[1] is not None:
            cause = _short(record.exc_info[1]).replace("%", "%%")  # msg is %-formatted
            record.msg = f"{record.msg} ({cause})"
        record.exc_info = None
        record.exc_text = None
        if dropped:
            record.msg = f"{record.msg} ({dropped} more like it since the last such line, " \
                         "not logged)"
        return True


LIBRARY_LOGGERS = ("grpc._cython.cygrpc",)
"""Loggers of libraries that write a line (and a traceback) per failed client stream."""


def quiet_library_loggers(interval: float = DEFAULT_INTERVAL_SECONDS) -> None:
    """Throttle :data:`LIBRARY_LOGGERS` (once per process: a second call adds nothing)."""
    for name in LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, ThrottledRecords) for f in logger.filters):
            logger.addFilter(ThrottledRecords(interval))
