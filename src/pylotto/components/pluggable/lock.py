"""A lock store served by a pluggable component (``pylotto.proto.components.v1.LockStore``)."""

from __future__ import annotations

from typing import ClassVar

from pylotto.components.lock.base import LockSettings, LockStatus, LockStore
from pylotto.components.pluggable.channel import (
    KEEP_UNKNOWN_KEYS,
    PluggableComponent,
    PluggableSettings,
)
from pylotto.core.metadata import ComponentSettings
from pylotto.proto.components import common_pb2, lock_pb2, lock_pb2_grpc

SERVICE = "pylotto.proto.components.v1.LockStore"


class PluggableLockSettings(PluggableSettings, LockSettings):
    """``socketPath``, ``timeout`` and ``keyPrefix``."""

    model_config = KEEP_UNKNOWN_KEYS


class PluggableLockStore(PluggableComponent, LockStore):
    """Calls a remote LockStore; set ``socketPath`` or use a discovered ``lock.<socket>``."""

    Settings: ClassVar[type[ComponentSettings]] = PluggableLockSettings
    settings: PluggableLockSettings
    service: ClassVar[str] = SERVICE

    async def init(self) -> None:
        await self.connect()
        assert self.channel is not None
        self.stub = lock_pb2_grpc.LockStoreStub(self.channel)
        await self.call(self.stub.Init, lock_pb2.LockInitRequest(metadata=self.metadata_request()))
        self.set_features(await self.call(self.stub.Features, common_pb2.FeaturesRequest()))

    async def ping(self) -> None:
        await self.call(self.stub.Ping, common_pb2.PingRequest())

    async def try_lock(self, resource_id: str, owner: str, expire_seconds: int) -> bool:
        got = await self.call(self.stub.TryLock, lock_pb2.TryLockRequest(
            resource_id=resource_id, lock_owner=owner, expire=expire_seconds))
        return bool(got.success)

    async def unlock(self, resource_id: str, owner: str) -> LockStatus:
        got = await self.call(self.stub.Unlock, lock_pb2.UnlockRequest(
            resource_id=resource_id, lock_owner=owner))
        return LockStatus(got.status)

    async def keep_alive(self, resource_id: str, owner: str, expire_seconds: int) -> LockStatus:
        got = await self.call(self.stub.KeepAlive, lock_pb2.KeepAliveRequest(
            resource_id=resource_id, lock_owner=owner, expire=expire_seconds))
        return LockStatus(got.status)
