"""The pub/sub app channel: how events reach the app, whatever the transport.

A transport (Layotto AppCallback gRPC, Dapr AppCallback gRPC, Dapr HTTP) implements
:class:`AppChannel`. It reports the app's verdict as a :class:`DeliveryStatus` and failures as
pylotto errors: Unsupported when the app does not handle events at all (the event is dropped),
Unavailable / DeadlineExceeded / Internal otherwise (the event is redelivered).
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pylotto.core.errors import Unsupported
from pylotto.core.metadata import bulk_subscribe


class DeliveryStatus(enum.IntEnum):
    """The app's verdict on one event; the numbers are those of Layotto's and Dapr's protos."""

    SUCCESS = 0
    """Processed: acknowledge."""
    RETRY = 1
    """Not processed: redeliver later."""
    DROP = 2
    """Will never be processed: acknowledge and log a warning."""

    @classmethod
    def from_code(cls, code: int) -> DeliveryStatus | None:
        """The status for a wire enum value, None for a value no protocol defines."""
        try:
            return cls(code)
        except ValueError:
            return None


@dataclass(frozen=True, slots=True)
class RouteRule:
    """Events for which the CEL expression ``match`` holds go to ``path``."""

    match: str
    path: str


@dataclass(frozen=True, slots=True)
class BulkSubscribe:
    """Dapr's ``bulkSubscribe`` of a subscription: events handed to the app together."""

    max_messages: int = 100
    """``maxMessagesCount``: entries per call at most (Dapr's default 100)."""
    max_await_ms: int = 1000
    """``maxAwaitDurationMs``: how long the first entry of a batch waits for others."""

    @classmethod
    def from_spec(cls, spec: object) -> BulkSubscribe | None:
        """The settings of a ``bulkSubscribe`` object (JSON / YAML); None unless enabled."""
        settings = bulk_subscribe(spec)
        return None if settings is None else cls(*settings)


@dataclass(frozen=True, slots=True)
class TopicSubscription:
    """One topic the app wants events from."""

    pubsub_name: str
    topic: str
    metadata: dict[str, str] = field(default_factory=dict)
    rules: tuple[RouteRule, ...] = ()
    """Tried in order; the first match decides the event's path (Dapr's routing rules)."""
    default_path: str = ""
    """The path of events no rule matches ("" with no rules: the dialect's default)."""
    dead_letter_topic: str = ""
    bulk: BulkSubscribe | None = None
    """Set: events are delivered in batches (:meth:`AppChannel.deliver_bulk`)."""


@dataclass(frozen=True, slots=True)
class TopicEvent:
    """One event as the app receives it: the CloudEvent attributes and decoded data."""

    id: str
    source: str
    type: str
    spec_version: str
    data_content_type: str
    topic: str
    pubsub_name: str
    data: bytes
    metadata: dict[str, str] = field(default_factory=dict)
    """The metadata the message was published with."""
    cloud_event: Mapping[str, Any] = field(default_factory=dict)
    """The whole envelope (extensions included), for transports that send it as is."""
    path: str = ""
    """Where the app wants it (a route of its subscription); "" when it has no routes."""


class AppChannel(abc.ABC):
    """Pub/sub calls from the sidecar to its app."""

    description: str = "app"
    """Where the app is, for log lines ("app callback at 127.0.0.1:9999")."""
    drops_unmatched: bool = False
    """True when an event no routing rule matches (and no default route) is dropped rather
    than delivered with an empty path."""
    supports_bulk: bool = False
    """True when :meth:`deliver_bulk` is implemented (Dapr's app channels)."""

    @abc.abstractmethod
    async def list_subscriptions(self) -> list[TopicSubscription]:
        """The app's subscriptions. Unavailable / DeadlineExceeded: the app is not up (yet);
        Unsupported: the app has no pub/sub handler."""

    @abc.abstractmethod
    async def deliver(self, event: TopicEvent) -> DeliveryStatus:
        """Hand ``event`` to the app and return its verdict (errors: see the module doc)."""

    async def deliver_bulk(self, entries: Sequence[BulkEntry], path: str, *,
                           raw: bool = False) -> dict[str, DeliveryStatus]:
        """Hand ``entries`` (of one pubsub and topic; ``raw``: payloads without envelope)
        to the app's route ``path`` in one call; the app's verdict per entry id (one it did
        not answer for counts as RETRY). Raise (errors as :meth:`deliver`) when the call as a
        whole failed."""
        raise Unsupported(f"{self.description} takes no bulk deliveries")

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections; the default has none."""


@dataclass(frozen=True, slots=True)
class BulkEntry:
    """One entry of a bulk delivery: its id in the batch and its event."""

    entry_id: str
    event: TopicEvent
