"""dapr.io/enc/v1: the documents dapr/kit's own tests decrypt (schemes/enc/v1/testdata, written
by the Go reference with an identity key wrap: the manifest's ``wfk`` is the file key) decrypt
here to the plaintexts those tests name; our documents round-trip, and a change to any byte is
refused."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pylotto.capabilities.crypto import enc_v1
from pylotto.capabilities.crypto.enc_v1 import SchemeError

VECTORS = Path(__file__).parent / "vectors"

PLAINTEXTS = {
    "single-segment": b"hello world",
    "multi-segment": bytes([1, 2, 3, 4, 5, 6, 7, 8, 9, 0]) * (12 << 10),
    "one-full-segment": bytes([1, 2, 3, 4, 5, 6, 7, 8]) * (8 << 10),
    "two-full-segments": bytes([1, 2, 3, 4, 5, 6, 7, 8]) * (16 << 10),
    "empty-message": b"",
}


async def _chunks(data: bytes, size: int = 1000) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i:i + size]


async def _identity(key: bytes, algorithm: str, name: str) -> bytes:
    return key


async def _collect(stream: AsyncIterator[bytes]) -> bytes:
    return b"".join([part async for part in stream])


async def _decrypt(document: bytes, key_name: str = "", size: int = 1000) -> bytes:
    return await _collect(await enc_v1.decrypt(_chunks(document, size), _identity, key_name))


@pytest.mark.parametrize("name", sorted(PLAINTEXTS))
async def test_reference_documents_decrypt(name: str) -> None:
    document = (VECTORS / f"{name}.enc").read_bytes()
    assert await _decrypt(document) == PLAINTEXTS[name]
    assert await _decrypt(document, size=1 << 20) == PLAINTEXTS[name]


async def test_reference_document_without_key_name_needs_one() -> None:
    document = (VECTORS / "single-segment-no-key-name.enc").read_bytes()
    with pytest.raises(SchemeError, match="does not contain a key name"):
        await _decrypt(document)
    assert await _decrypt(document, key_name="mykey") == b"hello world"


@pytest.mark.parametrize("size", [0, 1, 65535, 65536, 65537, 3 * 65536, 200_001])
async def test_round_trip_and_segment_layout(size: int) -> None:
    plain = bytes(i % 251 for i in range(size))
    document = await _collect(await enc_v1.encrypt(_chunks(plain, 7777), _identity, "k1", "AES"))
    header_end = document.index(b"\n", document.index(b"\n", 15) + 1) + 1
    lines = document[:header_end].split(b"\n")
    assert lines[0] == b"dapr.io/enc/v1"
    manifest = json.loads(lines[1])
    assert list(manifest) == ["k", "kw", "wfk", "cph", "np"]
    assert manifest["k"] == "k1" and manifest["kw"] == 1 and manifest["cph"] == 1
    assert len(base64.b64decode(manifest["np"])) == 7
    segments = -(-size // 65536)
    assert len(document) - header_end == size + 16 * segments
    assert await _decrypt(document) == plain


async def test_chacha_cipher_and_decryption_key_name() -> None:
    document = await _collect(await enc_v1.encrypt(
        _chunks(b"x" * 70000), _identity, "enc", "A256KW", cipher="CHACHA20-POLY1305",
        decryption_key_name="dec"))
    manifest = json.loads(document.split(b"\n")[1])
    assert manifest["k"] == "dec" and manifest["cph"] == 2
    assert await _decrypt(document) == b"x" * 70000


async def test_omit_key_name() -> None:
    document = await _collect(await enc_v1.encrypt(_chunks(b"abc"), _identity, "k", "AES",
                                                   omit_key_name=True))
    assert "k" not in json.loads(document.split(b"\n")[1])


async def test_every_tampered_byte_is_refused() -> None:
    document = (VECTORS / "single-segment.enc").read_bytes()
    for position in range(len(document)):
        if document[position:position + 1] == b"\n":
            continue
        tampered = bytearray(document)
        tampered[position] ^= 0x01
        with pytest.raises(SchemeError):
            await _decrypt(bytes(tampered))


async def test_truncated_and_reordered_segments_are_refused() -> None:
    document = (VECTORS / "two-full-segments.enc").read_bytes()
    header_end = len(document) - 2 * (65536 + 16)
    header, one, two = (document[:header_end], document[header_end:header_end + 65552],
                        document[header_end + 65552:])
    with pytest.raises(SchemeError, match="error processing segment 0: failed to decrypt"):
        await _decrypt(header + one)  # the first segment is not marked last
    with pytest.raises(SchemeError, match="error processing segment 0"):
        await _decrypt(header + two + one)


async def test_wrong_key_fails_the_header_mac() -> None:
    document = (VECTORS / "single-segment.enc").read_bytes()

    async def wrong(key: bytes, algorithm: str, name: str) -> bytes:
        raise SchemeError("no such key")

    with pytest.raises(SchemeError, match=r"^failed to validate the document's signature$"):
        await enc_v1.decrypt(_chunks(document), wrong)


@pytest.mark.parametrize(("document", "message"), [
    (b"", "scheme name not found"),
    (b"dapr.io/enc/v2\n{}\nx\n", "unsupported scheme"),
    (b"dapr.io/enc/v1\n", "manifest not found"),
    (b"dapr.io/enc/v1\n{}\n", "message authentication code not found"),
    (b"dapr.io/enc/v1\n{}\nAAAA\n", "invalid manifest"),
    (b"dapr.io/enc/v1\n\n", "invalid format"),
])
async def test_bad_headers(document: bytes, message: str) -> None:
    with pytest.raises(SchemeError, match=message):
        await _decrypt(document)


def test_unknown_algorithm_and_cipher() -> None:
    with pytest.raises(SchemeError, match="algorithm RSA-OAEP is not supported"):
        enc_v1.key_algorithm("RSA-OAEP")
    with pytest.raises(SchemeError, match="cipher XC20P is not supported"):
        enc_v1.cipher_name("XC20P")


async def test_manifest_types_are_go_strict() -> None:
    """Go's json.Unmarshal refuses a boolean or a float for the numeric ids."""
    for manifest in (b'{"kw":true,"wfk":"AAAA","cph":1,"np":"AAAAAAAAAA=="}',
                     b'{"kw":1,"wfk":"AAAA","cph":1.0,"np":"AAAAAAAAAA=="}',
                     b'{"kw":1,"wfk":"AAAA","cph":1,"np":"AAAA"}'):
        with pytest.raises(SchemeError, match="invalid manifest"):
            enc_v1.Manifest.decode(manifest)
    assert enc_v1.Manifest.decode(b'{"kw":5,"wfk":"AAAA","cph":2,"np":"AAAAAAAAAA=="}') == \
        enc_v1.Manifest("", "RSA-OAEP-256", bytes(3), "CHACHA20-POLY1305", bytes(7))
