"""Layotto's ``spec.proto.extension.v1.email.EmailService`` against the real ``pylotto run -c``
with a Layotto JSON config whose ``email`` section has pylotto's ``smtp.email`` component: mails
sent with a client generated from pylotto's email.proto reach a real SMTP server (aiosmtpd on a
free port, requiring AUTH) with their headers; templates from a local folder; the errors."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from pylotto.proto.layotto import email_pb2, email_pb2_grpc
from tests.e2e.test_layotto_config_styles import _layotto_config, _start, _stop
from tests.support.ports import free_port
from tests.support.smtp_server import SmtpServer

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120),
              pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")]


def _address(**fields: Any) -> email_pb2.EmailAddress:
    return email_pb2.EmailAddress(**fields)


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer(credentials={"layotto": "pa55"}) as server:
        yield server


@pytest.fixture
def stub(tmp_path: Path, smtp: SmtpServer) -> Iterator[email_pb2_grpc.EmailServiceStub]:
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "welcome.html").write_text("<h1>Welcome, {{ name }}!</h1><p>{{code}}</p>\n")
    (templates / "receipt.txt").write_text("Paid: {{amount}}\n")
    address = f"127.0.0.1:{free_port()}"
    metadata = {"host": "127.0.0.1", "port": str(smtp.port), "user": "layotto",
                "password": "pa55", "templatesPath": str(templates)}
    config = _layotto_config(address, grpc_config={"email": {
        "email_demo": {"type": "smtp.email", "metadata": metadata},
        "bad_password": {"type": "smtp.email", "metadata": {**metadata, "password": "nope"}},
        "untemplated": {"type": "smtp.email", "metadata": {
            "host": "127.0.0.1", "port": str(smtp.port), "user": "layotto",
            "password": "pa55"}},
    }})
    proc = _start(tmp_path, config)
    channel = grpc.insecure_channel(address)
    try:
        grpc.channel_ready_future(channel).result(timeout=60)
        stub = email_pb2_grpc.EmailServiceStub(channel)
        yield stub
    finally:
        channel.close()
        code, output = _stop(proc)
        assert code == 0, output


def _refused(call: Any) -> grpc.Call:
    with pytest.raises(grpc.RpcError) as refused:
        call()
    assert isinstance(refused.value, grpc.Call)
    return refused.value


def test_send_email_reaches_the_smtp_server(stub: email_pb2_grpc.EmailServiceStub,
                                            smtp: SmtpServer) -> None:
    reply = stub.SendEmail(email_pb2.SendEmailRequest(
        component_name="email_demo", setting_id="ignored", subject="Hello from Layotto",
        content=email_pb2.Content(text="plain text\nsecond line é"),
        address=_address(**{"from": "app@example.test"}, to=["a@example.test", "b@example.test"],
                         cc=["c@example.test"])), timeout=30)
    [mail] = smtp.wait(1)
    assert (mail.sender, mail.authenticated_as) == ("app@example.test", "layotto")
    assert mail.recipients == ["a@example.test", "b@example.test", "c@example.test"]
    msg = mail.message
    assert (msg["From"], msg["To"], msg["Cc"], msg["Subject"]) == (
        "app@example.test", "a@example.test, b@example.test", "c@example.test",
        "Hello from Layotto")
    assert (msg.get_content_type(), mail.body()) == ("text/plain",
                                                     "plain text\nsecond line é\n")
    assert reply.request_id == msg["Message-ID"], "the request id is the mail's Message-ID"


def test_send_email_with_a_local_template(stub: email_pb2_grpc.EmailServiceStub,
                                          smtp: SmtpServer) -> None:
    address = _address(**{"from": "app@example.test"}, to=["new@example.test"])
    reply = stub.SendEmailWithTemplate(email_pb2.SendEmailWithTemplateRequest(
        component_name="email_demo", subject="Welcome", address=address,
        template=email_pb2.EmailTemplate(template_id="welcome", template_params={
            "name": "Ada <script>", "code": "42", "unused": "x"})), timeout=30)
    stub.SendEmailWithTemplate(email_pb2.SendEmailWithTemplateRequest(
        component_name="email_demo", subject="Receipt", address=address,
        template=email_pb2.EmailTemplate(template_id="receipt",
                                         template_params={"amount": "<9.50 EUR>"})), timeout=30)
    welcome, receipt = smtp.wait(2)
    assert welcome.message["Message-ID"] == reply.request_id
    assert (welcome.message.get_content_type(), welcome.body()) == (
        "text/html", "<h1>Welcome, Ada &lt;script&gt;!</h1><p>42</p>\n")
    assert (receipt.message["Subject"], receipt.message.get_content_type(), receipt.body()) == (
        "Receipt", "text/plain", "Paid: <9.50 EUR>\n")


def test_refusals(stub: email_pb2_grpc.EmailServiceStub, smtp: SmtpServer) -> None:
    ok = _address(**{"from": "app@example.test"}, to=["a@example.test"])
    text = email_pb2.Content(text="t")

    def send(**fields: Any) -> Any:
        request = {"component_name": "email_demo", "subject": "s", "content": text,
                   "address": ok, **fields}
        return lambda: stub.SendEmail(email_pb2.SendEmailRequest(**request), timeout=30)

    def template(template_id: str, component: str = "email_demo", **params: str) -> Any:
        return lambda: stub.SendEmailWithTemplate(email_pb2.SendEmailWithTemplateRequest(
            component_name=component, subject="s", address=ok,
            template=email_pb2.EmailTemplate(template_id=template_id,
                                             template_params=params)), timeout=30)

    for call, code, details in (
        (send(component_name="nope"), grpc.StatusCode.INVALID_ARGUMENT,
         "component not found. kind: email , name: nope"),
        (send(address=_address(**{"from": "app@example.test"})),
         grpc.StatusCode.INVALID_ARGUMENT, "invalid argument: address.to needs at least one "
                                           "address"),
        (send(address=_address(to=["a@example.test"])), grpc.StatusCode.INVALID_ARGUMENT,
         "invalid argument: address.from is required"),
        (send(address=_address(**{"from": "app@example.test"},
                               to=["a@example.test\r\nBcc: x@evil.test"])),
         grpc.StatusCode.INVALID_ARGUMENT,
         "invalid argument: 'a@example.test\\r\\nBcc: x@evil.test' is not an email address "
         "(user@domain)"),
        (send(content=email_pb2.Content()), grpc.StatusCode.INVALID_ARGUMENT,
         "invalid argument: content.text is required"),
        (send(subject=""), grpc.StatusCode.INVALID_ARGUMENT,
         "invalid argument: subject is required"),
        (template("welcome", name="n"), grpc.StatusCode.INVALID_ARGUMENT,
         "template welcome: no value for code in template_params"),
        (template("../etc/passwd"), grpc.StatusCode.INVALID_ARGUMENT,
         "invalid template id '../etc/passwd': a file name of letters, digits, '_', '-' and "
         "'.'"),
        (template(""), grpc.StatusCode.INVALID_ARGUMENT,
         "invalid argument: template.template_id is required"),
        (template("welcome", component="untemplated"), grpc.StatusCode.UNIMPLEMENTED,
         "email untemplated: no templates (set templatesPath)"),
    ):
        error = _refused(call)
        assert (error.code(), error.details()) == (code, details)
    missing = _refused(template("missing"))
    assert missing.code() == grpc.StatusCode.NOT_FOUND
    assert (missing.details() or "").startswith("template missing not found")
    auth = _refused(send(component_name="bad_password"))
    assert auth.code() == grpc.StatusCode.INTERNAL
    assert (auth.details() or "").startswith("email bad_password: sending email failed: 535")
    assert smtp.mails == [], "no refused request sent a mail"

    smtp.stop()
    started = time.monotonic()
    down = _refused(send())
    assert down.code() == grpc.StatusCode.UNAVAILABLE
    assert f"cannot reach 127.0.0.1:{smtp.port}" in (down.details() or "")
    assert time.monotonic() - started < 20
