"""Run the sidecar: runtime + gRPC facade + actuator, until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import signal
from collections.abc import Sequence
from typing import Any

import grpc
from aiohttp import http_exceptions as aiohttp_http_exceptions
from aiohttp import web
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from pylotto import plugins
from pylotto.capabilities.actors.forwarding import forwarded_actors
from pylotto.config.model import RuntimeConfig
from pylotto.core.addresses import is_loopback, is_unix, split_host_port
from pylotto.core.errors import ConfigError, StartError
from pylotto.facades import actors_internal, actuator, grpc_proxy, sidecar_invoke, state_query
from pylotto.facades.dashboard import PATH as DASHBOARD_PATH
from pylotto.facades.dashboard import SOURCES_KEY as DASHBOARD_SOURCES
from pylotto.facades.dashboard.snapshot import Sources
from pylotto.facades.interceptors import (
    ApiToken,
    ClientMistakes,
    ErrorMapping,
    Interceptors,
    RateLimit,
    Telemetry,
)
from pylotto.facades.interceptors.api_access import ApiAllowlist
from pylotto.facades.layotto import cryption as cryption_api
from pylotto.facades.layotto import delay_queue, unserved
from pylotto.facades.layotto import email as email_api
from pylotto.facades.layotto import lifecycle as lifecycle_api
from pylotto.facades.layotto import oss as oss_api
from pylotto.facades.layotto.servicer import LayottoRuntimeServicer
from pylotto.observability.recent_errors import RecentErrors
from pylotto.observability.throttled import ThrottledServerLog
from pylotto.process import instances, launcher, run_template
from pylotto.process.apphealth import AppHealthProber
from pylotto.process.heap import HeapTrimmer
from pylotto.process.hotreload import ComponentSources, HotReloader
from pylotto.process.runtime import Runtime
from pylotto.proto.extensions import actors_pb2_grpc, invoke_pb2_grpc, state_query_pb2_grpc
from pylotto.proto.layotto import (
    cryption_pb2_grpc,
    delay_queue_pb2_grpc,
    email_pb2_grpc,
    lifecycle_pb2_grpc,
    oss_pb2_grpc,
    runtime_pb2,
    runtime_pb2_grpc,
)
from pylotto.security.exposure import API_LISTENERS, check_exposure

log = logging.getLogger("pylotto.server")

MAX_MESSAGE_BYTES = 64 * 1024 * 1024


def grpc_options(reuse_port: bool,
                 max_message_bytes: int = MAX_MESSAGE_BYTES) -> list[tuple[str, int]]:
    """Without SO_REUSEPORT a port in use is an error at start; with it (``--workers``) the
    worker processes share the port and the kernel spreads connections over them. A message
    over ``max_message_bytes`` is refused (RESOURCE_EXHAUSTED)."""
    return [("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max(max_message_bytes, MAX_MESSAGE_BYTES)),
            ("grpc.so_reuseport", int(reuse_port))]
LAYOTTO_SERVICE = runtime_pb2.DESCRIPTOR.services_by_name["Runtime"].full_name


def _split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]") or "0.0.0.0", int(port)


def refuse_exposed_apis(config: RuntimeConfig) -> None:
    """ConfigError when an API would listen on the network with no API token and no explicit
    allowance (:mod:`pylotto.security.exposure`)."""
    listen = config.listen
    check_exposure({key: getattr(listen, key) for key in API_LISTENERS},
                   api_token=bool(config.api_token.get_secret_value()),
                   allowed=listen.allow_insecure_network)


class Sidecar:
    """One running pylotto: build with a config, ``await start()``, ``await stop()``."""

    def __init__(self, config: RuntimeConfig, sources: ComponentSources | None = None) -> None:
        refuse_exposed_apis(config)
        self.config = config
        self.runtime = Runtime(config)
        self.services = self.runtime.services
        self.status = self.runtime.status
        # API plugins (entry points pylotto.apis)
        self.plugins = plugins.load(self.services, self.status)
        self.reloader = (HotReloader(self.runtime, sources, config.hot_reload)
                         if sources and config.hot_reload.enabled else None)
        token = config.api_token.get_secret_value()
        api = config.dapr.api.compiled() if config.dapr and config.dapr.api else None
        self.api_access = api
        self.grpc_server = grpc.aio.server(
            interceptors=[Interceptors(
                Telemetry(self.runtime.metrics, self.runtime.tracing), ErrorMapping(),
                ClientMistakes(),
                ApiToken(token) if token else None,
                ApiAllowlist(api) if api is not None else None,
                RateLimit(self._admit) if config.rate_limits else None)],
            options=grpc_options(config.listen.reuse_port, config.max_body_bytes),
        )
        self.health = health.aio.HealthServicer()
        # a malformed HTTP request: one warning per kind and interval, never a traceback each
        self.http_log = ThrottledServerLog(
            logging.getLogger("aiohttp.server"),
            lambda exc: isinstance(exc, aiohttp_http_exceptions.HttpProcessingError))
        self.recent_errors = RecentErrors()
        self.actuator_app = actuator.build_app(
            self.status, self.runtime.metrics, serve_metrics=config.metrics_enabled,
            api_token=token, metrics_require_token=config.metrics_require_token,
            board=Sources(self.status, self.runtime.metrics, self.runtime.tracing,
                          self.recent_errors) if self._dashboard_served() else None)
        self._actuator_runner: web.AppRunner | None = None
        self._http_runners: list[web.AppRunner] = []
        self._internal: grpc.aio.Server | None = None
        self.heap_trimmer = HeapTrimmer(config.heap_trim_interval_seconds)

    def _dashboard_served(self) -> bool:
        """The dashboard shows errors and traces: on a network-reachable actuator (the probes
        of a pod) only behind the API token."""
        config = self.config
        if not config.dashboard:
            return False
        address = config.listen.actuator
        if (address and not is_unix(address) and not is_loopback(split_host_port(address)[0])
                and not config.api_token.get_secret_value()):
            log.info("dashboard off: the actuator %s is reachable from the network and there "
                     "is no API token", address)
            return False
        return True

    async def start(self) -> None:
        self.recent_errors.attach()
        # The actuator comes up first so probes see INIT while components connect.
        if self.config.listen.actuator:
            self._actuator_runner = web.AppRunner(self.actuator_app, access_log=None,
                                                  logger=self.http_log)
            await self._actuator_runner.setup()
            await self._site("actuator", self._actuator_runner, self.config.listen.actuator)
        if self.config.listen.metrics and self.config.metrics_enabled:
            await self._start_http("metrics", self.config.listen.metrics,
                                   actuator.build_metrics_app(
                                       self.runtime.metrics,
                                       api_token=self.config.api_token.get_secret_value(),
                                       metrics_require_token=self.config.metrics_require_token),
                                   tls=False)
        await self.runtime.start()
        await self.plugins.start()
        server = self.grpc_server
        services = self.services
        runtime_pb2_grpc.add_RuntimeServicer_to_server(LayottoRuntimeServicer(services), server)
        state_query_pb2_grpc.add_StateQueryServicer_to_server(
            state_query.StateQueryServicer(services), server)
        delay_queue_pb2_grpc.add_DelayQueueServicer_to_server(
            delay_queue.DelayQueueServicer(services), server)
        names = [LAYOTTO_SERVICE, state_query.SERVICE, delay_queue.SERVICE]
        email_pb2_grpc.add_EmailServiceServicer_to_server(email_api.EmailServicer(services),
                                                          server)
        names.append(email_api.SERVICE)
        cryption_pb2_grpc.add_CryptionServiceServicer_to_server(
            cryption_api.CryptionServicer(services), server)
        names.append(cryption_api.SERVICE)
        lifecycle_pb2_grpc.add_LifecycleServicer_to_server(lifecycle_api.LifecycleServicer(
            self.runtime.reconfigure, workers=self.config.listen.reuse_port,
            hot_reload=self.config.hot_reload.enabled), server)
        names.append(lifecycle_api.SERVICE)
        oss_pb2_grpc.add_ObjectStorageServiceServicer_to_server(
            oss_api.ObjectStorageServicer(services), server)
        names.append(oss_api.SERVICE)
        if self.config.mtls is None:  # else only the internal mTLS port serves other sidecars
            invoke_pb2_grpc.add_SidecarInvokeServicer_to_server(
                sidecar_invoke.SidecarInvokeServicer(services.invoke), server)
            actors_pb2_grpc.add_SidecarActorsServicer_to_server(
                actors_internal.SidecarActorsServicer(forwarded_actors(services.actors)), server)
            names.extend((sidecar_invoke.SERVICE, actors_internal.SERVICE))
        listen = self.config.listen
        if listen.dapr_grpc or listen.dapr_http:
            names.extend((self._add_dapr(), "TaskHubSidecarService"))
        names.extend(self.plugins.add_grpc(server))
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        server.add_generic_rpc_handlers([grpc_proxy.ProxyHandler(services.invoke),  # last
                                         unserved.UnservedHandler()])
        reflection.enable_server_reflection(
            (*names, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
        # One server, every service on each gRPC port: the ports differ only by default.
        for what, address in (("Layotto gRPC API", listen.layotto_grpc),
                              ("Dapr gRPC API", listen.dapr_grpc)):
            if address:
                await self._bind_grpc(what, address)
        await server.start()
        if self.config.mtls is not None and listen.internal_grpc:
            await self._start_internal(listen.internal_grpc)
        if listen.dapr_http:
            await self._start_http("Dapr HTTP API", listen.dapr_http, self._dapr_http_app())
        for name in ("", *names):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        self.status.listening = True
        if self.reloader is not None:
            self.reloader.start()
        self.heap_trimmer.start()
        log.info(
            "pylotto ready: layotto gRPC %s, dapr gRPC %s, dapr HTTP %s, actuator http://%s, "
            "%d components", listen.layotto_grpc or "off", listen.dapr_grpc or "off",
            listen.dapr_http or "off", listen.actuator or "off", len(self.config.components),
        )
        if self.actuator_app.get(DASHBOARD_SOURCES) is not None and listen.actuator:
            log.info("dashboard: http://%s%s%s", listen.actuator, DASHBOARD_PATH,
                     "?token=<api token>" if self.config.api_token.get_secret_value() else "")

    async def _start_internal(self, address: str) -> None:
        """The sidecar-to-sidecar port: SidecarInvoke and gRPC proxying, mTLS only."""
        assert self.config.mtls is not None
        dapr = self.runtime.metrics.dapr
        try:
            ca, cert, key = self.config.mtls.read()
        except ConfigError:
            dapr.mtls_failed("read")
            raise
        internal = grpc.aio.server(
            interceptors=[Interceptors(Telemetry(self.runtime.metrics, self.runtime.tracing),
                                       ErrorMapping(), ClientMistakes())],
            options=grpc_options(self.config.listen.reuse_port))
        invoke_pb2_grpc.add_SidecarInvokeServicer_to_server(
            sidecar_invoke.SidecarInvokeServicer(self.services.invoke), internal)
        actors_pb2_grpc.add_SidecarActorsServicer_to_server(actors_internal.SidecarActorsServicer(
            forwarded_actors(self.services.actors)), internal)
        internal.add_generic_rpc_handlers([grpc_proxy.ProxyHandler(self.services.invoke,
                                                                   from_sidecars=True)])
        credentials = grpc.ssl_server_credentials([(key, cert)], root_certificates=ca,
                                                  require_client_auth=True)
        try:
            bound = internal.add_secure_port(address, credentials)
        except RuntimeError:
            bound = 0
        if not bound:
            dapr.mtls_failed("listen")
            raise StartError(f"the internal (mTLS) port cannot listen on {address}")
        await internal.start()
        dapr.mtls_initialized()
        self._internal = internal
        log.info("sidecar-to-sidecar calls on %s (mTLS)", address)

    def _admit(self, api: str) -> None:
        self.runtime.rate_limiter.admit(api, self.config.app.id)

    def _add_dapr(self) -> str:
        from pylotto.facades.dapr.durabletask import DurableTaskServicer
        from pylotto.facades.dapr.servicer import SERVICE, DaprServicer

        DaprServicer(self.services, self.status).add_to(self.grpc_server)
        DurableTaskServicer(self.services.workflows, self.config.app.id).add_to(self.grpc_server)
        return SERVICE

    def _dapr_http_app(self) -> web.Application:
        from pylotto.facades.dapr.http import build_app
        from pylotto.facades.dapr.http.keys import Guards

        runtime = self.runtime
        app = build_app(self.services, self.status, Guards(
            api_token=self.config.api_token.get_secret_value(),
            rate_limiter=runtime.rate_limiter if self.config.rate_limits else None,
            metrics=runtime.metrics, tracing=runtime.tracing, api_access=self.api_access),
            self.config.max_body_bytes)
        self.plugins.add_http(app)
        return app

    async def _bind_grpc(self, what: str, address: str) -> None:
        tls = self.config.tls
        try:
            if tls is None:
                bound = self.grpc_server.add_insecure_port(address)
            else:
                cert, key = tls.read()
                bound = self.grpc_server.add_secure_port(
                    address, grpc.ssl_server_credentials([(key, cert)]))
        except RuntimeError as exc:
            bound = 0
            log.debug("bind %s: %s", address, exc)
        if not bound:
            await self.runtime.stop()
            why = ("(socket path not writable?)" if address.startswith("unix:")
                   else "(port in use?)")
            raise StartError(f"{what} cannot listen on {address} {why}")

    async def _start_http(self, what: str, address: str, app: web.Application, *,
                          tls: bool = True) -> None:
        runner = web.AppRunner(app, access_log=None, logger=self.http_log)
        await runner.setup()
        self._http_runners.append(runner)
        context = None
        if tls and self.config.tls is not None:
            import ssl

            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(self.config.tls.cert_file, self.config.tls.key_file)
        await self._site(what, runner, address, context)

    async def _site(self, what: str, runner: web.AppRunner, address: str,
                    context: Any = None) -> None:
        """Listen on ``address``: ``host:port``, or ``unix:/path`` (a Unix socket)."""
        try:
            if address.startswith("unix:"):
                await web.UnixSite(runner, address.removeprefix("unix:"),
                                   ssl_context=context).start()
            else:
                host, port = _split(address)
                await web.TCPSite(runner, host, port, ssl_context=context,
                                  reuse_port=self.config.listen.reuse_port).start()
        except OSError as exc:
            why = ("the address is already in use" if exc.errno == errno.EADDRINUSE
                   else exc.strerror)
            raise StartError(f"{what} cannot listen on {address}: {why}") from None

    async def stop(self) -> None:
        """Refuse new calls, end streams, let in-flight calls finish, then close components."""
        log.info("pylotto stopping (grace %.0fs)", self.config.grace_period_seconds)
        self.actuator_app[actuator.STOPPING_KEY][0] = True
        if self.reloader is not None:
            await self.reloader.stop()
        await self.heap_trimmer.stop()
        await self.health.enter_graceful_shutdown()
        stopping = asyncio.create_task(self.grpc_server.stop(self.config.grace_period_seconds))
        if self._internal is not None:
            await self._internal.stop(self.config.grace_period_seconds)
        await self.runtime.stop_services()
        await stopping
        await self.plugins.stop()
        await self.runtime.stop()
        await self.close_http()
        self.recent_errors.detach()
        log.info("pylotto stopped")

    async def abort(self) -> None:
        """Undo a start that failed half-way: the gRPC servers stopped, the components and
        the HTTP listeners closed, so nothing is left for the garbage collector to stop after
        the event loop has closed (which would print ``Event loop is closed``)."""
        await self.grpc_server.stop(None)
        if self._internal is not None:
            await self._internal.stop(None)
            self._internal = None
        await self.runtime.stop()
        await self.close_http()

    async def close_http(self) -> None:
        for runner in self._http_runners:
            await runner.cleanup()
        self._http_runners.clear()
        if self._actuator_runner is not None:
            await self._actuator_runner.cleanup()
            self._actuator_runner = None


APP_EXITED = "the app exited"
CLOSE_MARGIN_SECONDS = 5.0
"""How long closing the components may take after the grace period, before the sidecar
exits without waiting any longer (a driver that does not let go must not keep it up)."""


async def _stop_in_time(sidecar: Sidecar, within: float) -> None:
    try:
        async with asyncio.timeout(within):
            await sidecar.stop()
    except TimeoutError:
        log.error("stopping took longer than %gs; exiting without waiting further", within)


async def serve(config: RuntimeConfig, app_command: Sequence[str] = (),
                sources: ComponentSources | None = None, *,
                instance: instances.Instance | None = None) -> int:
    """Start a sidecar (and the app, when ``app_command`` is given) and run until SIGTERM,
    SIGINT, the Shutdown API or the app's exit (an app of a run template: not its exit, as
    the Dapr CLI's multi-app run); the exit code, as the Dapr CLI's: 0, or 1 when the app
    exited by itself with an error (see :mod:`pylotto.process.launcher`).
    ``sources``: the component files to watch for hot reload; ``instance``: this run, listed
    for ``pylotto list`` / ``pylotto stop``."""
    sidecar = Sidecar(config, sources)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    prober: AppHealthProber | None = None
    try:
        await sidecar.start()
        if config.app.health_check is not None and config.app.port:
            prober = AppHealthProber(config.app, config.app.health_check,
                                     sidecar.runtime.app_gate)
            prober.start()
        app = await launcher.start_app(app_command, config) if app_command else None
    except BaseException:
        if prober is not None:
            await prober.stop()
        await sidecar.abort()
        raise
    sidecar.status.set_metadata("cliPID", str(os.getpid()))  # what dapr run records there
    if app is not None:
        sidecar.status.set_metadata("appPID", str(app.pid))
        sidecar.status.set_metadata("appCommand", " ".join(app_command))
    record = None
    if instance is not None:
        record = instance.with_pids(app.pid if app is not None else 0)
        instances.register(record)
    log.info("You're up and running! %s", "Both pylotto and your app logs will appear here."
             if app is not None else "pylotto logs will appear here.")
    waits: dict[asyncio.Task[Any], str] = {
        asyncio.create_task(sidecar.status.shutdown_requested.wait()): "shutdown requested "
        "through the API",
        asyncio.create_task(stop.wait()): "signal received",
    }
    if app is not None:
        waits[asyncio.create_task(app.wait())] = APP_EXITED
    code = launcher.EXIT_OK
    while True:
        done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        reasons = [waits.pop(task) for task in done]
        if reasons != [APP_EXITED] or not run_template.keeps_sidecar():
            break
        # a run template's app: its sidecar stays up until the template stops (Dapr CLI)
        assert app is not None and app.returncode is not None
        code = launcher.exit_code_of_app(app.returncode)
        log.info("the sidecar keeps running until the run template is stopped")
    for task in waits:
        task.cancel()
    reason = APP_EXITED if APP_EXITED in reasons else reasons[0]
    log.info("%s", reason)
    try:
        if app is not None:
            app_code = await launcher.stop_app(app, config.grace_period_seconds)
            log.info("the app exited with code %d", app_code)
            if reason == APP_EXITED:
                code = launcher.exit_code_of_app(app_code)
        if prober is not None:
            await prober.stop()
        await _stop_in_time(sidecar, config.grace_period_seconds + CLOSE_MARGIN_SECONDS)
    finally:
        if record is not None:
            instances.unregister(record)
    return code
