"""The connected workers and what is pending on them (docs/design/workflows.md §1.3).

Each ``GetWorkItems`` stream is a :class:`Worker` with its own send queue. A work item goes to
one worker (round-robin), with a fresh completion token; the answer must echo that token (an
empty token is accepted, for old workers, and matched by instance and task). A non-empty
token that names no pending item is stale and discarded. When a worker disconnects, every
item still pending on it is sent again, with a new token, to another worker (or to the next
one to connect). Items submitted while no worker is connected wait for one.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import uuid
from dataclasses import dataclass, field

from pylotto.capabilities.workflows.api import WorkItemSink
from pylotto.proto import durabletask as dt

log = logging.getLogger("pylotto.workflows")

Answer = dt.service.WorkflowResponse | dt.service.ActivityResponse


@dataclass(eq=False, slots=True)
class Pending:
    item: dt.service.WorkItem
    answer: asyncio.Future[Answer]
    key: tuple[str, int]
    """(instance id, -1) for a turn, (instance id, task id) for an activity."""
    worker: Worker | None = None
    token: str = ""


@dataclass(eq=False, slots=True)
class Worker:
    """One connected ``GetWorkItems`` stream."""

    capabilities: tuple[int, ...] = ()
    queue: asyncio.Queue[dt.service.WorkItem] = field(default_factory=asyncio.Queue)
    pending: set[Pending] = field(default_factory=set)


class Dispatcher(WorkItemSink):
    def __init__(self) -> None:
        self.workers: list[Worker] = []
        self._turn = itertools.count()
        self._by_token: dict[str, Pending] = {}
        self._by_key: dict[tuple[str, int], Pending] = {}
        self._waiting: list[Pending] = []
        self.stale = 0
        """Answers discarded (a token naming nothing pending)."""

    # ---- workers -------------------------------------------------------------------------

    def connect(self, capabilities: tuple[int, ...] = ()) -> Worker:
        worker = Worker(capabilities)
        self.workers.append(worker)
        waiting, self._waiting = self._waiting, []
        for pending in waiting:
            self._send(pending)
        log.info("workflows: a worker connected (%d now)", len(self.workers))
        return worker

    def disconnect(self, worker: Worker) -> None:
        if worker not in self.workers:
            return
        self.workers.remove(worker)
        again = [p for p in worker.pending if not p.answer.done()]
        worker.pending.clear()
        for pending in again:
            self._by_token.pop(pending.token, None)
            self._send(pending)
        log.info("workflows: a worker disconnected (%d left; %d items sent again)",
                 len(self.workers), len(again))

    # ---- items ---------------------------------------------------------------------------

    def _send(self, pending: Pending) -> None:
        if not self.workers:
            pending.worker = None
            self._waiting.append(pending)
            return
        worker = self.workers[next(self._turn) % len(self.workers)]
        pending.token = uuid.uuid4().hex
        pending.worker = worker
        item = dt.service.WorkItem()  # each send its own message: its own token
        item.CopyFrom(pending.item)
        item.completionToken = pending.token
        self._by_token[pending.token] = pending
        worker.pending.add(pending)
        worker.queue.put_nowait(item)

    async def _submit(self, item: dt.service.WorkItem, key: tuple[str, int]) -> Answer:
        previous = self._by_key.get(key)
        if previous is not None and not previous.answer.done():
            previous.answer.cancel()  # superseded (a re-run of the same turn or activity)
            self._forget(previous)
        pending = Pending(item, asyncio.get_running_loop().create_future(), key)
        self._by_key[key] = pending
        self._send(pending)
        try:
            return await pending.answer
        finally:
            self._forget(pending)

    def _forget(self, pending: Pending) -> None:
        self._by_token.pop(pending.token, None)
        if self._by_key.get(pending.key) is pending:
            del self._by_key[pending.key]
        if pending.worker is not None:
            pending.worker.pending.discard(pending)
        if pending in self._waiting:
            self._waiting.remove(pending)

    async def orchestrate(self, request: dt.service.WorkflowRequest
                          ) -> dt.service.WorkflowResponse:
        answer = await self._submit(dt.service.WorkItem(workflowRequest=request),
                                    (request.instanceId, -1))
        assert isinstance(answer, dt.service.WorkflowResponse)
        return answer

    async def activity(self, request: dt.service.ActivityRequest
                       ) -> dt.service.ActivityResponse:
        answer = await self._submit(dt.service.WorkItem(activityRequest=request),
                                    (request.workflowInstance.instanceId, request.taskId))
        assert isinstance(answer, dt.service.ActivityResponse)
        return answer

    # ---- answers -------------------------------------------------------------------------

    def complete(self, answer: Answer) -> bool:
        """Hand a worker's answer to the item it answers; False: stale, discarded."""
        token = answer.completionToken
        if token:
            pending = self._by_token.get(token)
        elif isinstance(answer, dt.service.WorkflowResponse):
            pending = self._by_key.get((answer.instanceId, -1))
        else:
            pending = self._by_key.get((answer.instanceId, answer.taskId))
        kind_ok = pending is not None and (
            isinstance(answer, dt.service.WorkflowResponse) == (pending.key[1] == -1))
        if pending is None or not kind_ok or pending.answer.done():
            self.stale += 1
            log.debug("workflows: a stale answer for %s discarded", answer.instanceId)
            return False
        pending.answer.set_result(answer)
        return True

    @property
    def pending_count(self) -> int:
        return len(self._by_key)
