"""A sequencer served by a pluggable component (``pylotto.proto.components.v1.Sequencer``)."""

from __future__ import annotations

from typing import ClassVar

from pylotto.components.pluggable.channel import (
    KEEP_UNKNOWN_KEYS,
    PluggableComponent,
    PluggableSettings,
)
from pylotto.components.sequencer.base import Sequencer, SequencerSettings
from pylotto.core.metadata import ComponentSettings
from pylotto.core.types import Metadata
from pylotto.proto.components import common_pb2, sequencer_pb2, sequencer_pb2_grpc

SERVICE = "pylotto.proto.components.v1.Sequencer"


class PluggableSequencerSettings(PluggableSettings, SequencerSettings):
    """``socketPath``, ``timeout``, ``keyPrefix`` and ``biggerThan``."""

    model_config = KEEP_UNKNOWN_KEYS


class PluggableSequencer(PluggableComponent, Sequencer):
    """Calls a remote Sequencer; set ``socketPath`` or use a discovered ``sequencer.<socket>``."""

    Settings: ClassVar[type[ComponentSettings]] = PluggableSequencerSettings
    settings: PluggableSequencerSettings
    service: ClassVar[str] = SERVICE

    async def init(self) -> None:
        await self.connect()
        assert self.channel is not None
        self.stub = sequencer_pb2_grpc.SequencerStub(self.channel)
        await self.call(self.stub.Init,
                        sequencer_pb2.SequencerInitRequest(metadata=self.metadata_request()))
        self.set_features(await self.call(self.stub.Features, common_pb2.FeaturesRequest()))

    async def ping(self) -> None:
        await self.call(self.stub.Ping, common_pb2.PingRequest())

    async def next_id(self, key: str, metadata: Metadata) -> int:
        got = await self.call(self.stub.NextId,
                              sequencer_pb2.NextIdRequest(key=key, metadata=dict(metadata)))
        return int(got.next_id)

    async def ensure_bigger_than(self, key: str, floor: int) -> None:
        await self.call(self.stub.EnsureBiggerThan,
                        sequencer_pb2.EnsureBiggerThanRequest(key=key, floor=floor))
