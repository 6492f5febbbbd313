"""Running the sidecar's event loop (uvloop when asked for and installed).

Its own module so the command line (:mod:`pylotto.cli`) and the worker processes
(:mod:`pylotto.process.workers`) both import it, and neither imports the other.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any


def run_loop(main: Coroutine[Any, Any, int], use_uvloop: bool) -> int:
    """Run ``main`` to completion on a new loop; its result is the exit code."""
    if use_uvloop:
        try:
            import uvloop
        except ImportError:
            pass
        else:
            return uvloop.run(main)
    return asyncio.run(main)
