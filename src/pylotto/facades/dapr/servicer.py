"""The Dapr ``dapr.proto.runtime.v1.Dapr`` servicer, assembled from one mixin per capability.

RPCs not listed here (ListActorTimers and GetActorTimer, conversation...) answer
UNIMPLEMENTED (the generated base class does that). The Durable Task service the workflow SDK
speaks is a servicer of its own (``durabletask.py``) on the same server.
"""

from __future__ import annotations

from typing import Any, ClassVar

import grpc
from dapr.proto.runtime.v1 import dapr_pb2, dapr_pb2_grpc

from pylotto.capabilities.configuration import ConfigurationStream
from pylotto.capabilities.services import CapabilityServices
from pylotto.capabilities.status import RuntimeStatus
from pylotto.facades.common.bindings import BindingRpcs
from pylotto.facades.common.invoke import InvokeRpcs
from pylotto.facades.common.query import QueryRpcs
from pylotto.facades.common.secrets import SecretRpcs
from pylotto.facades.common.state import StateRpcs
from pylotto.facades.dapr.actors import DaprActorsRpcs
from pylotto.facades.dapr.configuration import DaprConfigurationRpcs
from pylotto.facades.dapr.crypto import DaprCryptoRpcs
from pylotto.facades.dapr.jobs import DaprJobsRpcs
from pylotto.facades.dapr.lock import DaprLockRpcs
from pylotto.facades.dapr.messages import DaprMessages
from pylotto.facades.dapr.metadata import DaprMetadataRpcs
from pylotto.facades.dapr.pubsub import DaprPubSubRpcs
from pylotto.facades.dapr.workflows import DaprWorkflowRpcs

SERVICE = dapr_pb2.DESCRIPTOR.services_by_name["Dapr"].full_name


class DaprServicer(
    StateRpcs,
    QueryRpcs,
    DaprPubSubRpcs,
    InvokeRpcs,
    BindingRpcs,
    SecretRpcs,
    DaprConfigurationRpcs,
    DaprLockRpcs,
    DaprJobsRpcs,
    DaprMetadataRpcs,
    DaprActorsRpcs,
    DaprCryptoRpcs,
    DaprWorkflowRpcs,
    dapr_pb2_grpc.DaprServicer,
):
    pb: ClassVar[Any] = DaprMessages

    def __init__(self, services: CapabilityServices, status: RuntimeStatus) -> None:
        self.services = services
        self.status = status
        self.configuration_streams: dict[str, ConfigurationStream] = {}

    def add_to(self, server: grpc.aio.Server) -> None:
        dapr_pb2_grpc.add_DaprServicer_to_server(self, server)  # type: ignore[no-untyped-call]

    async def QueryStateAlpha1(self, request: Any, context: Any) -> Any:
        return await self.query_state(request)
