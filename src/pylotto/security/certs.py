"""Certificates for local mTLS between sidecars: a CA, and one certificate per app id.

``pylotto cert ca --out certs/`` writes ``ca.crt`` / ``ca.key``; ``pylotto cert app --app-id
billing --ca certs/ --out certs/`` writes ``billing.crt`` / ``billing.key``, signed by the CA,
valid for client and server use, naming the app in its subject alternative names as the URI
``spiffe://pylotto/app/<app id>`` (the identity a sidecar checks), plus ``localhost`` and
``127.0.0.1``. Keys are ECDSA P-256; the files are PEM. For production, bring certificates from
your own CA with the same URI SAN.
"""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

SPIFFE_PREFIX = "spiffe://pylotto/app/"


def _write(path: Path, data: bytes, private: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if private:
        path.chmod(0o600)


def make_ca(out: Path, days: int = 365) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pylotto local CA")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True,
                                         crl_sign=True, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False,
                                         decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    crt, pem = out / "ca.crt", out / "ca.key"
    _write(crt, cert.public_bytes(serialization.Encoding.PEM))
    _write(pem, key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()), private=True)
    return crt, pem


def make_app_cert(app_id: str, ca_dir: Path, out: Path, days: int = 90) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    ca_cert = x509.load_pem_x509_certificate((ca_dir / "ca.crt").read_bytes())
    ca_key = serialization.load_pem_private_key((ca_dir / "ca.key").read_bytes(), None)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    names: list[x509.GeneralName] = [
        x509.UniformResourceIdentifier(SPIFFE_PREFIX + app_id), x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, app_id)]))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                  ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))  # type: ignore[arg-type]
    crt, pem = out / f"{app_id}.crt", out / f"{app_id}.key"
    _write(crt, cert.public_bytes(serialization.Encoding.PEM))
    _write(pem, key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()), private=True)
    return crt, pem


def app_id_of(uris: list[str]) -> str | None:
    """The app id named by a peer certificate's URI SANs."""
    for uri in uris:
        if uri.startswith(SPIFFE_PREFIX):
            return uri[len(SPIFFE_PREFIX):]
    return None
