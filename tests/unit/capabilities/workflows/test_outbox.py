"""Deliveries the history cannot recompute (``sendEvent``, ``terminateWorkflow``) are
committed with the turn into the sender's outbox: a sidecar that dies after the commit and
before the delivery sends them when the instance is loaded again; a re-sent ``EventRaised``
(same name and timestamp) is dropped by the receiver, as daprd's ``IsDuplicateExternalEvent``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from pylotto.capabilities.actors import ActorsCapability, ActorState
from pylotto.capabilities.workflows import WorkflowsCapability
from pylotto.capabilities.workflows.applier import new_event, unique_timestamp
from pylotto.capabilities.workflows.dispatch import Worker
from pylotto.components.state.base import StateStore
from pylotto.config.model import ActorsConfig
from pylotto.proto import durabletask as dt
from tests.unit.capabilities.actors.conftest import APP, STORE, memory_store, state_over
from tests.unit.capabilities.workflows.events import complete, send, terminate_other


@asynccontextmanager
async def sidecar(store: StateStore) -> AsyncIterator[WorkflowsCapability]:
    """One sidecar's actor runtime and workflow engine over ``store``."""
    actors = ActorsCapability(ActorState(state_over(store), STORE, APP),
                              ActorsConfig(fencing=True), APP)
    await actors.start()
    workflows = WorkflowsCapability(actors, APP)
    await workflows.start()
    try:
        yield workflows
    finally:
        await workflows.stop()
        await actors.stop()


def scripted(worker: Worker, engine: WorkflowsCapability) -> asyncio.Task[None]:
    """``sender`` sends ``go`` to ``receiver``, terminates ``victim`` and completes;
    ``receiver`` completes with the input of the first event it sees; ``victim`` waits."""

    async def run() -> None:
        while True:
            item = await worker.queue.get()
            request = item.workflowRequest
            events = [*request.pastEvents, *request.newEvents]
            response = dt.service.WorkflowResponse(instanceId=request.instanceId,
                                                   completionToken=item.completionToken)
            if request.instanceId == "sender":
                response.actions.extend([send(0, "receiver", "go"),
                                         terminate_other(1, "victim"),
                                         complete(2, dt.COMPLETED)])
            elif request.instanceId == "receiver":
                got = [e.eventRaised.input.value for e in events if e.HasField("eventRaised")]
                if got:
                    response.actions.append(complete(0, dt.COMPLETED, got[0]))
            engine.dispatcher.complete(response)

    return asyncio.create_task(run())


async def _until(engine: WorkflowsCapability, instance_id: str,
                 done: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    async with asyncio.timeout(15):
        meta = await engine.wait(instance_id, lambda m: m is not None and done(m))
    assert meta is not None
    return meta


def _status(status: int) -> Callable[[dict[str, Any]], bool]:
    return lambda meta: int(meta["status"]) == status


async def test_a_send_and_a_terminate_lost_in_a_crash_are_sent_when_loaded_again(
        tmp_path: Path) -> None:
    store = await memory_store(tmp_path)
    try:
        async with sidecar(store) as first:
            task = scripted(first.dispatcher.connect(), first)
            try:
                for instance_id in ("receiver", "victim"):
                    await first.start_instance(instance_id, "wf", None)
                    await _until(first, instance_id, _status(dt.RUNNING))
                run_effects = first.orchestrator.effects

                def crash_after_commit(instance_id: str, effects: list[Any]) -> None:
                    if instance_id != "sender":  # the sender's effects die with the sidecar
                        run_effects(instance_id, effects)

                first.orchestrator.effects = crash_after_commit
                await first.start_instance("sender", "wf", None)
                sender = await _until(first, "sender", _status(dt.COMPLETED))
                assert sender["outbox"] == {"0": "receiver", "1": "victim"}
                # nothing was delivered: the receiver still waits, the victim still runs
                history = await first.history("receiver") or []
                assert not any(e.HasField("eventRaised") for e in history)
                assert not (await first.get("receiver") or {})["inbox"]
                assert int((await first.get("victim") or {})["status"]) == dt.RUNNING
            finally:
                task.cancel()
        async with sidecar(store) as second:  # the restart: recovery at start
            task = scripted(second.dispatcher.connect(), second)
            try:
                receiver = await _until(second, "receiver", _status(dt.COMPLETED))
                assert receiver["output"] == '"d"'
                await _until(second, "victim", _status(dt.TERMINATED))
                await _until(second, "sender", lambda meta: not meta["outbox"])
                history = await second.history("receiver") or []
                assert sum(1 for e in history if e.HasField("eventRaised")) == 1
            finally:
                task.cancel()
    finally:
        await store.close()


async def test_a_re_sent_event_is_dropped_and_distinct_ones_are_kept(tmp_path: Path) -> None:
    store = await memory_store(tmp_path)
    try:
        async with sidecar(store) as engine:
            await engine.start_instance("r2", "wf", None)  # no worker: the inbox fills up
            event = new_event(unique_timestamp())
            event.eventRaised.name = "go"
            event.eventRaised.input.value = '"1"'
            await engine.deliver("r2", event)
            await engine.deliver("r2", event)  # a re-delivery: same name and timestamp
            await engine.raise_event("r2", "go", '"2"')
            await engine.raise_event("r2", "go", '"2"')  # distinct raises: both kept
            meta = await engine.get("r2")
            assert meta is not None
            assert len(meta["inbox"]) == 1 + 3  # the start, then three events
    finally:
        await store.close()
