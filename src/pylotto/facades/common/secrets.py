"""GetSecret, GetBulkSecret."""

from __future__ import annotations

from typing import Any

from pylotto.facades.common.base import RuntimeRpcs


class SecretRpcs(RuntimeRpcs):
    async def GetSecret(
        self, request: Any, context: Any
    ) -> Any:
        data = await self.services.secrets.get_secret(
            request.store_name, request.key, dict(request.metadata)
        )
        return self.pb.GetSecretResponse(data=data)

    async def GetBulkSecret(
        self, request: Any, context: Any
    ) -> Any:
        secrets = await self.services.secrets.get_bulk_secret(
            request.store_name, dict(request.metadata)
        )
        response = self.pb.GetBulkSecretResponse()
        for name, values in secrets.items():
            response.data[name].secrets.update(values)
        return response
