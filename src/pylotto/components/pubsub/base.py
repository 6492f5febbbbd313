"""Pub/sub broker contract.

A broker moves opaque bytes: the capability layer wraps them in a CloudEvent before
:meth:`PubSub.publish` and unwraps them in the subscription handler. Delivery is
at-least-once: the component calls the handler once per delivery attempt; the handler
returning acknowledges the message, the handler raising asks for a redelivery (after a
back-off, see :class:`RetryPolicy`). This maps onto every real broker: Redis Streams
(XACK / leave pending), RabbitMQ (ack / nack+requeue), MQTT QoS 1 (PUBACK), NATS JetStream
(Ack / Nak with delay).
"""

from __future__ import annotations

import abc
import enum
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from pydantic import Field

from pylotto.components.base import Component
from pylotto.core.errors import PylottoError
from pylotto.core.metadata import ComponentSettings, Duration
from pylotto.core.types import Metadata

CONSUMER_ID = "consumerID"
"""Component or subscription metadata naming the consumer group (default: the app id)."""


class Feature(enum.StrEnum):
    MESSAGE_TTL = "MESSAGE_TTL"
    """The broker expires messages itself from ``ttlInSeconds`` publish metadata; without it
    the capability writes an ``expiration`` into the CloudEvent and drops expired events."""


class BackOffPolicy(enum.StrEnum):
    CONSTANT = "constant"
    EXPONENTIAL = "exponential"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When to redeliver a message the handler refused (Dapr's ``backOff*`` settings)."""

    policy: BackOffPolicy = BackOffPolicy.EXPONENTIAL
    duration: float = 5.0
    """Constant policy: seconds between attempts."""
    initial_interval: float = 0.5
    multiplier: float = 1.5
    randomization_factor: float = 0.5
    max_interval: float = 60.0
    max_elapsed_time: float = 900.0
    """Give up once a message has been failing this many seconds; 0 = never."""
    max_retries: int = -1
    """Give up after this many redeliveries; -1 = never."""

    def delay(self, failures: int, rand: Callable[[], float] = random.random) -> float:
        """Seconds to wait before redelivering a message that has failed ``failures`` times."""
        if self.policy is BackOffPolicy.CONSTANT:
            return self.duration
        try:
            interval = self.initial_interval * self.multiplier ** max(failures - 1, 0)
        except OverflowError:
            interval = self.max_interval
        interval = min(interval, self.max_interval)
        spread = self.randomization_factor * interval
        return max(0.0, interval - spread + rand() * 2 * spread)

    def gives_up(self, failures: int, elapsed: float) -> bool:
        """True when a message that failed ``failures`` times over ``elapsed`` s is abandoned."""
        if 0 <= self.max_retries < failures:
            return True
        return self.max_elapsed_time > 0 and elapsed >= self.max_elapsed_time


class PubSubSettings(ComponentSettings):
    """Keys every pub/sub component accepts (redelivery spelled as Dapr's ``backOff*``)."""

    consumer_id: str = Field("", alias="consumerID")
    """Consumer group; subscribers of one group share messages. Default: the app id."""
    max_concurrent_handlers: int = Field(16, alias="maxConcurrentHandlers", ge=1)
    """Messages in flight (delivered, not yet acked or nacked) per subscription."""
    back_off_policy: BackOffPolicy = Field(BackOffPolicy.EXPONENTIAL, alias="backOffPolicy")
    back_off_duration: Duration = Field(5.0, alias="backOffDuration")
    back_off_initial_interval: Duration = Field(0.5, alias="backOffInitialInterval")
    back_off_multiplier: float = Field(1.5, alias="backOffMultiplier", ge=1.0)
    back_off_randomization_factor: float = Field(
        0.5, alias="backOffRandomizationFactor", ge=0.0, le=1.0
    )
    back_off_max_interval: Duration = Field(60.0, alias="backOffMaxInterval")
    back_off_max_elapsed_time: Duration = Field(900.0, alias="backOffMaxElapsedTime")
    back_off_max_retries: int = Field(-1, alias="backOffMaxRetries", ge=-1)

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            policy=self.back_off_policy,
            duration=self.back_off_duration,
            initial_interval=self.back_off_initial_interval,
            multiplier=self.back_off_multiplier,
            randomization_factor=self.back_off_randomization_factor,
            max_interval=self.back_off_max_interval,
            max_elapsed_time=self.back_off_max_elapsed_time,
            max_retries=self.back_off_max_retries,
        )


@dataclass(frozen=True, slots=True)
class Message:
    """One message as the broker hands it to a subscription handler."""

    topic: str
    data: bytes
    metadata: dict[str, str] = field(default_factory=dict)
    """The metadata it was published with (when the broker carries it)."""
    attempt: int = 1
    """Which delivery of the message this is: 1 the first, 2 the first redelivery... Brokers
    that count deliveries fill it from the broker (Redis Streams' delivery count, NATS
    ``num_delivered``, RabbitMQ ``x-delivery-count``); the others count in the component."""
    content_type: str | None = None
    """The content type the broker reports with the message (contrib's ``NewMessage.
    ContentType``); None when it reports none, as contrib's Redis, RabbitMQ, MQTT, NATS and
    in-memory brokers; a pluggable component always reports one (its ``content_type``)."""


Handler = Callable[[Message], Awaitable[None]]
"""Returns: ack. Raises: nack, the broker redelivers later."""


class Subscription(abc.ABC):
    """A running subscription of one handler to one topic."""

    topic: str

    @abc.abstractmethod
    async def close(self) -> None:
        """Stop receiving; return once handler calls in flight have finished (and been
        acked or nacked). Messages it had not finished go back to the broker."""


@dataclass(frozen=True, slots=True)
class BulkPublishEntry:
    entry_id: str
    data: bytes
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class BulkPublishFailure:
    entry_id: str
    error: str


class PubSub(Component):
    """A topic-based broker with consumer groups and at-least-once delivery."""

    Settings: ClassVar[type[ComponentSettings]] = PubSubSettings

    @property
    def pubsub_settings(self) -> PubSubSettings:
        settings = self.settings
        assert isinstance(settings, PubSubSettings)
        return settings

    def consumer_group(self, metadata: Metadata) -> str:
        """The group a subscription joins: its ``consumerID`` metadata, else the component's,
        else the app id."""
        for key, value in metadata.items():
            if key.lower() == CONSUMER_ID.lower() and value:
                return value
        return self.pubsub_settings.consumer_id or self.context.app_id

    @abc.abstractmethod
    async def publish(self, topic: str, data: bytes, metadata: Metadata) -> None:
        """Hand ``data`` to the broker; raise Unavailable when it cannot be reached."""

    @abc.abstractmethod
    async def subscribe(self, topic: str, handler: Handler, metadata: Metadata) -> Subscription:
        """Start calling ``handler`` for the messages of ``topic`` (group per
        :meth:`consumer_group`), at most ``maxConcurrentHandlers`` at a time."""

    async def bulk_publish(
        self, topic: str, entries: Sequence[BulkPublishEntry], metadata: Metadata
    ) -> list[BulkPublishFailure]:
        """Default: one publish per entry (entry metadata over request metadata); brokers
        with a batch call override this. Returns the entries that failed."""
        failures = []
        for entry in entries:
            try:
                await self.publish(topic, entry.data, {**metadata, **entry.metadata})
            except PylottoError as exc:
                failures.append(BulkPublishFailure(entry.entry_id, exc.message))
        return failures
