"""Layotto's delay queue on the scheduler: a message published onto a pub/sub later.

Each delayed message is one scheduler job of target ``"pubsub"`` (:class:`PublishTarget`),
named ``pubsub/<message id>``, due at its time, kept in the scheduler's state store: it
survives a restart and fires once across the sidecars of the app id. Its trigger publishes
the message as ``PublishEvent`` would (a CloudEvent whose id is the message id, unless
``rawPayload``). See docs/scheduler.md.
"""

from __future__ import annotations

import base64
import json
import logging
import uuid
from datetime import UTC, datetime, timedelta

from pylotto.appchannel.jobs import JobChannel
from pylotto.capabilities.pubsub import PublishRequest, PubSubCapability
from pylotto.capabilities.scheduler.job import FailurePolicy, JobSpec, Payload
from pylotto.capabilities.scheduler.service import SchedulerCapability
from pylotto.core.errors import (
    ComponentNotFound,
    InvalidArgument,
    NotConfigured,
    PylottoError,
)

log = logging.getLogger("pylotto.delay_queue")

TARGET = "pubsub"
TYPE_URL = "pylotto/delay-queue.message"
"""The payload of a delayed message's job: the publish request as JSON."""
RETRY = FailurePolicy(interval=timedelta(seconds=2), max_retries=None)
"""A broker that refuses the message is tried again every 2 s until it takes it."""


def encode(request: PublishRequest) -> bytes:
    return json.dumps({
        "pubsub": request.pubsub_name, "topic": request.topic,
        "data": base64.b64encode(request.data).decode(),
        "contentType": request.data_content_type, "metadata": request.metadata,
        "id": request.event_id, "traceparent": request.trace_parent,
        "tracestate": request.trace_state,
    }, separators=(",", ":")).encode()


def decode(raw: bytes) -> PublishRequest:
    body = json.loads(raw)
    return PublishRequest(body["pubsub"], body["topic"], base64.b64decode(body["data"]),
                          body["contentType"], dict(body["metadata"]), body["traceparent"],
                          body["tracestate"], body["id"])


class PublishTarget(JobChannel):
    """The scheduler's target ``"pubsub"``: a trigger publishes its message."""

    description = "pub/sub"

    def __init__(self, pubsub: PubSubCapability) -> None:
        self.pubsub = pubsub

    async def trigger(self, name: str, type_url: str, value: bytes) -> bool:
        if type_url != TYPE_URL:
            log.error("delay queue: job %s holds no message (%s): dropped", name, type_url)
            return True
        request = decode(value)
        try:
            await self.pubsub.publish(request)
        except (ComponentNotFound, NotConfigured, InvalidArgument) as err:
            log.error("delay queue: message %s for %s/%s can never be published: %s: dropped",
                      request.event_id, request.pubsub_name, request.topic, err.message)
            return True  # the pub/sub is gone: retrying would never end
        except PylottoError as err:
            log.warning("delay queue: message %s: %s (tried again)", request.event_id,
                        err.message)
            return False
        return True


class DelayQueue:
    """``PublishDelayMessage``: publish now (no delay) or schedule the message."""

    def __init__(self, scheduler: SchedulerCapability, pubsub: PubSubCapability) -> None:
        self.scheduler, self.pubsub = scheduler, pubsub

    async def start(self) -> None:
        """Nothing of its own: the scheduler triggers the messages."""

    async def stop(self) -> None:
        """Nothing of its own."""

    async def publish_later(self, request: PublishRequest, delay_seconds: int) -> str:
        """The message id of ``request`` (its ``event_id`` is set here), published in
        ``delay_seconds`` (0 or less: now)."""
        name = request.pubsub_name
        if name not in self.pubsub.components.names():  # Layotto's text and code
            raise InvalidArgument(f"component not found. kind: delay_queue , name: {name}",
                                  where="delay_queue", name=name)
        if not request.topic:
            raise InvalidArgument(f"topic is empty in pubsub {name}", where="pubsub.topic",
                                  name=name)
        message_id = str(uuid.uuid4())
        request = PublishRequest(request.pubsub_name, request.topic, request.data,
                                 request.data_content_type, dict(request.metadata),
                                 request.trace_parent, request.trace_state, message_id)
        if delay_seconds <= 0:
            await self.pubsub.publish(request)
            return message_id
        due = datetime.now(UTC) + timedelta(seconds=delay_seconds)
        await self.scheduler.schedule_internal(JobSpec(
            name=f"{TARGET}/{message_id}", due_time=due.isoformat(),
            data=Payload(TYPE_URL, encode(request)), failure_policy=RETRY, target=TARGET))
        return message_id
