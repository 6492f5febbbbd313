"""API tokens (Dapr's ``dapr-api-token``): one rule for every facade.

When the sidecar has an API token (``DAPR_API_TOKEN``), every call must carry it in the
``dapr-api-token`` header or gRPC metadata, or it is refused with Unauthenticated (gRPC
UNAUTHENTICATED, HTTP 401). Exempt: the health checks (gRPC ``grpc.health.v1``, Dapr's
``/v1.0/healthz`` and ``/v1.0/healthz/outbound``, the actuator) and gRPC reflection. When the
app has a token (``APP_API_TOKEN``), the sidecar sends it on every call to the app.
"""

from __future__ import annotations

import hmac

from pylotto.core.errors import Unauthenticated

TOKEN_HEADER = "dapr-api-token"
API_TOKEN_ENV = "DAPR_API_TOKEN"
APP_TOKEN_ENV = "APP_API_TOKEN"
EXEMPT_GRPC_SERVICES = ("/grpc.health.v1.", "/grpc.reflection.")
EXEMPT_HTTP_PATHS = frozenset({"/v1.0/healthz", "/v1.0/healthz/outbound"})


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


def grpc_exempt(method: str) -> bool:
    """True for gRPC methods callable without a token (``/package.Service/Method``)."""
    return method.startswith(EXEMPT_GRPC_SERVICES)
