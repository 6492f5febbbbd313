"""The delivery loop every broker subscription shares: bounded in-flight, acknowledgement only
after the handler returned, redelivery with back-off, give-up, and a close that waits.

A broker subscription subclasses :class:`BrokerSubscription` and says how to ``receive`` the
next message, ``ack`` it, ``release`` it (hand it back to the broker unprocessed, on close) and,
when the broker can delay a redelivery itself (NATS ``nak(delay)``), ``redeliver_later``.
Otherwise the loop keeps the unacknowledged message, waits the back-off (without holding an
in-flight slot) and calls the handler again; the broker still holds the message, so if the
sidecar dies meanwhile the broker delivers it again (at-least-once).
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

from pylotto.components.backoff import Backoff
from pylotto.components.base import cancel_requested
from pylotto.components.pubsub.base import Handler, Message, RetryPolicy, Subscription
from pylotto.core.errors import PylottoError

RUNNER_STOP_SECONDS = 10.0


@dataclass(eq=False)
class Delivery:
    """One message received from the broker and not settled yet."""

    message: Message
    token: Any = None
    """The broker's handle (a stream id, an AMQP message, a NATS message...)."""
    failures: int = 0
    first_failure: float | None = None


class BrokerSubscription(Subscription, abc.ABC):
    batch_limit = 1
    """Most messages one :meth:`receive_many` is asked for."""

    def __init__(self, topic: str, handler: Handler, *, slots: int, policy: RetryPolicy,
                 logger: logging.Logger, where: str) -> None:
        self.topic = topic
        self.handler = handler
        self.policy = policy
        self.log = logger
        self.where = where
        self._slots = asyncio.Semaphore(slots)
        self._tasks: set[asyncio.Task[None]] = set()
        self._waiting: set[asyncio.Task[Any]] = set()
        """Tasks sleeping before a retry (cancelled on close: their message goes back)."""
        self._runner: asyncio.Task[None] | None = None
        self.closing = False

    def start(self) -> None:
        self._runner = asyncio.create_task(self._run(), name=f"pubsub:{self.where}")

    # ---- what a broker says ----------------------------------------------------------------

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.receive is BrokerSubscription.receive and \
                cls.receive_many is BrokerSubscription.receive_many:  # each calls the other
            raise TypeError(f"{cls.__name__} must define receive or receive_many")

    async def receive(self) -> Delivery:
        """The next message (waits for one). Raise a PylottoError when the broker is
        unreachable: the loop retries with back-off. A broker defines this or
        :meth:`receive_many` (each defaults to the other)."""
        [delivery] = await self.receive_many(1)
        return delivery

    async def receive_many(self, limit: int) -> list[Delivery]:
        """Between 1 and ``limit`` messages (waits for one), each of which gets a free
        in-flight slot at once: a broker that can hand over several in one call (Redis
        ``XREADGROUP COUNT``, a JetStream pull) defines this and raises :attr:`batch_limit`;
        by default one :meth:`receive`."""
        return [await self.receive()]

    @abc.abstractmethod
    async def ack(self, delivery: Delivery) -> None:
        """Settle ``delivery``: the broker never delivers it again (to this group)."""

    async def release(self, delivery: Delivery) -> None:
        """Hand ``delivery`` back unprocessed (on close); default: leave it unacknowledged."""

    async def redeliver_later(self, delivery: Delivery, delay: float) -> bool:
        """Ask the broker to deliver it again after ``delay``; False: the loop retries
        itself."""
        return False

    async def before_retry(self, delivery: Delivery) -> None:
        """Called before the loop hands a message to the handler again."""

    async def stop_receiving(self) -> None:
        """Called on close once the receive loop is cancelled."""

    async def settle(self, what: str, call: Awaitable[Any], within: float,
                     map_error: Callable[[BaseException, str], PylottoError]) -> None:
        """Await a broker call settling a message (ack, nak...) ``within`` seconds; driver
        errors become pylotto errors naming the subscription."""
        try:
            async with asyncio.timeout(within):
                await call
        except Exception as exc:
            raise map_error(exc, f"{self.where}: {what}") from exc

    # ---- the loop --------------------------------------------------------------------------

    async def _free_slots(self) -> int:
        """Take one in-flight slot (waiting for it) and the others free now, up to
        :attr:`batch_limit`."""
        await self._slots.acquire()
        taken = 1
        while taken < self.batch_limit and not self._slots.locked():
            await self._slots.acquire()  # free: returns without waiting
            taken += 1
        return taken

    def _give_back(self, slots: int) -> None:
        for _ in range(slots):
            self._slots.release()

    async def _run(self) -> None:
        backoff = Backoff()
        while True:
            slots = await self._free_slots()
            try:
                deliveries = await self.receive_many(slots)
            except PylottoError as exc:
                self._give_back(slots)
                if self.closing or cancel_requested():  # a driver turned it into an error
                    return
                delay = backoff.failed()
                self.log.warning("%s: receiving failed (%s); retrying in %.1fs", self.where,
                                 exc.message, delay)
                await asyncio.sleep(delay)
                continue
            except BaseException:
                self._give_back(slots)
                raise
            self._give_back(slots - len(deliveries))
            if self.closing:  # closed while the driver answered: not ours to handle now
                self._give_back(len(deliveries))
                for delivery in deliveries:
                    with contextlib.suppress(Exception):
                        await asyncio.shield(self.release(delivery))
                return
            if backoff.succeeded():
                self.log.info("%s: receiving again", self.where)
            for delivery in deliveries:
                task = asyncio.create_task(self._deliver(delivery, holding_slot=True))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _deliver(self, delivery: Delivery, *, holding_slot: bool) -> None:
        try:
            while True:
                if not holding_slot:
                    await self._slots.acquire()
                    holding_slot = True
                    await self.before_retry(delivery)
                try:
                    await self.handler(replace(delivery.message,
                                               attempt=max(delivery.message.attempt,
                                                           delivery.failures + 1)))
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    delay = self._failed(delivery, exc)
                    if delay is None:
                        await self.ack(delivery)  # given up: settle it
                        return
                    if self.closing:
                        await self.release(delivery)
                        return
                    if await self.redeliver_later(delivery, delay):
                        return
                    self._slots.release()
                    holding_slot = False
                    await self._wait(delay)
                    continue
                await self.ack(delivery)
                return
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await asyncio.shield(self.release(delivery))
            raise
        except PylottoError as exc:
            self.log.warning("%s: settling a message failed (%s); the broker will deliver it "
                             "again", self.where, exc.message)
        finally:
            if holding_slot:
                self._slots.release()

    async def _wait(self, delay: float) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._waiting.add(task)
        try:
            await asyncio.sleep(delay)
        finally:
            self._waiting.discard(task)

    def _failed(self, delivery: Delivery, error: BaseException) -> float | None:
        """Count a failure; the back-off before the next attempt, or None to give up."""
        now = time.monotonic()
        delivery.failures = max(delivery.failures, delivery.message.attempt - 1) + 1
        if delivery.first_failure is None:
            delivery.first_failure = now
        if self.policy.gives_up(delivery.failures, now - delivery.first_failure):
            self.log.error("%s: message dropped after %d failed deliveries: %s", self.where,
                           delivery.failures, error)
            return None
        delay = self.policy.delay(delivery.failures)
        self.log.debug("%s: redelivery %d in %.3fs: %s", self.where, delivery.failures, delay,
                       error)
        return delay

    async def close(self) -> None:
        """Stop receiving, let handler calls in flight finish; messages waiting for a retry go
        back to the broker."""
        if self.closing:
            return
        self.closing = True
        if self._runner is not None:
            self._runner.cancel()
            done, _ = await asyncio.wait({self._runner}, timeout=RUNNER_STOP_SECONDS)
            if not done:  # never wait forever on a driver that will not let go
                self.log.error("%s: the receive loop did not stop in %.0fs", self.where,
                               RUNNER_STOP_SECONDS)
        for task in list(self._waiting):
            task.cancel()
        if self._tasks:  # settle what the handlers finish while the connection is still up
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        await self.stop_receiving()


class Registered(Subscription):
    """What ``subscribe`` returns: closing it also drops the subscription from its
    component's registry (the component closes what is left when it closes)."""

    def __init__(self, inner: BrokerSubscription, registry: set[Any]) -> None:
        self.topic = inner.topic
        self._inner = inner
        self._registry = registry
        registry.add(inner)

    async def close(self) -> None:
        await self._inner.close()
        self._registry.discard(self._inner)
