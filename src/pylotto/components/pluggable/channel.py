"""The gRPC connection to one pluggable component and the mapping of its errors to ours."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import ClassVar, TypeVar

import grpc
import grpc.aio
from pydantic import ConfigDict, Field

from pylotto.components.base import Component
from pylotto.core.errors import (
    DeadlineExceeded,
    Internal,
    InvalidArgument,
    NotFound,
    PylottoError,
    Unavailable,
    Unsupported,
)
from pylotto.core.metadata import ComponentSettings, Duration
from pylotto.proto.components import common_pb2

T = TypeVar("T")

DEFAULT_TIMEOUT = 5.0
PLUGGABLE_KEYS = ("socketPath", "timeout")
"""Metadata keys the sidecar keeps for itself (never forwarded to the component's Init)."""


KEEP_UNKNOWN_KEYS = ConfigDict(populate_by_name=True, extra="allow", frozen=True)
"""Settings config keeping unknown metadata keys (forwarded to Init); every settings class
of a pluggable adapter sets it again, since a second base class would override it."""


class PluggableSettings(ComponentSettings):
    """``socketPath`` (the component's Unix socket; set for you on discovered types) and
    ``timeout`` (a duration, default 5s: the deadline of every call). Every other key is sent
    to the component's ``Init``."""

    model_config = KEEP_UNKNOWN_KEYS

    socket_path: str = Field("", alias="socketPath")
    timeout: Duration = Field(DEFAULT_TIMEOUT, alias="timeout", gt=0)


def map_rpc_error(exc: grpc.aio.AioRpcError, what: str) -> PylottoError:
    """A component's gRPC status → the pylotto error with the same meaning."""
    code = exc.code()
    detail = exc.details() or code.name
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED):
        return Unavailable(f"{what}: component unreachable: {detail}")
    if code is grpc.StatusCode.DEADLINE_EXCEEDED:
        return DeadlineExceeded(f"{what}: component did not answer in time")
    if code is grpc.StatusCode.INVALID_ARGUMENT:
        return InvalidArgument(f"{what}: {detail}")
    if code is grpc.StatusCode.NOT_FOUND:
        return NotFound(f"{what}: {detail}")
    if code is grpc.StatusCode.UNIMPLEMENTED:
        return Unsupported(f"{what}: {detail}")
    return Internal(f"{what}: {detail}")


class PluggableComponent(Component):
    """Mixin holding the channel to the component's socket: ``init`` connects and sends the
    metadata to the component's Init, ``ping`` calls its Ping, ``close`` closes the channel.

    Subclasses set ``service`` (the gRPC service name) and build their stub in ``_stub``.
    A class made by discovery sets ``default_socket``.
    """

    Settings: ClassVar[type[ComponentSettings]] = PluggableSettings
    settings: PluggableSettings
    default_socket: ClassVar[str] = ""
    service: ClassVar[str] = ""
    channel: grpc.aio.Channel | None = None

    @property
    def socket(self) -> str:
        return self.settings.socket_path or self.default_socket

    @property
    def label(self) -> str:
        return f"{self.service} {self.name!r} at {self.socket}"

    def forwarded_metadata(self) -> dict[str, str]:
        """Component metadata (as strings) minus the keys the sidecar keeps."""
        raw = self.settings.model_extra or {}
        return {k: str(v) for k, v in raw.items() if k not in PLUGGABLE_KEYS}

    def metadata_request(self) -> common_pb2.MetadataRequest:
        return common_pb2.MetadataRequest(properties=self.forwarded_metadata())

    def open_channel(self) -> grpc.aio.Channel:
        if not self.socket:
            raise InvalidArgument(f"{self.service} {self.name!r}: metadata socketPath is required")
        if not Path(self.socket).exists():
            raise Unavailable(f"{self.label}: socket does not exist")
        self.channel = grpc.aio.insecure_channel(f"unix://{self.socket}")
        return self.channel

    async def connect(self) -> frozenset[str]:
        """Open the channel and return the services the component announces by reflection;
        Unsupported when ``service`` is not among them."""
        from pylotto.components.pluggable.discovery import reflect_services

        channel = self.open_channel()
        try:
            services = frozenset(await reflect_services(channel, self.settings.timeout))
        except grpc.aio.AioRpcError as exc:
            raise self.map_error(exc) from None
        if self.service not in services:
            raise Unsupported(f"{self.label}: the component does not serve {self.service} "
                              f"(it serves: {', '.join(sorted(services)) or 'nothing'})")
        return services

    async def call(self, rpc: Callable[..., Awaitable[T]], request: object) -> T:
        """``rpc(request)`` with the configured deadline; errors mapped to pylotto's."""
        try:
            return await rpc(request, timeout=self.settings.timeout)
        except grpc.aio.AioRpcError as exc:
            raise self.map_error(exc) from None

    def map_error(self, exc: grpc.aio.AioRpcError) -> PylottoError:
        return map_rpc_error(exc, self.label)

    def set_features(self, response: common_pb2.FeaturesResponse) -> None:
        """Adopt the features the component reports (an instance attribute over the ClassVar)."""
        setattr(self, "features", frozenset(response.features))  # noqa: B010

    async def close(self) -> None:
        if self.channel is not None:
            await self.channel.close()
            self.channel = None
