"""The Durable Task ``TaskHubSidecarService`` (docs/workflows.md; docs/design/workflows.md §1),
served on the Dapr gRPC API port, as daprd serves it: what the workflow SDK
(``dapr.ext.workflow``) speaks to its sidecar. Each RPC is a call of the
:class:`~pylotto.capabilities.workflows.Workflows` capability; errors are PylottoErrors the
error-mapping interceptor answers (the API token interceptor covers this service as every
other one on the server).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import grpc

from pylotto.capabilities.workflows import Workflows, WorkflowsCapability
from pylotto.core.errors import NotFound, Unsupported
from pylotto.proto import durabletask as dt

log = logging.getLogger("pylotto.workflows")

SERVICE = dt.SERVICE
STATE_WAIT_SECONDS = 30.0
"""Terminate/suspend/resume wait at most this long (or the caller's deadline) for the state
they asked for; the event is durable either way."""
RERUN = ("RerunWorkflowFromEvent is not implemented by pylotto (issue 20: re-running a "
         "workflow from a history event is out of this slice's scope)")


def workflow_state(meta: dict[str, Any], with_payloads: bool) -> Any:
    state = dt.orchestration.WorkflowState(instanceId=meta["instance_id"], name=meta["name"],
                                           workflowStatus=meta["status"])
    if meta.get("created_ns"):
        state.createdTimestamp.FromNanoseconds(int(meta["created_ns"]))
    if meta.get("updated_ns"):
        state.lastUpdatedTimestamp.FromNanoseconds(int(meta["updated_ns"]))
    if meta.get("completed_ns"):
        state.completedTimestamp.FromNanoseconds(int(meta["completed_ns"]))
    if meta.get("execution_id"):
        state.executionId.value = meta["execution_id"]
    if meta.get("parent_id"):
        state.parentInstanceId.value = meta["parent_id"]
    if with_payloads:
        if meta.get("input") is not None:
            state.input.value = meta["input"]
        if meta.get("output") is not None:
            state.output.value = meta["output"]
        if meta.get("custom_status") is not None:
            state.customStatus.value = meta["custom_status"]
        failure = meta.get("failure")
        if failure:
            from google.protobuf import json_format

            json_format.ParseDict(failure, state.failureDetails)
    return state


def _remaining(context: grpc.aio.ServicerContext[Any, Any], cap: float | None) -> float | None:
    left: float | None = context.time_remaining()
    if left is None:
        return cap
    return left if cap is None else min(left, cap)


def _router_ok(request: Any, app_id: str) -> None:
    if request.HasField("router") and request.router.targetAppID not in ("", app_id):
        raise Unsupported(
            f"cross-app workflows are not supported by pylotto (target app ID "
            f"'{request.router.targetAppID}')", where="workflows.cross_app")


class DurableTaskServicer(dt.service_grpc.TaskHubSidecarServiceServicer):
    def __init__(self, workflows: Workflows, app_id: str) -> None:
        self.workflows = workflows
        self.app_id = app_id

    def add_to(self, server: grpc.aio.Server) -> None:
        dt.service_grpc.add_TaskHubSidecarServiceServicer_to_server(  # type: ignore[no-untyped-call]
            self, server)

    def _engine(self) -> WorkflowsCapability:
        self.workflows.check()
        assert isinstance(self.workflows, WorkflowsCapability)
        return self.workflows

    async def Hello(self, request: Any, context: Any) -> Any:
        from google.protobuf import empty_pb2

        return empty_pb2.Empty()

    # ---- the worker's side -----------------------------------------------------------------

    async def GetWorkItems(self, request: Any, context: Any) -> AsyncIterator[Any]:
        dispatcher = self.workflows.dispatcher  # without an actor state store: idles
        worker = dispatcher.connect(tuple(request.capabilities))
        try:
            while True:
                yield await worker.queue.get()
        finally:
            dispatcher.disconnect(worker)

    async def CompleteOrchestratorTask(self, request: Any, context: Any) -> Any:
        self._engine().dispatcher.complete(request)
        return dt.service.CompleteTaskResponse()

    async def CompleteWorkflowTask(self, request: Any, context: Any) -> Any:
        return await self.CompleteOrchestratorTask(request, context)

    async def CompleteActivityTask(self, request: Any, context: Any) -> Any:
        self._engine().dispatcher.complete(request)
        return dt.service.CompleteTaskResponse()

    # ---- the client's side -----------------------------------------------------------------

    async def StartInstance(self, request: Any, context: Any) -> Any:
        engine = self._engine()
        _router_ok(request, self.app_id)
        if request.HasField("scheduledStartTimestamp"):
            raise Unsupported("scheduled start times are not supported by pylotto yet",
                              where="workflows.start")
        instance_id = await engine.start_instance(
            request.instanceId, request.name,
            request.input.value if request.HasField("input") else None,
            execution_id=request.executionId.value if request.HasField("executionId") else "",
            unique=request.enforceUniqueInstanceId)
        return dt.service.CreateInstanceResponse(instanceId=instance_id)

    async def GetInstance(self, request: Any, context: Any) -> Any:
        engine = self._engine()
        meta = await engine.get(request.instanceId)
        if meta is None:
            return dt.service.GetInstanceResponse(exists=False)
        return dt.service.GetInstanceResponse(
            exists=True, workflowState=workflow_state(meta, request.getInputsAndOutputs))

    async def _wait(self, request: Any, context: Any, statuses: frozenset[int] | None,
                    ) -> Any:
        engine = self._engine()

        def done(meta: dict[str, Any] | None) -> bool:
            if meta is None:
                return False
            status = int(meta["status"])
            return status != dt.PENDING if statuses is None else status in statuses

        async with asyncio.timeout(_remaining(context, None)):
            meta = await engine.wait(request.instanceId, done)
        assert meta is not None
        return dt.service.GetInstanceResponse(
            exists=True, workflowState=workflow_state(meta, request.getInputsAndOutputs))

    async def WaitForInstanceStart(self, request: Any, context: Any) -> Any:
        return await self._wait(request, context, None)

    async def WaitForInstanceCompletion(self, request: Any, context: Any) -> Any:
        return await self._wait(request, context, dt.TERMINAL)

    async def _settle(self, engine: WorkflowsCapability, instance_id: str,
                      statuses: frozenset[int], context: Any) -> None:
        try:
            async with asyncio.timeout(_remaining(context, STATE_WAIT_SECONDS)):
                await engine.wait(instance_id,
                                  lambda m: m is None or int(m["status"]) in statuses)
        except TimeoutError:
            log.info("workflows: %s did not reach the requested state in time", instance_id)

    async def RaiseEvent(self, request: Any, context: Any) -> Any:
        engine = self._engine()
        await engine.raise_event(request.instanceId, request.name,
                                 request.input.value if request.HasField("input") else None)
        return dt.service.RaiseEventResponse()

    async def TerminateInstance(self, request: Any, context: Any) -> Any:
        engine = self._engine()
        await engine.terminate(request.instanceId,
                               request.output.value if request.HasField("output") else None,
                               request.recursive)
        await self._settle(engine, request.instanceId, dt.TERMINAL, context)
        return dt.service.TerminateResponse()

    async def SuspendInstance(self, request: Any, context: Any) -> Any:
        engine = self._engine()
        await engine.suspend(request.instanceId,
                             request.reason.value if request.HasField("reason") else None)
        await self._settle(engine, request.instanceId, dt.TERMINAL | {dt.SUSPENDED}, context)
        return dt.service.SuspendResponse()

    async def ResumeInstance(self, request: Any, context: Any) -> Any:
        engine = self._engine()
        await engine.resume(request.instanceId,
                            request.reason.value if request.HasField("reason") else None)
        await self._settle(engine, request.instanceId, dt.TERMINAL | {dt.RUNNING}, context)
        return dt.service.ResumeResponse()

    async def PurgeInstances(self, request: Any, context: Any) -> Any:
        engine = self._engine()
        if request.WhichOneof("request") != "instanceId":
            raise Unsupported("multi-instance purge is not implemented", where="workflows.purge")
        count = await engine.purge(request.instanceId, force=request.force,
                                   recursive=request.recursive)
        response = dt.service.PurgeInstancesResponse(deletedInstanceCount=count)
        response.isComplete.value = True
        return response

    async def GetInstanceHistory(self, request: Any, context: Any) -> Any:
        events = await self._engine().history(request.instanceId)
        if events is None:
            raise NotFound(f"no such instance exists: {request.instanceId}",
                           where="workflows.instance")
        return dt.service.GetInstanceHistoryResponse(events=events)

    async def ListInstanceIDs(self, request: Any, context: Any) -> Any:
        ids, token = await self._engine().list_ids(request.continuationToken,
                                                   request.pageSize)
        response = dt.service.ListInstanceIDsResponse(instanceIds=ids)
        if token:
            response.continuationToken = token
        return response

    async def RerunWorkflowFromEvent(self, request: Any, context: Any) -> Any:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, RERUN)
