"""The Dapr half of the error table: rows format with the fields errors carry, details in
daprd's order and JSON shape, and errors without a row keep the generic codes."""

from __future__ import annotations

import string

import grpc
from google.rpc import error_details_pb2  # type: ignore[import-untyped]

from pylotto.core import dapr_errors
from pylotto.core.errors import ComponentNotFound, EtagMismatch, Internal, InvalidArgument

FIELDS = {"name", "store", "key", "detail", "topic", "app_id", "operation", "keys", "http_code",
          "instance_id"}


def test_every_row_formats_with_the_fields_errors_carry() -> None:
    for (where, _kind), row in dapr_errors.DAPR_ERRORS.items():
        for wire in (row.grpc, row.http):
            for template in (wire.message, wire.resource_name):
                used = {f for _, f, _, _ in string.Formatter().parse(template) if f}
                assert used <= FIELDS, (where, template)
            assert all(name in FIELDS for _, name in wire.info), where
            assert wire.code or wire.reason or wire.plain_text or \
                wire.grpc == grpc.StatusCode.UNKNOWN, where


def test_illegal_key_details_in_daprs_order() -> None:
    err = InvalidArgument("input key/keyPrefix 'a||' can't contain '||'").at(
        "state.key", key="a||", store="s")
    rendered = dapr_errors.render(err, "grpc")
    assert [type(d) for d in rendered.details] == [
        error_details_pb2.BadRequest, error_details_pb2.ResourceInfo,
        error_details_pb2.ErrorInfo]
    status = rendered.status_proto()
    assert status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert status.message == err.message and len(status.details) == 3
    body = dapr_errors.render(err, "http", app_id="app").http_body()
    assert body["errorCode"] == "ERR_MALFORMED_REQUEST"
    assert body["details"][2] == {"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                                  "reason": "DAPR_STATE_ILLEGAL_KEY", "domain": "dapr.io",
                                  "metadata": None}


def test_the_transport_decides_legacy_or_rich() -> None:
    err = EtagMismatch("x: boom", where="state.save", store="s", detail="boom")
    over_grpc = dapr_errors.render(err, "grpc")
    assert (over_grpc.grpc_code, over_grpc.error_code) == (grpc.StatusCode.ABORTED,
                                                           "ERR_STATE_SAVE")
    assert over_grpc.message == ("failed saving state in state store s: possible etag "
                                 "mismatch. error from state store: boom")
    assert len(over_grpc.details) == 1
    over_http = dapr_errors.render(err, "http")
    assert over_http.http_status == 409 and over_http.details == []
    assert over_http.http_body() == {"errorCode": "ERR_STATE_SAVE",
                                     "message": over_grpc.message}


def test_lookup_errors_carry_the_app_id_over_http_only() -> None:
    err = ComponentNotFound("state store x is not found", where="state", name="x")
    assert dict(dapr_errors.render(err, "grpc", app_id="a").details[0].metadata) == {}
    assert dapr_errors.render(err, "http", app_id="a").http_body()["details"][0][
        "metadata"] == {"appID": "a"}


def test_an_error_without_a_row_keeps_the_generic_table() -> None:
    rendered = dapr_errors.render(Internal("disk full"), "http")
    assert (rendered.http_status, rendered.error_code, rendered.message) == (
        500, "ERR_INTERNAL", "disk full")
    assert rendered.http_body() == {"errorCode": "ERR_INTERNAL", "message": "disk full"}


def test_texts_daprd_formats() -> None:
    from pylotto.core.errors import PermissionDenied

    denied = PermissionDenied("scoped", where="secretstores.scope", key="db", store="vault")
    assert dapr_errors.render(denied, "http").http_body() == {
        "errorCode": "ERR_PERMISSION_DENIED",
        "message": 'access denied by policy to get "db" from "vault"'}
    failed = Internal("boom", where="state.get", key="k", store="s", detail="boom")
    over_grpc = dapr_errors.render(failed, "grpc")
    assert over_grpc.message == "fail to get k from state store s: boom"
    assert over_grpc.error_code == "ERR_STATE_GET"
    fields = dapr_errors.fields_of({"keys": ["a", "b"]})
    got = Internal("x", where="configuration.get", store="c", detail="down", **fields)
    assert dapr_errors.render(got, "http").message == (
        "failed to get [a b] from Configuration store c: down")
