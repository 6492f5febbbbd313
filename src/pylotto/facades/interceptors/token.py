"""The API token gate: a call without the sidecar's token is refused with UNAUTHENTICATED.

The rule is :mod:`pylotto.security.tokens`' (the same for every facade): the token travels in the
``dapr-api-token`` metadata; health checks and reflection are exempt.
"""

from __future__ import annotations

import grpc

from pylotto.core.errors import PylottoError
from pylotto.facades.interceptors.chain import Gate, check_prefixes
from pylotto.security import tokens as security


class ApiToken(Gate):
    """``token``: the sidecar's API token (construct the gate only when it has one);
    ``exempt``: prefixes of the methods callable without it."""

    def __init__(self, token: str,
                 exempt: tuple[str, ...] = security.EXEMPT_GRPC_SERVICES) -> None:
        if not isinstance(token, str) or not token:
            raise ValueError("ApiToken needs the sidecar's API token (a non-empty string)")
        check_prefixes("ApiToken", exempt)
        self.token = token
        self.exempt = exempt

    def check(self, details: grpc.HandlerCallDetails) -> PylottoError | None:
        if details.method.startswith(self.exempt):
            return None
        given = None
        for key, value in details.invocation_metadata or ():
            if key == security.TOKEN_HEADER and isinstance(value, str):
                given = value
                break
        return security.check_token(self.token, given)

