"""The engine on a real actor runtime (ActorsCapability on SingleMember over the in-memory
state store), with a scripted worker on the dispatcher in place of the SDK: one transaction
per turn, activities' results de-duplicated, purge and recreate rules."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from pylotto.capabilities.actors import ActorsCapability, ActorState
from pylotto.capabilities.workflows import WorkflowsCapability
from pylotto.capabilities.workflows.dispatch import Worker
from pylotto.components.state.base import StateStore
from pylotto.config.model import ActorsConfig
from pylotto.core.errors import AlreadyExists, Internal, NotFound
from pylotto.proto import durabletask as dt
from tests.unit.capabilities.actors.conftest import APP, STORE, memory_store, state_over
from tests.unit.capabilities.workflows.events import complete, schedule


class Counting:
    """Counts the store's transactions."""

    def __init__(self, store: StateStore) -> None:
        self.count = 0
        inner = store.multi  # type: ignore[attr-defined]

        async def multi(*args: Any, **kwargs: Any) -> None:
            self.count += 1
            await inner(*args, **kwargs)

        store.multi = multi  # type: ignore[attr-defined]


def chain_worker(worker: Worker, engine: WorkflowsCapability, steps: int,
                 seen: list[dt.service.WorkflowRequest]) -> asyncio.Task[None]:
    """A worker that runs ``steps`` activities one after the other, then completes with
    their sum; each activity answers its task id (and answers it twice)."""

    async def run() -> None:
        while True:
            item = await worker.queue.get()
            if item.HasField("activityRequest"):
                request = item.activityRequest
                answer = dt.service.ActivityResponse(
                    instanceId=request.workflowInstance.instanceId, taskId=request.taskId,
                    completionToken=item.completionToken)
                answer.result.value = str(request.taskId + 1)
                engine.dispatcher.complete(answer)
                continue
            request = item.workflowRequest
            seen.append(request)
            events = [*request.pastEvents, *request.newEvents]
            results = [int(e.taskCompleted.result.value) for e in events
                       if e.HasField("taskCompleted")]
            action = (schedule(len(results), "step") if len(results) < steps
                      else complete(steps, dt.COMPLETED, str(sum(results))))
            response = dt.service.WorkflowResponse(instanceId=request.instanceId,
                                                   completionToken=item.completionToken)
            response.actions.append(action)
            engine.dispatcher.complete(response)

    return asyncio.create_task(run())


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[tuple[WorkflowsCapability, Counting]]:
    store = await memory_store(tmp_path)
    counting = Counting(store)
    actors = ActorsCapability(ActorState(state_over(store), STORE, APP),
                              ActorsConfig(fencing=True), APP)
    await actors.start()
    workflows = WorkflowsCapability(actors, APP)
    await workflows.start()
    yield workflows, counting
    await workflows.stop()
    await actors.stop()
    await store.close()


async def _done(engine: WorkflowsCapability, instance_id: str) -> dict[str, Any]:
    async with asyncio.timeout(10):
        meta = await engine.wait(instance_id,
                                 lambda m: m is not None and int(m["status"]) in dt.TERMINAL)
    assert meta is not None
    return meta


async def test_a_chain_runs_with_one_transaction_per_turn(
        engine: tuple[WorkflowsCapability, Counting]) -> None:
    workflows, counting = engine
    seen: list[dt.service.WorkflowRequest] = []
    worker = workflows.dispatcher.connect()
    task = chain_worker(worker, workflows, 3, seen)
    try:
        before = counting.count
        await workflows.start_instance("chain1", "chain", '"x"')
        meta = await _done(workflows, "chain1")
    finally:
        task.cancel()
    assert meta["status"] == dt.COMPLETED
    assert meta["output"] == "6"
    assert len(seen) == 4  # start, and one turn per activity result
    # full history every turn: each request's past is the previous one's past + new
    for earlier, later in itertools.pairwise(seen):
        assert len(later.pastEvents) > len(earlier.pastEvents)
        assert later.pastEvents[0].HasField("workflowStarted")
    writes = counting.count - before
    # create (metadata + inbox-0), the index, 4 turns, 3 results into the inbox
    assert writes == 1 + 1 + 4 + 3, writes
    assert workflows.orchestrator.commits == 1 + 4 + 3


async def test_a_second_result_of_a_task_is_dropped(
        engine: tuple[WorkflowsCapability, Counting]) -> None:
    workflows, _ = engine
    seen: list[dt.service.WorkflowRequest] = []
    worker = workflows.dispatcher.connect()
    task = chain_worker(worker, workflows, 1, seen)
    try:
        await workflows.start_instance("dup1", "chain", None)
        await _done(workflows, "dup1")
        again = dt.history.HistoryEvent(eventId=-1)
        again.taskCompleted.taskScheduledId = 0
        again.taskCompleted.result.value = "99"
        await workflows.deliver("dup1", again)  # accepted, dropped at the next turn
        async with asyncio.timeout(10):
            await workflows.wait("dup1", lambda m: m is not None and not m["inbox"])
    finally:
        task.cancel()
    history = await workflows.history("dup1")
    assert history is not None
    assert sum(1 for e in history if e.HasField("taskCompleted")) == 1
    assert (await workflows.get("dup1") or {})["output"] == "1"


async def test_duplicate_ids_purge_and_recreate(
        engine: tuple[WorkflowsCapability, Counting]) -> None:
    workflows, _ = engine
    await workflows.start_instance("same", "chain", None)  # no worker: stays PENDING
    with pytest.raises(AlreadyExists, match="an active workflow with ID 'same' already"):
        await workflows.start_instance("same", "chain", None)
    with pytest.raises(Internal, match="orchestration has not yet completed"):
        await workflows.purge("same")
    assert await workflows.purge("same", force=True) == 1
    assert await workflows.get("same") is None
    with pytest.raises(NotFound):
        await workflows.raise_event("same", "e", None)
    with pytest.raises(NotFound):
        await workflows.purge("same")
    seen: list[dt.service.WorkflowRequest] = []
    task = chain_worker(workflows.dispatcher.connect(), workflows, 1, seen)
    try:
        await workflows.start_instance("same", "chain", None)
        await _done(workflows, "same")
        # a finished instance may be replaced; with enforceUniqueInstanceId it may not
        with pytest.raises(AlreadyExists, match="enforces instance ID uniqueness"):
            await workflows.start_instance("same", "chain", None, unique=True)
        await workflows.start_instance("same", "chain", None)
        await _done(workflows, "same")
    finally:
        task.cancel()
    assert (await workflows.list_ids("", 0))[0] == ["same"]
