"""GetConfiguration, SaveConfiguration, DeleteConfiguration, SubscribeConfiguration (bidi)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

from google.protobuf import empty_pb2

from pylotto.capabilities.configuration import ConfigurationStream
from pylotto.components.configuration.base import ConfigurationItem
from pylotto.core.errors import PlainError, PylottoError
from pylotto.facades.layotto.base import LayottoRpcs
from pylotto.proto.layotto import runtime_pb2

log = logging.getLogger("pylotto.grpc.configuration")


def item_to_pb(item: ConfigurationItem) -> runtime_pb2.ConfigurationItem:
    return runtime_pb2.ConfigurationItem(
        key=item.key, content=item.content, group=item.group, label=item.label,
        tags=item.tags, metadata=item.metadata,
    )


def item_from_pb(item: runtime_pb2.ConfigurationItem) -> ConfigurationItem:
    return ConfigurationItem(
        key=item.key, content=item.content, group=item.group, label=item.label,
        tags=dict(item.tags), metadata=dict(item.metadata),
    )


async def _read_subscriptions(
    requests: AsyncIterator[runtime_pb2.SubscribeConfigurationRequest],
    stream: ConfigurationStream,
) -> None:
    """Add a subscription per request. As in Layotto, the client closing its sending side ends
    the stream (after the updates already queued) with UNKNOWN "EOF", and a bad request ends it
    with its error."""
    try:
        async for request in requests:
            await stream.subscribe(
                request.store_name, request.app_id, request.group, request.label,
                list(request.keys), dict(request.metadata),
            )
    except PylottoError as err:
        await stream.fail(err)
        return
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # the client went away mid-read
        log.debug("configuration subscriber stream ended: %r", exc)
        await stream.close()
        return
    await stream.fail(PlainError("EOF"))


class ConfigurationRpcs(LayottoRpcs):
    async def GetConfiguration(
        self, request: runtime_pb2.GetConfigurationRequest, context: Any
    ) -> runtime_pb2.GetConfigurationResponse:
        items = await self.services.configuration.get_configuration(
            request.store_name, request.app_id, request.group, request.label,
            list(request.keys), dict(request.metadata),
        )
        return runtime_pb2.GetConfigurationResponse(items=[item_to_pb(i) for i in items])

    async def SaveConfiguration(
        self, request: runtime_pb2.SaveConfigurationRequest, context: Any
    ) -> empty_pb2.Empty:
        await self.services.configuration.save_configuration(
            request.store_name, request.app_id, [item_from_pb(i) for i in request.items],
            dict(request.metadata),
        )
        return empty_pb2.Empty()

    async def DeleteConfiguration(
        self, request: runtime_pb2.DeleteConfigurationRequest, context: Any
    ) -> empty_pb2.Empty:
        await self.services.configuration.delete_configuration(
            request.store_name, request.app_id, request.group, request.label,
            list(request.keys), dict(request.metadata),
        )
        return empty_pb2.Empty()

    async def SubscribeConfiguration(
        self,
        request_iterator: AsyncIterator[runtime_pb2.SubscribeConfigurationRequest],
        context: Any,
    ) -> AsyncIterator[runtime_pb2.SubscribeConfigurationResponse]:
        stream = self.services.configuration.open_stream()
        reader = asyncio.create_task(_read_subscriptions(request_iterator, stream))
        try:
            async for update in stream:
                yield runtime_pb2.SubscribeConfigurationResponse(
                    store_name=update.store_name, app_id=update.app_id,
                    items=[item_to_pb(i) for i in update.items],
                )
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
            await stream.close()
