"""The dispatcher (docs/design/workflows.md §1.3): round-robin, completion tokens matched
(stale ones discarded, empty ones matched by instance and task), pending items sent again
when their worker disconnects, and held until a worker connects."""

from __future__ import annotations

import asyncio

from pylotto.capabilities.workflows.dispatch import Dispatcher
from pylotto.proto import durabletask as dt


def _turn(instance: str = "i1") -> dt.service.WorkflowRequest:
    return dt.service.WorkflowRequest(instanceId=instance)


def _activity(instance: str = "i1", task: int = 0) -> dt.service.ActivityRequest:
    request = dt.service.ActivityRequest(name="a", taskId=task)
    request.workflowInstance.instanceId = instance
    return request


async def _next(queue: asyncio.Queue[dt.service.WorkItem]) -> dt.service.WorkItem:
    return await asyncio.wait_for(queue.get(), 5)


async def test_a_turn_waits_for_the_answer_with_its_token() -> None:
    dispatcher = Dispatcher()
    worker = dispatcher.connect()
    turn = asyncio.create_task(dispatcher.orchestrate(_turn()))
    item = await _next(worker.queue)
    assert item.WhichOneof("request") == "workflowRequest"
    assert item.completionToken
    stale = dt.service.WorkflowResponse(instanceId="i1", completionToken="not-it")
    assert not dispatcher.complete(stale)
    assert dispatcher.stale == 1
    answer = dt.service.WorkflowResponse(instanceId="i1", completionToken=item.completionToken)
    assert dispatcher.complete(answer)
    assert (await turn).completionToken == item.completionToken
    assert not dispatcher.complete(answer)  # a second answer is stale
    assert dispatcher.pending_count == 0


async def test_an_empty_token_is_matched_by_instance_and_task() -> None:
    dispatcher = Dispatcher()
    worker = dispatcher.connect()
    first = asyncio.create_task(dispatcher.activity(_activity(task=1)))
    second = asyncio.create_task(dispatcher.activity(_activity(task=2)))
    await _next(worker.queue)
    await _next(worker.queue)
    reply = dt.service.ActivityResponse(instanceId="i1", taskId=2)
    reply.result.value = "2"
    assert dispatcher.complete(reply)
    assert (await second).result.value == "2"
    assert not first.done()
    # an orchestrator answer never completes an activity
    assert not dispatcher.complete(dt.service.WorkflowResponse(instanceId="i1"))
    assert dispatcher.complete(dt.service.ActivityResponse(instanceId="i1", taskId=1))
    await first


async def test_a_disconnect_sends_pending_items_again_with_a_new_token() -> None:
    dispatcher = Dispatcher()
    one = dispatcher.connect()
    two = dispatcher.connect()
    tasks = [asyncio.create_task(dispatcher.activity(_activity(task=t))) for t in range(4)]
    sent_one = [await _next(one.queue) for _ in range(2)]
    sent_two = [await _next(two.queue) for _ in range(2)]
    dispatcher.disconnect(one)
    again = [await _next(two.queue) for _ in range(2)]
    assert {i.activityRequest.taskId for i in again} == {
        i.activityRequest.taskId for i in sent_one}
    assert {i.completionToken for i in again}.isdisjoint(i.completionToken for i in sent_one)
    for item in sent_one:  # the dead worker's late answers are stale
        assert not dispatcher.complete(dt.service.ActivityResponse(
            instanceId="i1", taskId=item.activityRequest.taskId,
            completionToken=item.completionToken))
    for item in [*sent_two, *again]:
        assert dispatcher.complete(dt.service.ActivityResponse(
            instanceId="i1", taskId=item.activityRequest.taskId,
            completionToken=item.completionToken))
    await asyncio.gather(*tasks)


async def test_items_wait_for_a_worker() -> None:
    dispatcher = Dispatcher()
    turn = asyncio.create_task(dispatcher.orchestrate(_turn("late")))
    await asyncio.sleep(0)
    assert not turn.done()
    worker = dispatcher.connect()
    item = await _next(worker.queue)
    assert item.workflowRequest.instanceId == "late"
    dispatcher.complete(dt.service.WorkflowResponse(instanceId="late",
                                                    completionToken=item.completionToken))
    await turn


async def test_the_last_worker_leaving_holds_its_items_for_the_next() -> None:
    dispatcher = Dispatcher()
    first = dispatcher.connect()
    turn = asyncio.create_task(dispatcher.orchestrate(_turn()))
    await _next(first.queue)
    dispatcher.disconnect(first)
    second = dispatcher.connect()
    item = await _next(second.queue)
    assert dispatcher.complete(dt.service.WorkflowResponse(
        instanceId="i1", completionToken=item.completionToken))
    await turn
