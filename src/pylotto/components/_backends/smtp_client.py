"""Sending one mail over SMTP, as gomail's ``Dialer.DialAndSend`` (what components-contrib's
``bindings/smtp`` uses) does: one connection per mail; implicit TLS on port 465 (or wherever
``implicitTLS`` says, pylotto's key), else a plain connection upgraded with STARTTLS when the
server offers it; the server's certificate checked against the system's trusted roots (and its
name against ``host``) unless ``skipTLSVerify``; a certificate refused is Internal, naming the
reason; AUTH only when a user is set and the server offers AUTH (CRAM-MD5 if
offered, LOGIN if offered without PLAIN, else PLAIN); PLAIN refused over a connection that is
neither encrypted nor to localhost (Go's ``net/smtp``: ``unencrypted connection``).

The client is aiosmtplib (asyncio, typed, maintained, installed from the local index): no
thread per mail as the standard library's blocking ``smtplib`` would need. Recipients are the
To, Cc and Bcc addresses; the Bcc ones never appear in the message's headers (as gomail).
"""

from __future__ import annotations

import email.utils
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY

import aiosmtplib
from pydantic import Field, ValidationInfo, field_validator

from pylotto.core.errors import DeadlineExceeded, Internal, Unavailable
from pylotto.core.metadata import ComponentSettings

IMPLICIT_TLS_PORT = 465
DIAL_TIMEOUT_SECONDS = 10.0
"""gomail's dial timeout; here also the bound of each SMTP command."""
LOCALHOST = frozenset({"localhost", "127.0.0.1", "::1"})


class SmtpSettings(ComponentSettings):
    """The connection keys of Dapr's ``bindings.smtp`` (pylotto's ``email`` components read
    the same)."""

    host: str = Field("", alias="host", validate_default=True)
    port: int = Field(0, alias="port", validate_default=True)
    user: str = Field("", alias="user")
    password: str = Field("", alias="password", validate_default=True)
    skip_tls_verify: bool = Field(False, alias="skipTLSVerify")
    implicit_tls: bool | None = Field(None, alias="implicitTLS")
    """TLS from the first byte (SMTPS) rather than STARTTLS; unset: on port 465 only (gomail's
    rule, Dapr's binding has no key for it)."""

    @property
    def implicit(self) -> bool:
        return self.implicit_tls if self.implicit_tls is not None \
            else self.port == IMPLICIT_TLS_PORT

    @field_validator("host", "port")
    @classmethod
    def _required(cls, value: str | int) -> str | int:
        if not value:
            raise ValueError("smtp binding error: host and port fields are required in metadata")
        if isinstance(value, int) and not 0 < value < 65536:
            raise ValueError("a TCP port is 1 to 65535")
        return value

    @field_validator("password")
    @classmethod
    def _pair(cls, value: str, info: ValidationInfo) -> str:
        if bool(info.data.get("user")) != bool(value):
            raise ValueError("smtp binding error: both user and password fields are required "
                             "in metadata")
        return value


@dataclass(frozen=True, slots=True)
class Mail:
    """One mail: its envelope sender, recipients, subject, body and extra headers."""

    sender: str
    to: tuple[str, ...]
    subject: str
    body: str
    cc: tuple[str, ...] = ()
    bcc: tuple[str, ...] = ()
    subtype: str = "html"
    """The body's MIME subtype: ``html`` (Dapr's binding) or ``plain``."""
    headers: dict[str, str] = field(default_factory=dict)

    def message(self) -> EmailMessage:
        msg = EmailMessage(policy=SMTP_POLICY)
        msg["From"] = self.sender
        msg["To"] = ", ".join(self.to)
        if self.cc:
            msg["Cc"] = ", ".join(self.cc)
        msg["Subject"] = self.subject
        msg["Date"] = email.utils.formatdate(localtime=False)
        msg["Message-ID"] = email.utils.make_msgid()
        for name, value in self.headers.items():
            msg[name] = value
        msg.set_content(self.body, subtype=self.subtype, charset="utf-8",
                        cte="quoted-printable")
        return msg

    def recipients(self) -> list[str]:
        return [*self.to, *self.cc, *self.bcc]


def _certificate_refusal(exc: BaseException) -> str | None:
    """The reason a TLS handshake refused the server's certificate, if that is what ``exc``
    (or what caused it) is."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return str(seen.verify_message or seen.reason or seen)
        seen = seen.__cause__ or seen.__context__
    return None


class AuthError(Internal):
    """The server refused the credentials (or they may not be sent on this connection)."""


class SmtpClient:
    """Sends :class:`Mail` through the server of ``settings``. ``what`` prefixes errors
    (``smtp binding``)."""

    def __init__(self, settings: SmtpSettings, what: str) -> None:
        self.settings = settings
        self.what = what

    async def send(self, mail: Mail) -> str:
        """Send ``mail``; its Message-ID is returned."""
        s = self.settings
        message = mail.message()
        implicit = s.implicit
        client = aiosmtplib.SMTP(
            hostname=s.host, port=s.port, use_tls=implicit, start_tls=False if implicit else None,
            validate_certs=not s.skip_tls_verify, timeout=DIAL_TIMEOUT_SECONDS)
        try:
            try:
                await client.connect()
            except (aiosmtplib.SMTPConnectError, aiosmtplib.SMTPTimeoutError,
                    aiosmtplib.SMTPServerDisconnected, OSError) as exc:
                refused = _certificate_refusal(exc)
                if refused is not None:
                    raise Internal(f"{self.what}: sending email failed: the certificate of "
                                   f"{s.host}:{s.port} is refused: {refused} (skipTLSVerify "
                                   "turns the check off)") from None
                raise Unavailable(f"{self.what}: sending email failed: cannot reach "
                                  f"{s.host}:{s.port}: {exc}") from None
            try:
                await self._login(client)
                # gomail's order: MAIL, every RCPT (the first refused aborts the mail, none
                # is sent), DATA
                await client.mail(mail.sender)
                for recipient in mail.recipients():
                    await client.rcpt(recipient)
                await client.data(message.as_bytes())
            except aiosmtplib.SMTPTimeoutError as exc:
                raise DeadlineExceeded(f"{self.what}: sending email failed: {exc}") from None
            except aiosmtplib.SMTPServerDisconnected as exc:
                raise Unavailable(f"{self.what}: sending email failed: {exc}") from None
            except aiosmtplib.SMTPAuthenticationError as exc:
                raise AuthError(f"{self.what}: sending email failed: {exc.code} "
                                f"{exc.message}") from None
            except aiosmtplib.SMTPRecipientRefused as exc:
                raise Internal(f"{self.what}: sending email failed: {exc.code} {exc.message} "
                               f"(recipient {exc.recipient}; the mail was not sent)") from None
            except aiosmtplib.SMTPResponseException as exc:
                raise Internal(f"{self.what}: sending email failed: {exc.code} "
                               f"{exc.message}") from None
            except aiosmtplib.SMTPException as exc:
                raise Internal(f"{self.what}: sending email failed: {exc}") from None
            return str(message["Message-ID"])
        finally:
            if client.is_connected:
                try:
                    await client.quit()
                except aiosmtplib.SMTPException:
                    client.close()

    async def _login(self, client: aiosmtplib.SMTP) -> None:
        """gomail's choice of mechanism (see the module's docstring)."""
        s = self.settings
        if not s.user:
            return
        if client.is_ehlo_or_helo_needed:  # after STARTTLS: the server's extensions anew
            await client.ehlo()
        if not client.supports_extension("auth"):
            return
        password = s.password
        offered = client.server_auth_methods
        encrypted = client.get_transport_info("sslcontext") is not None
        if "cram-md5" in offered:
            await client.auth_crammd5(s.user, password)
        elif "login" in offered and "plain" not in offered:
            await client.auth_login(s.user, password)
        elif not encrypted and s.host not in LOCALHOST:
            raise AuthError(f"{self.what}: sending email failed: unencrypted connection")
        else:
            await client.auth_plain(s.user, password)
