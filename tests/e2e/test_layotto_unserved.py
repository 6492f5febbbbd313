"""Layotto's SMS and phone-call APIs, which pylotto does not serve: a call to any of their
methods is answered UNIMPLEMENTED naming the service and why, through the real sidecar (the
request's bytes are never read, so no client stub is needed)."""

from __future__ import annotations

import grpc
import pytest

from tests.e2e.sidecar import Sidecar


@pytest.mark.parametrize(("method", "named"), [
    ("/spec.proto.extension.v1.sms.SmsService/SendSmsWithTemplate",
     "spec.proto.extension.v1.sms.SmsService (Layotto's SMS API) is not served by pylotto"),
    ("/spec.proto.extension.v1.phone.PhoneCallService/SendVoiceWithTemplate",
     "spec.proto.extension.v1.phone.PhoneCallService (Layotto's phone API) is not served"),
])
def test_sms_and_phone_calls_refused_by_name(sidecar: Sidecar, method: str, named: str) -> None:
    call = sidecar.channel().unary_unary(method)
    with pytest.raises(grpc.RpcError) as refused:
        call(b"", timeout=10)
    error = refused.value
    assert isinstance(error, grpc.Call)
    assert error.code() == grpc.StatusCode.UNIMPLEMENTED
    assert named in (error.details() or "")


def test_other_unknown_methods_keep_grpcs_answer(sidecar: Sidecar) -> None:
    call = sidecar.channel().unary_unary("/spec.proto.extension.v1.sms.Elsewhere/Send")
    with pytest.raises(grpc.RpcError) as refused:
        call(b"", timeout=10)
    assert isinstance(refused.value, grpc.Call)
    assert refused.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert "not served by pylotto" not in (refused.value.details() or "")
