"""Kubernetes objects checked offline against the API's own schemas (``kubernetes-validate``),
and a TLS key pair for servers the tests start."""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path
from typing import Any

import kubernetes_validate
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

KUBERNETES_VERSION = "1.34"
"""The API version the manifests are checked against (strict: no unknown field)."""


def assert_valid(document: dict[str, Any]) -> None:
    """``document`` is a valid object of its kind; the schema's complaint otherwise."""
    try:
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        where = "/".join(str(p) for p in exc.path)
        raise AssertionError(f"{document.get('kind')} {where}: {exc.message}") from None


def pod_of(deployment: dict[str, Any], name: str = "", namespace: str = "default",
           ) -> dict[str, Any]:
    """The pod a Deployment's template makes (as the API server sends it to a webhook)."""
    template = deployment["spec"]["template"]
    metadata = dict(template.get("metadata") or {})
    if name:
        metadata["name"] = name
    else:
        metadata["generateName"] = f"{deployment['metadata']['name']}-5d8f7c9b4-"
    metadata["namespace"] = namespace
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata,
            "spec": template["spec"]}


def write_tls_pair(folder: Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    """A self-signed certificate for ``host`` (its own CA) and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pylotto-injector.test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([
                x509.IPAddress(ipaddress.ip_address(host)), x509.DNSName("localhost")]),
                critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = folder / "tls.crt", folder / "tls.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file
