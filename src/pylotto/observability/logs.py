"""Logging set-up: one structured line per event, quiet by default.

A line written while a traced call is served carries its trace id (``trace_id=...`` /
``"trace_id"``), so logs and traces join up. The level of pylotto's loggers can be changed while
running (:func:`set_level`, the actuator's ``/actuator/loggers``).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

from pylotto.observability.tracing import current_trace_id

LEVELS = ("debug", "info", "warning", "error", "critical")


class _KeyValueFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        level = record.levelname.lower()
        line = f'{ts} level={level} logger={record.name} msg="{record.getMessage()}"'
        if trace_id := current_trace_id():
            line += f" trace_id={trace_id}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": record.created,
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if trace_id := current_trace_id():
            out["trace_id"] = trace_id
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out)


def setup(level: str = "info", fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JsonFormatter() if fmt == "json" else _KeyValueFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    set_level(level)
    from pylotto.observability.throttled import quiet_library_loggers

    quiet_library_loggers()


def set_level(level: str) -> None:
    """Set the level of pylotto's loggers (``debug``, ``info``, ``warning``, ``error``)."""
    if level.lower() not in LEVELS:
        from pylotto.core.errors import InvalidArgument

        raise InvalidArgument(f"log level {level!r} is not one of {', '.join(LEVELS)}")
    logging.getLogger("pylotto").setLevel(level.upper())


def current_level() -> str:
    return logging.getLevelName(logging.getLogger("pylotto").getEffectiveLevel()).lower()
