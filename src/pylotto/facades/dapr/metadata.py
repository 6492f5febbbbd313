"""GetMetadata, SetMetadata, Shutdown."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dapr.proto.runtime.v1 import metadata_pb2
from google.protobuf import empty_pb2

from pylotto.facades.common.base import RuntimeRpcs

if TYPE_CHECKING:
    from pylotto.capabilities.actors.api import ActorStatus
    from pylotto.capabilities.status import RuntimeStatus


def _actor_runtime(actors: ActorStatus | None) -> dict[str, Any]:
    """GetMetadata's ``actor_runtime`` and its old twin ``active_actors_count``."""
    if actors is None:
        return {}
    counts = [metadata_pb2.ActiveActorsCount(type=t, count=n)
              for t, n in sorted(actors.active.items())]
    return {"active_actors_count": counts, "actor_runtime": metadata_pb2.ActorRuntime(
        runtime_status=metadata_pb2.ActorRuntime.ActorRuntimeStatus.Value(
            actors.runtime_status),
        active_actors=counts, host_ready=actors.host_ready, placement=actors.placement)}


class DaprMetadataRpcs(RuntimeRpcs):
    status: RuntimeStatus

    async def GetMetadata(self, request: Any, context: Any) -> Any:
        view = self.status.view()
        return self.pb.GetMetadataResponse(
            id=view.app_id,
            runtime_version=view.runtime_version,
            registered_components=[
                self.pb.RegisteredComponents(name=c.name, type=c.type, version=c.version,
                                             capabilities=c.features)
                for c in view.components
            ],
            extended_metadata=view.extended,
            subscriptions=[
                self.pb.PubsubSubscription(pubsub_name=pubsub, topic=topic, type=kind)
                for pubsub, topic, kind in view.subscriptions
            ],
            app_connection_properties=self.pb.AppConnectionProperties(
                port=view.app_port, protocol=view.app_protocol,
                channel_address=view.channel_address),
            **_actor_runtime(view.actor_runtime),
            workflows=metadata_pb2.MetadataWorkflows(connected_workers=view.connected_workers),
        )

    async def SetMetadata(self, request: Any, context: Any) -> empty_pb2.Empty:
        self.status.set_metadata(request.key, request.value)
        return empty_pb2.Empty()

    async def Shutdown(self, request: Any, context: Any) -> empty_pb2.Empty:
        self.status.request_shutdown()
        return empty_pb2.Empty()
