"""TLS of the SMTP client that ``bindings.smtp`` and the ``smtp.email`` component share, against
aiosmtpd speaking STARTTLS (required before MAIL, AUTH offered only over TLS) and implicit TLS,
with a self-signed certificate the test makes: Dapr's ``skipTLSVerify``, the certificate checked
otherwise (refused, then trusted through the system's trust store), and pylotto's
``implicitTLS``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pylotto.components.email.base import Addresses
from pylotto.core.errors import Internal
from tests.conformance.bindings.support import bound
from tests.conformance.cases import Case, build
from tests.support.smtp_server import SmtpServer, self_signed

pytestmark = [pytest.mark.timeout(60),
              pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")]

MAIL = {"emailFrom": "app@example.test", "emailTo": "ops@example.test", "subject": "tls"}


def smtp_case(port: int, /, **metadata: Any) -> Case:
    return Case("bindings", "smtp", "bindings.smtp",
                metadata={"host": "127.0.0.1", "port": str(port), **MAIL} | metadata)


@pytest.fixture
def cert(tmp_path: Path) -> tuple[Path, Path]:
    return self_signed(tmp_path)


async def test_starttls_with_auth_over_it_and_skip_tls_verify(
        tmp_path: Path, cert: tuple[Path, Path]) -> None:
    with SmtpServer(credentials={"mailer": "s3cret"}, tls="starttls", cert=cert) as smtp:
        async with bound(smtp_case(smtp.port, user="mailer", password="s3cret",
                                   skipTLSVerify="true"), tmp_path) as binding:
            await binding.invoke("create", b"over STARTTLS")
        [mail] = smtp.wait(1)
    assert (mail.encrypted, mail.authenticated_as, mail.body().strip()) == (
        True, "mailer", "over STARTTLS")


async def test_the_certificate_is_checked_unless_skip_tls_verify(
        tmp_path: Path, cert: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    with SmtpServer(tls="starttls", cert=cert) as smtp:
        async with bound(smtp_case(smtp.port), tmp_path) as binding:
            with pytest.raises(Internal, match=rf"the certificate of 127\.0\.0\.1:{smtp.port} "
                                               r"is refused: self[- ]signed certificate.*"
                                               r"skipTLSVerify turns the check off"):
                await binding.invoke("create", b"not sent")
            assert smtp.mails == []
            # the same certificate, trusted by the system's store (OpenSSL's SSL_CERT_FILE):
            # verified, and its name (IP 127.0.0.1) matches the host
            monkeypatch.setenv("SSL_CERT_FILE", str(cert[0]))
            await binding.invoke("create", b"verified")
        [mail] = smtp.wait(1)
    assert (mail.encrypted, mail.body().strip()) == (True, "verified")


async def test_implicit_tls(tmp_path: Path, cert: tuple[Path, Path]) -> None:
    with SmtpServer(tls="implicit", cert=cert) as smtp:
        async with bound(smtp_case(smtp.port, implicitTLS="true", skipTLSVerify="true"),
                         tmp_path) as binding:
            await binding.invoke("create", b"SMTPS")
            with pytest.raises(Internal, match=r"self[- ]signed certificate"):
                async with bound(smtp_case(smtp.port, implicitTLS="true"),
                                 tmp_path) as checked:
                    await checked.invoke("create", b"refused")
        [mail] = smtp.wait(1)
    assert (mail.encrypted, mail.body().strip()) == (True, "SMTPS")


async def test_the_email_component_speaks_the_same_tls(tmp_path: Path,
                                                       cert: tuple[Path, Path]) -> None:
    for tls, extra in (("starttls", {}), ("implicit", {"implicitTLS": "true"})):
        with SmtpServer(credentials={"mailer": "s3cret"}, tls=tls, cert=cert) as smtp:
            case = Case("email", "smtp", "smtp.email", metadata={
                "host": "127.0.0.1", "port": str(smtp.port), "user": "mailer",
                "password": "s3cret", "skipTLSVerify": "true", **extra})
            async with build(case, tmp_path) as component:
                await component.send(Addresses("app@example.test", ("ops@example.test",)),
                                     "hello", f"over {tls}")
            [mail] = smtp.wait(1)
        assert (mail.encrypted, mail.authenticated_as, mail.body().strip()) == (
            True, "mailer", f"over {tls}")
