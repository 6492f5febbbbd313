"""``mqtt`` / ``mqtt3``: pub/sub on an MQTT 3.1.1 broker (Mosquitto...) (Dapr's
``pubsub.mqtt3``), with aiomqtt.

Metadata: ``url`` (default ``tcp://127.0.0.1:1883``; ``mqtt://`` too; ``user:password@`` for
authentication), ``qos`` (of publishes: 1, default, or 2; 0 is refused: it loses messages),
``retain`` (default false), ``cleanSession`` (default false; see below), ``timeout`` (default
``10s``: connecting, subscribing and each publish's PUBACK), ``consumerID``,
``maxConcurrentHandlers`` and the ``backOff*`` keys of every pub/sub (see :mod:`.base`).

Consumer groups are MQTT shared subscriptions, ``$share/<group>/<topic>``: the broker hands each
message to one member of a group, and every group gets every message. Subscriptions are QoS 1
whatever ``qos`` says (a QoS 2 message is handed over, and so lost if the sidecar dies, before
the handler could refuse it). Each subscription has its own connection and a persistent session
(clean session off) with a client id derived from the host name, the app, the group, the topic,
the sidecar's data directory and the subscription's rank among the live ones of the same group
and topic in the sidecar: stable across restarts of that sidecar, distinct between sidecars
(two sidecars of one app on one host need distinct data directories). The broker keeps the
session's messages while the subscription is closed or disconnected, and sends them when it
comes back. ``cleanSession: true`` drops the session at each disconnection: messages published
meanwhile are lost for that member.

MQTT 3.1.1 has no message headers: the metadata travels with the data in a small JSON envelope
(``{"pylotto": 1, "metadata": ..., "data": ...}``); a payload some other publisher sent is
handed over as it is, with no metadata.

Delivery: acknowledgements are manual (paho's ``manual_ack``; aiomqtt 2.5 has no option for
it): the PUBACK goes out only after the handler returned, and a failed message is handed to the
handler again after the back-off while it stays unacknowledged. The broker sends
unacknowledged messages again when the session reconnects. MQTT counts no deliveries:
``attempt`` is counted by the sidecar while it holds a message, and starts again at 1 when the
broker sends it anew after a reconnect (so ``backOffMaxRetries`` and ``backOffMaxElapsedTime``
count per connection). The subscription reconnects by itself after a lost connection.
Publishes wait for the broker's PUBACK (PUBCOMP at QoS 2).

Limitations (MQTT and Mosquitto): a message the broker has sent is only sent again on the same
session, never to another member of the group, so a message whose sidecar died waits for that
sidecar to come back (same host, app and data directory). Mosquitto also hands a group's
messages in turn to members whose session is offline: while a subscription is closed, its share
of the group's messages waits in its session for the next subscription of the same rank, and
the share of a member that never comes back (a sidecar gone for good, a host renamed) stays
there until the broker expires the session (Mosquitto's ``persistent_client_expiration``).
Mosquitto keeps at most ``max_queued_messages`` (default 1000) per offline session and drops
the rest. The broker limits the messages in flight per session (``max_inflight_messages``,
default 20), which caps ``maxConcurrentHandlers`` in effect. A message received on a connection
that then dropped cannot be acknowledged any more: the broker sends it again after the
reconnection while the sidecar may still be handling it (handled twice: at-least-once).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import socket
import uuid
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from pylotto.components.backoff import Backoff
from pylotto.components.base import ComponentContext
from pylotto.components.errors import DriverErrors
from pylotto.components.pubsub.base import Handler, Message, PubSub, PubSubSettings, Subscription
from pylotto.components.pubsub.delivery import BrokerSubscription, Delivery, Registered
from pylotto.core.errors import PylottoError, Unavailable
from pylotto.core.metadata import Duration
from pylotto.core.tasks import stop_task
from pylotto.core.types import Metadata


class MqttSettings(PubSubSettings):
    url: str = Field("tcp://127.0.0.1:1883", min_length=1)
    qos: Literal[1, 2] = 1
    retain: bool = False
    clean_session: bool = Field(False, alias="cleanSession")
    timeout: Duration = Field(10.0, alias="timeout", gt=0)

    @field_validator("url")
    @classmethod
    def _address(cls, value: str) -> str:
        parts = urlsplit(value if "://" in value else f"tcp://{value}")
        if parts.scheme not in ("tcp", "mqtt") or not parts.hostname:
            raise ValueError(f"url {value!r}: expected tcp://host:1883")
        return value

    def address(self) -> dict[str, Any]:
        parts = urlsplit(self.url if "://" in self.url else f"tcp://{self.url}")
        return {"hostname": parts.hostname, "port": parts.port or 1883,
                "username": parts.username, "password": parts.password}


ERRORS = DriverErrors(
    "mqtt",
    timeout_errors=(),
    connection_errors=("builtins:TimeoutError", "builtins:OSError", "aiomqtt:MqttError"),
    connection_message="{backend} broker unreachable: {exc}",
    internal_message="{backend}: {type} {exc}",
)
"""aiomqtt's errors (every MqttError is a broken or refused connection) are Unavailable."""
map_error = ERRORS.map


async def _disconnect(client: Any) -> None:
    """Close ``client`` (whatever its state), and take the error of a connection that dropped
    so that asyncio does not report it as never retrieved."""
    if client._lock.locked():  # entered: connected, or cut short while connecting
        with contextlib.suppress(Exception):
            await client.__aexit__(None, None, None)
    gone = client._disconnected
    if gone.done() and not gone.cancelled():
        gone.exception()


def _encode(data: bytes, metadata: Metadata) -> bytes:
    """MQTT 3.1.1 has no headers: metadata travels in a small JSON envelope."""
    return json.dumps({"pylotto": 1, "metadata": dict(metadata),
                       "data": data.decode("latin-1")}).encode()


def _decode(payload: bytes) -> tuple[bytes, dict[str, str]]:
    try:
        body = json.loads(payload)
        if isinstance(body, dict) and body.get("pylotto") == 1:
            return body["data"].encode("latin-1"), dict(body.get("metadata") or {})
    except (ValueError, UnicodeDecodeError, KeyError, AttributeError):
        pass
    return payload, {}  # published by someone else: the payload as it is


class _MqttSubscription(BrokerSubscription):
    def __init__(self, pubsub: MQTTPubSub, topic: str, group: str, handler: Handler,
                 client_id: str) -> None:
        settings = pubsub.settings
        super().__init__(topic, handler, slots=settings.max_concurrent_handlers,
                         policy=settings.retry_policy(), logger=pubsub.context.logger,
                         where=f"pubsub {pubsub.name} topic {topic} group {group}")
        self.pubsub = pubsub
        self.group = group
        self.filter = f"$share/{group}/{topic}"
        self.client_id = client_id
        self._inbox: asyncio.Queue[Delivery] = asyncio.Queue()
        self._connection: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()

    async def open(self) -> None:
        """Connect once now (so a broker that is down fails the subscribe), then keep the
        connection up in the background."""
        client = await self._connect()
        self._connection = asyncio.create_task(self._stay_connected(client))

    async def _connect(self) -> Any:
        import aiomqtt

        settings = self.pubsub.settings
        client = aiomqtt.Client(**settings.address(), identifier=self.client_id,
                                clean_session=settings.clean_session, timeout=settings.timeout)
        client._client.manual_ack_set(True)  # PUBACK after the handler, see ack()
        try:
            async with asyncio.timeout(settings.timeout):
                await client.__aenter__()
                await client.subscribe(self.filter, qos=1)
        except Exception as exc:
            await _disconnect(client)
            raise map_error(exc, self.where) from exc
        self.connected.set()
        return client

    async def _stay_connected(self, client: Any) -> None:
        backoff = Backoff()
        while True:
            if client is None:
                try:
                    client = await self._connect()
                    self.log.info("%s: connected again", self.where)
                    backoff.succeeded()
                except PylottoError as exc:
                    delay = backoff.failed()
                    self.log.warning("%s: %s; retrying in %.1fs", self.where, exc.message,
                                     delay)
                    await asyncio.sleep(delay)
                    continue
            try:
                async for mqtt_message in client.messages:
                    data, metadata = _decode(bytes(mqtt_message.payload))
                    self._inbox.put_nowait(Delivery(
                        Message(self.topic, data, metadata),
                        token=(client, mqtt_message.mid, mqtt_message.qos)))
            except asyncio.CancelledError:
                await _disconnect(client)
                raise
            except Exception as exc:  # the connection dropped
                self.log.warning("%s: connection lost: %s", self.where, exc)
            self.connected.clear()
            await _disconnect(client)
            client = None

    async def receive(self) -> Delivery:
        return await self._inbox.get()

    async def ack(self, delivery: Delivery) -> None:
        client, mid, qos = delivery.token
        client._client.ack(mid, qos)

    async def stop_receiving(self) -> None:
        await stop_task(self._connection)


class MQTTPubSub(PubSub):
    Settings = MqttSettings
    settings: MqttSettings

    def __init__(self, name: str, settings: MqttSettings, context: ComponentContext) -> None:
        super().__init__(name, settings, context)
        self.what = f"pubsub {name}"
        self._publisher: Any = None
        self._lock = asyncio.Lock()
        self._subscriptions: set[_MqttSubscription] = set()
        self._client_ids: set[str] = set()

    async def init(self) -> None:
        await self._publisher_client()

    async def _publisher_client(self) -> Any:
        """The publishing connection, (re)opened on demand."""
        import aiomqtt

        async with self._lock:
            if self._publisher is not None and self._publisher._disconnected.done():
                await _disconnect(self._publisher)
                self._publisher = None
            if self._publisher is None:
                client = aiomqtt.Client(**self.settings.address(),
                                        identifier=f"pylotto-pub-{uuid.uuid4().hex[:12]}",
                                        clean_session=True, timeout=self.settings.timeout)
                try:
                    async with asyncio.timeout(self.settings.timeout):
                        await client.__aenter__()
                except Exception as exc:
                    await _disconnect(client)
                    raise map_error(exc, self.what) from exc
                self._publisher = client
            return self._publisher

    async def close(self) -> None:
        await asyncio.gather(*(s.close() for s in list(self._subscriptions)))
        publisher, self._publisher = self._publisher, None
        if publisher is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.settings.timeout):
                    await _disconnect(publisher)

    async def ping(self) -> None:
        await self._publisher_client()

    async def publish(self, topic: str, data: bytes, metadata: Metadata) -> None:
        client = await self._publisher_client()
        try:
            async with asyncio.timeout(self.settings.timeout):
                await client.publish(topic, _encode(data, metadata), qos=self.settings.qos,
                                     retain=self.settings.retain)
        except Exception as exc:
            error = map_error(exc, self.what)
            if isinstance(error, Unavailable):  # reconnect on the next publish
                await _disconnect(client)
                if self._publisher is client:
                    self._publisher = None
            raise error from exc

    def _reserve_client_id(self, topic: str, group: str) -> str:
        """The client id of a new subscription to ``topic`` in ``group``: the lowest rank no
        live subscription of this sidecar uses (a broker disconnects a client whose id another
        connection takes, so two live subscriptions must never share one)."""
        seed = (f"{socket.gethostname()}\0{self.context.app_id}\0{group}\0{topic}"
                f"\0{self.context.data_dir}")
        rank = 0
        while True:
            ranked = f"{seed}\0{rank}" if rank else seed
            client_id = "pylotto-" + hashlib.sha256(ranked.encode()).hexdigest()[:16]
            if client_id not in self._client_ids:
                self._client_ids.add(client_id)
                return client_id
            rank += 1

    async def subscribe(self, topic: str, handler: Handler, metadata: Metadata) -> Subscription:
        group = self.consumer_group(metadata)
        client_id = self._reserve_client_id(topic, group)
        subscription = _MqttSubscription(self, topic, group, handler, client_id)
        try:
            await subscription.open()
        except BaseException:
            self._client_ids.discard(client_id)
            raise
        subscription.start()
        return _MqttRegistered(subscription, self._subscriptions, self._client_ids)


class _MqttRegistered(Registered):
    """Closing also frees the subscription's client id (for the next subscription)."""

    def __init__(self, inner: _MqttSubscription, registry: set[Any], ids: set[str]) -> None:
        super().__init__(inner, registry)
        self._client_id = inner.client_id
        self._ids = ids

    async def close(self) -> None:
        await super().close()
        self._ids.discard(self._client_id)
