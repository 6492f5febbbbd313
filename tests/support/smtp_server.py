"""A real SMTP server for a test: aiosmtpd on a free loopback port, in its own thread, keeping
every mail it accepts (envelope and parsed message); recipients ``@refused.test`` refused.
Optionally it requires AUTH (PLAIN and LOGIN; over the plain connection, which aiosmtpd allows
when ``auth_require_tls`` is off, unless it speaks TLS), and speaks TLS: ``starttls`` (offered
and required before MAIL) or ``implicit`` (TLS from the first byte, SMTPS), with a certificate
of :func:`self_signed` (for 127.0.0.1 and localhost)."""

from __future__ import annotations

import datetime
import email
import email.policy
import ipaddress
import ssl
import threading
import time
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Literal

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support.ports import free_port

REFUSED_DOMAIN = "@refused.test"
"""Recipients at this domain are refused (550) by every :class:`SmtpServer`."""


@dataclass(frozen=True)
class Received:
    sender: str
    recipients: list[str]
    message: EmailMessage
    authenticated_as: str | None
    encrypted: bool = False
    """Whether the mail came over TLS (STARTTLS or implicit)."""

    def body(self) -> str:
        part = self.message.get_body(("html", "plain"))
        assert part is not None, "the mail has no text body"
        return str(part.get_content()).replace("\r\n", "\n")  # type: ignore[attr-defined]


class _Handler:
    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        if address.endswith(REFUSED_DOMAIN):
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        data = envelope.content if isinstance(envelope.content, bytes) \
            else str(envelope.content).encode()
        message = email.message_from_bytes(data, policy=email.policy.default)
        login = session.auth_data.login if isinstance(session.auth_data, LoginPassword) \
            else None
        with self.server.lock:
            self.server.mails.append(Received(
                envelope.mail_from, list(envelope.rcpt_tos), message,  # type: ignore[arg-type]
                login.decode() if isinstance(login, bytes) else login,
                session.ssl is not None  # STARTTLS
                or server.transport.get_extra_info("ssl_object") is not None))  # implicit
        return "250 OK"


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost, and its key (PEM files in
    ``folder``)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pylotto test SMTP")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "smtp-cert.pem", folder / "smtp-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


class SmtpServer:
    """``with SmtpServer() as smtp: ... smtp.port ... smtp.wait(1)``. With ``credentials``
    (user → password) AUTH is required before MAIL; with ``tls`` and ``cert`` (certificate and
    key files) the server speaks TLS (with STARTTLS, AUTH is only offered once it is on)."""

    def __init__(self, credentials: dict[str, str] | None = None, port: int = 0,
                 tls: Literal["starttls", "implicit"] | None = None,
                 cert: tuple[Path, Path] | None = None) -> None:
        self.port = port or free_port()
        self.credentials = credentials
        self.mails: list[Received] = []
        self.lock = threading.Lock()
        self.auth_failures = 0
        self.running = False
        kwargs: dict[str, Any] = {}
        if credentials is not None:
            kwargs = {"authenticator": self._authenticate, "auth_required": True,
                      # aiosmtpd counts STARTTLS only as TLS (implicit TLS is TLS too)
                      "auth_require_tls": tls == "starttls"}
        if tls is not None:
            assert cert is not None, "a TLS server needs a certificate"
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(*cert)
            if tls == "starttls":
                kwargs |= {"tls_context": context, "require_starttls": True}
            else:
                kwargs["ssl_context"] = context
        self.controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port,
                                     **kwargs)

    def _authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str,
                      auth_data: Any) -> AuthResult:
        assert self.credentials is not None
        if isinstance(auth_data, LoginPassword):
            user, password = auth_data.login.decode(), auth_data.password.decode()
            if self.credentials.get(user) == password:
                return AuthResult(success=True, auth_data=auth_data)
        with self.lock:
            self.auth_failures += 1
        return AuthResult(success=False, handled=False)

    def start(self) -> SmtpServer:
        self.controller.start()
        self.running = True
        return self

    def stop(self) -> None:
        """Stop listening (again: nothing)."""
        if self.running:
            self.controller.stop()
            self.running = False

    def __enter__(self) -> SmtpServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait(self, count: int = 1, within: float = 20.0) -> list[Received]:
        """The first ``count`` mails, once that many have arrived (AssertionError after
        ``within`` seconds)."""
        deadline = time.monotonic() + within
        while True:
            with self.lock:
                if len(self.mails) >= count:
                    return list(self.mails[:count])
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.mails)} mail(s) arrived, expected {count}")
            time.sleep(0.05)
