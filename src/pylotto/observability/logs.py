"""Logging set-up: one structured line per event, quiet by default.

A line written while a traced call is served carries its trace id (``trace_id=...`` /
``"trace_id"``), so logs and traces join up. The level of pylotto's loggers can be changed while
running (:func:`set_level`, the actuator's ``/actuator/loggers``).
"""

from __future__ import annotations

import json
import logging
import socket
import sys
import time
from typing import Any

from pylotto.observability.tracing import current_trace_id
from pylotto.version import __version__

LEVELS = ("debug", "info", "warning", "error", "critical")
FIELDS = "fields"
"""A record's own fields, after its message: ``log.info("HTTP API Called",
extra={FIELDS: {"method": ...}})`` → ``msg="HTTP API Called" method="..."`` (logfmt) or keys of
the JSON line, as daprd writes its API log."""


def rfc3339(created: float) -> str:
    """``created`` (seconds since the epoch) as an RFC 3339 UTC time with microseconds."""
    whole = int(created)
    micros = int((created - whole) * 1_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{micros:06d}Z"


class _KeyValueFormatter(logging.Formatter):
    """``time=... level=... scope=... msg="..."``: logfmt, the message quoted and escaped
    (a quote or a newline in it cannot break the line or forge a field)."""

    def format(self, record: logging.LogRecord) -> str:
        level = record.levelname.lower()
        line = (f"time={rfc3339(record.created)} level={level} scope={record.name} "
                f"msg={json.dumps(record.getMessage(), ensure_ascii=False)}")
        for key, value in getattr(record, FIELDS, {}).items():
            line += f" {key}={json.dumps(value, ensure_ascii=False)}"
        if trace_id := current_trace_id():
            line += f" trace_id={trace_id}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class _JsonFormatter(logging.Formatter):
    """daprd's JSON line (``time``, ``level``, ``msg``, ``scope``, ``type``, ``app_id``,
    ``instance``, ``ver``), plus ``trace_id`` inside a traced call and ``exc``."""

    fixed: dict[str, str] = {"type": "log", "app_id": "", "instance": socket.gethostname(),
                             "ver": __version__}
    """The fields of every line (``app_id`` set once the configuration names it)."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": rfc3339(record.created),
            "level": record.levelname.lower(),
            "scope": record.name,
            "msg": record.getMessage(),
            **self.fixed,
            **getattr(record, FIELDS, {}),
        }
        if trace_id := current_trace_id():
            out["trace_id"] = trace_id
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


def setup(level: str = "info", fmt: str = "text") -> None:
    """Log to stderr in ``fmt`` (``text``: logfmt; ``json``: daprd's JSON lines)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JsonFormatter() if fmt == "json" else _KeyValueFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    set_level(level)
    from pylotto.observability.throttled import quiet_library_loggers

    quiet_library_loggers()


def name_app(app_id: str) -> None:
    """JSON lines from now on carry ``app_id``."""
    _JsonFormatter.fixed["app_id"] = app_id


def set_level(level: str) -> None:
    """Set the level of pylotto's loggers (``debug``, ``info``, ``warning``, ``error``)."""
    if level.lower() not in LEVELS:
        from pylotto.core.errors import InvalidArgument

        raise InvalidArgument(f"log level {level!r} is not one of {', '.join(LEVELS)}")
    logging.getLogger("pylotto").setLevel(level.upper())


def current_level() -> str:
    return logging.getLevelName(logging.getLogger("pylotto").getEffectiveLevel()).lower()
