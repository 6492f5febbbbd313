"""The gRPC server's concerns, one module each, composed by one interceptor (:mod:`.chain`).

    Interceptors(Telemetry(metrics, tracing), ErrorMapping(), ClientMistakes(), ApiToken(token),
                 RateLimit(admit))

- :mod:`.telemetry`: each call's server span and metrics;
- :mod:`.errors`: PylottoError → its gRPC status (``core.errors.ERROR_TABLE``);
- :mod:`.client_mistakes`: undecodable requests → INVALID_ARGUMENT, unimplemented methods →
  UNIMPLEMENTED, logged once per kind and interval (never grpc.aio's UNKNOWN and traceback);
- :mod:`.token`: calls without the API token refused (health checks and reflection exempt);
- :mod:`.ratelimit`: the app's calls over their rate refused (calls from other sidecars exempt).
"""

from pylotto.facades.interceptors.chain import (
    MAX_CACHED_METHODS,
    Gate,
    Interceptors,
    Wrapper,
    refusing,
    rewrap,
)
from pylotto.facades.interceptors.client_mistakes import ClientMistakes
from pylotto.facades.interceptors.errors import ErrorMapping
from pylotto.facades.interceptors.ratelimit import SIDECAR_SERVICES, RateLimit
from pylotto.facades.interceptors.telemetry import Telemetry
from pylotto.facades.interceptors.token import ApiToken

__all__ = [
    "MAX_CACHED_METHODS",
    "SIDECAR_SERVICES",
    "ApiToken",
    "ClientMistakes",
    "ErrorMapping",
    "Gate",
    "Interceptors",
    "RateLimit",
    "Telemetry",
    "Wrapper",
    "refusing",
    "rewrap",
]
