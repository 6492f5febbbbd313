"""The TTL sweeper of the SQL state stores: one schedule per store, one sweep per interval
however many sidecars share the table.

Expired rows are invisible at once (every read filters on the expiry), so deleting them is
housekeeping, and with several sidecars on one table it needs doing once per interval, not
once per sidecar. Each store therefore keeps a *last-cleanup row* (key ``last-cleanup`` in a
small ``<tableName>_meta`` table) holding the time of the last sweep, and gives the sweeper
two steps written in its own SQL:

- ``claim(min_age)``: in one atomic statement, set the row to "now" only if the time it holds
  is at least ``min_age`` seconds old (or the row is missing), and say whether it did;
- ``delete_expired()``: delete the expired rows, returning how many.

Every ``interval`` seconds (and once on start) each sidecar claims; only the one whose claim
changed the row sweeps — components-contrib's ``common/component/sql/cleanup.go`` works the
same way. The claim asks for a little less than the interval (:data:`CLAIM_MARGIN`), so a
sidecar's own next turn is never refused for timer jitter. With ``interval <= 0`` there is no
schedule and no claim: the store sweeps once, on start.

A sweep that fails is logged and tried again at the next turn: expired rows stay invisible
meanwhile, so a failed sweep never fails the store.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from pylotto.core.errors import PylottoError
from pylotto.core.tasks import stop_task

LAST_CLEANUP = "last-cleanup"
"""The key of the last-cleanup row in a store's ``<tableName>_meta`` table."""
META_SUFFIX = "_meta"
"""Appended to the table name for the metadata table (short: MySQL names stop at 64)."""
CLAIM_MARGIN = 0.1
"""Seconds (at most a tenth of the interval) a claim asks less than the interval."""

Claim = Callable[[float], Awaitable[bool]]
Delete = Callable[[], Awaitable[int]]


class ExpirySweeper:
    """Deletes a store's expired rows on start and every ``interval`` seconds, when this
    sidecar wins the interval's claim. ``start`` from the store's ``init``, ``close`` from
    its ``close``."""

    def __init__(self, interval: float, claim: Claim, delete: Delete,
                 logger: logging.Logger) -> None:
        self.interval = interval
        self._claim = claim
        self._delete = delete
        self._log = logger
        self._task: asyncio.Task[None] | None = None

    @property
    def min_age(self) -> float:
        """How old the last sweep must be for this sidecar to sweep."""
        return self.interval - min(CLAIM_MARGIN, self.interval / 10)

    async def start(self) -> None:
        await self.sweep()
        if self.interval > 0:
            self._task = asyncio.create_task(self._loop())

    async def close(self) -> None:
        task, self._task = self._task, None
        await stop_task(task)

    async def sweep(self) -> int | None:
        """Sweep if no sidecar did within the interval: how many rows were deleted (None:
        another one had swept, or the sweep failed)."""
        try:
            if self.interval > 0 and not await self._claim(self.min_age):
                self._log.debug("expired state was deleted less than %.1fs ago: not again",
                                self.interval)
                return None
            deleted = await self._delete()
        except PylottoError as exc:
            self._log.warning("deleting expired state failed: %s", exc.message)
            return None
        if deleted:
            self._log.debug("deleted %d expired keys", deleted)
        return deleted

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self.sweep()
