"""API tokens (Dapr's ``dapr-api-token``): one rule for every facade.

When the sidecar has an API token (``DAPR_API_TOKEN``), every call must carry it in the
``dapr-api-token`` header or gRPC metadata, or it is refused with Unauthenticated (gRPC
UNAUTHENTICATED, HTTP 401). Exempt: the health checks (gRPC ``grpc.health.v1``, Dapr's
``/v1.0/healthz`` and ``/v1.0/healthz/outbound``, the actuator's liveness and readiness),
gRPC reflection and, unless ``metrics_require_token`` is set, ``/metrics``. Everything else of
the actuator (``/actuator/info``: config path, pid, components, subscriptions — what
``/v1.0/metadata`` shows; ``/actuator/loggers``, which changes the log level) needs the token.
When the app has a token (``APP_API_TOKEN``), the sidecar sends it on every call to the app.
"""

from __future__ import annotations

import hmac

from pylotto.core.errors import Unauthenticated

TOKEN_HEADER = "dapr-api-token"
API_TOKEN_ENV = "DAPR_API_TOKEN"
APP_TOKEN_ENV = "APP_API_TOKEN"
EXEMPT_GRPC_SERVICES = ("/grpc.health.v1.", "/grpc.reflection.")
EXEMPT_HTTP_PATHS = frozenset({"/v1.0/healthz", "/v1.0/healthz/outbound"})
EXEMPT_ACTUATOR_PATHS = frozenset({"/actuator/health/liveness", "/actuator/health/readiness"})
METRICS_PATH = "/metrics"


def check_token(expected: str, given: str | None) -> Unauthenticated | None:
    """The refusal for a call carrying ``given`` when the sidecar expects ``expected``
    (None: allowed; an empty ``expected`` means no token is required)."""
    if not expected:
        return None
    if not given:
        return Unauthenticated(f"missing api token in request metadata ({TOKEN_HEADER})",
                               where="auth", detail="missing api token in request metadata")
    if not hmac.compare_digest(given.encode(), expected.encode()):
        return Unauthenticated("api token mismatch", where="auth",
                               detail="authentication error: api token mismatch")
    return None


def actuator_exempt(path: str, *, metrics_require_token: bool) -> bool:
    """True for actuator (and metrics listener) paths callable without a token."""
    return path in EXEMPT_ACTUATOR_PATHS or (path == METRICS_PATH and not metrics_require_token)


def scrape_token(token_header: str | None, authorization: str | None) -> str | None:
    """The token a ``/metrics`` scrape carries: ``dapr-api-token``, or the credentials of
    ``Authorization: Bearer <token>`` (what Prometheus' ``authorization`` section sends)."""
    if token_header:
        return token_header
    scheme, _, credentials = (authorization or "").partition(" ")
    return credentials.strip() or None if scheme.lower() == "bearer" else None


def grpc_exempt(method: str) -> bool:
    """True for gRPC methods callable without a token (``/package.Service/Method``)."""
    return method.startswith(EXEMPT_GRPC_SERVICES)
