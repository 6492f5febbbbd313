"""Dapr's crypto API over HTTP: ``PUT /v1.0-alpha1/crypto/{name}/encrypt`` and ``.../decrypt``
(daprd's ``pkg/api/http/crypto.go``). The body is the plaintext (encrypt) or the
``dapr.io/enc/v1`` document (decrypt); options come in headers: ``dapr-key-name`` (required to
encrypt, optional to decrypt), ``dapr-key-wrap-algorithm``, ``dapr-omit-decryption-key-name``,
``dapr-decryption-key-name``, ``dapr-data-encryption-cipher``. The answer is
``application/octet-stream``.

daprd reads the whole result into memory before answering. pylotto streams both ways: the
answer starts once the header and the first segment are done, so an error up to there (every
error of a document of one segment, 64 KiB) is daprd's error answer; a later segment that
fails to verify ends the response early (the connection is closed without the last chunk, so
the client sees a truncated, failed transfer, never unverified data).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import web

from pylotto.capabilities.crypto import EncryptOptions
from pylotto.capabilities.crypto.api import bad_request
from pylotto.core.errors import PylottoError
from pylotto.facades.dapr.http.keys import services_of

log = logging.getLogger("pylotto.crypto")

READ_CHUNK = 64 << 10
_TRUTHY = {"1", "true", "t", "y", "yes", "on"}


async def _body(request: web.Request) -> AsyncIterator[bytes]:
    while True:
        chunk = await request.content.read(READ_CHUNK)
        if not chunk:
            return
        yield chunk


async def _answer(request: web.Request, output: AsyncIterator[bytes]) -> web.StreamResponse:
    first = b""
    async for piece in output:  # errors up to the first output piece: daprd's error answer
        first = piece
        break
    response = web.StreamResponse(status=200,
                                  headers={"Content-Type": "application/octet-stream"})
    await response.prepare(request)
    await response.write(first)
    try:
        async for piece in output:
            await response.write(piece)
    except PylottoError as err:
        log.debug("crypto %s: %s", request.path, err.message)
        if request.transport is not None:
            request.transport.close()
        return response
    await response.write_eof()
    return response


async def encrypt(request: web.Request) -> web.StreamResponse:
    crypto = services_of(request).crypto
    name = request.match_info["name"]
    crypto.provider(name)
    key_name = request.headers.get("dapr-key-name", "")
    if not key_name:
        raise bad_request("missing header 'dapr-key-name'")
    algorithm = request.headers.get("dapr-key-wrap-algorithm", "")
    if not algorithm:
        raise bad_request("missing header 'dapr-key-wrap-algorithm'")
    output = await crypto.encrypt(name, _body(request), EncryptOptions(
        key_name, algorithm, request.headers.get("dapr-data-encryption-cipher", ""),
        request.headers.get("dapr-omit-decryption-key-name", "").lower() in _TRUTHY,
        request.headers.get("dapr-decryption-key-name", "")))
    return await _answer(request, output)


async def decrypt(request: web.Request) -> web.StreamResponse:
    crypto = services_of(request).crypto
    name = request.match_info["name"]
    output = await crypto.decrypt(name, _body(request), request.headers.get("dapr-key-name", ""))
    return await _answer(request, output)


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_put("/v1.0-alpha1/crypto/{name}/encrypt", encrypt)
    router.add_put("/v1.0-alpha1/crypto/{name}/decrypt", decrypt)
