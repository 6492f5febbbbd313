"""Dapr's workflow management API (docs/workflows.md; docs/design/workflows.md §2), as daprd's
``pkg/api/universal/workflow.go``: Start, Get, Terminate, RaiseEvent, Pause, Resume and Purge
over the workflow capability, shared by the gRPC RPCs (``…WorkflowBeta1`` and their ``Alpha1``
twins, :class:`DaprWorkflowRpcs`) and the HTTP routes (``http/workflows.py``). Errors carry
the ``workflows.*`` places of :mod:`pylotto.core.dapr_errors`' rows.

- Terminate and Purge always recurse, as daprd's universal API sets it.
- A target ``app_id`` other than this sidecar's is refused (UNIMPLEMENTED): pylotto has no
  cross-app workflows (an id with bad characters is daprd's ``ERR_WORKFLOW_APP_ID_INVALID``).
- ``dapr.workflow.start_time`` is refused (``ERR_START_WORKFLOW``): no scheduled starts yet.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any

from dapr.proto.runtime.v1 import workflow_pb2
from google.protobuf import empty_pb2

from pylotto.capabilities.workflows import Workflows, WorkflowsCapability
from pylotto.capabilities.workflows.names import validate_instance_id
from pylotto.core.errors import Internal, InvalidArgument, NotFound, PylottoError, Unsupported

START_TIME = "dapr.workflow.start_time"
_APP_ID = re.compile(r"[A-Za-z0-9_-]+")
_STATUS = {0: "RUNNING", 1: "COMPLETED", 2: "CONTINUED_AS_NEW", 3: "FAILED", 4: "CANCELED",
           5: "TERMINATED", 6: "PENDING", 7: "SUSPENDED"}


def _engine(workflows: Workflows) -> WorkflowsCapability:
    workflows.check()
    assert isinstance(workflows, WorkflowsCapability)
    return workflows


def _instance(instance_id: str) -> None:
    if not instance_id:
        raise InvalidArgument("no instance ID was provided",
                              where="workflows.instance_id_missing")


def _target(app_id: str, own: str) -> None:
    if app_id in ("", own):
        return
    if not _APP_ID.fullmatch(app_id):
        raise InvalidArgument(f"workflow app ID '{app_id}' is invalid", where="workflows.app_id",
                              app_id=app_id)
    raise Unsupported(f"cross-app workflows are not supported by pylotto (app ID '{app_id}')",
                      where="workflows.cross_app", app_id=app_id)


async def start(workflows: Workflows, own: str, instance_id: str, name: str, data: bytes,
                options: Mapping[str, str], app_id: str = "") -> str:
    engine = _engine(workflows)
    instance_id = instance_id or str(uuid.uuid4())
    validate_instance_id(instance_id)
    if not name:
        raise InvalidArgument("workflow name is not configured", where="workflows.name_missing")
    _target(app_id, own)
    if START_TIME in options:
        try:
            datetime.fromisoformat(options[START_TIME].replace("Z", "+00:00"))
        except ValueError:
            detail = 'start times must be in RFC3339 format (e.g. "2009-11-10T23:00:00Z")'
        else:
            detail = "unable to start workflow: scheduled start times are not supported by pylotto"
        raise Internal(detail, where="workflows.start", name=name, detail=detail)
    try:
        return await engine.start_instance(instance_id, name, data.decode(errors="replace"))
    except PylottoError as err:
        detail = f"unable to start workflow: {err.message}"
        raise Internal(detail, where="workflows.start", name=name, detail=detail) from None


async def get(workflows: Workflows, own: str, instance_id: str, app_id: str = ""
              ) -> workflow_pb2.GetWorkflowResponse:
    """daprd's answer; an unknown instance has only ``instance_id`` (no status)."""
    engine = _engine(workflows)
    _instance(instance_id)
    _target(app_id, own)
    try:
        meta = await engine.get(instance_id)
    except PylottoError as err:
        detail = f"failed to get workflow metadata for '{instance_id}': {err.message}"
        raise Internal(detail, where="workflows.get", instance_id=instance_id,
                       detail=detail) from None
    response = workflow_pb2.GetWorkflowResponse(instance_id=instance_id)
    if meta is None:
        return response
    response.workflow_name = meta["name"]
    response.created_at.FromNanoseconds(int(meta.get("created_ns") or 0))
    response.last_updated_at.FromNanoseconds(int(meta.get("updated_ns") or 0))
    response.runtime_status = _STATUS.get(int(meta["status"]), "UNKNOWN")
    props = response.properties
    if meta.get("custom_status") is not None:
        props["dapr.workflow.custom_status"] = meta["custom_status"]
    if meta.get("input") is not None:
        props["dapr.workflow.input"] = meta["input"]
    failure = meta.get("failure")
    if meta.get("output") is not None and not failure:
        props["dapr.workflow.output"] = meta["output"]
    if failure:
        props["dapr.workflow.failure.error_type"] = failure.get("errorType", "")
        props["dapr.workflow.failure.error_message"] = failure.get("errorMessage", "")
        if failure.get("stackTrace") is not None:
            props["dapr.workflow.failure.stack_trace"] = str(failure["stackTrace"])
    return response


async def _manage(workflows: Workflows, own: str, instance_id: str, app_id: str, verb: str,
                  act: Callable[[WorkflowsCapability], Awaitable[object]], *,
                  unknown_is_not_found: bool = False) -> None:
    """An operation on one instance, as daprd's: the instance id and the target app checked,
    then ``act``; its failure is ``failed to <verb> workflow <id>: …`` at
    ``workflows.<verb>`` (``unknown_is_not_found``: an unknown instance is daprd's
    ``ERR_WORKFLOW_INSTANCE_NOT_FOUND`` instead)."""
    engine = _engine(workflows)
    _instance(instance_id)
    _target(app_id, own)
    try:
        await act(engine)
    except PylottoError as err:
        if unknown_is_not_found and isinstance(err, NotFound):
            raise NotFound(f"unable to find workflow: {instance_id}",
                           where="workflows.not_found", instance_id=instance_id) from None
        detail = f"failed to {verb} workflow {instance_id}: {err.message}"
        raise Internal(detail, where=f"workflows.{verb.lower()}", instance_id=instance_id,
                       detail=detail) from None


async def terminate(workflows: Workflows, own: str, instance_id: str, app_id: str = "") -> None:
    await _manage(workflows, own, instance_id, app_id, "terminate",
                  lambda engine: engine.terminate(instance_id, None, recursive=True),
                  unknown_is_not_found=True)


async def raise_event(workflows: Workflows, own: str, instance_id: str, event_name: str,
                      data: bytes, app_id: str = "") -> None:
    engine = _engine(workflows)
    _instance(instance_id)
    if not event_name:
        raise InvalidArgument("missing workflow event name",
                              where="workflows.event_name_missing")
    _target(app_id, own)
    try:
        await engine.raise_event(instance_id, event_name,
                                 data.decode(errors="replace") if data else None)
    except PylottoError as err:
        detail = (f"failed to raise event {event_name} on workflow {instance_id}: "
                  f"{err.message}")
        raise Internal(detail, where="workflows.raise_event", instance_id=instance_id,
                       detail=detail) from None


async def pause(workflows: Workflows, own: str, instance_id: str, app_id: str = "") -> None:
    await _manage(workflows, own, instance_id, app_id, "pause",
                  lambda engine: engine.suspend(instance_id, None))


async def resume(workflows: Workflows, own: str, instance_id: str, app_id: str = "") -> None:
    await _manage(workflows, own, instance_id, app_id, "resume",
                  lambda engine: engine.resume(instance_id, None))


async def purge(workflows: Workflows, own: str, instance_id: str, app_id: str = "") -> None:
    await _manage(workflows, own, instance_id, app_id, "Purge",  # daprd's capital P
                  lambda engine: engine.purge(instance_id, recursive=True),
                  unknown_is_not_found=True)


class DaprWorkflowRpcs:
    """The gRPC half: each ``…Beta1`` RPC and its ``Alpha1`` twin (the same handler)."""

    services: Any

    def _wf(self) -> tuple[Workflows, str]:
        return self.services.workflows, self.services.context.app_id

    async def StartWorkflowBeta1(self, request: Any, context: Any) -> Any:
        workflows, own = self._wf()
        instance_id = await start(workflows, own, request.instance_id, request.workflow_name,
                                  request.input, dict(request.options), request.app_id)
        return workflow_pb2.StartWorkflowResponse(instance_id=instance_id)

    async def GetWorkflowBeta1(self, request: Any, context: Any) -> Any:
        workflows, own = self._wf()
        return await get(workflows, own, request.instance_id, request.app_id)

    async def TerminateWorkflowBeta1(self, request: Any, context: Any) -> Any:
        workflows, own = self._wf()
        await terminate(workflows, own, request.instance_id, request.app_id)
        return empty_pb2.Empty()

    async def RaiseEventWorkflowBeta1(self, request: Any, context: Any) -> Any:
        workflows, own = self._wf()
        await raise_event(workflows, own, request.instance_id, request.event_name,
                          request.event_data, request.app_id)
        return empty_pb2.Empty()

    async def PauseWorkflowBeta1(self, request: Any, context: Any) -> Any:
        workflows, own = self._wf()
        await pause(workflows, own, request.instance_id, request.app_id)
        return empty_pb2.Empty()

    async def ResumeWorkflowBeta1(self, request: Any, context: Any) -> Any:
        workflows, own = self._wf()
        await resume(workflows, own, request.instance_id, request.app_id)
        return empty_pb2.Empty()

    async def PurgeWorkflowBeta1(self, request: Any, context: Any) -> Any:
        workflows, own = self._wf()
        await purge(workflows, own, request.instance_id, request.app_id)
        return empty_pb2.Empty()

    StartWorkflowAlpha1 = StartWorkflowBeta1
    GetWorkflowAlpha1 = GetWorkflowBeta1
    TerminateWorkflowAlpha1 = TerminateWorkflowBeta1
    RaiseEventWorkflowAlpha1 = RaiseEventWorkflowBeta1
    PauseWorkflowAlpha1 = PauseWorkflowBeta1
    ResumeWorkflowAlpha1 = ResumeWorkflowBeta1
    PurgeWorkflowAlpha1 = PurgeWorkflowBeta1

