"""GetConfiguration, SubscribeConfiguration, UnsubscribeConfiguration (and their Alpha1 twins).

Dapr's configuration items are keyed by key only: requests address the app's own items in the
store's default group and label. A subscription stream first sends its id (Dapr's SDK waits for
it), then one message per change; UnsubscribeConfiguration with that id, or the client closing
the stream, ends it.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Iterable
from typing import Any

from pylotto.capabilities.configuration import ConfigurationStream
from pylotto.components.configuration.base import ConfigurationItem
from pylotto.facades.common.base import RuntimeRpcs

log = logging.getLogger("pylotto.dapr.configuration")


class DaprConfigurationRpcs(RuntimeRpcs):
    configuration_streams: dict[str, ConfigurationStream]

    def _items(self, items: Iterable[ConfigurationItem]) -> dict[str, Any]:
        return {i.key: self.pb.ConfigurationItem(value=i.content, version=i.version,
                                                 metadata=i.metadata)
                for i in items}

    async def GetConfiguration(self, request: Any, context: Any) -> Any:
        items = await self.services.configuration.get_configuration(
            request.store_name, keys=list(request.keys), metadata=dict(request.metadata))
        return self.pb.GetConfigurationResponse(items=self._items(items))

    async def GetConfigurationAlpha1(self, request: Any, context: Any) -> Any:
        return await self.GetConfiguration(request, context)

    async def SubscribeConfiguration(self, request: Any, context: Any) -> AsyncIterator[Any]:
        stream = self.services.configuration.open_stream()
        await stream.subscribe(request.store_name, keys=list(request.keys),
                               metadata=dict(request.metadata))
        subscription_id = str(uuid.uuid4())
        self.configuration_streams[subscription_id] = stream
        try:
            yield self.pb.SubscribeConfigurationResponse(id=subscription_id)
            async for update in stream:
                yield self.pb.SubscribeConfigurationResponse(
                    id=subscription_id, items=self._items(update.items))
        finally:
            self.configuration_streams.pop(subscription_id, None)
            await stream.close()

    async def SubscribeConfigurationAlpha1(
        self, request: Any, context: Any
    ) -> AsyncIterator[Any]:
        async for response in self.SubscribeConfiguration(request, context):
            yield response

    async def UnsubscribeConfiguration(self, request: Any, context: Any) -> Any:
        stream = self.configuration_streams.pop(request.id, None)
        if stream is None:
            return self.pb.UnsubscribeConfigurationResponse(
                ok=False, message=f"subscription {request.id} not found")
        await stream.close()
        log.debug("configuration subscription %s closed by the app", request.id)
        return self.pb.UnsubscribeConfigurationResponse(ok=True)

    async def UnsubscribeConfigurationAlpha1(self, request: Any, context: Any) -> Any:
        return await self.UnsubscribeConfiguration(request, context)
