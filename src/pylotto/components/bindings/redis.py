"""``bindings.redis``: an output binding on one Redis key per call (Dapr's Redis binding).

Operations, as components-contrib's ``bindings/redis``: ``create`` (SET the key to the data),
``get`` (the value; no data when the key is missing; request metadata ``delete: "true"`` reads
and deletes it at once, GETDEL), ``delete`` (DEL) and ``increment`` (INCR). Request metadata
``key`` names the key (required); ``ttl`` or ``ttlInSeconds`` (a Go duration or a whole number
of seconds above zero) on ``create`` and ``increment`` sets an EXPIRE in whole seconds.
Connection metadata is the shared Redis one (``redisHost``, ``redisPassword``, ``redisDB``...,
see :mod:`pylotto.components._backends.redis_client`).
"""

from __future__ import annotations

from typing import Any

from pylotto.components._backends.redis_client import RedisClient, RedisSettings
from pylotto.components.base import ClientComponent, ComponentContext
from pylotto.components.bindings.base import (
    BindingRequest,
    BindingResponse,
    BindingSettings,
    OutputBinding,
)
from pylotto.components.bindings.request import requested_ttl
from pylotto.core.errors import InvalidArgument


class RedisBindingSettings(BindingSettings, RedisSettings):
    pass


def ttl_seconds(metadata: dict[str, str]) -> int | None:
    """The whole seconds of the request's TTL (None: not given): ``EXPIRE``'s argument."""
    ttl = requested_ttl(metadata)
    return None if ttl is None else int(ttl.total_seconds())


class RedisBinding(ClientComponent[RedisClient], OutputBinding):
    Settings = RedisBindingSettings
    operations = ("create", "delete", "get", "increment")

    def __init__(self, name: str, settings: RedisBindingSettings,
                 context: ComponentContext) -> None:
        super().__init__(name, settings, context)
        self.client = RedisClient(settings, f"binding {name}")

    async def invoke(self, request: BindingRequest) -> BindingResponse:
        metadata = dict(request.metadata)
        key = metadata.get("key", "")
        if not key:
            raise InvalidArgument("redis binding: missing key in request metadata")
        operation = request.operation
        if operation == "delete":
            await self.client.call(lambda r: r.delete(key))
            return BindingResponse()
        if operation == "get":
            getdel = metadata.get("delete") == "true"
            value: Any = await self.client.call(
                lambda r: r.getdel(key) if getdel else r.get(key))
            return BindingResponse(data=b"" if value is None else bytes(value))
        ttl = ttl_seconds(metadata)
        if operation == "create":
            data = request.data
            await self.client.call(lambda r: r.set(key, data))
        elif operation == "increment":
            await self.client.call(lambda r: r.incr(key))
        else:
            raise InvalidArgument(f"invalid operation type: {operation}")
        if ttl is not None:
            await self.client.call(lambda r: r.expire(key, ttl))
        return BindingResponse()
