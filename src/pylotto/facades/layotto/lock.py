"""TryLock, Unlock, LockKeepAlive."""

from __future__ import annotations

from typing import Any

from pylotto.facades.layotto.base import LayottoRpcs
from pylotto.proto.layotto import runtime_pb2


class LockRpcs(LayottoRpcs):
    async def TryLock(
        self, request: runtime_pb2.TryLockRequest, context: Any
    ) -> runtime_pb2.TryLockResponse:
        success = await self.services.lock.try_lock(
            request.store_name, request.resource_id, request.lock_owner, request.expire
        )
        return runtime_pb2.TryLockResponse(success=success)

    async def Unlock(
        self, request: runtime_pb2.UnlockRequest, context: Any
    ) -> runtime_pb2.UnlockResponse:
        status = await self.services.lock.unlock(
            request.store_name, request.resource_id, request.lock_owner
        )
        return runtime_pb2.UnlockResponse(
            status=runtime_pb2.UnlockResponse.Status.Value(status.name)
        )

    async def LockKeepAlive(
        self, request: runtime_pb2.LockKeepAliveRequest, context: Any
    ) -> runtime_pb2.LockKeepAliveResponse:
        status = await self.services.lock.keep_alive(
            request.store_name, request.resource_id, request.lock_owner, request.expire
        )
        return runtime_pb2.LockKeepAliveResponse(
            status=runtime_pb2.LockKeepAliveResponse.Status.Value(status.name)
        )
