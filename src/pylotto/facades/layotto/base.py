"""What every Layotto RPC mixin can rely on."""

from __future__ import annotations

from typing import Any, ClassVar

from pylotto.facades.common.base import RuntimeRpcs
from pylotto.proto.layotto import runtime_pb2


class LayottoRpcs(RuntimeRpcs):
    """Base of the Layotto-only mixins; their messages are ``runtime_pb2``'s."""

    pb: ClassVar[Any] = runtime_pb2
