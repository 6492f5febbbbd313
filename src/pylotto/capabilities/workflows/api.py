"""What the pieces of the workflow engine hand each other (docs/design/workflows.md §4.5):
the outgoing effects of a committed turn and the work-item sink the orchestrator and the
activity actors dispatch to (``dispatch.py``, fed by the ``GetWorkItems`` streams)."""

from __future__ import annotations

import abc
from dataclasses import dataclass

from pylotto.proto.durabletask import history, service

HistoryEvent = history.HistoryEvent


@dataclass(frozen=True, slots=True)
class RunActivity:
    """Schedule activity ``task_id`` of the instance (``scheduleTask``)."""

    task_id: int
    request: service.ActivityRequest


@dataclass(frozen=True, slots=True)
class StartTimer:
    """A durable timer that delivers ``TimerFired{fire_at, timer_id}`` (``createTimer``)."""

    timer_id: int
    fire_at_ns: int


@dataclass(frozen=True, slots=True)
class StartChild:
    """Create child instance ``instance_id`` with ``started`` (an ``ExecutionStarted`` event
    naming the parent)."""

    instance_id: str
    started: HistoryEvent


@dataclass(frozen=True, slots=True)
class Deliver:
    """Put ``event`` into instance ``instance_id``'s inbox (events sent, a child's result to
    its parent, a terminate of a child)."""

    instance_id: str
    event: HistoryEvent
    missing_ok: bool = True
    """An unknown target is logged, not retried."""
    durable: bool = False
    """Not recomputable from the history (``sendEvent``, ``terminateWorkflow``, a recursive
    terminate's notices to the children): the turn commits it into the sender's outbox."""
    outbox: int = -1
    """Its outbox entry (a durable delivery once committed): deleted once delivered, sent
    again when the instance is loaded after a crash."""


@dataclass(frozen=True, slots=True)
class CancelTimers:
    """The instance finished: delete its timer reminders."""


@dataclass(frozen=True, slots=True)
class RunAgain:
    """Continue-as-new: the instance has a new inbox; run another turn."""


Effect = RunActivity | StartTimer | StartChild | Deliver | CancelTimers | RunAgain


class WorkItemSink(abc.ABC):
    """Where turns and activities go: one of the connected workers (``dispatch.py``)."""

    @abc.abstractmethod
    async def orchestrate(self, request: service.WorkflowRequest) -> service.WorkflowResponse:
        """Send ``request`` to a worker and wait for its matching answer (re-sent to another
        worker when the one it went to disconnects)."""

    @abc.abstractmethod
    async def activity(self, request: service.ActivityRequest) -> service.ActivityResponse:
        """The same for an activity."""
