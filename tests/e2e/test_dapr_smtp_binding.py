"""Dapr's ``bindings.smtp`` on pylotto as a Dapr app uses it: a Dapr component manifest loaded
by ``pylotto run --resources-path``, called with the dapr 1.19 SDK's ``invoke_binding`` and
with ``POST /v1.0/bindings/<name>``; the mails read back from a real SMTP server (aiosmtpd on
a free port) with their headers; the server stopped: the call fails, naming it."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import grpc
import pytest
from dapr.clients import DaprClient

from tests.e2e.sidecar import Sidecar
from tests.e2e.test_dapr_output_bindings import manifest
from tests.support.smtp_server import SmtpServer

pytestmark = [pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning"),
              pytest.mark.timeout(120)]


def test_dapr_sdk_sends_mail_through_the_smtp_binding(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    resources = tmp_path / "resources"
    resources.mkdir()
    with SmtpServer(credentials={"mailer": "s3cret"}) as smtp:
        (resources / "mail.yaml").write_text(manifest("mail", "bindings.smtp", {
            "host": "127.0.0.1", "port": str(smtp.port), "user": "mailer",
            "password": "s3cret", "emailFrom": "dapr@example.test",
            "emailTo": "ops@example.test", "subject": "from the manifest"}))
        car = Sidecar(tmp_path / "car", components={},
                      extra_args=["--resources-path", str(resources)]).start()
        try:
            monkeypatch.setenv("DAPR_GRPC_PORT", str(car.dapr_grpc_port))
            monkeypatch.setenv("DAPR_HTTP_PORT", str(car.dapr_http_port))
            with DaprClient() as client:
                reply = client.invoke_binding("mail", "create", "<p>order 42 shipped</p>",
                                              binding_metadata={
                                                  "emailTo": "a@example.test;b@example.test",
                                                  "emailCC": "cc@example.test",
                                                  "emailBCC": "audit@example.test",
                                                  "subject": "Order 42", "priority": "1"})
                assert reply.data == b""
                [mail] = smtp.wait(1)
                assert (mail.sender, mail.authenticated_as) == ("dapr@example.test", "mailer")
                assert mail.recipients == ["a@example.test", "b@example.test",
                                           "cc@example.test", "audit@example.test"]
                msg = mail.message
                assert (msg["From"], msg["To"], msg["Cc"], msg["Bcc"], msg["Subject"],
                        msg["X-priority"]) == ("dapr@example.test",
                                               "a@example.test, b@example.test",
                                               "cc@example.test", None, "Order 42", "1")
                assert (msg.get_content_type(), mail.body().strip()) == (
                    "text/html", "<p>order 42 shipped</p>")

                with pytest.raises(grpc.RpcError) as refused:
                    client.invoke_binding("mail", "delete")
                error = refused.value
                assert isinstance(error, grpc.Call)
                assert (error.code(), error.details()) == (
                    grpc.StatusCode.INTERNAL,
                    "error invoking output binding mail: binding mail does not support "
                    "operation delete. supported operations:create")

                # HTTP: daprd hands the binding the JSON of data, a quoted string here
                request = urllib.request.Request(
                    f"{car.dapr_http_url}/v1.0/bindings/mail", method="POST",
                    headers={"Content-Type": "application/json"},
                    data=json.dumps({"operation": "create", "data": "<b>über HTTP</b>",
                                     "metadata": {"subject": "via HTTP"}}).encode())
                with urllib.request.urlopen(request, timeout=20) as resp:
                    assert resp.status in (200, 204)
                _, second = smtp.wait(2)
                assert (second.message["Subject"], second.message["To"]) == (
                    "via HTTP", "ops@example.test"), "the first call's overrides did not stay"
                assert second.body().strip() == "<b>über HTTP</b>"

                smtp.stop()
                with pytest.raises(grpc.RpcError) as down:
                    client.invoke_binding("mail", "create", "lost")
                error = down.value
                assert isinstance(error, grpc.Call)
                assert error.code() == grpc.StatusCode.INTERNAL, "daprd's code"
                assert f"cannot reach 127.0.0.1:{smtp.port}" in (error.details() or "")
        finally:
            car.stop()
