"""The Dapr half of the error table: each pylotto error, by where it arose and its kind, as
daprd (dapr/dapr master, ``pkg/messages``, ``pkg/api/errors``, ``pkg/api/{grpc,http}``) answers
it — gRPC code, HTTP status, the HTTP ``errorCode``, the message text and the
``google.rpc`` details (``ErrorInfo`` with domain ``dapr.io`` and a reason such as
``DAPR_STATE_ILLEGAL_KEY``, ``ResourceInfo``, ``BadRequest``, ``Help``).

Owned by :mod:`pylotto.core.errors` (its :data:`~pylotto.core.errors.ERROR_TABLE` gives the
codes an error has where this table has no row, and the Layotto dialect's codes). Facades call
:func:`render`; the texts are formatted with the error's ``fields`` (``detail`` is the message
of the component error that caused it).

Dapr sends two kinds of error. Its "rich" errors (``kit/errors``) carry details on both APIs;
over HTTP the body is ``{"errorCode", "message", "details": [...]}`` and ``errorCode`` is the
legacy tag, else the ``ErrorInfo`` reason. Its legacy ones (``messages.APIError``, and most
HTTP state errors) carry none: ``{"errorCode", "message"}``, and over gRPC a bare status, so
the SDK's ``error_code()`` says ``UNKNOWN`` for them, as it does against daprd.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2  # type: ignore[import-untyped]

from pylotto.core.errors import (
    AlreadyExists,
    ComponentNotFound,
    DeadlineExceeded,
    EtagInvalid,
    EtagMismatch,
    Internal,
    InvalidArgument,
    NotConfigured,
    NotFound,
    PermissionDenied,
    PylottoError,
    Unauthenticated,
    Unavailable,
    Unsupported,
    dapr_error_code,
    grpc_code,
    http_status,
)

DOMAIN = "dapr.io"
TYPE_PREFIX = "type.googleapis.com/"
Transport = Literal["grpc", "http"]

C = grpc.StatusCode


@dataclass(frozen=True, slots=True)
class Wire:
    """One Dapr error as one of its APIs sends it."""

    grpc: grpc.StatusCode
    http: int
    message: str
    """A ``str.format`` template over the error's fields (a missing field formats as "")."""
    code: str = ""
    """The legacy tag: the HTTP ``errorCode`` (when empty, the ``ErrorInfo`` reason is)."""
    reason: str = ""
    """The ``ErrorInfo`` reason; empty: a legacy error, sent without any details."""
    info: tuple[tuple[str, str], ...] = ()
    """``ErrorInfo.metadata``: (key, field) pairs; a field the error lacks is left out."""
    request_metadata: bool = False
    """``ErrorInfo.metadata`` is the request's metadata (the error's ``metadata.*`` fields;
    over HTTP an empty map then, not Go's nil)."""
    resource: str = ""
    """``ResourceInfo.resource_type`` ("state", "pubsub"); empty: no ResourceInfo."""
    resource_name: str = "{name}"
    resource_described: bool = False
    """``ResourceInfo.description`` is the message (Dapr's pub/sub errors)."""
    violation: str = ""
    """A ``BadRequest`` field violation on the field named by this error field."""
    help: tuple[str, str] | None = None
    """A ``Help`` link: (url, description)."""
    plain_text: bool = False
    """HTTP only: the body is the message as plain text (Go's ``http.Error``), not JSON."""


@dataclass(frozen=True, slots=True)
class Row:
    grpc: Wire
    http: Wire


def same(wire: Wire) -> Row:
    return Row(wire, wire)


@dataclass(frozen=True, slots=True)
class Rendered:
    """What a facade sends for one error."""

    grpc_code: grpc.StatusCode
    http_status: int
    error_code: str
    message: str
    details: list[Any] = field(default_factory=list)
    """The ``google.rpc`` detail messages, in Dapr's order (empty for legacy errors)."""
    empty_metadata_is_map: bool = False
    """The HTTP body writes an empty ``ErrorInfo.metadata`` as ``{}`` (else Go's ``null``)."""
    plain_text: bool = False
    """The HTTP answer is ``message`` as plain text (see :attr:`Wire.plain_text`)."""

    def status_proto(self) -> status_pb2.Status:
        """The ``google.rpc.Status`` of the gRPC answer (``grpc-status-details-bin``)."""
        status = status_pb2.Status(code=self.grpc_code.value[0], message=self.message)
        for detail in self.details:
            packed = any_pb2.Any()
            packed.Pack(detail)
            status.details.append(packed)
        return status

    def http_body(self) -> dict[str, Any]:
        """The JSON body of the HTTP answer, as Dapr writes it."""
        body: dict[str, Any] = {"errorCode": self.error_code, "message": self.message}
        if self.details:
            body["details"] = [_detail_json(d, self.empty_metadata_is_map)
                               for d in self.details]
        return body


_TX_HELP = ("https://docs.dapr.io/reference/components-reference/supported-state-stores/",
            "Check the list of state stores and the features they support")

# --- the rows -------------------------------------------------------------------------------
# Keyed by (where, error kind); the kind PylottoError matches any kind raised there.

_STATE_NOT_CONFIGURED = Wire(C.FAILED_PRECONDITION, 500, "state store {name} is not configured",
                             code="ERR_STATE_STORE_NOT_CONFIGURED",
                             reason="DAPR_STATE_NOT_CONFIGURED")
_STATE_NOT_FOUND = Wire(C.INVALID_ARGUMENT, 400, "state store {name} is not found",
                        code="ERR_STATE_STORE_NOT_FOUND", reason="DAPR_STATE_NOT_FOUND")
_APP = (("appID", "app_id"),)


def _state_lookup(wire: Wire) -> Row:
    """gRPC (the universal API) sends no metadata, HTTP the app id."""
    return Row(wire, Wire(wire.grpc, wire.http, wire.message, wire.code, wire.reason, _APP))


def _basic(grpc_status: grpc.StatusCode, message: str, code: str, http: int,
           http_code: str = "", http_message: str = "") -> Row:
    """Dapr's ``apierrors.Basic`` over gRPC (an ErrorInfo whose reason is the error code) and
    the legacy error its HTTP API sends for the same failure."""
    return Row(Wire(grpc_status, 500, message, reason=code),
               Wire(grpc_status, http, http_message or message, code=http_code or code))


def _pubsub(grpc_status: grpc.StatusCode, http: int, message: str, code: str, reason: str,
            info: tuple[tuple[str, str], ...] = (), *, resource: bool = True,
            grpc_request_metadata: bool = False, http_request_metadata: bool = False) -> Row:
    """A pub/sub error, with its ResourceInfo (described by the message) unless
    ``resource`` is False; the ErrorInfo metadata is ``info`` or the request's."""
    def wire(request: bool) -> Wire:
        return Wire(grpc_status, http, message, code=code, reason=reason, info=info,
                    request_metadata=request, resource="pubsub" if resource else "",
                    resource_described=True)

    return Row(wire(grpc_request_metadata), wire(http_request_metadata))


def _legacy(grpc_status: grpc.StatusCode, http: int, message: str, code: str) -> Row:
    """A ``messages.APIError``: no details on either API."""
    return same(Wire(grpc_status, http, message, code=code))


_SAVE = "failed saving state in state store {store}: {detail}"
_DELETE = "failed deleting state with key {key}: {detail}"
_BULK_DELETE = "failed deleting state in state store {store}: {detail}"
_MISMATCH = "possible etag mismatch. error from state store: "  # state.ETagError's prefixes
_INVALID = "invalid etag value: "


def _etag(template: str, prefix: str) -> str:
    """``template`` with the store's detail after ETagError's prefix."""
    return template.replace("{detail}", prefix + "{detail}")


_TOPIC_ERROR = (("topic", "topic"), ("error", "detail"))
_APP_ERROR = (("appID", "app_id"), ("error", "detail"))
_SECRET_GET = "failed getting secret with key {key} from secret store {store}: {detail}"

_JOB_INFO = (("appID", "app_id"),)

# --- actors (pkg/messages/predefined.go: legacy APIErrors, no details; the ``where`` keys are
# those of pylotto.capabilities.actors.api.WHERE)
_ACTOR_INVOKE = "error invoke actor method: {detail}"
_ACTORS: dict[tuple[str, type[PylottoError]], Row] = {
    ("actors.disabled", PylottoError): _legacy(
        C.UNAVAILABLE, 400, "placement service is not configured", "ERR_ACTOR_NO_PLACEMENT"),
    ("actors.runtime", PylottoError): _legacy(
        C.INTERNAL, 500, "the state store is not configured to use the actor runtime. Have you "
        'set the - name: actorStateStore value: "true" in your state store component file?',
        "ERR_ACTOR_RUNTIME_NOT_FOUND"),
    ("actors.closed", PylottoError): _legacy(
        C.UNAVAILABLE, 503, "actor runtime is closed", "ERR_ACTOR_RUNTIME_CLOSED"),
    ("actors.reserved", PylottoError): _legacy(
        C.PERMISSION_DENIED, 403, "{detail}", "ERR_ACTOR_TYPE_RESERVED"),
    # a bad type, id, method or reminder/timer name: ErrBadRequest over HTTP, a bare
    # InvalidArgument status over gRPC (grpc.go "invalid actorType: ...")
    ("actors.name", PylottoError): Row(
        Wire(C.INVALID_ARGUMENT, 400, "{detail}", code="ERR_BAD_REQUEST"),
        Wire(C.INVALID_ARGUMENT, 400, "invalid request: {detail}", code="ERR_BAD_REQUEST")),
    ("actors.invoke", PylottoError): _legacy(
        C.INTERNAL, 500, _ACTOR_INVOKE, "ERR_ACTOR_INVOKE_METHOD"),
    ("actors.moved", PylottoError): _legacy(
        C.INTERNAL, 500, _ACTOR_INVOKE, "ERR_ACTOR_INVOKE_METHOD"),
    ("actors.instance", PylottoError): _legacy(
        C.INTERNAL, 400, "actor instance is missing", "ERR_ACTOR_INSTANCE_MISSING"),
    ("actors.state_get", PylottoError): _legacy(
        C.INTERNAL, 500, "error getting actor state: {detail}", "ERR_ACTOR_STATE_GET"),
    ("actors.state_transaction", PylottoError): _legacy(
        C.INTERNAL, 500, "error saving actor transaction state: {detail}",
        "ERR_ACTOR_STATE_TRANSACTION_SAVE"),
    ("actors.state_operation", PylottoError): _basic(
        C.UNIMPLEMENTED, "operation type {operation} not supported",
        "ERR_NOT_SUPPORTED_STATE_OPERATION", 400),
    ("actors.reminder_hosted", PylottoError): _legacy(
        C.PERMISSION_DENIED, 403, "operations on actor reminders are only possible on hosted "
        "actor types", "ERR_ACTOR_REMINDER_NON_HOSTED"),
    ("actors.reminder_create", AlreadyExists): _legacy(
        C.ALREADY_EXISTS, 409, "actor reminder already exists: {name}",
        "ERR_ACTOR_REMINDER_ALREADY_EXISTS"),
    ("actors.reminder_create", PylottoError): _legacy(
        C.INTERNAL, 500, "error creating actor reminder: {detail}", "ERR_ACTOR_REMINDER_CREATE"),
    ("actors.reminder_get", NotFound): _legacy(
        C.NOT_FOUND, 404, "actor reminder not found: {name}", "ERR_ACTOR_REMINDER_NOT_FOUND"),
    ("actors.reminder_get", PylottoError): _legacy(
        C.INTERNAL, 500, "error getting actor reminder: {detail}", "ERR_ACTOR_REMINDER_GET"),
    ("actors.reminder_delete", PylottoError): _legacy(
        C.INTERNAL, 500, "error deleting actor reminder: {detail}", "ERR_ACTOR_REMINDER_DELETE"),
    ("actors.timer_create", PylottoError): _legacy(
        C.INTERNAL, 500, "error creating actor timer: {detail}", "ERR_ACTOR_TIMER_CREATE"),
    ("actors.timer_delete", PylottoError): _legacy(
        C.INTERNAL, 500, "error deleting actor timer: {detail}", "ERR_ACTOR_TIMER_DELETE"),
    # SubscribeActorEventsAlpha1 (actorcallbacks.go: bare statuses)
    ("actors.stream", PylottoError): same(Wire(
        C.FAILED_PRECONDITION, 400, "actor callback streaming requires a gRPC app channel",
        code="ERR_ACTOR_NO_APP_CHANNEL")),
    ("actors.stream_first", PylottoError): same(Wire(
        C.INVALID_ARGUMENT, 400,
        "first message must be SubscribeActorEventsRequestInitialAlpha1",
        code="ERR_BAD_REQUEST")),
    ("actors.stack_depth", PylottoError): _legacy(
        C.RESOURCE_EXHAUSTED, 500, "maximum stack depth exceeded", "ERR_ACTOR_STACK_DEPTH"),
}
"""Every actor error; the ``fields`` the texts read: ``detail`` (the error's message unless
given; for ``actors.reserved`` daprd's whole text), ``name`` (a reminder's), ``operation``
(a state operation's type)."""


# --- workflows (pkg/messages/predefined.go "Workflow.": legacy APIErrors; the ``where`` keys
# are those of pylotto.facades.dapr.workflows and pylotto.capabilities.workflows.names)
_WORKFLOWS: dict[tuple[str, type[PylottoError]], Row] = {
    ("workflows.runtime", PylottoError): _legacy(
        C.INTERNAL, 500, "the state store is not configured to use the actor runtime. Have you "
        'set the - name: actorStateStore value: "true" in your state store component file?',
        "ERR_ACTOR_RUNTIME_NOT_FOUND"),
    ("workflows.instance_id_missing", PylottoError): _legacy(
        C.INVALID_ARGUMENT, 400, "no instance ID was provided",
        "ERR_INSTANCE_ID_PROVIDED_MISSING"),
    ("workflows.instance_id_too_long", PylottoError): _legacy(
        C.INVALID_ARGUMENT, 400, "workflow instance ID exceeds the max length of 64 characters",
        "ERR_INSTANCE_ID_TOO_LONG"),
    ("workflows.instance_id_invalid", PylottoError): _legacy(
        C.INVALID_ARGUMENT, 400, "workflow instance ID '{instance_id}' is invalid: only "
        "alphanumeric and underscore characters are allowed", "ERR_INSTANCE_ID_INVALID"),
    ("workflows.name_missing", PylottoError): _legacy(
        C.INVALID_ARGUMENT, 400, "workflow name is not configured", "ERR_WORKFLOW_NAME_MISSING"),
    ("workflows.event_name_missing", PylottoError): _legacy(
        C.INVALID_ARGUMENT, 400, "missing workflow event name",
        "ERR_WORKFLOW_EVENT_NAME_MISSING"),
    ("workflows.app_id", PylottoError): _legacy(
        C.INVALID_ARGUMENT, 400, "workflow app ID '{app_id}' is invalid: only alphanumeric, "
        "dash and underscore characters are allowed", "ERR_WORKFLOW_APP_ID_INVALID"),
    ("workflows.start", PylottoError): _legacy(
        C.INTERNAL, 500, "error starting workflow '{name}': {detail}", "ERR_START_WORKFLOW"),
    ("workflows.get", PylottoError): _legacy(
        C.INTERNAL, 500, "error while getting workflow info on instance '{instance_id}': "
        "{detail}", "ERR_GET_WORKFLOW"),
    ("workflows.not_found", PylottoError): _legacy(
        C.NOT_FOUND, 404, "unable to find workflow with the provided instance ID: "
        "{instance_id}", "ERR_INSTANCE_ID_NOT_FOUND"),
    ("workflows.terminate", PylottoError): _legacy(
        C.INTERNAL, 500, "error terminating workflow '{instance_id}': {detail}",
        "ERR_TERMINATE_WORKFLOW"),
    ("workflows.raise_event", PylottoError): _legacy(
        C.INTERNAL, 500, "error raising event on workflow '{instance_id}': {detail}",
        "ERR_RAISE_EVENT_WORKFLOW"),
    ("workflows.pause", PylottoError): _legacy(
        C.INTERNAL, 500, "error pausing workflow {instance_id}: {detail}", "ERR_PAUSE_WORKFLOW"),
    ("workflows.resume", PylottoError): _legacy(
        C.INTERNAL, 500, "error resuming workflow {instance_id}: {detail}",
        "ERR_RESUME_WORKFLOW"),
    ("workflows.purge", PylottoError): _legacy(
        C.INTERNAL, 500, "error purging workflow {instance_id}: {detail}", "ERR_PURGE_WORKFLOW"),
}

DAPR_ERRORS: dict[tuple[str, type[PylottoError]], Row] = {
    # the Jobs API (pkg/api/universal/jobs.go, pkg/api/errors/scheduler.go); the scheduler's
    # own refusals of a job are INVALID_ARGUMENT here, where daprd passes them on as INTERNAL
    # (docs/scheduler.md)
    **{(where, InvalidArgument): same(Wire(C.INVALID_ARGUMENT, 400, text, reason=reason,
                                           info=_JOB_INFO))
       for where, text, reason in (
           ("jobs.empty", "Job is empty", "DAPR_SCHEDULER_EMPTY"),
           ("jobs.name_empty", "Name is empty", "DAPR_SCHEDULER_JOB_NAME_EMPTY"),
           ("jobs.schedule_empty", "Schedule is empty", "DAPR_SCHEDULER_SCHEDULE_EMPTY"),
           ("jobs.url_name", "Set the job name in the url only", "DAPR_SCHEDULER_JOB_NAME"))},
    ("jobs.name", InvalidArgument): same(Wire(
        C.INVALID_ARGUMENT, 400, "failed to {operation} job due to: {detail}",
        reason="DAPR_SCHEDULER_SCHEDULE_JOB", info=_JOB_INFO, violation="field")),
    ("jobs.schedule", InvalidArgument): same(Wire(
        C.INVALID_ARGUMENT, 400, "failed to schedule job due to: job failed validation: "
        "{detail}", reason="DAPR_SCHEDULER_SCHEDULE_JOB", info=_JOB_INFO, violation="field")),
    ("jobs.schedule", AlreadyExists): same(Wire(
        C.ALREADY_EXISTS, 409, "failed to schedule job due to: {detail}",
        reason="DAPR_SCHEDULER_SCHEDULE_JOB", info=_JOB_INFO)),
    ("jobs.get", NotFound): same(Wire(
        C.INTERNAL, 500, "failed to get job due to: {detail}", reason="DAPR_SCHEDULER_GET_JOB",
        info=_JOB_INFO)),
    ("jobs.store", NotConfigured): same(Wire(
        C.FAILED_PRECONDITION, 500, "the Jobs API needs a state store with etags: {detail}",
        reason="DAPR_SCHEDULER_SCHEDULE_JOB", info=_JOB_INFO)),
    # API token refusals: gRPC invokev1.ErrorFromHTTPResponseCode(401, ...) (pkg/api/grpc/
    # auth.go), HTTP http.Error(w, "invalid api token", 401) (pkg/api/http/middlewares.go)
    ("auth", Unauthenticated): Row(
        Wire(C.UNAUTHENTICATED, 401, "Unauthorized", reason="Unauthorized",
             info=(("http.code", "http_code"), ("http.error_message", "detail"))),
        Wire(C.UNAUTHENTICATED, 401, "invalid api token", plain_text=True)),
    # the HTTP API's own (messages.ErrMalformedRequest)
    ("http.body", InvalidArgument): _legacy(
        C.INVALID_ARGUMENT, 400, "failed deserializing HTTP body: {detail}",
        "ERR_MALFORMED_REQUEST"),
    # state: the store lookup (pkg/api/errors/state.go NotConfigured / NotFound)
    ("state", NotConfigured): _state_lookup(_STATE_NOT_CONFIGURED),
    ("state", ComponentNotFound): _state_lookup(_STATE_NOT_FOUND),
    ("state", InvalidArgument): _state_lookup(_STATE_NOT_FOUND),  # "": no store of that name
    # state: keys (InvalidKeyName: BadRequest, ResourceInfo, ErrorInfo)
    ("state.key", InvalidArgument): same(Wire(
        C.INVALID_ARGUMENT, 400, "{detail}", code="ERR_MALFORMED_REQUEST",
        reason="DAPR_STATE_ILLEGAL_KEY", resource="state", resource_name="{store}",
        violation="key")),
    ("state.save_key", InvalidArgument): _basic(
        C.INVALID_ARGUMENT, "state key cannot be empty", "ERR_STATE_SAVE", 400,
        http_code="ERR_MALFORMED_REQUEST", http_message='"key" is a required field'),
    # state: the operations (apierrors.Basic over gRPC, legacy errors over HTTP)
    ("state.get", PylottoError): _basic(
        C.INTERNAL, "fail to get {key} from state store {store}: {detail}", "ERR_STATE_GET", 500),
    ("state.bulk_get", PylottoError): Row(
        Wire(C.UNKNOWN, 500, "{detail}"),  # GetBulkState passes the store's error on as it is
        Wire(C.INTERNAL, 500, "{detail}", code="ERR_STATE_BULK_GET")),
    ("state.save", EtagMismatch): _basic(
        C.ABORTED, _etag(_SAVE, _MISMATCH), "ERR_STATE_SAVE", 409),
    ("state.save", EtagInvalid): _basic(
        C.INVALID_ARGUMENT, _etag(_SAVE, _INVALID), "ERR_STATE_SAVE", 400),
    ("state.save", PylottoError): _basic(C.INTERNAL, _SAVE, "ERR_STATE_SAVE", 500),
    ("state.delete", EtagMismatch): _basic(
        C.ABORTED, _etag(_DELETE, _MISMATCH), "ERR_STATE_DELETE", 409),
    ("state.delete", EtagInvalid): _basic(
        C.INVALID_ARGUMENT, _etag(_DELETE, _INVALID), "ERR_STATE_DELETE", 400),
    ("state.delete", PylottoError): _basic(C.INTERNAL, _DELETE, "ERR_STATE_DELETE", 500),
    ("state.bulk_delete", EtagMismatch): _basic(
        C.ABORTED, _etag(_BULK_DELETE, _MISMATCH), "ERR_STATE_BULK_DELETE", 409),
    ("state.bulk_delete", EtagInvalid): _basic(
        C.INVALID_ARGUMENT, _etag(_BULK_DELETE, _INVALID), "ERR_STATE_BULK_DELETE", 400),
    ("state.bulk_delete", PylottoError): _basic(
        C.INTERNAL, _BULK_DELETE, "ERR_STATE_BULK_DELETE", 500),
    ("state.transaction", PylottoError): _basic(
        C.INTERNAL, "error while executing state transaction: {detail}",
        "ERR_STATE_TRANSACTION", 500),
    ("state.outbox", PylottoError): same(Wire(
        C.INTERNAL, 500, "error while publishing outbox message: {detail}",
        code="ERR_PUBLISH_OUTBOX", reason="DAPR_PUBSUB_OUTBOX",
        info=(("appID", "app_id"), ("error", "detail")))),
    ("state.operation", PylottoError): _basic(
        C.UNIMPLEMENTED, "operation type {operation} not supported",
        "ERR_NOT_SUPPORTED_STATE_OPERATION", 400),
    ("state.transactional", Unsupported): same(Wire(
        C.UNIMPLEMENTED, 500, "state store {store} doesn't support transactions",
        code="ERR_STATE_STORE_NOT_SUPPORTED", reason="DAPR_STATE_TRANSACTIONS_NOT_SUPPORTED",
        resource="state", resource_name="{store}", help=_TX_HELP)),
    ("state.queryable", Unsupported): same(Wire(
        C.INTERNAL, 500, "state store does not support querying",
        code="ERR_STATE_STORE_NOT_SUPPORTED", reason="DAPR_STATE_QUERYING_NOT_SUPPORTED",
        resource="state", resource_name="{store}")),
    ("state.query", PylottoError): same(Wire(
        C.INTERNAL, 500, "state store {store} query failed: {detail}", code="ERR_STATE_QUERY",
        reason="DAPR_STATE_QUERY_FAILED", resource="state", resource_name="{store}")),
    # pub/sub (pkg/api/errors/pubsub.go)
    ("pubsub", NotConfigured): _pubsub(
        C.FAILED_PRECONDITION, 400, "pubsub {name} is not configured",
        "ERR_PUBSUB_NOT_CONFIGURED", "DAPR_PUBSUB_NOT_CONFIGURED", resource=False,
        http_request_metadata=True),
    ("pubsub", ComponentNotFound): _pubsub(
        C.INVALID_ARGUMENT, 404, "pubsub {name} is not found", "ERR_PUBSUB_NOT_FOUND",
        "DAPR_PUBSUB_NOT_FOUND", resource=False, http_request_metadata=True),
    ("pubsub", InvalidArgument): _pubsub(
        C.INVALID_ARGUMENT, 404, "pubsub name is empty", "ERR_PUBSUB_EMPTY",
        "DAPR_PUBSUB_NAME_EMPTY", grpc_request_metadata=True, http_request_metadata=True),
    ("pubsub.topic", InvalidArgument): _pubsub(
        C.INVALID_ARGUMENT, 404, "topic is empty in pubsub {name}", "ERR_TOPIC_NAME_EMPTY",
        "DAPR_PUBSUB_TOPIC_NAME_EMPTY", grpc_request_metadata=True,
        http_request_metadata=True),
    # a subscriber stream (SubscribeTopicEventsAlpha1): plain errors for an empty name or
    # topic (UNKNOWN: the SDK tries again), NotFound for a pub/sub it cannot find
    ("pubsub.stream_name", InvalidArgument): same(Wire(C.UNKNOWN, 500,
                                                       "pubsubName is required")),
    ("pubsub.stream_topic", InvalidArgument): same(Wire(C.UNKNOWN, 500, "topic is required")),
    **{("pubsub.stream", kind): _pubsub(
        C.INVALID_ARGUMENT, 404, "pubsub {name} is not found", "ERR_PUBSUB_NOT_FOUND",
        "DAPR_PUBSUB_NOT_FOUND", resource=False) for kind in (NotConfigured, ComponentNotFound)},
    ("pubsub.publish", PylottoError): _pubsub(
        C.INTERNAL, 500, "error when publishing to topic {topic} in pubsub {name}: {detail}",
        "ERR_PUBSUB_PUBLISH_MESSAGE", "DAPR_PUBSUB_PUBLISH_MESSAGE", _TOPIC_ERROR),
    ("pubsub.bulk_entry", InvalidArgument): _pubsub(
        C.INVALID_ARGUMENT, 400,
        "error marshaling events to bytes for topic {topic} pubsub {name}. error: {detail}",
        "ERR_PUBSUB_EVENTS_SER", "DAPR_PUBSUB_MARSHAL_EVENTS", _APP_ERROR),
    # output bindings: every failure, the lookup's too, is ErrInvokeOutputBinding
    ("bindings", NotConfigured): _basic(
        C.INTERNAL, "error invoking output binding {name}: couldn't find output binding {name}",
        "ERR_INVOKE_OUTPUT_BINDING", 500),
    ("bindings", ComponentNotFound): _basic(
        C.INTERNAL, "error invoking output binding {name}: couldn't find output binding {name}",
        "ERR_INVOKE_OUTPUT_BINDING", 500),
    ("bindings", InvalidArgument): _basic(
        C.INTERNAL, "error invoking output binding {name}: couldn't find output binding {name}",
        "ERR_INVOKE_OUTPUT_BINDING", 500),
    ("bindings.invoke", PylottoError): _basic(
        C.INTERNAL, "error invoking output binding {name}: {detail}",
        "ERR_INVOKE_OUTPUT_BINDING", 500),
    # secrets (legacy errors: no details)
    ("secretstores", NotConfigured): _legacy(
        C.FAILED_PRECONDITION, 500, "secret store is not configured",
        "ERR_SECRET_STORES_NOT_CONFIGURED"),
    ("secretstores", ComponentNotFound): _legacy(
        C.INVALID_ARGUMENT, 401, "failed finding secret store with key {name}",
        "ERR_SECRET_STORE_NOT_FOUND"),
    ("secretstores", InvalidArgument): _legacy(
        C.INVALID_ARGUMENT, 401, "failed finding secret store with key {name}",
        "ERR_SECRET_STORE_NOT_FOUND"),
    ("secretstores.scope", PermissionDenied): _legacy(
        C.PERMISSION_DENIED, 403, 'access denied by policy to get "{key}" from "{store}"',
        "ERR_PERMISSION_DENIED"),
    ("secretstores.get", PylottoError): _legacy(
        C.INTERNAL, 500, _SECRET_GET, "ERR_SECRET_GET"),
    ("secretstores.bulk_get", PylottoError): _legacy(
        C.INTERNAL, 500, "failed getting secrets from secret store {store}: {detail}",
        "ERR_SECRET_GET"),
    # configuration (apierrors.Basic over gRPC, legacy errors over HTTP)
    ("configuration", NotConfigured): _basic(
        C.FAILED_PRECONDITION, "configuration stores not configured",
        "ERR_CONFIGURATION_STORE_NOT_CONFIGURED", 500),
    ("configuration", ComponentNotFound): _basic(
        C.INVALID_ARGUMENT, "configuration store {name} not found",
        "ERR_CONFIGURATION_STORE_NOT_FOUND", 400),
    ("configuration", InvalidArgument): _basic(
        C.INVALID_ARGUMENT, "configuration store {name} not found",
        "ERR_CONFIGURATION_STORE_NOT_FOUND", 400),
    ("configuration.get", PylottoError): _basic(
        C.INTERNAL, "failed to get {keys} from Configuration store {store}: {detail}",
        "ERR_CONFIGURATION_GET", 500),
    ("configuration.app_channel", NotConfigured): _legacy(
        C.INTERNAL, 500, "app channel is not initialized. cannot subscribe to configuration "
        "updates", "ERR_APP_CHANNEL_NIL"),
    ("configuration.subscribe", PylottoError): _basic(
        C.INVALID_ARGUMENT, "failed to subscribe {keys} from Configuration store {store}: "
        "{detail}", "ERR_CONFIGURATION_SUBSCRIBE", 500),
    # crypto (pkg/messages ErrCrypto*, ErrBadRequest: legacy errors, no details)
    ("crypto", NotConfigured): _legacy(
        C.INTERNAL, 500, "crypto providers not configured", "ERR_CRYPTO_PROVIDERS_NOT_CONFIGURED"),
    ("crypto", InvalidArgument): _legacy(
        C.INVALID_ARGUMENT, 400, "invalid request: missing component name", "ERR_BAD_REQUEST"),
    ("crypto", ComponentNotFound): _legacy(
        C.INVALID_ARGUMENT, 400, "crypto provider {name} not found",
        "ERR_CRYPTO_PROVIDER_NOT_FOUND"),
    ("crypto.request", PylottoError): _legacy(
        C.INVALID_ARGUMENT, 400, "invalid request: {detail}", "ERR_BAD_REQUEST"),
    ("crypto.get_key", PylottoError): _legacy(
        C.INTERNAL, 500, "failed to retrieve key {key}: {detail}", "ERR_CRYPTO_KEY"),
    ("crypto.operation", PylottoError): _legacy(
        C.INTERNAL, 500, "failed to perform operation: {detail}", "ERR_CRYPTO"),
    # lock (legacy errors: no details)
    ("lock", NotConfigured): _legacy(
        C.FAILED_PRECONDITION, 500, "lock store is not configured",
        "ERR_LOCK_STORE_NOT_CONFIGURED"),
    ("lock", ComponentNotFound): _legacy(
        C.INVALID_ARGUMENT, 400, "lock store {name} not found", "ERR_LOCK_STORE_NOT_FOUND"),
    ("lock", InvalidArgument): _legacy(
        C.INVALID_ARGUMENT, 400, "lock store {name} not found", "ERR_LOCK_STORE_NOT_FOUND"),
    ("lock.resource_id", InvalidArgument): _legacy(
        C.INVALID_ARGUMENT, 400, "ResourceId is empty in lock store {store}",
        "ERR_MALFORMED_REQUEST"),
    ("lock.owner", InvalidArgument): _legacy(
        C.INVALID_ARGUMENT, 400, "LockOwner is empty in lock store {store}",
        "ERR_MALFORMED_REQUEST"),
    ("lock.expiry", InvalidArgument): _legacy(
        C.INVALID_ARGUMENT, 400, "ExpiryInSeconds is not positive in lock store {store}",
        "ERR_MALFORMED_REQUEST"),
    ("lock.try_lock", PylottoError): _legacy(
        C.INTERNAL, 500, "failed to try acquiring lock: {detail}", "ERR_TRY_LOCK"),
    ("lock.unlock", PylottoError): _legacy(
        C.INTERNAL, 500, "failed to release lock: {detail}", "ERR_UNLOCK"),
    # service invocation (legacy: ErrDirectInvoke; a refusal by the callee keeps 403)
    ("invoke", PermissionDenied): _legacy(
        C.PERMISSION_DENIED, 403, "failed to invoke, id: {app_id}, err: {detail}",
        "ERR_DIRECT_INVOKE"),
    # the app id cannot be resolved: directMessaging.getRemoteApp's errors (no resolver;
    # nameresolution/mdns's for an id nobody announces), before any attempt
    ("invoke.resolve", Unsupported): _legacy(
        C.INTERNAL, 500, "failed to invoke, id: {app_id}, err: name resolver not initialized",
        "ERR_DIRECT_INVOKE"),
    ("invoke.resolve", Unavailable): _legacy(
        C.INTERNAL, 500, "failed to invoke, id: {app_id}, err: couldn't find service: {app_id}",
        "ERR_DIRECT_INVOKE"),
    **{("invoke", kind): _legacy(C.INTERNAL, 500, "failed to invoke, id: {app_id}, err: {detail}",
                                 "ERR_DIRECT_INVOKE")
       for kind in (Unavailable, DeadlineExceeded, Internal, NotConfigured, NotFound)},
    **_ACTORS,
    **_WORKFLOWS,
}


def row_of(err: PylottoError) -> Row | None:
    """The row for ``err``: its place and kind (nearest class first), else none."""
    for cls in type(err).__mro__:
        if isinstance(cls, type) and issubclass(cls, PylottoError):
            row = DAPR_ERRORS.get((err.where, cls))
            if row is not None:
                return row
    return None


class _Fields(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return ""


def render(err: PylottoError, transport: Transport, *, app_id: str = "") -> Rendered:
    """``err`` as daprd's ``transport`` API answers it (no row: the codes of the generic
    table and pylotto's own message, without details)."""
    row = row_of(err)
    if row is None:
        return Rendered(grpc_code(err), http_status(err), dapr_error_code(err), err.message)
    wire = row.grpc if transport == "grpc" else row.http
    fields = _Fields(err.fields)
    fields.setdefault("detail", err.message)
    fields.setdefault("http_code", str(wire.http))
    if app_id:
        fields.setdefault("app_id", app_id)
    message = wire.message.format_map(fields)
    details: list[Any] = []
    if wire.reason:
        if wire.violation:
            details.append(error_details_pb2.BadRequest(field_violations=[
                error_details_pb2.BadRequest.FieldViolation(
                    field=fields[wire.violation], description=message)]))
        if wire.help is not None:
            details.append(error_details_pb2.Help(links=[
                error_details_pb2.Help.Link(url=wire.help[0], description=wire.help[1])]))
        if wire.resource:
            details.append(error_details_pb2.ResourceInfo(
                resource_type=wire.resource, resource_name=wire.resource_name.format_map(fields),
                description=message if wire.resource_described else ""))
        details.append(error_details_pb2.ErrorInfo(
            reason=wire.reason, domain=DOMAIN,
            metadata=_info_metadata(wire, fields)))
    return Rendered(wire.grpc, wire.http, wire.code or wire.reason, message, details,
                    wire.request_metadata, wire.plain_text)


def go_error_string(rendered: Rendered) -> str:
    """``rendered`` as daprd's ``Error()`` of a rich error (kit/errors) writes it, e.g. in a
    bulk publish's ``metadata.error`` header: ``api error: code = Internal desc = ...``."""
    name = rendered.grpc_code.name
    go_name = "Canceled" if name == "CANCELLED" else "".join(
        word.capitalize() for word in name.split("_"))
    return f"api error: code = {go_name} desc = {rendered.message}"


REQUEST_METADATA = "metadata."
"""The prefix of the error fields holding the request's metadata."""


def request_metadata(metadata: Mapping[str, str]) -> dict[str, str]:
    """Error fields carrying ``metadata`` (the request's) for the rows that send it."""
    return {REQUEST_METADATA + k: v for k, v in metadata.items()}


def _info_metadata(wire: Wire, fields: Mapping[str, str]) -> dict[str, str]:
    if wire.request_metadata:
        return {k[len(REQUEST_METADATA):]: v for k, v in fields.items()
                if k.startswith(REQUEST_METADATA)}
    return {key: fields[name] for key, name in wire.info if fields[name]}


def _detail_json(detail: Any, empty_metadata_is_map: bool) -> dict[str, Any]:
    """A detail as kit/errors writes it in an HTTP body (Go's field names, Go's nil maps)."""
    kind = TYPE_PREFIX + detail.DESCRIPTOR.full_name
    if isinstance(detail, error_details_pb2.ErrorInfo):
        return {"@type": kind, "reason": detail.reason, "domain": detail.domain,
                "metadata": dict(detail.metadata) or ({} if empty_metadata_is_map else None)}
    if isinstance(detail, error_details_pb2.ResourceInfo):
        return {"@type": kind, "resource_type": detail.resource_type,
                "resource_name": detail.resource_name, "owner": detail.owner,
                "description": detail.description}
    if isinstance(detail, error_details_pb2.BadRequest):
        return {"@type": kind, "field_violations": [
            {k: v for k, v in (("field", f.field), ("description", f.description)) if v}
            for f in detail.field_violations]}
    if isinstance(detail, error_details_pb2.Help):
        return {"@type": kind, "links": [
            {k: v for k, v in (("description", link.description), ("url", link.url)) if v}
            for link in detail.links]}
    return {"@type": kind}


def fields_of(values: Mapping[str, object]) -> dict[str, str]:
    """Error fields from values that may not be strings (a list of keys formats as Go's
    ``%v`` of a slice does: ``[a b]``)."""
    out = {}
    for name, value in values.items():
        if isinstance(value, list | tuple):
            out[name] = "[" + " ".join(str(v) for v in value) + "]"
        else:
            out[name] = str(value)
    return out
