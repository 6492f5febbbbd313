"""Pub/sub: publish in a CloudEvent envelope, deliver to the app at least once.

Two ways to receive: the app's callback server (subscriptions listed once at start through
the :class:`~pylotto.appchannel.base.AppChannel`) and subscriber streams
(:meth:`PubSubCapability.subscribe_stream`, Layotto's SubscribeTopicEvents). Either way one
component subscription per (pubsub, topic) feeds a handler that turns the message into a
:class:`TopicEvent`, hands it over and applies the verdict: SUCCESS and DROP acknowledge,
RETRY and failures (after the inbound resiliency policy) go to the dead-letter topic when
there is one, else raise so the broker redelivers after its back-off; an app that does not
implement event delivery (Unsupported) drops. Several streams on one topic join the same
consumer group (unless their metadata names another ``consumerID``) and share its messages.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Unpack

from pylotto.appchannel import cloudevents
from pylotto.appchannel.base import AppChannel, DeliveryStatus, TopicEvent, TopicSubscription
from pylotto.capabilities.base import Capability, ComponentSet, Policies, RuntimeContext
from pylotto.capabilities.bulk_delivery import BulkDelivery
from pylotto.capabilities.event_stream import Deliver, EventStream, Nack
from pylotto.capabilities.routing import Router
from pylotto.components.pubsub.base import (
    BulkPublishEntry,
    BulkPublishFailure,
    Feature,
    Handler,
    Message,
    PubSub,
    Subscription,
)
from pylotto.core.dapr_errors import request_metadata
from pylotto.core.errors import (
    DeadlineExceeded,
    Internal,
    InvalidArgument,
    PlainError,
    PylottoError,
    Unavailable,
    Unsupported,
)
from pylotto.core.tasks import stop_task
from pylotto.observability import span_attributes

log = logging.getLogger("pylotto.pubsub")

STREAM_DRAIN_SECONDS = 5.0
"""On stop, how long a subscriber stream may take to answer the events it holds."""
STOP_TIMEOUT_SECONDS = 10.0
"""On stop, how long deliveries in flight may take; later ones are cancelled (and requeued)."""
DEAD_LETTER_PUBSUB_KEY = "pubsubName"
"""The metadata key naming the pubsub a dead-lettered message came from (daprd's
``MetadataKeyPubSub``)."""
CONTENT_TYPE_KEY = "content-type"
"""The metadata key daprd's subscription handler sets to the content type a broker reported
with a message (``ContentTypeMetadataKey``), so a dead letter carries it."""


@dataclass(frozen=True, slots=True)
class PublishRequest:
    pubsub_name: str
    topic: str
    data: bytes = b""
    data_content_type: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    trace_parent: str = ""
    """W3C ``traceparent`` of the caller, copied into the envelope."""
    trace_state: str = ""
    event_id: str = ""
    """The CloudEvent's id; empty: a new uuid4."""


@dataclass(frozen=True, slots=True)
class BulkPublishItem:
    """One entry of a bulk publish: its id (unique in the request) and event."""

    entry_id: str
    data: bytes
    content_type: str = ""
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DiscoveryPolicy:
    """How long to keep asking an app that is not up yet for its subscriptions."""

    initial_interval: float = 0.5
    max_interval: float = 10.0
    window: float = 300.0


class _DeliveryLog:
    """Warn when deliveries of one subscription start failing, note when they recover."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.failing = False

    def failed(self, event_id: str, reason: str) -> None:
        if not self.failing:
            self.failing = True
            log.warning("%s: event %s will be redelivered: %s", self.where, event_id, reason)
        else:
            log.debug("%s: event %s will be redelivered: %s", self.where, event_id, reason)

    def delivered(self) -> None:
        if self.failing:
            self.failing = False
            log.info("%s: deliveries succeed again", self.where)


class _RetryVerdict(Exception):
    """The app answered RETRY: the attempt failed (retried by the inbound policy)."""


class PubSubCapability(Capability[PubSub]):
    """Validation: empty pubsub name or topic → InvalidArgument; no pubsub configured →
    NotConfigured; unknown name → ComponentNotFound; broker failure → Internal (Unavailable
    / DeadlineExceeded kept)."""

    def __init__(
        self,
        components: ComponentSet[PubSub],
        context: RuntimeContext,
        *,
        app_channel: AppChannel | None = None,
        discovery: DiscoveryPolicy | None = None,
        declarative: Sequence[TopicSubscription] = (),
        **policies: Unpack[Policies],
    ) -> None:
        """``app_channel``: how events reach the app's callback server (built by
        :func:`pylotto.appchannel.select.app_channels`); None: subscriber streams only."""
        super().__init__(components, context, **policies)
        self.app_channel = app_channel
        self.discovery = discovery or DiscoveryPolicy()
        self.source = context.app_id or cloudevents.DEFAULT_SOURCE
        self.declarative = list(declarative)
        """Subscriptions from manifests (``kind: Subscription``), made at start."""
        self.app_subscriptions: dict[tuple[str, str], Subscription] = {}
        self._kinds: dict[tuple[str, str], str] = {}
        self._streams: set[EventStream] = set()
        self._discovering: asyncio.Task[None] | None = None
        self._stopping = False
        self._wanted: dict[tuple[str, str], TopicSubscription] = {}
        """Every (pubsub, topic) the app and the manifests asked for: made again when a hot
        reload brings a pubsub back."""
        self._started = False

    def describe_subscriptions(self) -> list[tuple[str, str, str]]:
        """(pubsub, topic, how) of every active subscription; ``how`` is PROGRAMMATIC (the
        app listed it) or STREAMING (a subscriber stream), as Dapr's metadata API says."""
        listed = [(p, t, self._kinds.get((p, t), "PROGRAMMATIC"))
                  for p, t in self.app_subscriptions]
        streams = [(s.pubsub_name, s.topic, "STREAMING") for s in self._streams]
        return listed + streams

    @property
    def stopping(self) -> bool:
        """True once the sidecar began stopping (failed events then return to the broker
        rather than going to a dead-letter topic)."""
        return self._stopping

    @property
    def open_streams(self) -> int:
        """Subscriber streams currently open."""
        return len(self._streams)

    # ---- publish ---------------------------------------------------------------------------

    def _component(self, pubsub_name: str, topic: str,
                   metadata: Mapping[str, str]) -> PubSub:
        # the request's metadata goes with a refusal: the Dapr dialect's ErrorInfo sends it
        if not pubsub_name:
            raise InvalidArgument("pubsub name is empty", where="pubsub", name="",
                                  **request_metadata(metadata))
        if not topic:
            raise InvalidArgument(f"topic is empty in pubsub {pubsub_name}",
                                  where="pubsub.topic", name=pubsub_name,
                                  **request_metadata(metadata))
        try:
            return self.components.get(pubsub_name)
        except PylottoError as err:
            raise err.at("pubsub", **request_metadata(metadata)) from None

    def envelope(self, request: PublishRequest, component: PubSub) -> bytes:
        """The bytes handed to the broker for ``request``."""
        ttl = cloudevents.ttl_seconds(request.metadata)
        if cloudevents.raw_payload(request.metadata):
            return request.data
        common = {
            "topic": request.topic,
            "pubsub_name": request.pubsub_name,
            "source": self.source,
            "event_type": cloudevents.DEFAULT_TYPE,
            "trace_parent": request.trace_parent,
            "trace_state": request.trace_state,
        }
        if cloudevents.is_cloudevent_content_type(request.data_content_type):
            envelope = cloudevents.from_cloud_event(request.data, **common)
        else:
            envelope = cloudevents.new_envelope(request.data, request.data_content_type,
                                                event_id=request.event_id, **common)
        if ttl is not None and not component.has(Feature.MESSAGE_TTL):
            cloudevents.set_expiration(envelope, ttl)
        return cloudevents.encode(envelope)

    def _traced(self, request: PublishRequest) -> PublishRequest:
        """The request carrying the current span's trace context into the CloudEvent."""
        given = {k: v for k, v in ((cloudevents.TRACEPARENT, request.trace_parent),
                                   (cloudevents.TRACESTATE, request.trace_state)) if v}
        carrier = self.tracing.carrier(given)
        return replace(request, trace_parent=carrier.get(cloudevents.TRACEPARENT, ""),
                       trace_state=carrier.get(cloudevents.TRACESTATE, ""))

    async def publish(self, request: PublishRequest) -> None:
        request = self._traced(request)
        component = self._component(request.pubsub_name, request.topic, request.metadata)
        data = self.envelope(request, component)
        started = time.perf_counter()
        try:
            await self.call(request.pubsub_name, lambda: component.publish(
                request.topic, data, request.metadata), "publish")
        except PylottoError as exc:
            self._published(request.pubsub_name, request.topic, False, started)
            message = (
                f"error when publish to topic {request.topic} in pubsub "
                f"{request.pubsub_name}: {exc.message}"
            )
            kind = type(exc) if isinstance(exc, Unavailable | DeadlineExceeded) else Internal
            raise kind(message, where="pubsub.publish", name=request.pubsub_name,
                       topic=request.topic, detail=exc.message) from exc
        self._published(request.pubsub_name, request.topic, True, started)

    def _published(self, pubsub_name: str, topic: str, success: bool, started: float) -> None:
        if self.metrics is not None:
            self.metrics.dapr.published(pubsub_name, topic, success,
                                        time.perf_counter() - started)

    async def bulk_publish(
        self,
        pubsub_name: str,
        topic: str,
        items: Sequence[BulkPublishItem],
        metadata: Mapping[str, str],
        trace_parent: str = "",
        trace_state: str = "",
    ) -> list[BulkPublishFailure]:
        """Publish every item (each in its own envelope; item metadata over request
        metadata); returns the items the broker did not take."""
        component = self._component(pubsub_name, topic, metadata)
        if not items:
            raise InvalidArgument(f"no entries to bulk publish to topic {topic}")
        entries = []
        seen: set[str] = set()
        for item in items:
            if not item.entry_id or item.entry_id in seen:
                what = (f"entryId {item.entry_id} is duplicated" if item.entry_id
                        else "entryId is empty in a bulk publish entry")
                raise InvalidArgument(what, where="pubsub.bulk_entry", name=pubsub_name,
                                      topic=topic, app_id=self.context.app_id,
                                      detail="entryId is duplicated or not present for entry")
            seen.add(item.entry_id)
            merged = {**metadata, **item.metadata}
            request = self._traced(PublishRequest(pubsub_name, topic, item.data,
                                                  item.content_type, merged, trace_parent,
                                                  trace_state))
            entries.append(BulkPublishEntry(item.entry_id, self.envelope(request, component),
                                            merged))
        try:
            return await self.call(pubsub_name, lambda: component.bulk_publish(
                topic, entries, dict(metadata)))
        except PylottoError as exc:
            message = (f"error when bulk publish to topic {topic} in pubsub {pubsub_name}: "
                       f"{exc.message}")
            kind = type(exc) if isinstance(exc, Unavailable | DeadlineExceeded) else Internal
            raise kind(message, where="pubsub.publish", name=pubsub_name, topic=topic,
                       detail=exc.message) from exc

    # ---- delivery --------------------------------------------------------------------------

    def count(self, pubsub_name: str, topic: str, outcome: str,
              seconds: float | None = None) -> None:
        """An event settled with ``outcome``; ``seconds``: how long the app took, when it
        answered."""
        if self.metrics is not None:
            self.metrics.pubsub(pubsub_name, topic, outcome, seconds)

    async def dead_letter(self, pubsub_name: str, topic: str, dead_letter_topic: str,
                          message: Message, event_id: str, why: str) -> None:
        """Publish ``message`` unchanged to ``dead_letter_topic`` (a publish like any other:
        under the pubsub's resiliency policies, measured), with its metadata and the
        ``pubsubName`` daprd adds to every message it receives (pkg/runtime/subscription;
        :meth:`handler` has added the broker's ``content-type``, as daprd's handler does)."""
        component = self.components.get(pubsub_name)
        metadata = {**message.metadata, DEAD_LETTER_PUBSUB_KEY: pubsub_name}
        await self.call(pubsub_name, lambda: component.publish(
            dead_letter_topic, message.data, metadata))
        self.count(pubsub_name, topic, "dead_lettered")
        log.warning("pubsub %s topic %s: event %s %s: sent to dead-letter topic %s",
                    pubsub_name, topic, event_id, why, dead_letter_topic)

    async def dropped(self, pubsub_name: str, topic: str, dead_letter_topic: str,
                      message: Message, event_id: str, why: str) -> None:
        """Settle an event that will not be delivered: dead-lettered when there is a topic
        for it, else dropped with a warning."""
        if dead_letter_topic:
            await self.dead_letter(pubsub_name, topic, dead_letter_topic, message, event_id,
                                   why)
        else:
            log.warning("pubsub %s topic %s: event %s %s: dropped", pubsub_name, topic,
                        event_id, why)
            self.count(pubsub_name, topic, "dropped")

    def handler(
        self, pubsub_name: str, topic: str, metadata: Mapping[str, str], deliver: Deliver,
        *, router: Router | None = None, dead_letter_topic: str = "",
    ) -> Handler:
        """The component handler that hands messages to ``deliver`` and applies verdicts.

        ``router`` picks each event's path (routing rules). Each delivery runs under the
        pubsub's inbound resiliency policy (none: one attempt). With a ``dead_letter_topic``,
        as in Dapr, an event that still fails (an error, a RETRY verdict), that the app DROPs
        (HTTP 404 included), that has expired, matches no route or cannot be read is
        published there (same pubsub, message unchanged) and acknowledged; without one, a
        failure goes back to the broker, which redelivers after its ``backOff*``."""
        component = self.components.get(pubsub_name)
        policy = component.pubsub_settings.retry_policy()
        raw = cloudevents.raw_payload(metadata)
        where = f"pubsub {pubsub_name} topic {topic}"
        health = _DeliveryLog(where)

        def count(outcome: str, seconds: float | None = None) -> None:
            self.count(pubsub_name, topic, outcome, seconds)

        async def dead_letter(message: Message, event_id: str, why: str) -> None:
            await self.dead_letter(pubsub_name, topic, dead_letter_topic, message, event_id, why)

        async def dropped(message: Message, event_id: str, why: str) -> None:
            await self.dropped(pubsub_name, topic, dead_letter_topic, message, event_id, why)

        async def attempt(event: TopicEvent) -> DeliveryStatus:
            status = await deliver(event)
            if status is DeliveryStatus.RETRY:
                raise _RetryVerdict(f"RETRY status returned for event {event.id}")
            return status

        async def handle(message: Message) -> None:
            if message.content_type is not None:  # as daprd's handler, before anything else
                message = replace(message, metadata={
                    **message.metadata, CONTENT_TYPE_KEY: message.content_type})
            try:
                event = cloudevents.to_topic_event(
                    message.data, topic=message.topic, pubsub_name=pubsub_name,
                    metadata=message.metadata, raw=raw, source=self.source,
                )
            except InvalidArgument as exc:  # as Dapr: dead-lettered, else redelivered
                if dead_letter_topic:
                    await dead_letter(message, "(unreadable)", f"cannot be read: {exc.message}")
                    return
                health.failed("(unreadable)", f"cannot be read: {exc.message}")
                count("retried")
                raise
            if cloudevents.has_expired(event.cloud_event):
                await dropped(message, event.id, "expired "
                              f"{event.cloud_event.get(cloudevents.EXPIRATION)}")
                return
            if router is not None:
                path = router.route(event.cloud_event)
                if path is None:
                    await dropped(message, event.id,
                                  "matches no routing rule and there is no default route")
                    return
                event = replace(event, path=path)
            parent = {k: str(event.cloud_event[k]) for k in
                      (cloudevents.TRACEPARENT, cloudevents.TRACESTATE)
                      if event.cloud_event.get(k)}
            started = time.perf_counter()
            try:
                with self.tracing.span(f"deliver {topic}", "consumer", parent,
                                       **span_attributes.delivery(pubsub_name, topic,
                                                                  event.id)):
                    if self.tracing.enabled:  # the app continues from the delivery span
                        event = replace(event, cloud_event={**event.cloud_event,
                                                            **self.tracing.carrier(parent)})
                    status = await self.resiliency.call_inbound(
                        pubsub_name, lambda: attempt(event), permanent=(Nack, Unsupported))
            except Unsupported as exc:
                log.warning("%s: event %s dropped: %s", where, event.id, exc.message)
                count("dropped")
                return
            except Nack:  # a subscriber stream closed: back to the broker, as is
                count("retried")
                raise
            except Exception as exc:
                reason = exc.message if isinstance(exc, PylottoError) else str(exc) or repr(exc)
                if dead_letter_topic and not self._stopping:
                    await dead_letter(message, event.id, f"failed: {reason}")
                    return
                if 0 <= policy.max_retries < message.attempt:
                    log.error("%s: event %s failed %d times: %s", where, event.id,
                              message.attempt, reason)
                elif isinstance(exc, _RetryVerdict):
                    log.debug("%s: app asked to retry event %s", where, event.id)
                else:
                    health.failed(event.id, reason)
                count("retried")
                raise
            health.delivered()
            if status is DeliveryStatus.DROP:
                if dead_letter_topic:
                    await dead_letter(message, event.id, "dropped by the app")
                else:
                    log.warning("%s: DROP status returned for event %s", where, event.id)
                    count("dropped")
            else:
                log.debug("%s: event %s delivered", where, event.id)
                count("delivered", time.perf_counter() - started)

        return handle

    async def start(self) -> None:
        """Make the declarative subscriptions, and ask the app for its own (in the background
        while it is not up)."""
        if not len(self.components):
            return
        self._started = True
        if self.app_channel is None:
            if self.declarative:
                log.warning("%d declarative subscription(s) ignored: no app to deliver to "
                            "(set app.port or app.grpc_callback_port)", len(self.declarative))
            return
        for item in self.declarative:
            self._kinds[(item.pubsub_name, item.topic)] = "DECLARATIVE"
        try:
            subscriptions = await self.app_channel.list_subscriptions()
        except (Unavailable, DeadlineExceeded) as exc:
            log.warning(
                "%s not reachable yet (%s): asking for its subscriptions in the background "
                "for %.0fs", self.app_channel.description, exc.message, self.discovery.window,
            )
            await self.subscribe_app(self.declarative)
            self._discovering = asyncio.create_task(self._discover_later())
            return
        except PylottoError as exc:
            self._no_subscriptions(exc)
            await self.subscribe_app(self.declarative)
            return
        await self.subscribe_app([*self.declarative, *subscriptions])

    def _no_subscriptions(self, exc: PylottoError) -> None:
        if isinstance(exc, Unsupported):
            log.info("%s: no pub/sub subscriptions (%s)", self.app_callback(), exc.message)
        else:
            log.error("ListTopicSubscriptions failed, no subscriptions: %s", exc.message)

    def app_callback(self) -> str:
        return self.app_channel.description if self.app_channel else "no app channel"

    async def _discover_later(self) -> None:
        assert self.app_channel is not None
        deadline = time.monotonic() + self.discovery.window
        delay = self.discovery.initial_interval
        while True:
            await asyncio.sleep(delay)
            try:
                subscriptions = await self.app_channel.list_subscriptions()
            except (Unavailable, DeadlineExceeded) as exc:
                if time.monotonic() >= deadline:
                    log.error(
                        "%s still not reachable after %.0fs (%s): no subscriptions",
                        self.app_callback(), self.discovery.window, exc.message,
                    )
                    return
                log.debug("%s not reachable yet: %s", self.app_callback(), exc.message)
                delay = min(delay * 2, self.discovery.max_interval)
                continue
            except PylottoError as exc:
                self._no_subscriptions(exc)
                return
            log.info("%s reachable: subscribing", self.app_callback())
            await self.subscribe_app(subscriptions)
            return

    async def subscribe_app(self, subscriptions: list[TopicSubscription]) -> None:
        """Subscribe each (pubsub, topic) the app listed; the last listing of a pair wins."""
        wanted: dict[tuple[str, str], TopicSubscription] = {}
        for item in subscriptions:
            if not item.pubsub_name or not item.topic:
                log.warning("app subscription without pubsub name or topic ignored: %s", item)
                continue
            wanted[(item.pubsub_name, item.topic)] = item
        assert self.app_channel is not None
        self._wanted.update(wanted)
        for (pubsub_name, topic), item in wanted.items():
            if self._stopping or (pubsub_name, topic) in self.app_subscriptions:
                continue
            try:
                component = self.components.get(pubsub_name)
                router = Router(item.rules, item.default_path,
                                drop_unmatched=self.app_channel.drops_unmatched)
                if item.bulk is not None and self.app_channel.supports_bulk:
                    handler = BulkDelivery(
                        self, pubsub_name, topic, item.metadata, self.app_channel, item.bulk,
                        router=router, dead_letter_topic=item.dead_letter_topic).handler
                else:
                    if item.bulk is not None:
                        log.warning("%s takes no bulk deliveries: topic %s of pubsub %s is "
                                    "delivered event by event", self.app_callback(), topic,
                                    pubsub_name)
                    handler = self.handler(
                        pubsub_name, topic, item.metadata, self.app_channel.deliver,
                        router=router, dead_letter_topic=item.dead_letter_topic,
                    )
                subscription = await component.subscribe(topic, handler, dict(item.metadata))
            except PylottoError as exc:
                log.error(
                    "app subscription to topic %s of pubsub %s failed: %s",
                    topic, pubsub_name, exc.message,
                )
                continue
            self.app_subscriptions[(pubsub_name, topic)] = subscription
            log.info(
                "app %s subscribed to topic %s on pubsub %s",
                self.context.app_id or "(no id)", topic, pubsub_name,
            )

    async def subscribe_stream(
        self, pubsub_name: str, topic: str, metadata: Mapping[str, str],
        dead_letter_topic: str = "",
    ) -> EventStream:
        """A subscriber stream on (pubsub, topic); the caller must ``close()`` it."""
        # the Dapr dialect answers these as daprd's stream does (pkg/api/grpc/subscribe.go),
        # the Layotto one as Layotto's (plain errors: UNKNOWN)
        if not pubsub_name:
            raise InvalidArgument("pubsubName is required",
                                  where="pubsub.stream_name").answered(PlainError)
        if not topic:
            raise InvalidArgument("topic is required", where="pubsub.stream_topic",
                                  name=pubsub_name).answered(PlainError)
        try:
            component = self.components.get(pubsub_name, "stream")
        except PylottoError as err:
            stream_err = type(err)(err.message, where="pubsub.stream", name=pubsub_name)
            stream_err.answered_as = err.answered_as
            raise stream_err from err
        if self._stopping:
            raise Unavailable("the sidecar is shutting down")
        stream = EventStream(pubsub_name, topic)
        handler = self.handler(pubsub_name, topic, metadata, stream.deliver,
                               dead_letter_topic=dead_letter_topic)
        stream.subscription = await component.subscribe(topic, handler, dict(metadata))
        stream.on_close = self._streams.discard
        self._streams.add(stream)
        log.debug("subscriber stream opened on topic %s of pubsub %s", topic, pubsub_name)
        return stream

    async def detach(self, component_name: str) -> None:
        """Hot reload: close the subscriptions and streams on pubsub ``component_name``
        (deliveries in flight finish first; streams end and their subscribers resubscribe)."""
        subscriptions = [self.app_subscriptions.pop(key) for key in list(self.app_subscriptions)
                         if key[0] == component_name]
        streams = [s for s in list(self._streams) if s.pubsub_name == component_name]
        results = await asyncio.gather(
            *(subscription.close() for subscription in subscriptions),
            *(stream.close(drain=STREAM_DRAIN_SECONDS) for stream in streams),
            return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                log.error("closing a subscription of pubsub %s failed: %r", component_name,
                          result)

    async def attach(self, component_name: str) -> None:
        """Hot reload: make the app's subscriptions on pubsub ``component_name`` (the first
        pubsub of a sidecar also asks the app for its subscriptions)."""
        if self._stopping:
            return
        if not self._started:
            await self.start()
            return
        if self.app_channel is not None:
            await self.subscribe_app([item for key, item in self._wanted.items()
                                      if key[0] == component_name])

    async def stop(self) -> None:
        """Unsubscribe everything; deliveries in flight finish first (streams get
        :data:`STREAM_DRAIN_SECONDS` to answer, everything :data:`STOP_TIMEOUT_SECONDS`)."""
        self._stopping = True
        if self._discovering is not None:
            await stop_task(self._discovering)
        subscriptions = list(self.app_subscriptions.values())
        self.app_subscriptions.clear()
        closing = asyncio.gather(
            *(subscription.close() for subscription in subscriptions),
            *(stream.close(drain=STREAM_DRAIN_SECONDS) for stream in list(self._streams)),
            return_exceptions=True,
        )
        try:
            async with asyncio.timeout(STOP_TIMEOUT_SECONDS):
                results = await closing
        except TimeoutError:
            log.warning(
                "deliveries still in flight after %.0fs: cancelled", STOP_TIMEOUT_SECONDS
            )
            results = []
        for result in results:
            if isinstance(result, BaseException):
                log.error("closing a subscription failed: %r", result)
        if self.app_channel is not None:
            await self.app_channel.close()
