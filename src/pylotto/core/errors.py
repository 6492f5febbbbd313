"""The pylotto error tree and THE table mapping each error to a gRPC code and an HTTP status.

Components and capabilities raise only these errors; facades translate them with
:func:`grpc_code` / :func:`http_status` and never decide a status code themselves.

An error may also say where it arose (``where``: ``"state.save"``, ``"pubsub"``...) and with
what (``fields``: store, key, topic, the component's own ``detail``...): the Dapr dialect
renders it from those with Dapr's codes, reasons and message texts — the second half of this
table, in :mod:`pylotto.core.dapr_errors`. ``message`` stays the Layotto dialect's text.

Where Layotto answers an error unlike its kind's codes (an unknown configuration store is a
plain Go error, UNKNOWN), the error says so with ``answered_as``: the Layotto dialect answers
that kind's codes, the Dapr half still keys on the error's own kind. The failed component
lookups of every capability are made by :func:`lookup_error` from :data:`LAYOTTO_LOOKUPS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Self

import grpc


@dataclass(frozen=True)
class AppStatus:
    """The gRPC status an app answered a call with (its own error, not the sidecar's):
    ``status`` is the serialized ``google.rpc.Status`` (code, message, details), which Dapr's
    HTTP API answers as JSON (:mod:`pylotto.facades.dapr.http.app`)."""

    status: bytes


APP_STATUS_TRAILER = "pylotto-app-status"
"""Trailer of a target sidecar's answer (between sidecars) saying the status is its app's own;
``grpc-status-details-bin`` beside it is the app's ``google.rpc.Status``."""


class PylottoError(Exception):
    """Base of every error the runtime reports to a caller."""

    def __init__(self, message: str, *, where: str = "", **fields: str) -> None:
        super().__init__(message)
        self.message = message
        self.where = where
        """``capability`` or ``capability.operation`` the error arose in ("" unknown)."""
        self.fields: dict[str, str] = fields
        """What the Dapr message of :mod:`pylotto.core.dapr_errors` is formatted with."""
        self.answered_as: type[PylottoError] | None = None
        """The kind whose codes the Layotto dialect answers with, where Layotto answers this
        error unlike its kind (:func:`lookup_error`); the Dapr half keys on the kind."""
        self.app_status: AppStatus | None = None
        """Set when this is an app's own error status passed on (invocation of a gRPC app)."""

    def answered(self, kind: type[PylottoError]) -> Self:
        """This error, answered by the Layotto dialect with ``kind``'s codes."""
        self.answered_as = None if kind is type(self) else kind
        return self

    def at(self, where: str, **fields: str) -> Self:
        """This error, saying where it arose (kept if it says so already: the innermost
        place wins) and with what (fields it lacks are added)."""
        if not self.where:
            self.where = where
        for name, value in fields.items():
            self.fields.setdefault(name, value)
        return self


class InvalidArgument(PylottoError):
    """The request is malformed: empty name, bad key, illegal option."""


class NotConfigured(PylottoError):
    """No component of the capability is configured at all (Layotto: FAILED_PRECONDITION)."""


class ComponentNotFound(PylottoError):
    """A component name that is not configured for the capability."""


class NotFound(PylottoError):
    """The addressed object (file, secret, ...) does not exist."""


class AlreadyExists(PylottoError):
    """The object to create exists already."""


class EtagMismatch(PylottoError):
    """The etag sent does not match the stored one, or first-write lost (Dapr: 409 / ABORTED)."""


class EtagInvalid(PylottoError):
    """The etag is not in a form the store understands (Dapr: 400 / INVALID_ARGUMENT)."""


class Unsupported(PylottoError):
    """The component does not declare the feature the call needs (UNIMPLEMENTED)."""


class Unavailable(PylottoError):
    """The backend cannot be reached now; worth a retry (UNAVAILABLE)."""


class DeadlineExceeded(PylottoError):
    """The backend or the app did not answer in time."""


class PermissionDenied(PylottoError):
    """The caller may not do this (path escaping a root, scoped secret...)."""


class Unauthenticated(PylottoError):
    """The caller did not present the API token."""


class ResourceExhausted(PylottoError):
    """Too many calls: a rate limit refused this one."""


class Internal(PylottoError):
    """The backend failed in a way the caller cannot fix."""


class PlainError(PylottoError):
    """An error the reference returns as a plain Go ``error``, without a gRPC status, which
    grpc-go answers UNKNOWN with the error's text: Layotto's SubscribeConfiguration ending when
    the client half-closes (``io.EOF`` → "EOF"), its unknown configuration store, its unknown
    hello service, MOSN's flow control refusing a call ("current request is limited")."""


# THE table: gRPC code, HTTP status, and the ``errorCode`` of Dapr's HTTP error body.
# Order matters only for subclasses (none today): first match wins.
ERROR_TABLE: dict[type[PylottoError], tuple[grpc.StatusCode, int, str]] = {
    InvalidArgument: (grpc.StatusCode.INVALID_ARGUMENT, 400, "ERR_MALFORMED_REQUEST"),
    NotConfigured: (grpc.StatusCode.FAILED_PRECONDITION, 500, "ERR_NOT_CONFIGURED"),
    ComponentNotFound: (grpc.StatusCode.INVALID_ARGUMENT, 400, "ERR_COMPONENT_NOT_FOUND"),
    NotFound: (grpc.StatusCode.NOT_FOUND, 404, "ERR_NOT_FOUND"),
    AlreadyExists: (grpc.StatusCode.ALREADY_EXISTS, 409, "ERR_ALREADY_EXISTS"),
    EtagMismatch: (grpc.StatusCode.ABORTED, 409, "ERR_STATE_ETAG_MISMATCH"),
    EtagInvalid: (grpc.StatusCode.INVALID_ARGUMENT, 400, "ERR_STATE_ETAG_INVALID"),
    Unsupported: (grpc.StatusCode.UNIMPLEMENTED, 501, "ERR_NOT_SUPPORTED"),
    Unavailable: (grpc.StatusCode.UNAVAILABLE, 503, "ERR_UNAVAILABLE"),
    DeadlineExceeded: (grpc.StatusCode.DEADLINE_EXCEEDED, 504, "ERR_DEADLINE_EXCEEDED"),
    PermissionDenied: (grpc.StatusCode.PERMISSION_DENIED, 403, "ERR_PERMISSION_DENIED"),
    Unauthenticated: (grpc.StatusCode.UNAUTHENTICATED, 401, "ERR_UNAUTHENTICATED"),
    ResourceExhausted: (grpc.StatusCode.RESOURCE_EXHAUSTED, 429, "ERR_TOO_MANY_REQUESTS"),
    Internal: (grpc.StatusCode.INTERNAL, 500, "ERR_INTERNAL"),
    PlainError: (grpc.StatusCode.UNKNOWN, 500, "ERR_INTERNAL"),
}


PARTIAL_BULK_PUBLISH: tuple[int, str] = (500, "ERR_PUBSUB_PUBLISH_MESSAGE")
"""Dapr HTTP status and ``errorCode`` of a bulk publish some entries of which the broker did not
take: no error is raised (the other entries went out), the body lists the failed ones."""


def _lookup(err: PylottoError) -> tuple[grpc.StatusCode, int, str]:
    for cls in (err.answered_as or type(err)).__mro__:
        if cls in ERROR_TABLE:
            return ERROR_TABLE[cls]
    return ERROR_TABLE[Internal]


def grpc_code(err: PylottoError) -> grpc.StatusCode:
    """The gRPC status code a facade answers for ``err``."""
    return _lookup(err)[0]


def http_status(err: PylottoError) -> int:
    """The HTTP status a facade answers for ``err``."""
    return _lookup(err)[1]


def dapr_error_code(err: PylottoError) -> str:
    """The ``errorCode`` of Dapr's HTTP error body for ``err``."""
    return _lookup(err)[2]


class ConfigError(PylottoError):
    """A configuration file or component metadata is wrong; raised at start-up or check-config."""


ERROR_TABLE[ConfigError] = (grpc.StatusCode.INVALID_ARGUMENT, 400, "ERR_INVALID_CONFIGURATION")


class StartError(ConfigError):
    """The sidecar or its app could not start although the configuration is valid (a port
    taken, the app's command not found); ``exit_code`` is what ``pylotto run`` exits with:
    1 as daprd's fatal start-up errors, 127/126 as a shell for a command not found / not
    executable."""

    def __init__(self, message: str, *, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


ERROR_TABLE[StartError] = ERROR_TABLE[ConfigError]  # raised at start only, never answered


_NOT_FROM_CODES = (ComponentNotFound, ConfigError, StartError, PlainError)


def from_grpc_code(code: grpc.StatusCode, message: str) -> PylottoError:
    """The error a facade would have answered ``code`` for (another sidecar's answer passed
    on with its meaning); Internal for codes no error maps to."""
    for cls, (grpc_status, _, _) in ERROR_TABLE.items():
        if grpc_status == code and cls not in _NOT_FROM_CODES:
            return cls(message)
    return Internal(message)


# ---- component lookups, as Layotto (f9681450, pkg/grpc/default_api, pkg/messages) answers them

Lookup = Literal["not_configured", "empty", "not_found"]
"""Why a component lookup failed: no component of the capability at all, an empty name, a name
that is not configured."""

LOOKUP_KINDS: dict[Lookup, type[PylottoError]] = {
    "not_configured": NotConfigured, "empty": InvalidArgument, "not_found": ComponentNotFound}

_NOT_FOUND: tuple[Lookup, ...] = ("empty", "not_found")
_ANY: tuple[Lookup, ...] = ("not_configured", "empty", "not_found")


def _rows(where: str, lookups: tuple[Lookup, ...], kind: type[PylottoError],
          text: str) -> dict[tuple[str, Lookup], tuple[type[PylottoError], str]]:
    return {(where, lookup): (kind, text) for lookup in lookups}


LAYOTTO_LOOKUPS: dict[tuple[str, Lookup], tuple[type[PylottoError], str]] = {
    # the kind whose codes Layotto answers with, and its text ({name}: the name asked for)
    ("state", "not_configured"): (NotConfigured, "state store is not configured"),
    **_rows("state", _NOT_FOUND, ComponentNotFound, "state store {name} is not found"),
    ("lock", "not_configured"): (NotConfigured, "lock store is not configured"),
    **_rows("lock", _NOT_FOUND, ComponentNotFound, "lock store {name} not found"),
    ("sequencer", "not_configured"): (NotConfigured, "Sequencer store is not configured"),
    **_rows("sequencer", _NOT_FOUND, ComponentNotFound, "Sequencer store {name} not found"),
    ("secretstores", "not_configured"): (
        NotConfigured, "error when get secret but not find configured"),
    **_rows("secretstores", _NOT_FOUND, ComponentNotFound,
            "error when get secret but not find : {name}"),
    # pub/sub: no "not configured" answer, the lookup of the name fails
    **_rows("pubsub", ("not_configured", "not_found"), ComponentNotFound,
            "pubsub {name} not found"),
    ("pubsub", "empty"): (InvalidArgument, "pubsub name is empty"),
    **_rows("pubsub.stream", _ANY, PlainError, "pubsub {name} is not initialized."),
    # output bindings: the runtime's lookup error, wrapped in ErrInvokeOutputBinding
    **_rows("bindings", _ANY, Internal,
            "error when invoke output binding {name}: couldn't find output binding {name}"),
    # plain Go errors (grpc-go: UNKNOWN)
    **_rows("configuration", _ANY, PlainError, "configure store [{name}] don't support now"),
    **_rows("hello", _ANY, PlainError, "no instance found"),
    # extension APIs (pkg/grpc/errors.go ErrComponentNotFound)
    **_rows("email", _ANY, InvalidArgument, "component not found. kind: email , name: {name}"),
    **_rows("crypto.cryption", _ANY, InvalidArgument,
            "component not found. kind: cryption , name: {name}"),
    # object storage (pkg/grpc/extension/s3 NotSupportStoreName)
    **_rows("oss", _ANY, InvalidArgument, "not supported store type: {name}"),
    # file: InvalidArgument, GetFile's text differs by two letters from the others'
    **_rows("file", _ANY, ComponentNotFound, "not support store type: {name}"),
    **_rows("file.get", _ANY, ComponentNotFound, "not supported store type: {name}"),
}


def lookup_error(capability: str, lookup: Lookup, label: str, name: str,
                 operation: str = "") -> PylottoError:
    """The error of a failed component lookup in ``capability`` (``label``: how its
    components are called, "state store"): of the kind :data:`LOOKUP_KINDS` gives (which the
    Dapr half keys on), with Layotto's text and codes (:data:`LAYOTTO_LOOKUPS`, by
    ``capability.operation`` first), else pylotto's own text."""
    kind = LOOKUP_KINDS[lookup]
    row = (LAYOTTO_LOOKUPS.get((f"{capability}.{operation}", lookup)) if operation else None) \
        or LAYOTTO_LOOKUPS.get((capability, lookup))
    if row is None:
        text = {"not_configured": f"{label} is not configured",
                "empty": f"{label} name is empty",
                "not_found": f"{label} {name} is not found"}[lookup]
        return kind(text, where=capability, name=name)
    answer, template = row
    return kind(template.format(name=name), where=capability, name=name).answered(answer)
