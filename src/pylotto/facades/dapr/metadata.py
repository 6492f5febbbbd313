"""GetMetadata, SetMetadata, Shutdown."""

from __future__ import annotations

from typing import Any

from google.protobuf import empty_pb2

from pylotto import __version__
from pylotto.facades.common.base import RuntimeRpcs


class DaprMetadataRpcs(RuntimeRpcs):
    async def GetMetadata(self, request: Any, context: Any) -> Any:
        runtime = self.runtime
        app = runtime.config.app
        return self.pb.GetMetadataResponse(
            id=app.id,
            runtime_version=f"pylotto-{__version__}",
            registered_components=[
                self.pb.RegisteredComponents(name=c.name, type=c.type, version=c.version,
                                             capabilities=c.features)
                for c in runtime.describe_components()
            ],
            extended_metadata=runtime.extended_metadata,
            subscriptions=[
                self.pb.PubsubSubscription(pubsub_name=pubsub, topic=topic, type=kind)
                for pubsub, topic, kind in runtime.pubsub.describe_subscriptions()
            ],
            app_connection_properties=self.pb.AppConnectionProperties(
                port=app.port or 0, protocol=app.protocol,
                channel_address=app.grpc_callback_host),
        )

    async def SetMetadata(self, request: Any, context: Any) -> empty_pb2.Empty:
        self.runtime.extended_metadata[request.key] = request.value
        return empty_pb2.Empty()

    async def Shutdown(self, request: Any, context: Any) -> empty_pb2.Empty:
        self.runtime.shutdown_requested.set()
        return empty_pb2.Empty()
