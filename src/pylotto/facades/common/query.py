"""The state query RPC: pylotto's ``StateQuery/QueryState`` and Dapr's ``QueryStateAlpha1``
(same fields, same numbers)."""

from __future__ import annotations

from typing import Any

from pylotto.facades.common.base import RuntimeRpcs


class QueryRpcs(RuntimeRpcs):
    async def query_state(self, request: Any) -> Any:
        result = await self.services.state.query_state(
            request.store_name, request.query, dict(request.metadata)
        )
        return self.pb.QueryStateResponse(
            results=[self.pb.QueryStateItem(key=i.key, data=i.value, etag=i.etag or "")
                     for i in result.items],
            token=result.token,
        )
