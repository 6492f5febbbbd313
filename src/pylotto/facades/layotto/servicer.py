"""The Layotto ``Runtime`` servicer, assembled from one mixin per capability."""

from __future__ import annotations

from typing import Any, ClassVar

from pylotto.capabilities.services import CapabilityServices
from pylotto.capabilities.state import EtagRules
from pylotto.facades.common.bindings import BindingRpcs
from pylotto.facades.common.invoke import InvokeRpcs
from pylotto.facades.common.secrets import SecretRpcs
from pylotto.facades.common.state import StateRpcs
from pylotto.facades.layotto.configuration import ConfigurationRpcs
from pylotto.facades.layotto.file import FileRpcs
from pylotto.facades.layotto.hello import HelloRpcs
from pylotto.facades.layotto.lock import LockRpcs
from pylotto.facades.layotto.pubsub import PubSubRpcs
from pylotto.facades.layotto.sequencer import SequencerRpcs
from pylotto.proto.layotto import runtime_pb2, runtime_pb2_grpc


class LayottoRuntimeServicer(
    HelloRpcs,
    StateRpcs,
    PubSubRpcs,
    LockRpcs,
    SequencerRpcs,
    ConfigurationRpcs,
    FileRpcs,
    SecretRpcs,
    BindingRpcs,
    InvokeRpcs,
    runtime_pb2_grpc.RuntimeServicer,
):
    pb: ClassVar[Any] = runtime_pb2
    etag_rules: ClassVar[EtagRules] = EtagRules.LAYOTTO

    def __init__(self, services: CapabilityServices) -> None:
        self.services = services
