"""Component lookups: Layotto's codes and texts on the Layotto dialect, the error's kind (and
so daprd's answer) on the Dapr one."""

from __future__ import annotations

import grpc
import pytest

from pylotto.core import dapr_errors
from pylotto.core.errors import (
    LAYOTTO_LOOKUPS,
    ComponentNotFound,
    InvalidArgument,
    Lookup,
    NotConfigured,
    grpc_code,
    lookup_error,
)

C = grpc.StatusCode


@pytest.mark.parametrize(("capability", "lookup", "code", "text"), [
    ("state", "not_configured", C.FAILED_PRECONDITION, "state store is not configured"),
    ("state", "not_found", C.INVALID_ARGUMENT, "state store nope is not found"),
    ("lock", "not_found", C.INVALID_ARGUMENT, "lock store nope not found"),
    ("sequencer", "not_configured", C.FAILED_PRECONDITION, "Sequencer store is not configured"),
    ("secretstores", "empty", C.INVALID_ARGUMENT, "error when get secret but not find : nope"),
    ("pubsub", "not_configured", C.INVALID_ARGUMENT, "pubsub nope not found"),
    ("bindings", "not_found", C.INTERNAL,
     "error when invoke output binding nope: couldn't find output binding nope"),
    ("configuration", "not_configured", C.UNKNOWN, "configure store [nope] don't support now"),
    ("hello", "not_found", C.UNKNOWN, "no instance found"),
    ("file", "not_found", C.INVALID_ARGUMENT, "not support store type: nope"),
])
def test_layotto_answers(capability: str, lookup: Lookup, code: grpc.StatusCode,
                         text: str) -> None:
    err = lookup_error(capability, lookup, "label", "nope")
    assert (grpc_code(err), err.message) == (code, text)


def test_the_operation_row_wins() -> None:
    err = lookup_error("file", "not_found", "file store", "x", "get")
    assert err.message == "not supported store type: x"


def test_the_kind_stays_for_the_dapr_half() -> None:
    err = lookup_error("configuration", "not_found", "configuration store", "nope")
    assert isinstance(err, ComponentNotFound) and grpc_code(err) is C.UNKNOWN
    rendered = dapr_errors.render(err, "grpc")
    assert (rendered.grpc_code, rendered.message) == (
        C.INVALID_ARGUMENT, "configuration store nope not found")
    missing = lookup_error("pubsub", "not_configured", "pubsub", "p")
    assert isinstance(missing, NotConfigured)
    assert dapr_errors.render(missing, "grpc").grpc_code is C.FAILED_PRECONDITION


def test_without_a_row_pylottos_own_texts() -> None:
    assert not any(where == "plugin" for where, _ in LAYOTTO_LOOKUPS)
    err = lookup_error("plugin", "empty", "widget", "")
    assert isinstance(err, InvalidArgument) and err.message == "widget name is empty"
