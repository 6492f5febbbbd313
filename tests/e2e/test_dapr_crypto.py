"""Dapr's crypto API on pylotto as an app uses it: a ``crypto.dapr.localstorage`` manifest
over a folder of key files, loaded by ``pylotto run --resources-path``; the dapr 1.19 SDK's
``encrypt`` / ``decrypt`` (the ``dapr.io/enc/v1`` streams) with RSA-OAEP-256 and AES key wrap,
a 20 MB stream with the sidecar's memory watched, tampered documents and wrong keys refused
with daprd's errors; the subtle RPCs through the generated stub; the HTTP routes."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import psutil
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from dapr.clients import DaprClient
from dapr.clients.grpc._crypto import DecryptOptions, EncryptOptions
from dapr.proto.runtime.v1 import crypto_pb2, dapr_pb2_grpc

from tests.e2e.sidecar import Sidecar
from tests.e2e.test_dapr_output_bindings import manifest

pytestmark = [pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning"),
              pytest.mark.timeout(300)]

AES_KEY = os.urandom(32)


def _keys(folder: Path) -> dict[str, object]:
    folder.mkdir()
    rsa_key = rsa.generate_private_key(65537, 2048)
    (folder / "rsa.pem").write_bytes(rsa_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    (folder / "aes256").write_bytes(base64.b64encode(AES_KEY) + b"\n")
    ec_key = ec.generate_private_key(ec.SECP256R1())
    (folder / "ec.pem").write_bytes(ec_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption()))
    ed_key = ed25519.Ed25519PrivateKey.generate()
    raw = ed_key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                               serialization.NoEncryption())
    pub = ed_key.public_key().public_bytes(serialization.Encoding.Raw,
                                           serialization.PublicFormat.Raw)
    b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()  # noqa: E731
    (folder / "ed.json").write_text(json.dumps(
        {"kty": "OKP", "crv": "Ed25519", "d": b64(raw), "x": b64(pub)}))
    return {"rsa": rsa_key, "ec": ec_key, "ed": ed_key}


@pytest.fixture(scope="module")
def crypto_car(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Sidecar, Path,
                                                                          dict[str, object]]]:
    root = tmp_path_factory.mktemp("crypto")
    keys = root / "keys"
    private = _keys(keys)
    resources = root / "resources"
    resources.mkdir()
    (resources / "crypto.yaml").write_text(manifest("mycrypto", "crypto.dapr.localstorage",
                                                    {"path": str(keys)}))
    car = Sidecar(root / "car", components={},
                  extra_args=["--resources-path", str(resources)]).start()
    try:
        yield car, keys, private
    finally:
        car.stop()


@pytest.fixture
def client(crypto_car: tuple[Sidecar, Path, dict[str, object]],
           monkeypatch: pytest.MonkeyPatch) -> Iterator[DaprClient]:
    car = crypto_car[0]
    monkeypatch.setenv("DAPR_GRPC_PORT", str(car.dapr_grpc_port))
    monkeypatch.setenv("DAPR_HTTP_PORT", str(car.dapr_http_port))
    with DaprClient(max_grpc_message_length=8 << 20) as dapr:
        yield dapr


def _encrypt(client: DaprClient, data: bytes, key: str, algorithm: str, **extra: object) -> bytes:
    return bytes(client.encrypt(data, EncryptOptions(
        component_name="mycrypto", key_name=key, key_wrap_algorithm=algorithm,
        **extra)).read())  # type: ignore[arg-type]


def _decrypt(client: DaprClient, data: bytes, key: str = "") -> bytes:
    return bytes(client.decrypt(data, DecryptOptions(component_name="mycrypto",
                                                     key_name=key)).read())


def _manifest(document: bytes) -> dict[str, object]:
    return dict(json.loads(document.split(b"\n")[1]))


@pytest.mark.parametrize(("key", "algorithm", "kw"), [
    ("rsa.pem", "RSA-OAEP-256", 5), ("rsa.pem", "rsa", 5), ("aes256", "A256KW", 1),
    ("aes256", "aes", 1)])
def test_round_trip_through_the_sdk(client: DaprClient, key: str, algorithm: str,
                                    kw: int) -> None:
    plain = b"hello dapr " * 10_000
    document = _encrypt(client, plain, key, algorithm)
    assert document.startswith(b"dapr.io/enc/v1\n")
    manifest_ = _manifest(document)
    assert (manifest_["k"], manifest_["kw"], manifest_["cph"]) == (key, kw, 1)
    assert _decrypt(client, document) == plain
    assert _decrypt(client, document, key) == plain


def test_aes_key_wrap_is_rfc3394_under_the_key_file(client: DaprClient) -> None:
    """The wrapped file key opens with the key of the folder by plain RFC 3394, so a document
    written here is what daprd with the same key file would write and read."""
    from cryptography.hazmat.primitives.keywrap import aes_key_unwrap

    document = _encrypt(client, b"x", "aes256", "A256KW")
    wfk = base64.b64decode(str(_manifest(document)["wfk"]))
    assert len(aes_key_unwrap(AES_KEY, wfk)) == 32


def test_chacha_and_a_decryption_key_name(client: DaprClient) -> None:
    document = _encrypt(client, b"abc" * 50_000, "aes256", "A256KW",
                        data_encryption_cipher="chacha20-poly1305",
                        decryption_key_name="aes256")
    assert _manifest(document)["cph"] == 2
    assert _decrypt(client, document) == b"abc" * 50_000
    omitted = _encrypt(client, b"abc", "aes256", "A256KW", omit_decryption_key_name=True)
    assert "k" not in _manifest(omitted)
    with pytest.raises(grpc.RpcError) as refused:
        _decrypt(client, omitted)
    assert refused.value.details() == (  # type: ignore[attr-defined]
        "failed to perform operation: document's manifest does not contain a key name, and "
        "no key name was provided")
    assert _decrypt(client, omitted, "aes256") == b"abc"


def _rss_sampler(pid: int) -> tuple[threading.Event, list[int]]:
    stop, peak = threading.Event(), [0]
    process = psutil.Process(pid)

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], process.memory_info().rss)
            stop.wait(0.02)

    threading.Thread(target=sample, daemon=True).start()
    return stop, peak


def test_a_20_mb_stream_with_bounded_sidecar_memory(
        crypto_car: tuple[Sidecar, Path, dict[str, object]], client: DaprClient) -> None:
    car = crypto_car[0]
    assert car.process is not None
    plain = os.urandom(1 << 20) * 20
    _decrypt(client, _encrypt(client, b"warm up" * 100_000, "rsa.pem", "RSA-OAEP-256"))
    before = psutil.Process(car.process.pid).memory_info().rss
    stop, peak = _rss_sampler(car.process.pid)
    try:
        document = _encrypt(client, plain, "rsa.pem", "RSA-OAEP-256")
        assert len(document) > len(plain) + 16 * 320
        assert hashlib.sha256(_decrypt(client, document)).digest() == \
            hashlib.sha256(plain).digest()
    finally:
        stop.set()
    grown = peak[0] - before
    print(f"sidecar RSS before {before >> 20} MiB, peak {peak[0] >> 20} MiB, "
          f"grown {grown / (1 << 20):.1f} MiB for a 20 MiB stream each way")
    assert grown < 15 << 20, f"the sidecar grew {grown >> 20} MiB for a 20 MiB stream"


def test_tampered_documents_are_refused(client: DaprClient) -> None:
    document = bytearray(_encrypt(client, b"secret " * 30_000, "aes256", "A256KW"))
    segment = bytearray(document)
    segment[-5] ^= 1  # inside the last segment
    with pytest.raises(grpc.RpcError) as refused:
        _decrypt(client, bytes(segment))
    error = refused.value
    assert (error.code(), error.details()) == (  # type: ignore[attr-defined]
        grpc.StatusCode.INTERNAL,
        "failed to perform operation: error processing segment 3: failed to decrypt segment")
    header = bytearray(document)
    header[header.index(b'"np":"') + 7] ^= 1  # the manifest
    with pytest.raises(grpc.RpcError) as refused:
        _decrypt(client, bytes(header))
    assert refused.value.details() in (  # type: ignore[attr-defined]
        "failed to perform operation: failed to validate the document's signature",
        "failed to perform operation: invalid header: invalid manifest")
    with pytest.raises(grpc.RpcError) as refused:
        _decrypt(client, b"not a document at all\n")
    assert refused.value.details() == (  # type: ignore[attr-defined]
        "failed to perform operation: invalid header: unsupported scheme")


def test_wrong_keys_are_refused(client: DaprClient,
                                crypto_car: tuple[Sidecar, Path, dict[str, object]]) -> None:
    keys = crypto_car[1]
    with pytest.raises(grpc.RpcError) as refused:
        _encrypt(client, b"data", "nope", "A256KW")
    error = refused.value
    assert (error.code(), error.details()) == (  # type: ignore[attr-defined]
        grpc.StatusCode.INTERNAL,
        "failed to perform operation: failed to wrap the file key: failed to retrieve the key "
        f"encryption key: failed to load key 'nope': open {keys}/nope: no such file or "
        "directory")
    document = _encrypt(client, b"data", "aes256", "A256KW")
    for wrong in ("nope", "rsa.pem"):
        with pytest.raises(grpc.RpcError) as refused:
            _decrypt(client, document, wrong)
        assert refused.value.details() == (  # type: ignore[attr-defined]
            "failed to perform operation: failed to validate the document's signature")
    with pytest.raises(grpc.RpcError) as refused:
        _encrypt(client, b"data", "aes256", "RSA-OAEP")
    assert refused.value.details() == (  # type: ignore[attr-defined]
        "failed to perform operation: option Algorithm is not valid: algorithm RSA-OAEP is "
        "not supported")
    with pytest.raises(grpc.RpcError) as refused:
        _encrypt(client, b"data", "../etc", "A256KW")
    assert "invalid key path: cannot contain '..'" in refused.value.details()  # type: ignore[attr-defined]
    with pytest.raises(grpc.RpcError) as refused:
        client.encrypt(b"x", EncryptOptions(component_name="other", key_name="k",
                                            key_wrap_algorithm="A256KW")).read()
    assert (refused.value.code(), refused.value.details()) == (  # type: ignore[attr-defined]
        grpc.StatusCode.INVALID_ARGUMENT, "crypto provider other not found")


def test_subtle_rpcs(crypto_car: tuple[Sidecar, Path, dict[str, object]]) -> None:
    car, _, private = crypto_car
    with grpc.insecure_channel(car.dapr_grpc_address) as channel:
        stub = dapr_pb2_grpc.DaprStub(channel)  # type: ignore[no-untyped-call]
        pem = stub.SubtleGetKeyAlpha1(crypto_pb2.SubtleGetKeyRequest(
            component_name="mycrypto", name="rsa.pem", format=crypto_pb2.SubtleGetKeyRequest.PEM))
        rsa_key = private["rsa"]
        assert isinstance(rsa_key, rsa.RSAPrivateKey)
        assert pem.name == "rsa.pem"
        assert pem.public_key == rsa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
        jwk = json.loads(stub.SubtleGetKeyAlpha1(crypto_pb2.SubtleGetKeyRequest(
            component_name="mycrypto", name="ed.json",
            format=crypto_pb2.SubtleGetKeyRequest.JSON)).public_key)
        assert (jwk["kty"], jwk["crv"], "d" in jwk) == ("OKP", "Ed25519", False)
        with pytest.raises(grpc.RpcError) as refused:
            stub.SubtleGetKeyAlpha1(crypto_pb2.SubtleGetKeyRequest(
                component_name="mycrypto", name="aes256"))
        assert (refused.value.code(), refused.value.details()) == (
            grpc.StatusCode.INTERNAL, "failed to retrieve key aes256: key not found")

        # symmetric: AES-GCM with its tag, AES-CBC with PKCS#7, AES key wrap
        nonce = os.urandom(12)
        sealed = stub.SubtleEncryptAlpha1(crypto_pb2.SubtleEncryptRequest(
            component_name="mycrypto", plaintext=b"subtle", algorithm="A256GCM",
            key_name="aes256", nonce=nonce, associated_data=b"ad"))
        assert len(sealed.tag) == 16
        opened = stub.SubtleDecryptAlpha1(crypto_pb2.SubtleDecryptRequest(
            component_name="mycrypto", ciphertext=sealed.ciphertext, algorithm="A256GCM",
            key_name="aes256", nonce=nonce, tag=sealed.tag, associated_data=b"ad"))
        assert opened.plaintext == b"subtle"
        with pytest.raises(grpc.RpcError) as refused:
            stub.SubtleDecryptAlpha1(crypto_pb2.SubtleDecryptRequest(
                component_name="mycrypto", ciphertext=sealed.ciphertext, algorithm="A256GCM",
                key_name="aes256", nonce=nonce, tag=bytes(16)))
        assert (refused.value.code(), refused.value.details()) == (
            grpc.StatusCode.INTERNAL, "failed to perform operation: failed to decrypt")
        iv = os.urandom(16)
        cbc = stub.SubtleEncryptAlpha1(crypto_pb2.SubtleEncryptRequest(
            component_name="mycrypto", plaintext=b"cbc!", algorithm="A256CBC",
            key_name="aes256", nonce=iv))
        assert len(cbc.ciphertext) == 16 and cbc.tag == b""
        assert stub.SubtleDecryptAlpha1(crypto_pb2.SubtleDecryptRequest(
            component_name="mycrypto", ciphertext=cbc.ciphertext, algorithm="A256CBC",
            key_name="aes256", nonce=iv)).plaintext == b"cbc!"
        key = os.urandom(32)
        wrapped = stub.SubtleWrapKeyAlpha1(crypto_pb2.SubtleWrapKeyRequest(
            component_name="mycrypto", plaintext_key=key, algorithm="A256KW",
            key_name="aes256"))
        assert stub.SubtleUnwrapKeyAlpha1(crypto_pb2.SubtleUnwrapKeyRequest(
            component_name="mycrypto", wrapped_key=wrapped.wrapped_key, algorithm="A256KW",
            key_name="aes256")).plaintext_key == key
        # RSA-OAEP-256 wraps: the app's own public key opens nothing, the sidecar unwraps
        rsa_wrapped = rsa_key.public_key().encrypt(key, padding.OAEP(
            padding.MGF1(hashes.SHA256()), hashes.SHA256(), None))
        assert stub.SubtleUnwrapKeyAlpha1(crypto_pb2.SubtleUnwrapKeyRequest(
            component_name="mycrypto", wrapped_key=rsa_wrapped, algorithm="RSA-OAEP-256",
            key_name="rsa.pem")).plaintext_key == key

        # signatures: Ed25519 over the message, ECDSA and RSA over a digest
        message = b"sign me"
        ed = stub.SubtleSignAlpha1(crypto_pb2.SubtleSignRequest(
            component_name="mycrypto", digest=message, algorithm="EdDSA", key_name="ed.json"))
        ed_key = private["ed"]
        assert isinstance(ed_key, ed25519.Ed25519PrivateKey)
        ed_key.public_key().verify(ed.signature, message)
        digest = hashlib.sha256(message).digest()
        for key_name, algorithm in (("ec.pem", "ES256"), ("rsa.pem", "PS256"),
                                    ("rsa.pem", "RS256"), ("ed.json", "EdDSA")):
            signed = stub.SubtleSignAlpha1(crypto_pb2.SubtleSignRequest(
                component_name="mycrypto", digest=digest, algorithm=algorithm,
                key_name=key_name))
            verdict = stub.SubtleVerifyAlpha1(crypto_pb2.SubtleVerifyRequest(
                component_name="mycrypto", digest=digest, algorithm=algorithm,
                key_name=key_name, signature=signed.signature))
            assert verdict.valid, (key_name, algorithm)
            assert not stub.SubtleVerifyAlpha1(crypto_pb2.SubtleVerifyRequest(
                component_name="mycrypto", digest=hashlib.sha256(b"other").digest(),
                algorithm=algorithm, key_name=key_name, signature=signed.signature)).valid
        ec_key = private["ec"]
        assert isinstance(ec_key, ec.EllipticCurvePrivateKey)
        es = stub.SubtleSignAlpha1(crypto_pb2.SubtleSignRequest(
            component_name="mycrypto", digest=digest, algorithm="ES256", key_name="ec.pem"))
        from cryptography.hazmat.primitives.asymmetric import utils
        ec_key.public_key().verify(es.signature, digest,
                                   ec.ECDSA(utils.Prehashed(hashes.SHA256())))
        with pytest.raises(grpc.RpcError) as refused:
            stub.SubtleSignAlpha1(crypto_pb2.SubtleSignRequest(
                component_name="mycrypto", digest=digest, algorithm="EdDSA",
                key_name="rsa.pem"))
        assert refused.value.details() == "failed to perform operation: failed to sign"
        with pytest.raises(grpc.RpcError) as refused:
            stub.SubtleSignAlpha1(crypto_pb2.SubtleSignRequest(
                component_name="", digest=digest, algorithm="EdDSA", key_name="rsa.pem"))
        assert (refused.value.code(), refused.value.details()) == (
            grpc.StatusCode.INVALID_ARGUMENT, "invalid request: missing component name")


def _http(car: Sidecar, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    request = urllib.request.Request(f"{car.dapr_http_url}{path}", data=body, method="PUT",
                                     headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def test_http_routes(crypto_car: tuple[Sidecar, Path, dict[str, object]],
                     client: DaprClient) -> None:
    car = crypto_car[0]
    plain = os.urandom(300_000)
    status, document = _http(car, "/v1.0-alpha1/crypto/mycrypto/encrypt", plain, {
        "dapr-key-name": "rsa.pem", "dapr-key-wrap-algorithm": "RSA-OAEP-256"})
    assert status == 200 and document.startswith(b"dapr.io/enc/v1\n")
    assert _decrypt(client, document) == plain  # HTTP and gRPC write the same scheme
    status, back = _http(car, "/v1.0-alpha1/crypto/mycrypto/decrypt",
                         _encrypt(client, plain, "aes256", "A256KW"), {})
    assert (status, back == plain) == (200, True)
    status, body = _http(car, "/v1.0-alpha1/crypto/mycrypto/encrypt", b"x",
                         {"dapr-key-name": "rsa.pem"})
    assert (status, json.loads(body)) == (400, {
        "errorCode": "ERR_BAD_REQUEST",
        "message": "invalid request: missing header 'dapr-key-wrap-algorithm'"})
    status, body = _http(car, "/v1.0-alpha1/crypto/mycrypto/decrypt", bytes(document[:200]),
                         {})
    assert status == 500 and json.loads(body)["errorCode"] == "ERR_CRYPTO"
    small = bytearray(_encrypt(client, b"one segment", "aes256", "A256KW"))
    small[-1] ^= 1
    status, body = _http(car, "/v1.0-alpha1/crypto/mycrypto/decrypt", bytes(small), {})
    assert (status, json.loads(body)) == (500, {
        "errorCode": "ERR_CRYPTO",
        "message": "failed to perform operation: error processing segment 0: failed to "
                   "decrypt segment"})
    # a later segment too: the whole body is verified before the answer starts, as daprd
    late = bytearray(document)
    late[-1] ^= 1
    status, body = _http(car, "/v1.0-alpha1/crypto/mycrypto/decrypt", bytes(late), {})
    assert (status, json.loads(body)) == (500, {
        "errorCode": "ERR_CRYPTO",
        "message": "failed to perform operation: error processing segment 4: failed to "
                   "decrypt segment"})
    status, body = _http(car, "/v1.0-alpha1/crypto/other/decrypt", document, {})
    assert (status, json.loads(body)) == (400, {
        "errorCode": "ERR_CRYPTO_PROVIDER_NOT_FOUND",
        "message": "crypto provider other not found"})


def test_without_crypto_components(sidecar: Sidecar, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DAPR_GRPC_PORT", str(sidecar.dapr_grpc_port))
    monkeypatch.setenv("DAPR_HTTP_PORT", str(sidecar.dapr_http_port))
    with DaprClient() as dapr, pytest.raises(grpc.RpcError) as refused:
        dapr.encrypt(b"x", EncryptOptions(component_name="mycrypto", key_name="k",
                                          key_wrap_algorithm="A256KW")).read()
    assert (refused.value.code(), refused.value.details()) == (  # type: ignore[attr-defined]
        grpc.StatusCode.INTERNAL, "crypto providers not configured")
    status, body = _http(sidecar, "/v1.0-alpha1/crypto/mycrypto/encrypt", b"x", {})
    assert (status, json.loads(body)) == (500, {
        "errorCode": "ERR_CRYPTO_PROVIDERS_NOT_CONFIGURED",
        "message": "crypto providers not configured"})


def test_stream_protocol_errors(crypto_car: tuple[Sidecar, Path, dict[str, object]]) -> None:
    """What the SDK never sends: options missing or repeated, a skipped sequence number."""
    car = crypto_car[0]
    options = crypto_pb2.EncryptRequestOptions(component_name="mycrypto", key_name="aes256",
                                               key_wrap_algorithm="A256KW")
    from dapr.proto.common.v1 import common_pb2

    def payload(seq: int) -> common_pb2.StreamPayload:
        return common_pb2.StreamPayload(data=b"x" * 10, seq=seq)

    cases = [
        ([crypto_pb2.EncryptRequest(payload=payload(0))], grpc.StatusCode.INVALID_ARGUMENT,
         "invalid request: first message does not contain the required options"),
        ([crypto_pb2.EncryptRequest(options=crypto_pb2.EncryptRequestOptions(
            component_name="mycrypto", key_wrap_algorithm="A256KW"))],
         grpc.StatusCode.INVALID_ARGUMENT,
         "invalid request: missing property 'keyName' in the options message"),
        ([crypto_pb2.EncryptRequest(options=options, payload=payload(0)),
          crypto_pb2.EncryptRequest(payload=payload(2))], grpc.StatusCode.INTERNAL,
         "failed to perform operation: invalid sequence number received: 2 (expected: 1)"),
        ([crypto_pb2.EncryptRequest(options=options, payload=payload(0)),
          crypto_pb2.EncryptRequest(options=options, payload=payload(1))],
         grpc.StatusCode.INTERNAL,
         "failed to perform operation: options found in non-leading message"),
    ]
    with grpc.insecure_channel(car.dapr_grpc_address) as channel:
        stub = dapr_pb2_grpc.DaprStub(channel)  # type: ignore[no-untyped-call]
        for messages, code, details in cases:
            with pytest.raises(grpc.RpcError) as refused:
                list(stub.EncryptAlpha1(iter(messages)))
            assert (refused.value.code(), refused.value.details()) == (code, details)
        pieces = list(stub.EncryptAlpha1(iter([
            crypto_pb2.EncryptRequest(options=options, payload=payload(0)),
            crypto_pb2.EncryptRequest(payload=payload(1))])))
        assert [p.payload.seq for p in pieces] == list(range(len(pieces)))
        assert pieces[0].payload.data.startswith(b"dapr.io/enc/v1\n")


def test_metadata_lists_the_crypto_component(client: DaprClient) -> None:
    components = {(c.name, c.type) for c in client.get_metadata().registered_components}
    assert ("mycrypto", "crypto.dapr.localstorage") in components


def test_http_streams_20_mb_with_bounded_sidecar_memory(
        crypto_car: tuple[Sidecar, Path, dict[str, object]]) -> None:
    car = crypto_car[0]
    assert car.process is not None
    plain = os.urandom(1 << 20) * 20
    _http(car, "/v1.0-alpha1/crypto/mycrypto/encrypt", b"warm" * 100_000, {
        "dapr-key-name": "aes256", "dapr-key-wrap-algorithm": "A256KW"})
    before = psutil.Process(car.process.pid).memory_info().rss
    stop, peak = _rss_sampler(car.process.pid)
    try:
        status, document = _http(car, "/v1.0-alpha1/crypto/mycrypto/encrypt", plain, {
            "dapr-key-name": "aes256", "dapr-key-wrap-algorithm": "A256KW"})
        assert status == 200
        status, back = _http(car, "/v1.0-alpha1/crypto/mycrypto/decrypt", document, {})
        assert status == 200 and hashlib.sha256(back).digest() == hashlib.sha256(plain).digest()
    finally:
        stop.set()
    grown = peak[0] - before
    print(f"HTTP: sidecar RSS before {before >> 20} MiB, grown {grown / (1 << 20):.1f} MiB")
    assert grown < 15 << 20, f"the sidecar grew {grown >> 20} MiB for a 20 MiB body"


def test_first_message_must_come_within_5_seconds(
        crypto_car: tuple[Sidecar, Path, dict[str, object]]) -> None:
    car = crypto_car[0]
    release = threading.Event()

    def silent() -> Iterator[crypto_pb2.DecryptRequest]:
        release.wait(30)
        return
        yield  # pragma: no cover - a generator that sends nothing until released

    with grpc.insecure_channel(car.dapr_grpc_address) as channel:
        stub = dapr_pb2_grpc.DaprStub(channel)  # type: ignore[no-untyped-call]
        try:
            with pytest.raises(grpc.RpcError) as refused:
                list(stub.DecryptAlpha1(silent(), timeout=25))
        finally:
            release.set()
    assert (refused.value.code(), refused.value.details()) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "invalid request: error waiting for first message: context deadline exceeded")
