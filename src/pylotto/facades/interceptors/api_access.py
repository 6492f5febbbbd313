"""The API allow/deny lists gate: a gRPC method the lists refuse answers UNIMPLEMENTED "Not
Implemented", as Dapr answers it (the rules: :mod:`pylotto.security.api_allowlist`)."""

from __future__ import annotations

import grpc

from pylotto.core.errors import PylottoError, Unsupported
from pylotto.facades.interceptors.chain import Gate
from pylotto.security.api_allowlist import ApiAccess


class ApiAllowlist(Gate):
    def __init__(self, access: ApiAccess) -> None:
        if not isinstance(access, ApiAccess):
            raise ValueError(f"ApiAllowlist needs an ApiAccess, not {access!r}")
        self.access = access

    def check(self, details: grpc.HandlerCallDetails) -> PylottoError | None:
        if self.access.allows_grpc(details.method):
            return None
        return Unsupported("Not Implemented")
