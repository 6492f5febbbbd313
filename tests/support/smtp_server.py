"""A real SMTP server for a test: aiosmtpd on a free loopback port, in its own thread, keeping
every mail it accepts (envelope and parsed message); recipients ``@refused.test`` refused.
Optionally it requires AUTH (PLAIN and LOGIN, over the plain connection, which aiosmtpd allows
when ``auth_require_tls`` is off)."""

from __future__ import annotations

import email
import email.policy
import threading
import time
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.support.ports import free_port

REFUSED_DOMAIN = "@refused.test"
"""Recipients at this domain are refused (550) by every :class:`SmtpServer`."""


@dataclass(frozen=True)
class Received:
    sender: str
    recipients: list[str]
    message: EmailMessage
    authenticated_as: str | None

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
                login.decode() if isinstance(login, bytes) else login))
        return "250 OK"


class SmtpServer:
    """``with SmtpServer() as smtp: ... smtp.port ... smtp.wait(1)``. With ``credentials``
    (user → password) AUTH is required before MAIL."""

    def __init__(self, credentials: dict[str, str] | None = None, port: int = 0) -> None:
        self.port = port or free_port()
        self.credentials = credentials
        self.mails: list[Received] = []
        self.lock = threading.Lock()
        self.auth_failures = 0
        self.running = False
        kwargs: dict[str, Any] = {}
        if credentials is not None:
            kwargs = {"authenticator": self._authenticate, "auth_required": True,
                      "auth_require_tls": False}
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
