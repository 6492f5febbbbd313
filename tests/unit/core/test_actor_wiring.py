"""Which state store holds actor state (pylotto.process.assembly.actor_state_store), and the
ERR_ACTOR_* rows as both APIs render them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc
import pytest

from pylotto.capabilities.actors.api import WHERE
from pylotto.config.manifests import load_components
from pylotto.config.model import ActorsConfig, ComponentSpec, RuntimeConfig
from pylotto.core import dapr_errors
from pylotto.core.errors import (
    AlreadyExists,
    ConfigError,
    Internal,
    InvalidArgument,
    NotConfigured,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unavailable,
)
from pylotto.process.assembly import actor_state_store


def _config(*stores: tuple[str, dict[str, Any]], named: str = "") -> RuntimeConfig:
    return RuntimeConfig(
        components=[ComponentSpec(name=name, capability="state", type="memory",
                                  metadata=metadata) for name, metadata in stores],
        actors=ActorsConfig(state_store=named))


def test_the_store_marked_actorstatestore_holds_actor_state() -> None:
    assert actor_state_store(_config(("a", {}), ("b", {"actorStateStore": "true"}))) == "b"
    assert actor_state_store(_config(("a", {"ACTORSTATESTORE": True}))) == "a"
    assert actor_state_store(_config(("a", {"actorStateStore": "false"}))) == ""
    assert actor_state_store(_config(("a", {}))) == ""


def test_the_configured_store_may_be_named() -> None:
    assert actor_state_store(_config(("a", {}), ("b", {}), named="a")) == "a"
    assert actor_state_store(_config(("a", {"actorStateStore": "true"}), named="a")) == "a"
    with pytest.raises(ConfigError, match="no state store named 'c'"):
        actor_state_store(_config(("a", {}), named="c"))


def test_two_actor_state_stores_are_refused() -> None:
    with pytest.raises(ConfigError, match="detected duplicate actor state store: a and b"):
        actor_state_store(_config(("a", {"actorStateStore": "true"}),
                                  ("b", {"actorStateStore": "true"})))
    with pytest.raises(ConfigError, match="detected duplicate actor state store: b and a"):
        actor_state_store(_config(("a", {"actorStateStore": "true"}), ("b", {}), named="b"))


def test_every_actor_where_has_a_row_with_its_code() -> None:
    for where, code in WHERE.items():
        rows = [row for (w, _), row in dapr_errors.DAPR_ERRORS.items() if w == where]
        assert rows, where
        assert any(code in (row.http.code, row.grpc.code) for row in rows), where


@pytest.mark.parametrize(("err", "grpc_code", "http", "code", "message"), [
    (NotConfigured("no store", where="actors.runtime"), grpc.StatusCode.INTERNAL, 500,
     "ERR_ACTOR_RUNTIME_NOT_FOUND", "the state store is not configured to use the actor "
     'runtime. Have you set the - name: actorStateStore value: "true" in your state store '
     "component file?"),
    (NotFound("did not find address for actor 'T||1'", where="actors.invoke"),
     grpc.StatusCode.INTERNAL, 500, "ERR_ACTOR_INVOKE_METHOD",
     "error invoke actor method: did not find address for actor 'T||1'"),
    (Unavailable("actor runtime is closed", where="actors.closed"),
     grpc.StatusCode.UNAVAILABLE, 503, "ERR_ACTOR_RUNTIME_CLOSED", "actor runtime is closed"),
    (AlreadyExists("exists", where="actors.reminder_create", name="r"),
     grpc.StatusCode.ALREADY_EXISTS, 409, "ERR_ACTOR_REMINDER_ALREADY_EXISTS",
     "actor reminder already exists: r"),
    (InvalidArgument("bad period", where="actors.reminder_create"), grpc.StatusCode.INTERNAL,
     500, "ERR_ACTOR_REMINDER_CREATE", "error creating actor reminder: bad period"),
    (NotFound("gone", where="actors.reminder_get", name="r"), grpc.StatusCode.NOT_FOUND, 404,
     "ERR_ACTOR_REMINDER_NOT_FOUND", "actor reminder not found: r"),
    (PermissionDenied("x", where="actors.reminder_hosted"), grpc.StatusCode.PERMISSION_DENIED,
     403, "ERR_ACTOR_REMINDER_NON_HOSTED",
     "operations on actor reminders are only possible on hosted actor types"),
    (ResourceExhausted("deep", where="actors.stack_depth"),
     grpc.StatusCode.RESOURCE_EXHAUSTED, 500, "ERR_ACTOR_STACK_DEPTH",
     "maximum stack depth exceeded"),
    (Internal("lost", where="actors.instance"), grpc.StatusCode.INTERNAL, 400,
     "ERR_ACTOR_INSTANCE_MISSING", "actor instance is missing"),
    (Internal("disk", where="actors.state_transaction"), grpc.StatusCode.INTERNAL, 500,
     "ERR_ACTOR_STATE_TRANSACTION_SAVE", "error saving actor transaction state: disk"),
])
def test_actor_errors_as_daprd_answers_them(err: Any, grpc_code: grpc.StatusCode, http: int,
                                            code: str, message: str) -> None:
    over_http = dapr_errors.render(err, "http")
    assert (over_http.http_status, over_http.error_code, over_http.message) == (
        http, code, message)
    assert not over_http.details  # legacy APIErrors: no details
    over_grpc = dapr_errors.render(err, "grpc")
    assert (over_grpc.grpc_code, over_grpc.message) == (grpc_code, message)


def test_a_bad_name_is_a_bad_request_over_http_and_a_bare_status_over_grpc() -> None:
    err = InvalidArgument("invalid actorType: contains /", where="actors.name")
    assert dapr_errors.render(err, "http").http_body() == {
        "errorCode": "ERR_BAD_REQUEST", "message": "invalid request: invalid actorType: "
                                                   "contains /"}
    rendered = dapr_errors.render(err, "grpc")
    assert (rendered.grpc_code, rendered.message) == (grpc.StatusCode.INVALID_ARGUMENT,
                                                      "invalid actorType: contains /")


def test_a_dapr_manifest_marks_the_actor_state_store(tmp_path: Path) -> None:
    (tmp_path / "statestore.yaml").write_text("""\
apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: statestore
spec:
  type: state.in-memory
  version: v1
  metadata:
  - name: actorStateStore
    value: "true"
""")
    specs = load_components([tmp_path], app_id="demo")
    assert actor_state_store(RuntimeConfig(components=specs)) == "statestore"


def test_workers_are_refused_with_an_actor_state_store() -> None:
    """Workers share one address: placement can't tell them apart."""
    from pylotto.process.workers import refuse_per_process

    def stores(*marks: bool) -> RuntimeConfig:
        return RuntimeConfig(components=[
            ComponentSpec(name=f"s{n}", capability="state", type="state.redis",
                          metadata={"actorStateStore": "true"} if marked else {})
            for n, marked in enumerate(marks)])

    refuse_per_process(stores(False))
    with pytest.raises(ConfigError,
                       match=r"--workers can't serve actors \(actor state store 's1'\)"):
        refuse_per_process(stores(False, True))


def test_the_embedded_default_holds_actor_state_in_its_sqlite_store(tmp_path: Path) -> None:
    """As ``dapr init``'s statestore: actors and workflows with no configuration at all, also
    under a Dapr Configuration file (it keeps the embedded components)."""
    from pylotto.config import model

    assert actor_state_store(model.embedded_default()) == "sqlite"
    configuration = tmp_path / "config.yaml"
    configuration.write_text("apiVersion: dapr.io/v1alpha1\nkind: Configuration\n"
                             "metadata: {name: c}\nspec: {}\n")
    assert actor_state_store(model.load(configuration)) == "sqlite"


def test_a_not_found_retries_policy_reaches_the_actor_router() -> None:
    from pylotto.core.resiliency import ACTOR_NOT_FOUND_RETRIES, ResiliencyConfig
    from pylotto.process.assembly import actor_lookup_retries

    config = RuntimeConfig(resiliency=ResiliencyConfig.model_validate({"policies": {"retries": {
        ACTOR_NOT_FOUND_RETRIES: {"policy": "constant", "duration": "200ms",
                                  "maxRetries": 2}}}}))
    policy = actor_lookup_retries(config)
    assert policy is not None and (policy.max_retries, policy.delay(1)) == (2, 0.2)
    assert actor_lookup_retries(RuntimeConfig()) is None
