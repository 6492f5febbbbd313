"""Run the app beside the sidecar, like ``dapr run``: ``pylotto run --app-id orders
--app-port 8000 -- python app.py``.

Once the sidecar is ready, the command starts in its own process group with the sidecar's
addresses in its environment (the names ``dapr run`` sets, which Dapr SDKs read, and pylotto's):
``APP_ID``, ``APP_CHANNEL_ADDRESS``, ``APP_PORT``, ``APP_PROTOCOL``, ``DAPR_HTTP_PORT``,
``DAPR_GRPC_PORT``, ``DAPR_METRICS_PORT``, ``PYLOTTO_GRPC_ADDRESS`` (Layotto API), and
``DAPR_API_TOKEN`` / ``APP_API_TOKEN`` when set.

Stopping, as the Dapr CLI does: SIGTERM or SIGINT to pylotto (or the Shutdown API) sends SIGTERM
to the app's process group, then SIGKILL after the grace period, and pylotto exits 0. When the
app exits by itself, the sidecar stops too; pylotto exits 0 if the app exited 0, else 1 (the
app's own code or signal is logged).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
from collections.abc import Sequence

from pylotto.config.model import RuntimeConfig
from pylotto.core.errors import StartError

log = logging.getLogger("pylotto.launcher")

APP_OUTPUT_FD_ENV = "PYLOTTO_APP_OUTPUT_FD"
"""Set by a run template (:mod:`pylotto.process.run_template`): the file descriptor the app's
stdout and stderr go to, apart from the sidecar's output."""

EXIT_OK, EXIT_FAILED = 0, 1
"""``pylotto run``'s exit codes, the Dapr CLI's: stopped cleanly; the app (or its start)
failed."""


def _port(address: str) -> str:
    return address.rpartition(":")[2]


def app_environment(config: RuntimeConfig) -> dict[str, str]:
    """What the app is told about its sidecar."""
    env: dict[str, str] = {}
    listen = config.listen
    app = config.app
    if app.id:
        env["APP_ID"] = app.id
    env["APP_CHANNEL_ADDRESS"] = app.host
    if app.port:
        env["APP_PORT"] = str(app.port)
    env["APP_PROTOCOL"] = app.protocol
    if listen.dapr_http and not listen.dapr_http.startswith("unix:"):
        env["DAPR_HTTP_PORT"] = _port(listen.dapr_http)
    if listen.dapr_grpc and not listen.dapr_grpc.startswith("unix:"):
        env["DAPR_GRPC_PORT"] = _port(listen.dapr_grpc)
    if listen.metrics:
        env["DAPR_METRICS_PORT"] = _port(listen.metrics)
    if listen.layotto_grpc:
        env["PYLOTTO_GRPC_ADDRESS"] = listen.layotto_grpc
    if token := config.api_token.get_secret_value():
        env["DAPR_API_TOKEN"] = token
    if app_token := app.api_token.get_secret_value():
        env["APP_API_TOKEN"] = app_token
    return env


async def start_app(command: Sequence[str], config: RuntimeConfig) -> asyncio.subprocess.Process:
    """Start ``command`` in a process group of its own (so that stopping reaches its children,
    as ``dapr run`` does)."""
    env = {**os.environ, **app_environment(config)}
    output = env.pop(APP_OUTPUT_FD_ENV, None)  # a run template's pipe for the app's output
    fd = int(output) if output and output.isdigit() else None
    log.info("starting the app: %s", " ".join(command))
    try:
        return await asyncio.create_subprocess_exec(*command, env=env, start_new_session=True,
                                                    stdout=fd, stderr=fd)
    except OSError as exc:
        raise not_started(command[0], exc) from None


EXIT_NOT_FOUND, EXIT_NOT_EXECUTABLE = 127, 126
"""Exit codes of ``pylotto run`` when the app command cannot start, as a shell's."""


def not_started(program: str, exc: OSError) -> StartError:
    """The error for an app command that could not be started, with a shell's exit code."""
    if isinstance(exc, FileNotFoundError):
        return StartError(f"cannot start the app: {program}: command not found",
                          exit_code=EXIT_NOT_FOUND)
    if isinstance(exc, PermissionError):
        return StartError(f"cannot start the app: {program}: permission denied (not an "
                          "executable file)", exit_code=EXIT_NOT_EXECUTABLE)
    return StartError(f"cannot start the app: {program}: {exc.strerror}")


def check_command(command: Sequence[str]) -> None:
    """Refuse, before anything starts, an app command a shell would not find or run."""
    program = command[0]
    if os.sep in program:
        if not os.path.exists(program):
            raise not_started(program, FileNotFoundError())
        if os.path.isdir(program) or not os.access(program, os.X_OK):
            raise not_started(program, PermissionError())
    elif shutil.which(program) is None:
        raise not_started(program, FileNotFoundError())


def _signal_group(process: asyncio.subprocess.Process, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)


async def stop_app(process: asyncio.subprocess.Process, grace: float) -> int:
    """SIGTERM to the app's process group, then SIGKILL after ``grace`` seconds; the app's
    exit code (negative: the signal that ended it)."""
    if process.returncode is None:
        _signal_group(process, signal.SIGTERM)
        try:
            async with asyncio.timeout(grace):
                await process.wait()
        except TimeoutError:
            log.warning("the app did not stop within %.0fs: killing it", grace)
            _signal_group(process, signal.SIGKILL)
            await process.wait()
    else:
        _signal_group(process, signal.SIGTERM)  # what the app left running in its group
    code = process.returncode
    assert code is not None
    return code


def exit_code_of_app(code: int) -> int:
    """The exit code of ``pylotto run`` when the app ended by itself with ``code``; the line
    the Dapr CLI prints is logged."""
    if code == 0:
        log.info("Exited App successfully")
        return EXIT_OK
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = str(-code)
        log.error("The App process was terminated by signal: %s", name)
    else:
        log.error("The App process exited with error code: %d", code)
    return EXIT_FAILED
