"""Dapr's stream encryption scheme ``dapr.io/enc/v1`` (dapr/kit ``schemes/enc/v1``), written
from its specification so a document daprd encrypts decrypts here and back.

A document is ``header || segment_0 || ... || segment_k``. The header is three lines: the
scheme name, the manifest (compact JSON: ``k`` key name, ``kw`` key-wrap algorithm id, ``wfk``
the wrapped 256-bit file key, ``cph`` cipher id, ``np`` the 7-byte nonce prefix) and the
base64 HMAC-SHA-256 of the first two lines under ``HKDF(file key, info="header")``. The
plaintext is cut into 64 KiB segments, each sealed with the AEAD under ``HKDF(file key,
salt=nonce prefix, info="payload")`` and the nonce ``prefix || be32(i) || last``. An empty
plaintext has no segment.

Both directions work segment by segment: memory holds one segment, never the document. The
error texts are the reference's (daprd sends them after ``failed to perform operation: ``).

``cryptography`` (HKDF and the AEADs, ~10 MB of memory) is imported by the two functions that
use it, when a document is first sealed or opened: the crypto capability imports this module
whether or not a crypto component is configured, and a sidecar without one never loads it.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import os
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from hashlib import sha256
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

SCHEME_NAME = b"dapr.io/enc/v1"
SEGMENT_SIZE = 64 << 10
SEGMENT_OVERHEAD = 16
NONCE_PREFIX_LENGTH = 7
MAX_SEGMENTS = 1 << 32

KEY_ALGORITHMS = {"A256KW": 1, "A128CBC-NOPAD": 2, "A192CBC-NOPAD": 3, "A256CBC-NOPAD": 4,
                  "RSA-OAEP-256": 5}
"""Key-wrap algorithm → its manifest id."""
KEY_ALGORITHM_ALIASES = {"AES": "A256KW", "RSA": "RSA-OAEP-256"}
CIPHERS = {"AES-GCM": 1, "CHACHA20-POLY1305": 2}

ERR_KEY_MISSING = ("document's manifest does not contain a key name, and no key name was "
                   "provided")
ERR_SIGNATURE = "failed to validate the document's signature"
ERR_SEGMENT = "failed to decrypt segment"


class SchemeError(Exception):
    """A document or option the scheme refuses; the text is the reference's."""


WrapKey = Callable[[bytes, str, str], Awaitable[bytes]]
"""(file key, algorithm, key name) → wrapped file key."""
UnwrapKey = Callable[[bytes, str, str], Awaitable[bytes]]
"""(wrapped file key, algorithm, key name) → file key."""


def key_algorithm(name: str) -> str:
    """``name`` (upper-cased by the caller, as daprd does) with its alias resolved."""
    name = KEY_ALGORITHM_ALIASES.get(name, name)
    if name not in KEY_ALGORITHMS:
        raise SchemeError(f"option Algorithm is not valid: algorithm {name} is not supported")
    return name


def cipher_name(name: str) -> str:
    if name not in CIPHERS:
        raise SchemeError(f"option Cipher is not valid: cipher {name} is not supported")
    return name


def _derive(file_key: bytes, info: bytes, salt: bytes | None) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(hashes.SHA256(), 32, salt or None, info).derive(file_key)


class FileKey:
    """The file key and what it derives: the header's MAC key and the payload key."""

    def __init__(self, file_key: bytes, nonce_prefix: bytes, cipher: str) -> None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

        self.file_key = file_key
        self.nonce_prefix = nonce_prefix
        self.header_key = _derive(file_key, b"header", None)
        payload_key = _derive(file_key, b"payload", nonce_prefix)
        self.aead: AESGCM | ChaCha20Poly1305 = (
            AESGCM(payload_key) if cipher == "AES-GCM" else ChaCha20Poly1305(payload_key))

    @classmethod
    def generate(cls, cipher: str) -> FileKey:
        random = os.urandom(32 + NONCE_PREFIX_LENGTH)
        return cls(random[:32], random[32:], cipher)

    def mac(self, manifest: bytes) -> bytes:
        return hmac.new(self.header_key, SCHEME_NAME + b"\n" + manifest + b"\n", sha256).digest()

    def header(self, manifest: bytes) -> bytes:
        header = (SCHEME_NAME + b"\n" + manifest + b"\n"
                  + base64.b64encode(self.mac(manifest)) + b"\n")
        if len(header) > SEGMENT_SIZE:
            raise SchemeError("failed to sign header: header is too long")
        return header

    def verify(self, manifest: bytes, mac_b64: bytes) -> None:
        try:
            mac = base64.b64decode(mac_b64, validate=True)
        except (binascii.Error, ValueError):
            raise SchemeError("failed to decode header's signature: illegal base64 data") \
                from None
        if not hmac.compare_digest(self.mac(manifest), mac):
            raise SchemeError(ERR_SIGNATURE)

    def nonce(self, index: int, last: bool) -> bytes:
        return self.nonce_prefix + struct.pack(">I", index) + (b"\x01" if last else b"\x00")

    def seal(self, segment: bytes, index: int, last: bool) -> bytes:
        return self.aead.encrypt(self.nonce(index, last), segment, None)

    def open(self, segment: bytes, index: int, last: bool) -> bytes:
        try:
            return self.aead.decrypt(self.nonce(index, last), segment, None)
        except Exception:  # InvalidTag: tampered, truncated or reordered
            raise SchemeError(f"error processing segment {index}: {ERR_SEGMENT}") from None


@dataclass(frozen=True, slots=True)
class Manifest:
    key_name: str
    key_algorithm: str
    wrapped_key: bytes
    cipher: str
    nonce_prefix: bytes

    def encode(self) -> bytes:
        """Compact JSON in the reference's field order (Go's encoder: ``k`` left out when
        empty, ``<``, ``>``, ``&`` escaped)."""
        parts = []
        if self.key_name:
            name = json.dumps(self.key_name, ensure_ascii=False)
            for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                                  ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
                name = name.replace(char, escaped)
            parts.append(f'"k":{name}')
        parts.append(f'"kw":{KEY_ALGORITHMS[self.key_algorithm]}')
        parts.append(f'"wfk":"{base64.b64encode(self.wrapped_key).decode()}"')
        parts.append(f'"cph":{CIPHERS[self.cipher]}')
        parts.append(f'"np":"{base64.b64encode(self.nonce_prefix).decode()}"')
        return ("{" + ",".join(parts) + "}").encode()

    @classmethod
    def decode(cls, raw: bytes) -> Manifest:
        """The manifest, validated; any fault: the reference's one undisclosing text."""
        invalid = SchemeError("invalid header: invalid manifest")
        try:
            body = json.loads(raw)
            if not isinstance(body, dict):
                raise invalid
            algorithms = {v: k for k, v in KEY_ALGORITHMS.items()}
            ciphers = {v: k for k, v in CIPHERS.items()}
            kw, cph = body.get("kw"), body.get("cph")
            name = body.get("k", "")
            if (type(kw) is not int or kw not in algorithms or type(cph) is not int
                    or cph not in ciphers or not isinstance(name, str)):
                raise invalid
            wfk = base64.b64decode(body.get("wfk") or "", validate=True)
            prefix = base64.b64decode(body.get("np") or "", validate=True)
        except (ValueError, TypeError, binascii.Error):
            raise invalid from None
        if not wfk or len(prefix) != NONCE_PREFIX_LENGTH:
            raise invalid
        return cls(name, algorithms[kw], wfk, ciphers[cph], prefix)


class Segmenter:
    """Cuts a byte stream into segments of ``size``; a segment is handed out only once the
    next byte is known, so the last one is marked as such (the reference reads one byte
    ahead for this)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.buffer = bytearray()
        self.index = 0

    def feed(self, data: bytes) -> list[tuple[bytes, int, bool]]:
        self.buffer += data
        out = []
        while len(self.buffer) > self.size:
            out.append(self._take(bytes(self.buffer[:self.size]), last=False))
            del self.buffer[:self.size]
        return out

    def finish(self) -> list[tuple[bytes, int, bool]]:
        if not self.buffer:
            return []
        segment = bytes(self.buffer)
        self.buffer.clear()
        return [self._take(segment, last=True)]

    def _take(self, segment: bytes, last: bool) -> tuple[bytes, int, bool]:
        if self.index >= MAX_SEGMENTS:
            raise SchemeError("input stream is too large")
        self.index += 1
        return segment, self.index - 1, last


async def encrypt(chunks: AsyncIterator[bytes], wrap: WrapKey, key_name: str, algorithm: str,
                  *, cipher: str = "AES-GCM", decryption_key_name: str = "",
                  omit_key_name: bool = False) -> AsyncIterator[bytes]:
    """The document of the plaintext ``chunks``: the header first, then one sealed segment
    at a time. Option and key-wrap errors are raised before anything is produced."""
    if not key_name:
        raise SchemeError("option KeyName is required")
    if not algorithm:
        raise SchemeError("option Algorithm is required")
    algorithm = key_algorithm(algorithm)
    cipher = cipher_name(cipher)
    file_key = FileKey.generate(cipher)
    try:
        wrapped = await wrap(file_key.file_key, algorithm, key_name)
    except SchemeError as err:
        raise SchemeError(f"failed to wrap the file key: {err}") from None
    name = "" if omit_key_name else (decryption_key_name or key_name)
    header = file_key.header(Manifest(name, algorithm, wrapped, cipher,
                                      file_key.nonce_prefix).encode())
    return _sealed(header, chunks, file_key)


async def _sealed(header: bytes, chunks: AsyncIterator[bytes],
                  file_key: FileKey) -> AsyncIterator[bytes]:
    yield header
    segments = Segmenter(SEGMENT_SIZE)
    async for chunk in chunks:
        for segment, index, last in segments.feed(chunk):
            yield file_key.seal(segment, index, last)
    for segment, index, last in segments.finish():
        yield file_key.seal(segment, index, last)


class HeaderReader:
    """Reads the three header lines off the front of a document's chunks (at most one
    segment's worth); what follows them is kept for the segments."""

    def __init__(self) -> None:
        self.buffer = bytearray()

    def feed(self, data: bytes) -> tuple[bytes, bytes, bytes] | None:
        """(manifest, mac, the rest) once the header is complete, else None."""
        self.buffer += data
        lines: list[bytes] = []
        start = 0
        while len(lines) < 3:
            end = self.buffer.find(b"\n", start, SEGMENT_SIZE)
            if end < 0:
                break
            if end == start:
                raise SchemeError("invalid header: invalid format")
            lines.append(bytes(self.buffer[start:end]))
            if len(lines) == 1 and lines[0] != SCHEME_NAME:
                raise SchemeError("invalid header: unsupported scheme")
            start = end + 1
        if len(lines) == 3:
            return lines[1], lines[2], bytes(self.buffer[start:])
        if lines and lines[0] != SCHEME_NAME:
            raise SchemeError("invalid header: unsupported scheme")
        if len(self.buffer) >= SEGMENT_SIZE:
            raise self.incomplete(len(lines))
        return None

    def finish(self) -> SchemeError:
        lines = self.buffer[:SEGMENT_SIZE].count(b"\n")
        if lines == 0 and self.buffer and not SCHEME_NAME.startswith(bytes(self.buffer)):
            return SchemeError("invalid header: unsupported scheme")
        return self.incomplete(lines)

    @staticmethod
    def incomplete(lines: int) -> SchemeError:
        if lines < 1:
            return SchemeError("invalid header: scheme name not found")
        if lines < 2:
            return SchemeError("invalid header: manifest not found")
        return SchemeError("invalid header: message authentication code not found")


async def decrypt(chunks: AsyncIterator[bytes], unwrap: UnwrapKey,
                  key_name: str = "") -> AsyncIterator[bytes]:
    """The plaintext of the document ``chunks``: the header is read and its MAC checked
    before this returns (errors raised then); each segment is released only once verified,
    a bad one ends the stream with ``error processing segment i``."""
    reader = HeaderReader()
    found = None
    async for chunk in chunks:
        found = reader.feed(chunk)
        if found is not None:
            break
    if found is None:
        raise reader.finish()
    raw_manifest, mac, rest = found
    manifest = Manifest.decode(raw_manifest)
    name = key_name or manifest.key_name
    if not name:
        raise SchemeError(ERR_KEY_MISSING)
    try:
        plain_key = await unwrap(manifest.wrapped_key, manifest.key_algorithm, name)
    except SchemeError:
        plain_key = b""
    if len(plain_key) != 32:
        # as the reference: a key that cannot be unwrapped is not told apart from a wrong
        # one; the MAC check under an all-zero key fails the same way
        plain_key = bytes(32)
    file_key = FileKey(plain_key, manifest.nonce_prefix, manifest.cipher)
    file_key.verify(raw_manifest, mac)
    return _opened(rest, chunks, file_key)


async def _opened(rest: bytes, chunks: AsyncIterator[bytes],
                  file_key: FileKey) -> AsyncIterator[bytes]:
    segments = Segmenter(SEGMENT_SIZE + SEGMENT_OVERHEAD)
    for segment, index, last in segments.feed(rest):
        yield file_key.open(segment, index, last)
    async for chunk in chunks:
        for segment, index, last in segments.feed(chunk):
            yield file_key.open(segment, index, last)
    for segment, index, last in segments.finish():
        yield file_key.open(segment, index, last)
