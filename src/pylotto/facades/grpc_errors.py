"""The former do-everything interceptor, kept for old imports: the concerns now live one per
module in :mod:`pylotto.facades.interceptors`."""

from __future__ import annotations

from collections.abc import Callable

from pylotto.facades.interceptors import (
    MAX_CACHED_METHODS,
    SIDECAR_SERVICES,
    ApiToken,
    ErrorMapping,
    Interceptors,
    RateLimit,
    Telemetry,
)
from pylotto.observability.metrics import Metrics
from pylotto.observability.tracing import Tracing

__all__ = ["MAX_CACHED_METHODS", "SIDECAR_SERVICES", "ErrorMappingInterceptor"]


def ErrorMappingInterceptor(  # a function now, a class before
        api_token: str = "", admit: Callable[[str], None] | None = None,
        metrics: Metrics | None = None, tracing: Tracing | None = None) -> Interceptors:
    """The sidecar's interceptor with the concerns these arguments turn on."""
    return Interceptors(
        Telemetry(metrics, tracing) if metrics is not None or tracing is not None else None,
        ErrorMapping(),
        ApiToken(api_token) if api_token else None,
        RateLimit(admit) if admit is not None else None,
    )
