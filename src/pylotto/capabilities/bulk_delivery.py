"""Bulk subscribe (Dapr's ``bulkSubscribe``): the messages of a subscription handed to the app
together, with a verdict per entry.

The broker still calls the handler once per message (so acknowledgement stays per message);
:class:`BulkDelivery` holds each call until its batch is full (``maxMessagesCount``, or the
messages the subscription may have in flight, ``maxConcurrentHandlers``, whichever is smaller)
or its first message has waited ``maxAwaitDurationMs``, then delivers the batch — one call per
route — with :meth:`~pylotto.appchannel.base.AppChannel.deliver_bulk`. Per entry, as Dapr's
runtime: SUCCESS acknowledges; DROP acknowledges (dead-lettered when the subscription has a
dead-letter topic); RETRY, no answer for the entry or a failed call is retried under the
pubsub's inbound resiliency policy (only the entries still failing), then dead-lettered, or
without a dead-letter topic handed back to the broker for redelivery. Expired events, events
no route matches and unreadable messages are settled before the call, as single deliveries.

Tracing, as daprd's bulk delivery (pkg/runtime/subscription/postman): one consumer span per
entry, continuing that entry's CloudEvent trace, open for the call (each attempt) and ended with
its outcome; the entry's ``traceparent`` sent to the app is its span's.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from pylotto.appchannel import cloudevents
from pylotto.appchannel.base import AppChannel, BulkEntry, BulkSubscribe, DeliveryStatus
from pylotto.capabilities.base import ComponentSet
from pylotto.capabilities.routing import Router
from pylotto.components.pubsub.base import Handler, Message, PubSub
from pylotto.core.errors import InvalidArgument, PylottoError, Unsupported
from pylotto.core.resiliency import Resiliency
from pylotto.observability import span_attributes
from pylotto.observability.tracing import Tracing

log = logging.getLogger("pylotto.pubsub")


class Settlement(Protocol):
    """What a bulk delivery needs of the pub/sub capability that owns it (the capability
    itself: a protocol, so this module does not import it back)."""

    components: ComponentSet[PubSub]
    source: str
    """The CloudEvent ``source`` of this sidecar's events."""
    tracing: Tracing
    resiliency: Resiliency

    @property
    def stopping(self) -> bool: ...

    def count(self, pubsub_name: str, topic: str, outcome: str) -> None: ...

    async def dead_letter(self, pubsub_name: str, topic: str, dead_letter_topic: str,
                          message: Message, event_id: str, why: str) -> None: ...

    async def dropped(self, pubsub_name: str, topic: str, dead_letter_topic: str,
                      message: Message, event_id: str, why: str) -> None: ...


class EntriesFailed(Exception):
    """Some entries of a bulk delivery were not processed (RETRY, no answer, a failed call)."""


@dataclass(eq=False)
class _Waiting:
    message: Message
    settled: asyncio.Future[None]
    entry: BulkEntry | None = None


@dataclass
class _Batch:
    items: list[_Waiting] = field(default_factory=list)
    timer: asyncio.TimerHandle | None = None


class BulkDelivery:
    """The batches of one bulk subscription to the app."""

    def __init__(self, pubsub: Settlement, pubsub_name: str, topic: str,
                 metadata: Mapping[str, str], channel: AppChannel, bulk: BulkSubscribe, *,
                 router: Router | None = None, dead_letter_topic: str = "") -> None:
        self.pubsub = pubsub
        self.pubsub_name = pubsub_name
        self.topic = topic
        self.channel = channel
        self.router = router
        self.dead_letter_topic = dead_letter_topic
        self.raw = cloudevents.raw_payload(metadata)
        component = pubsub.components.get(pubsub_name)
        self.limit = min(bulk.max_messages, component.pubsub_settings.max_concurrent_handlers)
        self.wait = bulk.max_await_ms / 1000
        self.where = f"pubsub {pubsub_name} topic {topic}"
        self._batch = _Batch()
        self._running: set[asyncio.Task[None]] = set()

    @property
    def handler(self) -> Handler:
        return self.handle

    async def handle(self, message: Message) -> None:
        """The component handler: join the current batch and wait for this entry's verdict
        (raises to have the broker redeliver the message)."""
        waiting = _Waiting(message, asyncio.get_running_loop().create_future())
        # retrieved even when this call was cancelled (the sidecar stopping) before the verdict
        waiting.settled.add_done_callback(lambda f: f.cancelled() or f.exception())
        batch = self._batch
        batch.items.append(waiting)
        if len(batch.items) >= self.limit:
            self._flush()
        elif batch.timer is None:
            batch.timer = asyncio.get_running_loop().call_later(self.wait, self._flush)
        await asyncio.shield(waiting.settled)

    def _flush(self) -> None:
        batch, self._batch = self._batch, _Batch()
        if batch.timer is not None:
            batch.timer.cancel()
        if not batch.items:
            return
        task = asyncio.create_task(self._deliver(batch.items),
                                   name=f"pubsub-bulk:{self.where}")
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _deliver(self, items: list[_Waiting]) -> None:
        try:
            by_path: dict[str, list[_Waiting]] = {}
            for waiting in items:
                path = await self._prepare(waiting)
                if path is not None:
                    by_path.setdefault(path, []).append(waiting)
            await asyncio.gather(*(self._deliver_path(path, group)
                                   for path, group in by_path.items()))
        except BaseException as exc:
            for waiting in items:
                _settle(waiting, exc if isinstance(exc, Exception) else
                        EntriesFailed("bulk delivery cancelled"))
            if not isinstance(exc, Exception):
                raise

    async def _prepare(self, waiting: _Waiting) -> str | None:
        """The entry's route, or None when it was settled without the app."""
        message = waiting.message
        pubsub = self.pubsub
        try:
            event = cloudevents.to_topic_event(
                message.data, topic=message.topic, pubsub_name=self.pubsub_name,
                metadata=message.metadata, raw=self.raw, source=pubsub.source)
        except InvalidArgument as exc:  # as Dapr: dead-lettered, else redelivered
            if self.dead_letter_topic:
                await self._dropped(waiting, "(unreadable)", f"cannot be read: {exc.message}")
            else:
                log.warning("%s: unreadable message will be redelivered: %s", self.where,
                            exc.message)
                _settle(waiting, exc)
            return None
        if cloudevents.has_expired(event.cloud_event):
            await self._dropped(waiting, event.id,
                                f"expired {event.cloud_event.get(cloudevents.EXPIRATION)}")
            return None
        path = ""
        if self.router is not None:
            routed = self.router.route(event.cloud_event)
            if routed is None:
                await self._dropped(waiting, event.id,
                                    "matches no routing rule and there is no default route")
                return None
            path = routed
        waiting.entry = BulkEntry(str(uuid.uuid4()), replace(event, path=path))
        return path

    async def _dropped(self, waiting: _Waiting, event_id: str, why: str) -> None:
        await self.pubsub.dropped(self.pubsub_name, self.topic, self.dead_letter_topic,
                                  waiting.message, event_id, why)
        _settle(waiting, None)

    async def _deliver_path(self, path: str, group: list[_Waiting]) -> None:
        pending = {w.entry.entry_id: w for w in group if w.entry is not None}
        verdicts: dict[str, DeliveryStatus] = {}

        async def attempt() -> None:
            entries = [w.entry for w in pending.values() if w.entry is not None]
            with entry_spans(self.pubsub.tracing, self.topic, self.pubsub_name,
                             entries) as traced:
                answers = await self.channel.deliver_bulk(traced, path, raw=self.raw)
            for entry_id in list(pending):
                status = answers.get(entry_id, DeliveryStatus.RETRY)
                if status is not DeliveryStatus.RETRY:
                    verdicts[entry_id] = status
                    waiting = pending.pop(entry_id)
                    await self._verdict(waiting, status)
            if pending:
                raise EntriesFailed(f"{len(pending)} of {len(entries)} bulk entries not "
                                    "processed (RETRY or no answer)")

        try:
            await self.pubsub.resiliency.call_inbound(self.pubsub_name, attempt,
                                                      permanent=(Unsupported,))
        except Unsupported as exc:
            log.warning("%s: %d bulk entries dropped: %s", self.where, len(pending),
                        exc.message)
            for waiting in pending.values():
                _settle(waiting, None)
            return
        except Exception as exc:
            reason = exc.message if isinstance(exc, PylottoError) else str(exc)
            for waiting in pending.values():
                await self._failed(waiting, reason, exc)
            return
        log.debug("%s: bulk of %d delivered to /%s", self.where, len(verdicts),
                  path.lstrip("/"))

    async def _verdict(self, waiting: _Waiting, status: DeliveryStatus) -> None:
        assert waiting.entry is not None
        if status is DeliveryStatus.DROP:
            if self.dead_letter_topic:
                await self.pubsub.dead_letter(self.pubsub_name, self.topic,
                                              self.dead_letter_topic, waiting.message,
                                              waiting.entry.event.id, "dropped by the app")
            else:
                log.warning("%s: DROP status returned for event %s", self.where,
                            waiting.entry.event.id)
                self.pubsub.count(self.pubsub_name, self.topic, "dropped")
        else:
            self.pubsub.count(self.pubsub_name, self.topic, "delivered")
        _settle(waiting, None)

    async def _failed(self, waiting: _Waiting, reason: str, error: Exception) -> None:
        assert waiting.entry is not None
        if self.dead_letter_topic and not self.pubsub.stopping:
            try:
                await self.pubsub.dead_letter(self.pubsub_name, self.topic,
                                              self.dead_letter_topic, waiting.message,
                                              waiting.entry.event.id, f"failed: {reason}")
            except PylottoError as exc:
                _settle(waiting, exc)
                return
            _settle(waiting, None)
            return
        log.debug("%s: bulk entry %s will be redelivered: %s", self.where,
                  waiting.entry.event.id, reason)
        self.pubsub.count(self.pubsub_name, self.topic, "retried")
        _settle(waiting, error)


@contextlib.contextmanager
def entry_spans(tracing: Tracing, topic: str, pubsub_name: str,
                entries: Sequence[BulkEntry]) -> Iterator[list[BulkEntry]]:
    """A consumer span per entry for the block (siblings: each opened in a context of its
    own), and the entries carrying their span's trace context."""
    if not tracing.enabled:
        yield list(entries)
        return
    opened: list[tuple[contextvars.Context, contextlib.AbstractContextManager[object]]] = []
    traced: list[BulkEntry] = []
    error: BaseException | None = None
    try:
        for entry in entries:
            event = entry.event.cloud_event
            parent = {k: str(event[k]) for k in (cloudevents.TRACEPARENT, cloudevents.TRACESTATE)
                      if event.get(k)}
            context = contextvars.copy_context()
            span = tracing.span(f"deliver {topic}", "consumer", parent,
                                **span_attributes.delivery(pubsub_name, topic,
                                                           entry.event.id))
            context.run(span.__enter__)
            opened.append((context, span))
            carrier = context.run(tracing.carrier, parent)
            traced.append(replace(entry, event=replace(
                entry.event, cloud_event={**event, **carrier})))
        yield traced
    except BaseException as exc:
        error = exc
        raise
    finally:
        for context, span in reversed(opened):
            context.run(span.__exit__, type(error) if error else None, error,
                        error.__traceback__ if error else None)


def _settle(waiting: _Waiting, error: BaseException | None) -> None:
    """Give the waiting component handler its outcome: return (ack) or raise (redeliver)."""
    if waiting.settled.done():
        return
    if error is None:
        waiting.settled.set_result(None)
    else:
        waiting.settled.set_exception(error)
