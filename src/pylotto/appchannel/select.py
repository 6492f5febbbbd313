"""The app channels of a sidecar, built in this one place from how the app is configured.

Events go to the app (pub/sub delivery) over:

- ``app.grpc_callback_port``: Layotto's AppCallback gRPC (takes precedence);
- ``app.port`` with ``app.protocol: grpc``: Dapr's AppCallback gRPC (``grpcs``: over TLS, the
  app's certificate not checked, through :mod:`~pylotto.appchannel.tls_relay`);
- ``app.port`` (``protocol: http``): Dapr's HTTP app channel (``/dapr/subscribe``);
- neither: no app channel (subscriber streams still work).

Service invocation reaches the app over HTTP (``protocol: http``, or ``https``: TLS, the app's
certificate not checked, as Dapr does) or Dapr's AppCallback gRPC (``protocol: grpc`` or
``grpcs``) on
``app.host:app.port``; gRPC proxying (``dapr-app-id`` calls to this sidecar's own
app) over a raw gRPC channel to the same port. Each user has its own connection, as before
this module built them all: closing one never cuts another's calls. Invocations and deliveries
pass the app's :class:`~pylotto.appchannel.gate.AppGate` (health, concurrency limit); gRPC
proxying does not, as daprd's proxy takes the app connection past its app channel.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pylotto.appchannel.base import AppChannel, DeliveryStatus, TopicEvent, TopicSubscription
from pylotto.appchannel.gate import OPEN_GATE, AppGate
from pylotto.appchannel.grpc_channel import GrpcAppChannel
from pylotto.appchannel.http import AppRequest, AppResponse, HttpAppChannel
from pylotto.observability.dapr_metrics import DaprMetrics

if TYPE_CHECKING:
    import grpc

    from pylotto.appchannel.dapr_grpc import DaprGrpcAppChannel
    from pylotto.appchannel.tls_relay import TlsRelay
    from pylotto.config.model import AppConfig

class GatedAppChannel(AppChannel):
    """A pub/sub channel whose deliveries wait while the app is unhealthy (and for a free
    slot under the concurrency limit)."""

    def __init__(self, inner: AppChannel, gate: AppGate) -> None:
        self.inner, self.gate = inner, gate
        self.description = inner.description
        self.drops_unmatched = inner.drops_unmatched

    async def list_subscriptions(self) -> list[TopicSubscription]:
        return await self.inner.list_subscriptions()

    async def deliver(self, event: TopicEvent) -> DeliveryStatus:
        async with self.gate.call(wait_for_health=True):
            return await self.inner.deliver(event)

    async def close(self) -> None:
        await self.inner.close()


class GatedHttpAppChannel(HttpAppChannel):
    """Service invocation of an HTTP app: refused while the app is unhealthy."""

    def __init__(self, host: str, port: int, *, api_token: str, gate: AppGate,
                 scheme: str) -> None:
        super().__init__(host, port, api_token=api_token, scheme=scheme)
        self.gate = gate

    async def send(self, request: AppRequest) -> AppResponse:
        async with self.gate.call():
            return await super().send(request)


def pubsub_channel(app: AppConfig, gate: AppGate = OPEN_GATE) -> AppChannel | None:
    """The channel events are delivered to the app over (None: the app has no callback)."""
    token = app.api_token.get_secret_value()
    channel: AppChannel | None = None
    if app.grpc_callback_port:
        from pylotto.appchannel.layotto_grpc import LayottoGrpcAppChannel

        channel = LayottoGrpcAppChannel(app.grpc_callback_host, app.grpc_callback_port,
                                        api_token=token)
    elif app.port and app.is_grpc:
        from pylotto.appchannel.dapr_grpc import DaprGrpcAppChannel

        channel = DaprGrpcAppChannel(app.host, app.port, api_token=token,
                                     tls=app.protocol == "grpcs")
    elif app.port:
        from pylotto.appchannel.dapr_http import DaprHttpAppChannel

        channel = DaprHttpAppChannel(HttpAppChannel(app.host, app.port, api_token=token,
                                                    scheme=_scheme(app)))
    if channel is None or gate is OPEN_GATE:
        return channel
    return GatedAppChannel(channel, gate)


def _scheme(app: AppConfig) -> str:
    """``http``, ``https`` or ``h2c`` (HTTP/2 prior knowledge, see appchannel.http)."""
    return app.protocol if app.protocol in ("https", "h2c") else "http"


def app_gate(app: AppConfig) -> AppGate:
    """The gate of ``app`` (one per sidecar: the health prober sets it)."""
    probed = app.health_check is not None and bool(app.port)  # the probe needs the port
    if app.max_concurrency is None and not probed:
        return OPEN_GATE
    return AppGate(app.max_concurrency, health_checked=probed)


class RawGrpcAppChannel:
    """A plain gRPC channel to the app, opened on first use (gRPC proxying sends the caller's
    bytes as they are, so no stub)."""

    def __init__(self, host: str, port: int, *, tls: bool = False) -> None:
        self.address = f"{host}:{port}"
        self.tls = tls
        self._channel: grpc.aio.Channel | None = None
        self._relay: TlsRelay | None = None

    def channel(self) -> grpc.aio.Channel:
        if self._channel is None:
            from pylotto.appchannel.grpc_channel import dial_app

            self._channel, self._relay = dial_app(self.address, tls=self.tls, options=())
        return self._channel

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
        if self._relay is not None:
            await self._relay.close()


@dataclass(frozen=True)
class AppChannels:
    """Every channel to the app; None where the configuration gives the app no such server."""

    pubsub: AppChannel | None
    """Pub/sub delivery (see :func:`pubsub_channel`)."""
    invoke_http: HttpAppChannel | None
    """Service invocation to an HTTP app (``app.port``, ``protocol: http``)."""
    invoke_grpc: DaprGrpcAppChannel | None
    """Service invocation to a gRPC app (``app.port``, ``protocol: grpc``)."""
    proxy: RawGrpcAppChannel | None
    """gRPC proxying to a gRPC app (``app.port``, ``protocol: grpc``)."""
    gate: AppGate = OPEN_GATE
    """Health and concurrency limit of every call above but gRPC proxying."""


def app_channels(app: AppConfig, gate: AppGate | None = None,
                 observer: DaprMetrics | None = None) -> AppChannels:
    """The app channels of ``app``; none connects before its first use (or its ``open``).
    ``gate``: the app's gate (default: a new one, :func:`app_gate`); ``observer``: where the
    calls to the app are counted."""
    token = app.api_token.get_secret_value()
    gate = gate or app_gate(app)
    invoke_http: HttpAppChannel | None = None
    invoke_grpc = proxy = None
    if app.port and app.is_grpc:
        from pylotto.appchannel.dapr_grpc import DaprGrpcAppChannel

        tls = app.protocol == "grpcs"
        invoke_grpc = DaprGrpcAppChannel(app.host, app.port, api_token=token, gate=gate,
                                         tls=tls)
        proxy = RawGrpcAppChannel(app.host, app.port, tls=tls)
    elif app.port:
        invoke_http = (HttpAppChannel(app.host, app.port, api_token=token, scheme=_scheme(app))
                       if gate is OPEN_GATE else
                       GatedHttpAppChannel(app.host, app.port, api_token=token, gate=gate,
                                           scheme=_scheme(app)))
    pubsub = pubsub_channel(app, gate)
    if observer is not None:
        for channel in (invoke_http, invoke_grpc, getattr(pubsub, "inner", pubsub)):
            channel = getattr(channel, "http", channel)  # Dapr's HTTP delivery: its sender
            if isinstance(channel, HttpAppChannel | GrpcAppChannel):
                channel.observer = observer
    return AppChannels(pubsub, invoke_http, invoke_grpc, proxy, gate)
