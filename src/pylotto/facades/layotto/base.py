"""What every Layotto RPC mixin can rely on."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pylotto.runtime import Runtime


class LayottoRpcs:
    """Base of the per-capability mixins: gives them ``self.runtime``."""

    runtime: Runtime
