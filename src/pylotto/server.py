"""Run the sidecar: runtime + gRPC facade + actuator, until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import logging
import signal

import grpc
from aiohttp import web
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from pylotto.config import RuntimeConfig
from pylotto.errors import ConfigError
from pylotto.facades import actuator, state_query
from pylotto.facades.grpc_errors import ErrorMappingInterceptor
from pylotto.facades.layotto.servicer import LayottoRuntimeServicer
from pylotto.proto.extensions import state_query_pb2_grpc
from pylotto.proto.layotto import runtime_pb2, runtime_pb2_grpc
from pylotto.runtime import Runtime

log = logging.getLogger("pylotto.server")

MAX_MESSAGE_BYTES = 64 * 1024 * 1024
GRPC_OPTIONS = [
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.so_reuseport", 0),
]
LAYOTTO_SERVICE = runtime_pb2.DESCRIPTOR.services_by_name["Runtime"].full_name


def _split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]") or "0.0.0.0", int(port)


class Sidecar:
    """One running pylotto: build with a config, ``await start()``, ``await stop()``."""

    def __init__(self, config: RuntimeConfig) -> None:
        self.config = config
        self.runtime = Runtime(config)
        self.grpc_server = grpc.aio.server(
            interceptors=[ErrorMappingInterceptor()], options=GRPC_OPTIONS
        )
        self.health = health.aio.HealthServicer()
        self.actuator_app = actuator.build_app(self.runtime)
        self._actuator_runner: web.AppRunner | None = None

    async def start(self) -> None:
        # The actuator comes up first so probes see INIT while components connect.
        self._actuator_runner = web.AppRunner(self.actuator_app, access_log=None)
        await self._actuator_runner.setup()
        host, port = _split(self.config.listen.actuator)
        try:
            await web.TCPSite(self._actuator_runner, host, port).start()
        except OSError as exc:
            raise ConfigError(f"actuator cannot listen on {host}:{port}: {exc.strerror}") from None
        await self.runtime.start()
        server = self.grpc_server
        runtime_pb2_grpc.add_RuntimeServicer_to_server(LayottoRuntimeServicer(self.runtime), server)
        state_query_pb2_grpc.add_StateQueryServicer_to_server(
            state_query.StateQueryServicer(self.runtime), server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        reflection.enable_server_reflection(
            (LAYOTTO_SERVICE, state_query.SERVICE, health.SERVICE_NAME, reflection.SERVICE_NAME),
            server,
        )
        address = self.config.listen.layotto_grpc
        try:
            bound = server.add_insecure_port(address)
        except RuntimeError as exc:
            bound = 0
            log.debug("bind %s: %s", address, exc)
        if not bound:
            await self.runtime.stop()
            raise ConfigError(f"Layotto gRPC API cannot listen on {address} (port in use?)")
        await server.start()
        for service in ("", LAYOTTO_SERVICE):
            await self.health.set(service, health_pb2.HealthCheckResponse.SERVING)
        log.info(
            "pylotto ready: layotto gRPC %s, actuator http://%s, %d components",
            address, self.config.listen.actuator, len(self.config.components),
        )

    async def stop(self) -> None:
        """Refuse new calls, end streams, let in-flight calls finish, then close components."""
        log.info("pylotto stopping (grace %.0fs)", self.config.grace_period_seconds)
        self.actuator_app[actuator.STOPPING_KEY][0] = True
        await self.health.enter_graceful_shutdown()
        stopping = asyncio.create_task(self.grpc_server.stop(self.config.grace_period_seconds))
        await self.runtime.stop_services()
        await stopping
        await self.runtime.stop()
        if self._actuator_runner is not None:
            await self._actuator_runner.cleanup()
        log.info("pylotto stopped")


async def serve(config: RuntimeConfig) -> None:
    """Start a sidecar and run it until SIGTERM or SIGINT."""
    sidecar = Sidecar(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await sidecar.start()
    except BaseException:
        await sidecar.runtime.stop()
        if sidecar._actuator_runner is not None:
            await sidecar._actuator_runner.cleanup()
        raise
    await stop.wait()
    await sidecar.stop()
