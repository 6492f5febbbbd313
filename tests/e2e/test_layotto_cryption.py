"""Layotto's ``spec.proto.extension.v1.cryption.CryptionService`` against the real ``pylotto
run -c`` with a Layotto JSON config whose ``cryption`` section has a ``dapr.localstorage``
component over a folder of keys: a client generated from pylotto's cryption.proto encrypts and
decrypts with an RSA key and an AES key; the ciphertext is a ``dapr.io/enc/v1`` document;
tampered ciphertext, unknown keys and unknown components are refused."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from pylotto.proto.layotto import cryption_pb2, cryption_pb2_grpc
from tests.e2e.test_layotto_config_styles import _layotto_config, _start, _stop
from tests.support.ports import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


@pytest.fixture
def stub(tmp_path: Path) -> Iterator[cryption_pb2_grpc.CryptionServiceStub]:
    keys = tmp_path / "keys"
    keys.mkdir()
    (keys / "rsa.pem").write_bytes(rsa.generate_private_key(65537, 2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption()))
    (keys / "aes").write_bytes(base64.b64encode(os.urandom(32)))
    address = f"127.0.0.1:{free_port()}"
    config = _layotto_config(address, grpc_config={"cryption": {
        "cryption_demo": {"type": "dapr.localstorage",
                          "metadata": {"path": str(keys), "KeyID": "rsa.pem"}},
        "no_default": {"type": "dapr.localstorage", "metadata": {"path": str(keys)}},
    }})
    proc = _start(tmp_path, config)
    channel = grpc.insecure_channel(address)
    try:
        grpc.channel_ready_future(channel).result(timeout=60)
        yield cryption_pb2_grpc.CryptionServiceStub(channel)
    finally:
        channel.close()
        code, output = _stop(proc)
        assert code == 0, output


def test_encrypt_and_decrypt(stub: cryption_pb2_grpc.CryptionServiceStub) -> None:
    plain = os.urandom(200_000)
    for component, key_id, expected_key in (("cryption_demo", "", "rsa.pem"),
                                            ("cryption_demo", "aes", "aes"),
                                            ("no_default", "rsa.pem", "rsa.pem")):
        sealed = stub.Encrypt(cryption_pb2.EncryptRequest(
            component_name=component, plain_text=plain, key_id=key_id))
        assert sealed.key_id == expected_key
        assert sealed.cipher_text.startswith(b"dapr.io/enc/v1\n")
        assert plain not in sealed.cipher_text
        opened = stub.Decrypt(cryption_pb2.DecryptRequest(component_name=component,
                                                          cipher_text=sealed.cipher_text))
        assert (opened.plain_text == plain, opened.key_id) == (True, expected_key)


def test_refusals(stub: cryption_pb2_grpc.CryptionServiceStub) -> None:
    sealed = stub.Encrypt(cryption_pb2.EncryptRequest(component_name="cryption_demo",
                                                      plain_text=b"hello"))
    tampered = bytearray(sealed.cipher_text)
    tampered[-1] ^= 1
    with pytest.raises(grpc.RpcError) as refused:
        stub.Decrypt(cryption_pb2.DecryptRequest(component_name="cryption_demo",
                                                 cipher_text=bytes(tampered)))
    assert (refused.value.code(), refused.value.details()) == (
        grpc.StatusCode.INTERNAL, "error processing segment 0: failed to decrypt segment")
    with pytest.raises(grpc.RpcError) as refused:
        stub.Decrypt(cryption_pb2.DecryptRequest(component_name="cryption_demo",
                                                 cipher_text=b"plain junk"))
    assert refused.value.code() == grpc.StatusCode.INTERNAL
    with pytest.raises(grpc.RpcError) as refused:
        stub.Encrypt(cryption_pb2.EncryptRequest(component_name="cryption_demo",
                                                 plain_text=b"x", key_id="missing"))
    assert refused.value.code() == grpc.StatusCode.INTERNAL
    assert "failed to load key 'missing'" in refused.value.details()
    with pytest.raises(grpc.RpcError) as refused:
        stub.Encrypt(cryption_pb2.EncryptRequest(component_name="no_default", plain_text=b"x"))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as refused:
        stub.Encrypt(cryption_pb2.EncryptRequest(component_name="other", plain_text=b"x"))
    assert (refused.value.code(), refused.value.details()) == (
        grpc.StatusCode.INVALID_ARGUMENT, "component not found. kind: cryption , name: other")
