"""The last warnings and errors pylotto logged, kept for the dashboard (a logging handler on
the ``pylotto`` logger: what the log shows, no more)."""

from __future__ import annotations

import logging
from collections import deque
from typing import Any

MAX_RECORDS = 100


class RecentErrors(logging.Handler):
    def __init__(self, max_records: int = MAX_RECORDS) -> None:
        super().__init__(logging.WARNING)
        self._records: deque[dict[str, Any]] = deque(maxlen=max_records)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not break the caller's logging
            message = str(record.msg)
        self._records.append({"time": record.created, "level": record.levelname.lower(),
                              "scope": record.name, "msg": message})

    def records(self) -> list[dict[str, Any]]:
        """Most recent first."""
        return list(reversed(self._records))

    def attach(self) -> None:
        logging.getLogger("pylotto").addHandler(self)

    def detach(self) -> None:
        logging.getLogger("pylotto").removeHandler(self)
