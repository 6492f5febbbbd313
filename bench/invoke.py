"""Scenario 4: service invocation through two sidecars — Layotto InvokeService, Dapr gRPC
InvokeService and Dapr HTTP ``/v1.0/invoke`` on the caller's sidecar — against the app called
directly and against two minimal grpc.aio relays (:mod:`bench.relay_server`), the floor of a
hop."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bench.harness import VALUE, Progress, Runner, Settings, channels, interleave
from bench.load import closed_loop
from bench.procs import ServerProcess, Sidecar, cpu_seconds, free_port
from bench.stats import Comparison
from pylotto.proto.layotto import runtime_pb2

HEADERS_RELAYS = "two grpc.aio relays, app headers as metadata"
DAPR_GRPC = "Dapr gRPC InvokeService"
DAPR_HTTP = "Dapr HTTP invoke"


async def scenario_invoke(workdir: Path, settings: Settings, progress: Progress,
                          sidecar_args: list[str]) -> tuple[list[Comparison], dict[str, Any]]:
    """Scenario 4: InvokeService through two sidecars (the caller's, then the callee's, then
    its app) vs the same POST straight to the app; a 1 KB body echoed back. CPU is both
    sidecars' per call."""
    import aiohttp
    from dapr.proto.common.v1 import common_pb2
    from dapr.proto.runtime.v1 import dapr_pb2_grpc, invoke_pb2
    from google.protobuf import any_pb2

    app = ServerProcess("bench.echo_app").start()
    callee = Sidecar(workdir / "callee", {}, extra_args=sidecar_args,
                     config={"app": {"id": "echo", "port": app.port}})
    dapr_grpc, dapr_http = free_port(), free_port()
    caller = Sidecar(workdir / "caller", {}, extra_args=[
        *sidecar_args, "--dapr-grpc-port", str(dapr_grpc), "--dapr-http-port", str(dapr_http)],
                     config={
        "app": {"id": "caller"},
        "name_resolution": {"type": "static",
                            "metadata": {"apps": {"echo": [callee.address]}}}})
    callee.start()
    caller.start()
    relay_callee = ServerProcess("bench.relay_server", args=[
        "--role", "callee", "--app", f"http://127.0.0.1:{app.port}/echo"]).start()
    relay_caller = ServerProcess("bench.relay_server", args=[
        "--role", "caller", "--next", relay_callee.address]).start()
    relay_stubs = channels(relay_caller.address, 16)
    headers_caller = ServerProcess("bench.relay_server", args=[
        "--role", "caller", "--next", relay_callee.address, "--headers"]).start()
    headers_stubs = channels(headers_caller.address, 16)
    stubs = channels(caller.address, 16)
    dapr_stubs = channels(f"127.0.0.1:{dapr_grpc}", 16, dapr_pb2_grpc.DaprStub)
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=16))
    url = f"http://127.0.0.1:{app.port}/echo"
    dapr_url = f"http://127.0.0.1:{dapr_http}/v1.0/invoke/echo/method/echo"
    dapr_request = invoke_pb2.InvokeServiceRequest(id="echo", message=common_pb2.InvokeRequest(
        method="echo", data=any_pb2.Any(value=VALUE), content_type="application/octet-stream",
        http_extension=common_pb2.HTTPExtension(verb=common_pb2.HTTPExtension.POST)))
    request = runtime_pb2.InvokeServiceRequest(id="echo", message=runtime_pb2.CommonInvokeRequest(
        method="echo", data=any_pb2.Any(value=VALUE), content_type="application/octet-stream",
        http_extension=runtime_pb2.HTTPExtension(verb=runtime_pb2.HTTPExtension.POST)))
    s = settings
    rows: list[Comparison] = []
    extra: dict[str, Any] = {}

    def invoke(i: int) -> Any:
        return stubs[i % len(stubs)].InvokeService(request)

    def relayed(i: int) -> Any:
        return relay_stubs[i % len(relay_stubs)].InvokeService(request)

    def relayed_with_headers(i: int) -> Any:
        return headers_stubs[i % len(headers_stubs)].InvokeService(request)

    def dapr_invoke(i: int) -> Any:
        return dapr_stubs[i % len(dapr_stubs)].InvokeService(dapr_request)

    async def post(where: str) -> bytes:
        async with session.post(where, data=VALUE,
                                headers={"content-type": "application/octet-stream"}) as resp:
            resp.raise_for_status()
            return await resp.read()

    def direct(i: int) -> Awaitable[bytes]:
        return post(url)

    def dapr_http_invoke(i: int) -> Awaitable[bytes]:
        return post(dapr_url)

    def both() -> float:
        return cpu_seconds(caller.pid) + cpu_seconds(callee.pid)

    def relays() -> float:
        return cpu_seconds(relay_caller.pid) + cpu_seconds(relay_callee.pid)

    def relays_with_headers() -> float:
        return cpu_seconds(headers_caller.pid) + cpu_seconds(relay_callee.pid)

    def closed(op: Callable[[int], Awaitable[Any]], c: int) -> Runner:
        return lambda cpu: closed_loop(op, c, s.seconds, s.warmup, cpu)

    try:
        for variant, c in (("C=1, max", 1), ("C=16, max", 16)):
            med = await interleave(f"4 Invoke via two sidecars {variant}", {
                "pylotto": (closed(invoke, c), both),
                "grpc.aio relays": (closed(relayed, c), relays),
                HEADERS_RELAYS: (closed(relayed_with_headers, c), relays_with_headers),
                DAPR_GRPC: (closed(dapr_invoke, c), both),
                DAPR_HTTP: (closed(dapr_http_invoke, c), both),
                "app direct": (closed(direct, c), None),
            }, s, progress)
            for name, label in (("app direct", "app direct (HTTP)"),
                                ("grpc.aio relays", "two grpc.aio relays"),
                                (HEADERS_RELAYS, HEADERS_RELAYS)):
                rows.append(Comparison("4 Invoke via two sidecars, 1 KB echo",
                                       f"{variant} (CPU: both sidecars)", med["pylotto"],
                                       label, med[name]))
            for name in (DAPR_GRPC, DAPR_HTTP):
                rows.append(Comparison(f"4 {name} via two sidecars, 1 KB echo",
                                       f"{variant} (CPU: both sidecars)", med[name],
                                       "app direct (HTTP)", med["app direct"]))
            extra[f"invoke {variant}"] = med
    finally:
        await session.close()
        caller.stop()
        callee.stop()
        relay_caller.stop()
        headers_caller.stop()
        relay_callee.stop()
        app.stop()
    return rows, extra
