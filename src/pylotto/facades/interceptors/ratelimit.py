"""The rate-limit gate: the app's calls beyond their rate are refused with RESOURCE_EXHAUSTED.

The limits are :mod:`pylotto.security.ratelimit`'s, asked through ``admit(api)`` with the RPC's
name (``GetState``). Calls from other sidecars are not the app's: they are limited per calling
app where they are served (the SidecarInvoke servicer); health checks and reflection are free.
"""

from __future__ import annotations

from collections.abc import Callable

import grpc

from pylotto.core.errors import PylottoError
from pylotto.facades.interceptors.chain import Gate, check_prefixes
from pylotto.security import tokens as security

SIDECAR_SERVICES = ("/pylotto.v1.SidecarInvoke/", "/pylotto.v1.SidecarActors/")
"""Calls from other sidecars: rate-limited per calling app where they are served."""


class RateLimit(Gate):
    """``admit(api)``: raises a PylottoError (ResourceExhausted) for a call over its limit;
    ``exempt``: prefixes of the methods it is not asked about."""

    def __init__(self, admit: Callable[[str], None],
                 exempt: tuple[str, ...] = (*security.EXEMPT_GRPC_SERVICES, *SIDECAR_SERVICES)
                 ) -> None:
        if not callable(admit):
            raise TypeError(f"RateLimit needs a callable admit(api), not {admit!r}")
        check_prefixes("RateLimit", exempt)
        self.admit = admit
        self.exempt = exempt

    def check(self, details: grpc.HandlerCallDetails) -> PylottoError | None:
        method: str = details.method
        if method.startswith(self.exempt):
            return None
        try:
            self.admit(method.rsplit("/", 1)[-1])
        except PylottoError as exc:
            return exc
        return None
