"""``bindings.smtp`` against a real SMTP server (aiosmtpd, started by each test on a free
port): components-contrib's operation, metadata, request overrides, errors and AUTH; the mail
read back as the server received it."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from pylotto.core.errors import ConfigError, Internal, InvalidArgument, Unavailable
from tests.conformance.bindings.support import Bound, bound
from tests.conformance.cases import Case, build, once_back
from tests.support.ports import free_port
from tests.support.smtp_server import SmtpServer

pytestmark = [pytest.mark.timeout(60),
              pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")]


def smtp_case(port: int, /, **metadata: Any) -> Case:
    return Case("bindings", "smtp", "bindings.smtp",
                metadata={"host": "127.0.0.1", "port": str(port)} | metadata)


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


@pytest.fixture
async def binding(tmp_path: Path, smtp: SmtpServer) -> AsyncIterator[Bound]:
    async with bound(smtp_case(smtp.port, emailFrom="app@example.test",
                               emailTo="ops@example.test", subject="default subject"),
                     tmp_path) as built:
        yield built


async def test_declares_create_only_and_lists_it_for_another(binding: Bound) -> None:
    assert binding.component.operations == ("create",)
    assert binding.component.features == frozenset()
    with pytest.raises(InvalidArgument) as refused:
        await binding.invoke("get")
    assert refused.value.fields["detail"] == ("binding store does not support operation get. "
                                              "supported operations:create")
    with pytest.raises(InvalidArgument, match="operation field is missing"):
        await binding.invoke("")


async def test_create_sends_the_mail_with_the_component_defaults(
        binding: Bound, smtp: SmtpServer) -> None:
    reply = await binding.invoke("create", b"<h1>Hello</h1><p>caf\xc3\xa9</p>")
    assert (reply.data, reply.metadata) == (b"", {})
    [mail] = smtp.wait(1)
    assert (mail.sender, mail.recipients) == ("app@example.test", ["ops@example.test"])
    msg = mail.message
    assert (msg["From"], msg["To"], msg["Subject"], msg["X-priority"]) == (
        "app@example.test", "ops@example.test", "default subject", "3")
    assert msg.get_content_type() == "text/html"
    assert mail.body().strip() == "<h1>Hello</h1><p>café</p>"
    assert msg["Cc"] is None and msg["Bcc"] is None
    assert msg["Date"] and msg["Message-ID"]


async def test_request_metadata_overrides_for_that_call_only(
        binding: Bound, smtp: SmtpServer) -> None:
    await binding.invoke("create", b"overridden", emailFrom="other@example.test",
                         emailTo="a@example.test;b@example.test", emailCC="c@example.test",
                         emailBCC="hidden@example.test; hidden2@example.test",
                         subject="Überschrift", priority="1")
    await binding.invoke("create", b"defaults again")
    first, second = smtp.wait(2)
    assert first.sender == "other@example.test"
    assert first.recipients == ["a@example.test", "b@example.test", "c@example.test",
                                "hidden@example.test", "hidden2@example.test"]
    msg = first.message
    assert (msg["To"], msg["Cc"], msg["Subject"], msg["X-priority"]) == (
        "a@example.test, b@example.test", "c@example.test", "Überschrift", "1")
    assert msg["Bcc"] is None, "Bcc recipients are not shown to the others (as gomail)"
    assert "hidden" not in msg.as_string()
    # Dapr's merge leaks one call's overrides into later calls; here they do not
    assert (second.sender, second.recipients) == ("app@example.test", ["ops@example.test"])
    assert (second.message["Subject"], second.message["X-priority"]) == ("default subject", "3")
    assert second.message["Cc"] is None


async def test_quoted_data_is_unquoted_as_daprs_strconv_unquote(
        binding: Bound, smtp: SmtpServer) -> None:
    await binding.invoke("create", b'"<b>quoted</b>\\n\\u00e9\\t\\"x\\""')
    await binding.invoke("create", b'"not \\q a literal"')
    first, second = smtp.wait(2)
    assert first.body() == '<b>quoted</b>\né\t"x"\n'
    assert second.body().strip() == '"not \\q a literal"', "not a Go literal: sent as it is"


@pytest.mark.parametrize(("metadata", "missing"), [
    ({"emailFrom": ""}, "emailFrom"), ({"emailTo": ""}, "emailTo"),
    ({"subject": ""}, "subject")])
async def test_a_missing_address_or_subject_is_named(tmp_path: Path, smtp: SmtpServer,
                                                     metadata: dict[str, str],
                                                     missing: str) -> None:
    full = {"emailFrom": "a@example.test", "emailTo": "b@example.test", "subject": "s"}
    async with bound(smtp_case(smtp.port, **{**full, **metadata}), tmp_path) as binding:
        with pytest.raises(InvalidArgument) as refused:
            await binding.invoke("create", b"x")
        assert str(refused.value) == (f"smtp binding error: {missing} property not supplied "
                                      "in configuration- or request-metadata")
        await binding.invoke("create", b"given per call", **{missing: "p@example.test"})
    assert smtp.wait(1)[0].body().strip() == "given per call"


async def test_priority_out_of_range_or_not_a_number(binding: Bound, smtp: SmtpServer) -> None:
    with pytest.raises(InvalidArgument, match=r"priority value must be between 1 \(highest\) "
                                              r"and 5 \(lowest\)"):
        await binding.invoke("create", b"x", priority="6")
    with pytest.raises(InvalidArgument, match=r'strconv\.Atoi: parsing "high": invalid syntax'):
        await binding.invoke("create", b"x", priority="high")
    await binding.invoke("create", b"x", priority="5")
    assert smtp.wait(1)[0].message["X-priority"] == "5"


async def test_a_refused_recipient_fails_the_whole_mail(binding: Bound, smtp: SmtpServer) -> None:
    with pytest.raises(Internal, match=r"sending email failed: 550 5\.1\.1 no such mailbox "
                                       r"\(recipient x@refused\.test; the mail was not sent\)"):
        await binding.invoke("create", b"x", emailTo="ok@example.test;x@refused.test")
    await binding.invoke("create", b"after")
    [mail] = smtp.wait(1)
    assert (mail.recipients, mail.body().strip()) == (["ops@example.test"], "after"), \
        "nothing reached the accepted recipient of the refused mail"


@pytest.mark.parametrize(("metadata", "text"), [
    ({"host": ""}, "'host' = '': Value error, smtp binding error: host and port fields are "
                   "required in metadata"),
    ({"port": "0"}, "'port' = '0': .*host and port fields are required"),
    ({"port": "70000"}, "'port' = '70000': .*a TCP port is 1 to 65535"),
    ({"user": "u"}, "'password' = .*both user and password fields are required"),
    ({"password": "p"}, "both user and password fields are required"),
    ({"priority": "9"}, "priority value must be between 1"),
    ({"skipTLSVerify": "maybe"}, "skipTLSVerify"),
])
async def test_bad_component_metadata_is_refused(tmp_path: Path, metadata: dict[str, str],
                                                 text: str) -> None:
    with pytest.raises(ConfigError, match=text):
        async with build(smtp_case(free_port(), **metadata), tmp_path):
            pass


async def test_auth_accepted_and_refused(tmp_path: Path) -> None:
    with SmtpServer(credentials={"mailer": "s3cret"}) as smtp:
        common = {"emailFrom": "a@example.test", "emailTo": "b@example.test", "subject": "s"}
        async with bound(smtp_case(smtp.port, user="mailer", password="s3cret", **common),
                         tmp_path) as binding:
            await binding.invoke("create", b"authenticated")
        [mail] = smtp.wait(1)
        assert (mail.authenticated_as, mail.body().strip()) == ("mailer", "authenticated")
        async with bound(smtp_case(smtp.port, user="mailer", password="wrong", **common),
                         tmp_path) as binding:
            with pytest.raises(Internal, match=r"error from smtp binding: sending email "
                                               r"failed: 535"):
                await binding.invoke("create", b"refused")
        async with bound(smtp_case(smtp.port, **common), tmp_path) as binding:
            with pytest.raises(Internal, match="sending email failed: 530"):
                await binding.invoke("create", b"no credentials, auth required")
        assert smtp.auth_failures >= 1
        assert len(smtp.mails) == 1, "refused mails are not delivered"


async def test_server_down_is_unavailable_then_heals(tmp_path: Path) -> None:
    port = free_port()
    common = {"emailFrom": "a@example.test", "emailTo": "b@example.test", "subject": "s"}
    async with bound(smtp_case(port, **common), tmp_path) as binding:
        started = time.monotonic()
        with pytest.raises(Unavailable, match=f"cannot reach 127.0.0.1:{port}"):
            await binding.invoke("create", b"nobody listens")
        assert time.monotonic() - started < 20, "calls must fail within their timeout"
        with SmtpServer(port=port) as smtp:
            await once_back(lambda: binding.invoke("create", b"back"))
            assert smtp.wait(1)[0].body().strip() == "back"
        with pytest.raises(Unavailable):
            await binding.invoke("create", b"gone again")
