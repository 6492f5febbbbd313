"""GetSecret, GetBulkSecret."""

from __future__ import annotations

from typing import Any

from pylotto.facades.layotto.base import LayottoRpcs
from pylotto.proto.layotto import runtime_pb2


class SecretRpcs(LayottoRpcs):
    async def GetSecret(
        self, request: runtime_pb2.GetSecretRequest, context: Any
    ) -> runtime_pb2.GetSecretResponse:
        data = await self.runtime.secrets.get_secret(
            request.store_name, request.key, dict(request.metadata)
        )
        return runtime_pb2.GetSecretResponse(data=data)

    async def GetBulkSecret(
        self, request: runtime_pb2.GetBulkSecretRequest, context: Any
    ) -> runtime_pb2.GetBulkSecretResponse:
        secrets = await self.runtime.secrets.get_bulk_secret(
            request.store_name, dict(request.metadata)
        )
        response = runtime_pb2.GetBulkSecretResponse()
        for name, values in secrets.items():
            response.data[name].secrets.update(values)
        return response
