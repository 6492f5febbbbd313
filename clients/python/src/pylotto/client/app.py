"""The app side of pub/sub: an AppCallback gRPC server fed by decorated functions.

    app = App()

    @app.subscribe(pubsub="in-memory", topic="orders")
    async def on_order(event: TopicEvent) -> EventStatus | None:
        print(event.json())          # None or SUCCESS: ack; RETRY: later; DROP: discard

    app.run(port=9999)               # then start the sidecar with --app-grpc-port 9999
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import signal
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import empty_pb2

from pylotto.client import _wire
from pylotto.client.types import EventStatus, TopicEvent
from pylotto.proto.layotto import appcallback_pb2, appcallback_pb2_grpc

log = logging.getLogger("pylotto.client.app")

Handler = Callable[[TopicEvent], "Awaitable[EventStatus | None] | EventStatus | None"]


@dataclass(frozen=True)
class _Route:
    pubsub: str
    topic: str
    metadata: Mapping[str, str]
    handler: Handler


class App(appcallback_pb2_grpc.AppCallbackServicer):
    """Routes delivered events to the functions subscribed with :meth:`subscribe`.

    A handler raising an exception answers RETRY (the event comes again after a back-off).
    """

    def __init__(self) -> None:
        self._routes: dict[tuple[str, str], _Route] = {}
        self.server: grpc.aio.Server | None = None

    def subscribe(self, pubsub: str, topic: str, metadata: Mapping[str, str] | None = None
                  ) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            if (pubsub, topic) in self._routes:
                raise ValueError(f"{pubsub}/{topic} already has a handler")
            self._routes[(pubsub, topic)] = _Route(pubsub, topic, dict(metadata or {}), handler)
            return handler

        return register

    # ---- AppCallback ---------------------------------------------------------------------

    async def ListTopicSubscriptions(
        self, request: empty_pb2.Empty, context: Any
    ) -> appcallback_pb2.ListTopicSubscriptionsResponse:
        return appcallback_pb2.ListTopicSubscriptionsResponse(subscriptions=[
            appcallback_pb2.TopicSubscription(
                pubsub_name=r.pubsub, topic=r.topic, metadata=dict(r.metadata))
            for r in self._routes.values()
        ])

    async def OnTopicEvent(
        self, request: appcallback_pb2.TopicEventRequest, context: Any
    ) -> appcallback_pb2.TopicEventResponse:
        route = self._routes.get((request.pubsub_name, request.topic))
        if route is None:
            log.warning("event for %s/%s has no handler: dropped", request.pubsub_name,
                        request.topic)
            status = EventStatus.DROP
        else:
            status = await self._handle(route, _wire.topic_event(request))
        return appcallback_pb2.TopicEventResponse(status=status.value)  # type: ignore[arg-type]

    @staticmethod
    async def _handle(route: _Route, event: TopicEvent) -> EventStatus:
        try:
            result = route.handler(event)
            if inspect.isawaitable(result):
                result = await result
        except Exception:
            log.exception("handler for %s/%s failed: RETRY", route.pubsub, route.topic)
            return EventStatus.RETRY
        return EventStatus.SUCCESS if result is None else EventStatus(result)

    # ---- serving -------------------------------------------------------------------------

    async def start(self, port: int = 9999, host: str = "127.0.0.1") -> int:
        """Start serving; returns the bound port (pass 0 for a free one)."""
        self.server = grpc.aio.server()
        appcallback_pb2_grpc.add_AppCallbackServicer_to_server(self, self.server)
        bound = int(self.server.add_insecure_port(f"{host}:{port}"))
        await self.server.start()
        return bound

    async def stop(self, grace: float = 5.0) -> None:
        if self.server is not None:
            await self.server.stop(grace)
            self.server = None

    async def serve(self, port: int = 9999, host: str = "127.0.0.1") -> None:
        """Serve until SIGINT/SIGTERM."""
        await self.start(port, host)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await self.stop()

    def run(self, port: int = 9999, host: str = "127.0.0.1") -> None:
        asyncio.run(self.serve(port, host))
