"""TryLockAlpha1, UnlockAlpha1 (the status numbers are the same as Layotto's)."""

from __future__ import annotations

from typing import Any

from pylotto.facades.common.base import RuntimeRpcs


class DaprLockRpcs(RuntimeRpcs):
    async def TryLockAlpha1(self, request: Any, context: Any) -> Any:
        success = await self.services.lock.try_lock(
            request.store_name, request.resource_id, request.lock_owner,
            request.expiry_in_seconds,
        )
        return self.pb.TryLockResponse(success=success)

    async def UnlockAlpha1(self, request: Any, context: Any) -> Any:
        status = await self.services.lock.unlock(
            request.store_name, request.resource_id, request.lock_owner
        )
        return self.pb.UnlockResponse(status=int(status))
