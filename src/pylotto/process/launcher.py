"""Run the app beside the sidecar, like ``dapr run``: ``pylotto run --app-id orders
--app-port 8000 -- python app.py``.

Once the sidecar is ready, the command starts with the sidecar's addresses in its environment
(Dapr's names, which Dapr SDKs read, and pylotto's): ``APP_ID``, ``APP_PORT``,
``DAPR_HTTP_PORT``, ``DAPR_GRPC_PORT``, ``PYLOTTO_GRPC_ADDRESS`` (Layotto API), and
``DAPR_API_TOKEN`` / ``APP_API_TOKEN`` when set. SIGTERM or SIGINT to pylotto is passed on to the
app; when the app exits, the sidecar stops and pylotto exits with the app's code; when the
sidecar is asked to stop (signal or Shutdown API) the app gets SIGTERM, then SIGKILL after the
grace period.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Sequence

from pylotto.config.model import RuntimeConfig

log = logging.getLogger("pylotto.launcher")


def app_environment(config: RuntimeConfig) -> dict[str, str]:
    """What the app is told about its sidecar."""
    env: dict[str, str] = {}
    listen = config.listen
    if config.app.id:
        env["APP_ID"] = config.app.id
    if config.app.port:
        env["APP_PORT"] = str(config.app.port)
    if listen.dapr_http:
        env["DAPR_HTTP_PORT"] = listen.dapr_http.rpartition(":")[2]
    if listen.dapr_grpc:
        env["DAPR_GRPC_PORT"] = listen.dapr_grpc.rpartition(":")[2]
    if listen.layotto_grpc:
        env["PYLOTTO_GRPC_ADDRESS"] = listen.layotto_grpc
    if token := config.api_token.get_secret_value():
        env["DAPR_API_TOKEN"] = token
    if app_token := config.app.api_token.get_secret_value():
        env["APP_API_TOKEN"] = app_token
    return env


async def start_app(command: Sequence[str], config: RuntimeConfig) -> asyncio.subprocess.Process:
    env = {**os.environ, **app_environment(config)}
    log.info("starting the app: %s", " ".join(command))
    try:
        return await asyncio.create_subprocess_exec(*command, env=env)
    except OSError as exc:
        from pylotto.core.errors import ConfigError

        raise ConfigError(f"cannot start the app {command[0]!r}: {exc.strerror}") from None


async def stop_app(process: asyncio.subprocess.Process, grace: float) -> int:
    """SIGTERM, then SIGKILL after ``grace`` seconds; the app's exit code."""
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), grace)
        except TimeoutError:
            log.warning("the app did not stop within %.0fs: killing it", grace)
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
    code = process.returncode
    assert code is not None
    return code
