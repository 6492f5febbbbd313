"""Dapr's crypto API over HTTP: ``PUT /v1.0-alpha1/crypto/{name}/encrypt`` and ``.../decrypt``
(daprd's ``pkg/api/http/crypto.go``). The body is the plaintext (encrypt) or the
``dapr.io/enc/v1`` document (decrypt); options come in headers: ``dapr-key-name`` (required to
encrypt, optional to decrypt), ``dapr-key-wrap-algorithm``, ``dapr-omit-decryption-key-name``,
``dapr-decryption-key-name``, ``dapr-data-encryption-cipher``. The answer is
``application/octet-stream``.

As daprd, the whole body is processed before the answer starts, so every failure — a segment
anywhere that does not verify — is an error answer, and clients that send the whole body
before reading (most HTTP clients) work. daprd holds the result in memory; pylotto keeps
memory bounded by spooling the *ciphertext* side to an unlinked temporary file (encrypt: its
output; decrypt: its input, verified whole, then decrypted again as it is sent). Plaintext
never touches the disk.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator
from typing import IO

from aiohttp import web

from pylotto.capabilities.crypto import EncryptOptions
from pylotto.capabilities.crypto.api import bad_request
from pylotto.facades.dapr.http.keys import services_of

CHUNK = 64 << 10
IN_MEMORY = 1 << 20
"""A spool stays in memory up to this size, then moves to a temporary file."""
_TRUTHY = {"1", "true", "t", "y", "yes", "on"}


def _spool() -> IO[bytes]:
    return tempfile.SpooledTemporaryFile(max_size=IN_MEMORY)


async def _body(request: web.Request) -> AsyncIterator[bytes]:
    while True:
        chunk = await request.content.read(CHUNK)
        if not chunk:
            return
        yield chunk


async def _write(spool: IO[bytes], data: bytes) -> None:
    if spool.tell() + len(data) > IN_MEMORY:
        await asyncio.to_thread(spool.write, data)
    else:
        spool.write(data)


async def _read(spool: IO[bytes]) -> AsyncIterator[bytes]:
    spool.seek(0)
    while True:
        chunk = await asyncio.to_thread(spool.read, CHUNK)
        if not chunk:
            return
        yield chunk


async def _send(request: web.Request, pieces: AsyncIterator[bytes],
                length: int) -> web.StreamResponse:
    response = web.StreamResponse(status=200,
                                  headers={"Content-Type": "application/octet-stream"})
    response.content_length = length
    await response.prepare(request)
    async for piece in pieces:
        await response.write(piece)
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
    with _spool() as spool:
        async for piece in output:
            await _write(spool, piece)
        return await _send(request, _read(spool), spool.tell())


async def decrypt(request: web.Request) -> web.StreamResponse:
    crypto = services_of(request).crypto
    name = request.match_info["name"]
    crypto.provider(name)
    key_name = request.headers.get("dapr-key-name", "")
    with _spool() as spool:
        async for chunk in _body(request):
            await _write(spool, chunk)
        length = 0
        async for piece in await crypto.decrypt(name, _read(spool), key_name):
            length += len(piece)  # every segment verified before anything is sent
        return await _send(request, await crypto.decrypt(name, _read(spool), key_name), length)


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_put("/v1.0-alpha1/crypto/{name}/encrypt", encrypt)
    router.add_put("/v1.0-alpha1/crypto/{name}/decrypt", decrypt)
