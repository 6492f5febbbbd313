"""The app health check (``dapr run --enable-app-health-check``): probe the app every
``interval``; ``threshold`` failures in a row make it unhealthy, one success healthy again. The
verdict goes to the app's :class:`~pylotto.appchannel.gate.AppGate` (deliveries wait,
invocations are refused while unhealthy).

The probe, by ``app.protocol`` as in Dapr: HTTP(S) ``GET <path>`` answering 2xx; gRPC the app's
``AppCallbackHealthCheck/HealthCheck``. The app counts as unhealthy until its first probe
passes.
"""

from __future__ import annotations

import asyncio
import logging

import aiohttp

from pylotto.appchannel.gate import AppGate
from pylotto.appchannel.http import AppRequest, HttpAppChannel
from pylotto.appchannel.select import RawGrpcAppChannel
from pylotto.config.model import AppConfig, AppHealthCheck
from pylotto.core.errors import PylottoError
from pylotto.core.tasks import stop_task

log = logging.getLogger("pylotto.apphealth")


class AppHealthProber:
    def __init__(self, app: AppConfig, check: AppHealthCheck, gate: AppGate) -> None:
        self.app, self.check, self.gate = app, check, gate
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._grpc: RawGrpcAppChannel | None = None
        self._h2c: HttpAppChannel | None = None
        """h2c apps: probed over HTTP/2 (the app channel's own client, without its gate)."""

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            await stop_task(self._task)
        if self._session is not None:
            await self._session.close()
        if self._grpc is not None:
            await self._grpc.close()
        if self._h2c is not None:
            await self._h2c.close()

    async def _run(self) -> None:
        failures = 0
        while True:
            healthy = await self._probe()
            failures = 0 if healthy else failures + 1
            if healthy and not self.gate.healthy:
                log.info("app health: the app is healthy")
                self.gate.set_healthy(True)
            elif failures == self.check.threshold and self.gate.healthy:
                log.warning("app health: the app failed %d probes in a row: unhealthy "
                            "(deliveries paused, invocations refused)", failures)
                self.gate.set_healthy(False)
            await asyncio.sleep(self.check.interval_seconds)

    async def _probe(self) -> bool:
        try:
            if self.app.is_grpc:
                return await self._probe_grpc()
            if self.app.protocol == "h2c":
                return await self._probe_h2c()
            return await self._probe_http()
        except (aiohttp.ClientError, OSError, TimeoutError):
            return False

    async def _probe_h2c(self) -> bool:
        if self._h2c is None:
            assert self.app.port is not None
            self._h2c = HttpAppChannel(self.app.host, self.app.port, scheme="h2c")
        try:
            answer = await self._h2c.send(AppRequest(
                "GET", self.check.path, timeout=self.check.timeout_seconds))
        except PylottoError:
            return False
        return 200 <= answer.status < 300

    async def _probe_http(self) -> bool:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        scheme = "https" if self.app.protocol == "https" else "http"
        url = f"{scheme}://{self.app.host}:{self.app.port}/{self.check.path.lstrip('/')}"
        async with self._session.get(
                url, ssl=False, allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=self.check.timeout_seconds)) as resp:
            return 200 <= resp.status < 300

    async def _probe_grpc(self) -> bool:
        import grpc
        from dapr.proto.runtime.v1 import appcallback_pb2_grpc
        from google.protobuf import empty_pb2

        if self._grpc is None:
            assert self.app.port is not None
            self._grpc = RawGrpcAppChannel(self.app.host, self.app.port,
                                           tls=self.app.protocol == "grpcs")
        stub = appcallback_pb2_grpc.AppCallbackHealthCheckStub(  # type: ignore[no-untyped-call]
            self._grpc.channel())
        try:
            await stub.HealthCheck(empty_pb2.Empty(), timeout=self.check.timeout_seconds)
        except grpc.aio.AioRpcError:
            return False
        return True
