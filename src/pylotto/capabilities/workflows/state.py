"""An instance's durable state (docs/design/workflows.md §4.3): the ``metadata`` row, the
committed ``history-*`` events and the pending ``inbox-*`` events, and the projection of the
runtime status from the history (§3.1).

The owner (the workflow actor, one at a time by placement) keeps the loaded state in memory
while the actor is active: a turn reads the store only on the first activation, and writes
only what changed, in one transaction (:meth:`InstanceState.commit_ops`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import json_format

from pylotto.capabilities.actors.api import StateOperation
from pylotto.capabilities.workflows.names import METADATA, history_key, inbox_key, outbox_key
from pylotto.proto import durabletask as dt

HistoryEvent = dt.history.HistoryEvent


@dataclass(slots=True)
class Projection:
    """What the history says about the instance."""

    status: int = dt.PENDING
    name: str = ""
    input: str | None = None
    output: str | None = None
    failure: dict[str, Any] | None = None
    created_ns: int = 0
    completed_ns: int = 0
    execution_id: str = ""
    parent_id: str = ""
    parent_task_id: int = -1
    parent_name: str = ""


def project(events: list[HistoryEvent], previous: Projection | None = None) -> Projection:
    """The status of an instance with history ``events`` (PENDING: not started; the last
    ``ExecutionCompleted`` gives the final status; an unmatched ``ExecutionSuspended`` is
    SUSPENDED). ``previous`` keeps what a replaced history (continue-as-new) knew."""
    out = Projection()
    if previous is not None:
        out.created_ns = previous.created_ns
    for event in events:
        kind = event.WhichOneof("eventType")
        if kind == "executionStarted":
            started = event.executionStarted
            out.status = dt.RUNNING
            out.name = started.name
            out.input = started.input.value if started.HasField("input") else None
            if not out.created_ns:
                out.created_ns = event.timestamp.ToNanoseconds()
            out.execution_id = started.workflowInstance.executionId.value
            if started.HasField("parentInstance"):
                parent = started.parentInstance
                out.parent_id = parent.workflowInstance.instanceId
                out.parent_task_id = parent.taskScheduledId
                out.parent_name = parent.name.value
        elif kind == "executionCompleted":
            done = event.executionCompleted
            out.status = done.workflowStatus
            out.output = done.result.value if done.HasField("result") else None
            out.failure = (json_format.MessageToDict(done.failureDetails)
                           if done.HasField("failureDetails") else None)
            out.completed_ns = event.timestamp.ToNanoseconds()
        elif kind == "executionSuspended" and out.status == dt.RUNNING:
            out.status = dt.SUSPENDED
        elif kind == "executionResumed" and out.status == dt.SUSPENDED:
            out.status = dt.RUNNING
    return out


@dataclass(slots=True)
class InstanceState:
    """One instance: committed ``history``, pending ``inbox`` (seq → event), the ``outbox``
    (seq → (target instance, event): deliveries committed, not yet confirmed) and the
    metadata row's other fields."""

    instance_id: str
    history: list[HistoryEvent] = field(default_factory=list)
    inbox: dict[int, HistoryEvent] = field(default_factory=dict)
    inbox_next: int = 0
    outbox: dict[int, tuple[str, HistoryEvent]] = field(default_factory=dict)
    outbox_next: int = 0
    custom_status: str | None = None
    updated_ns: int = 0
    stored_history: int = 0
    """How many ``history-*`` keys the store holds (continue-as-new deletes the surplus)."""
    view: Projection = field(default_factory=Projection)

    @property
    def status(self) -> int:
        return self.view.status

    @property
    def finished(self) -> bool:
        return self.view.status in dt.TERMINAL

    def metadata(self) -> dict[str, Any]:
        v = self.view
        return {"instance_id": self.instance_id, "status": v.status, "name": v.name,
                "input": v.input, "output": v.output, "failure": v.failure,
                "custom_status": self.custom_status, "created_ns": v.created_ns,
                "updated_ns": self.updated_ns, "completed_ns": v.completed_ns,
                "execution_id": v.execution_id, "parent_id": v.parent_id,
                "history_len": len(self.history), "inbox": sorted(self.inbox),
                "inbox_next": self.inbox_next,
                "outbox": {str(seq): target for seq, (target, _) in sorted(self.outbox.items())},
                "outbox_next": self.outbox_next}

    def metadata_op(self) -> StateOperation:
        return StateOperation("upsert", METADATA, json.dumps(self.metadata()).encode())

    def add_to_inbox(self, event: HistoryEvent) -> list[StateOperation]:
        """Append ``event`` to the inbox: the operations that store it."""
        seq = self.inbox_next
        self.inbox_next += 1
        self.inbox[seq] = event
        return [StateOperation("upsert", inbox_key(seq), event.SerializeToString()),
                self.metadata_op()]

    def add_to_outbox(self, target: str, event: HistoryEvent) -> int:
        """Record a delivery to ``target`` (written by the next :meth:`commit_ops` that
        names its seq in ``outgoing``)."""
        seq = self.outbox_next
        self.outbox_next += 1
        self.outbox[seq] = (target, event)
        return seq

    def commit_ops(self, consumed: list[int], appended_from: int,
                   added: list[int], outgoing: list[int] | None = None
                   ) -> list[StateOperation]:
        """The one transaction of a turn: ``history[appended_from:]`` written, the history
        keys beyond a replaced (shorter) history deleted, the ``consumed`` inbox entries
        deleted, the ``added`` ones (continue-as-new's carried events) written, the
        ``outgoing`` outbox entries written, the metadata rewritten."""
        ops = [StateOperation("upsert", history_key(i), self.history[i].SerializeToString())
               for i in range(appended_from, len(self.history))]
        ops += [StateOperation("delete", history_key(i))
                for i in range(len(self.history), self.stored_history)]
        ops += [StateOperation("delete", inbox_key(seq)) for seq in consumed]
        ops += [StateOperation("upsert", inbox_key(seq), self.inbox[seq].SerializeToString())
                for seq in added]
        ops += [StateOperation("upsert", outbox_key(seq), self.outbox[seq][1].SerializeToString())
                for seq in outgoing or []]
        ops.append(self.metadata_op())
        return ops

    def sent_ops(self, delivered: list[int]) -> list[StateOperation]:
        """Forget the ``delivered`` outbox entries: their keys deleted, the metadata
        rewritten."""
        for seq in delivered:
            del self.outbox[seq]
        return [*(StateOperation("delete", outbox_key(seq)) for seq in delivered),
                self.metadata_op()]

    def all_keys(self) -> list[str]:
        return ([METADATA] + [history_key(i) for i in range(self.stored_history)]
                + [inbox_key(seq) for seq in self.inbox]
                + [outbox_key(seq) for seq in self.outbox])


def parse_metadata(raw: bytes) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(raw)
    return data


def event(raw: bytes) -> HistoryEvent:
    parsed = HistoryEvent()
    parsed.ParseFromString(raw)
    return parsed
