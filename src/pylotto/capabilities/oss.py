"""Object storage: Layotto's ``ObjectStorageService`` on named oss components (docs/oss.md).

Requests arrive in S3's terms (:mod:`pylotto.components.oss.base`). A request without a bucket
takes the component's ``bucket``; with neither it is refused. Errors are Layotto's servicer's:
an unknown ``store_name`` is InvalidArgument (``not supported store type: <name>``), whatever
the S3 server refuses is Internal with its text; a server that cannot be reached is
Unavailable. The RPCs Layotto's S3 component does not support answer its texts (Internal).

Calls without a body go through the resiliency policies of the component's name; streamed
uploads do not (a consumed stream cannot be sent again).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

from pylotto.capabilities.base import Capability
from pylotto.components.oss.base import Download, ObjectStorage, Params
from pylotto.core.errors import Internal, InvalidArgument, PylottoError

UNSUPPORTED = {
    "AppendObject": "AppendObject method not supported on AWS",
    "UpdateDownloadBandwidthRateLimit": "UpdateDownloadBandwidthRateLimit method not "
                                        "supported now",
    "UpdateUploadBandwidthRateLimit": "UpdateUploadBandwidthRateLimit method not supported now",
}
"""RPCs S3 has no operation for, answered with the texts of Layotto's S3 component."""

PRESIGNABLE = {"GET": "GetObject", "PUT": "PutObject"}

DEFAULT_SIGNED_SECONDS = 900
"""How long a presigned URL works when ``expired_in_sec`` is not positive: the AWS SDK's
default, which Layotto's S3 component gets for 0."""


class OssCapability(Capability[ObjectStorage]):
    def _store(self, name: str, operation: str) -> ObjectStorage:
        return self.components.get(name, operation)

    def _with_bucket(self, component: ObjectStorage, params: Params, operation: str) -> Params:
        if params.get("Bucket"):
            return params
        if not component.default_bucket:
            raise InvalidArgument(f"{operation}: bucket is required (the request names none "
                                  "and the component has no 'bucket')", where="oss")
        return {**params, "Bucket": component.default_bucket}

    async def perform(self, store: str, operation: str, params: Params) -> Params:
        component = self._store(store, operation)
        params = self._with_bucket(component, params, operation)
        try:
            result: Params = await self.call(store,
                                             lambda: component.call(operation, params))
        except PylottoError as err:
            raise err.at(f"oss.{operation}", name=store) from None
        return result

    async def put(self, store: str, params: Params, body: AsyncIterator[bytes]) -> Params:
        component = self._store(store, "PutObject")
        params = self._with_bucket(component, params, "PutObject")
        if not params.get("Key"):
            raise InvalidArgument("PutObject: key is required", where="oss.PutObject")
        try:
            return await component.put(params, body)
        except PylottoError as err:
            raise err.at("oss.PutObject", name=store) from None

    async def upload_part(self, store: str, params: Params,
                          body: AsyncIterator[bytes]) -> Params:
        component = self._store(store, "UploadPart")
        params = self._with_bucket(component, params, "UploadPart")
        try:
            return await component.upload_part(params, body)
        except PylottoError as err:
            raise err.at("oss.UploadPart", name=store) from None

    async def get(self, store: str, params: Params) -> Download:
        component = self._store(store, "GetObject")
        params = self._with_bucket(component, params, "GetObject")
        try:
            download: Download = await self.call(store, lambda: component.get(params))
        except PylottoError as err:
            raise err.at("oss.GetObject", name=store) from None
        return download

    async def sign_url(self, store: str, method: str, params: Mapping[str, Any],
                       expires: int) -> str:
        component = self._store(store, "SignURL")
        params = self._with_bucket(component, dict(params), "SignURL")
        expires = expires if expires > 0 else DEFAULT_SIGNED_SECONDS
        operation = PRESIGNABLE.get(method.upper())
        if operation is None:
            raise Internal(f"not supported method {method} now", where="oss.SignURL")
        try:
            url: str = await self.call(
                store, lambda: component.presign(operation, params, expires))
        except PylottoError as err:
            raise err.at("oss.SignURL", name=store) from None
        return url

    def unsupported(self, store: str, operation: str) -> PylottoError:
        """The error of an RPC S3 has no operation for (after the store's lookup)."""
        self._store(store, operation)
        return Internal(UNSUPPORTED[operation], where=f"oss.{operation}")
