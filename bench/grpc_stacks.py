"""The gRPC floor: GetState (one Redis GET, 1 KB) on each server stack, side by side.

``python -m bench.grpc_stacks --quick`` (2 rounds of 2 s per stack) or ``--rounds 5 --seconds 5``.
Every stack of :mod:`bench.stack_servers` that installs runs as its own process; rounds are
interleaved (A B C, C B A, ...) so the shared host's drift hits every stack alike. Each round is
a closed loop of C workers (16), each on its own connection; the figures are the server
process's CPU seconds (``/proc/<pid>/stat``) per call and the calls per second, as medians over
rounds and as ratios to ``aio-min`` (the least grpc.aio server) and to ``http-aiohttp``.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from bench.load import closed_loop
from bench.procs import cpu_seconds, free_port, wait_tcp
from bench.stack_servers import ENVIRONMENTS, GET_STATE, REDIS_HOST, REDIS_PORT, STACKS
from bench.stats import median_summary, ratio
from pylotto.proto.layotto import runtime_pb2

ROOT = Path(__file__).resolve().parent.parent
KEY = "bench-grpcfloor-k"
VALUE = bytes(range(256)) * 4  # 1 KB
BASELINE = "aio-min"
HTTP_BASELINE = "http-aiohttp"
NEEDS: dict[str, str] = {"grpclib": "grpclib", "asgi-hypercorn": "hypercorn",
                         "asgi-granian": "granian"}
"""Stacks that need a package beyond the project's own dependencies."""

Op = Callable[[int], Awaitable[object]]


def available(stack: str) -> bool:
    module = NEEDS.get(stack)
    return module is None or importlib.util.find_spec(module) is not None


@dataclass
class StackProcess:
    """One ``python -m bench.stack_servers`` process."""

    stack: str
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> StackProcess:
        env = {**os.environ, **ENVIRONMENTS.get(self.stack, {})}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.stack_servers", "--stack", self.stack,
             "--port", str(self.port)], cwd=ROOT, env=env)
        wait_tcp(self.port, self.process)
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


class GrpcClient:
    """C channels (each its own TCP/HTTP2 connection), a raw-bytes GetState on each."""

    def __init__(self, port: int, concurrency: int) -> None:
        self.request = runtime_pb2.GetStateRequest(store_name="redis", key=KEY).SerializeToString()
        self.channels = [grpc.aio.insecure_channel(
            f"127.0.0.1:{port}", options=[("grpc.use_local_subchannel_pool", 1)])
            for _ in range(concurrency)]
        self.calls = [ch.unary_unary(GET_STATE) for ch in self.channels]

    async def op(self, index: int) -> bytes:
        reply: bytes = await self.calls[index](self.request, timeout=10)
        return reply

    async def check(self) -> None:
        data = runtime_pb2.GetStateResponse.FromString(await self.op(0)).data
        if data != VALUE:
            raise AssertionError(f"GetState answered {len(data)} bytes, not the 1 KB value")

    async def close(self) -> None:
        for ch in self.channels:
            await ch.close()


class HttpClient:
    """C aiohttp sessions (one connection each), ``GET /state/KEY``."""

    def __init__(self, port: int, concurrency: int) -> None:
        import aiohttp

        self.url = f"http://127.0.0.1:{port}/state/{KEY}"
        self.sessions = [aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1))
                         for _ in range(concurrency)]

    async def op(self, index: int) -> bytes:
        async with self.sessions[index].get(self.url) as resp:
            body: bytes = await resp.read()
            return body

    async def check(self) -> None:
        if await self.op(0) != VALUE:
            raise AssertionError("GET /state answered something else than the 1 KB value")

    async def close(self) -> None:
        for session in self.sessions:
            await session.close()


async def seed() -> None:
    import redis.asyncio as aioredis

    client = aioredis.Redis(host=REDIS_HOST, port=REDIS_PORT)
    try:
        await client.set(KEY, VALUE)
    finally:
        await client.aclose()


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


async def measure(stacks: list[str], rounds: int, seconds: float, warmup: float,
                  concurrency: int, progress: Callable[[str], None] = print
                  ) -> dict[str, Any]:
    """Start every stack, run the interleaved rounds, return medians, ratios and raw rounds."""
    await seed()
    load_before = load_average()
    procs = {name: StackProcess(name) for name in stacks}
    clients: dict[str, GrpcClient | HttpClient] = {}
    failed: dict[str, str] = {}
    try:
        for name, proc in procs.items():
            proc.start()
            clients[name] = (HttpClient if name.startswith("http-") else GrpcClient)(
                proc.port, concurrency)
            try:
                await clients[name].check()
            except (grpc.aio.AioRpcError, AssertionError) as exc:
                # a stack that cannot answer a gRPC client at all is a finding, not a crash
                failed[name] = (exc.details() or "" if isinstance(exc, grpc.aio.AioRpcError)
                                else str(exc))
                progress(f"{name}: cannot serve a grpc.aio client: {failed[name]}")
        stacks = [name for name in stacks if name not in failed]
        per_stack: dict[str, list[dict[str, Any]]] = {name: [] for name in stacks}
        for name in stacks:  # one unrecorded pass: the first stack measured must not pay
            await closed_loop(clients[name].op, concurrency, warmup, 0.0)  # for a cold client
        for index in range(rounds):
            order = stacks if index % 2 == 0 else list(reversed(stacks))
            for name in order:
                pid = procs[name].pid
                result = await closed_loop(clients[name].op, concurrency, seconds, warmup,
                                           cpu=lambda pid=pid: cpu_seconds(pid))  # type: ignore[misc]
                summary = result.summary()
                per_stack[name].append(summary)
                progress(f"round {index + 1}/{rounds} {name:15s} {summary['rps']:7.0f} req/s "
                         f"{summary['cpu_us_per_req'] or 0:6.0f} µs CPU/call "
                         f"errors {summary['errors']}")
    finally:
        for client in clients.values():
            await client.close()
        for proc in procs.values():
            proc.stop()
    medians = {name: median_summary(rows) for name, rows in per_stack.items()}
    return {"load_before": load_before, "load_after": load_average(),
            "cpus": os.cpu_count(), "rounds": rounds, "seconds": seconds,
            "concurrency": concurrency, "medians": medians, "raw": per_stack,
            "failed": failed}


async def profile(stack: str, seconds: float, py_spy: str, native: bool) -> str:
    """py-spy (not a project dependency) on one stack's process under the same C=16 load."""
    import tempfile

    from bench.profile import summarize

    await seed()
    proc = StackProcess(stack).start()
    client = (HttpClient if stack.startswith("http-") else GrpcClient)(proc.port, 16)
    try:
        await client.check()
        with tempfile.TemporaryDirectory(prefix="grpc-stacks-profile-") as tmp:
            raw = Path(tmp) / "profile.raw"
            spy = await asyncio.create_subprocess_exec(
                py_spy, "record", "--format", "raw",
                *(["--native"] if native else ["--nonblocking"]), "--threads", "-r", "200",
                "-d", str(int(seconds)), "-o", str(raw), "-p", str(proc.pid))
            result = await closed_loop(client.op, 16, seconds, 0.5)
            await asyncio.wait_for(spy.wait(), 60)
            return (f"{stack} under profiling: {result.summary()['rps']:.0f} req/s\n"
                    + summarize(raw, 40))
    finally:
        await client.close()
        proc.stop()


def paired(raw: dict[str, list[dict[str, Any]]], stack: str, metric: str) -> float | None:
    """Median over rounds of stack / aio-min in the same round (neighbours in time, so the
    host's drift largely cancels)."""
    mine, base = raw.get(stack, []), raw.get(BASELINE, [])
    ratios = [r for r in (ratio(a.get(metric), b.get(metric))
                          for a, b in zip(mine, base, strict=False)) if r is not None]
    return statistics.median(ratios) if ratios else None


def table(result: dict[str, Any]) -> str:
    """Markdown: one row per stack, medians and ratios to the two baselines."""
    medians = result["medians"]
    base = medians.get(BASELINE, {})
    http = medians.get(HTTP_BASELINE, {})
    lines = ["| stack | req/s | req/s runs | server CPU µs/call | CPU runs | CPU / aio-min "
             "| paired CPU / aio-min | req/s / aio-min | CPU / aiohttp GET | p50 ms | p99 ms "
             "| errors |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]

    def fmt(value: float | None, digits: int = 2) -> str:
        return "-" if value is None else f"{value:.{digits}f}"

    for name, row in medians.items():
        lines.append(
            f"| {name} | {row['rps']:.0f} | {'/'.join(f'{v:.0f}' for v in row['rps_runs'])} "
            f"| {fmt(row['cpu_us_per_req'], 0)} "
            f"| {'/'.join(f'{v:.0f}' for v in row['cpu_us_per_req_runs'])} "
            f"| {fmt(ratio(row['cpu_us_per_req'], base.get('cpu_us_per_req')))} "
            f"| {fmt(paired(result['raw'], name, 'cpu_us_per_req'))} "
            f"| {fmt(ratio(row['rps'], base.get('rps')))} "
            f"| {fmt(ratio(row['cpu_us_per_req'], http.get('cpu_us_per_req')))} "
            f"| {row['p50_ms']:.2f} | {row['p99_ms']:.2f} | {row['errors']} |")
    for name, reason in result.get("failed", {}).items():
        lines.append(f"| {name} | fails: {reason} |" + " |" * 10)
    lines.append("")
    lines.append(f"C={result['concurrency']}, {result['rounds']} interleaved rounds of "
                 f"{result['seconds']:g} s per stack, {result['cpus']} CPUs; load average "
                 f"(1/5/15 min) before {result['load_before']}, after {result['load_after']}.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.grpc_stacks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="2 rounds of 2 s per stack")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("-c", "--concurrency", type=int, default=16)
    parser.add_argument("--only", default="", help="comma-separated stacks (default: all)")
    parser.add_argument("--out", type=Path, help="write every round's raw values as JSON")
    parser.add_argument("--profile", metavar="STACK",
                        help="instead: sample STACK's server with py-spy under the same load")
    parser.add_argument("--py-spy", default=shutil.which("py-spy") or "py-spy")
    parser.add_argument("--native", action="store_true", help="py-spy --native (C frames)")
    parser.add_argument("--table", type=Path, metavar="JSON",
                        help="instead: print the table of a run written with --out")
    args = parser.parse_args(argv)
    if args.table:
        print(table(json.loads(args.table.read_text())))
        return 0
    import uvloop

    if args.profile:
        print(uvloop.run(profile(args.profile, args.seconds, args.py_spy, args.native)))
        return 0
    if args.quick:
        args.rounds, args.seconds, args.warmup = 2, 2.0, 0.5
    wanted = [s for s in args.only.split(",") if s] or list(STACKS)
    unknown = sorted(set(wanted) - set(STACKS))
    if unknown:
        parser.error(f"unknown stacks {unknown}; known: {sorted(STACKS)}")
    stacks = [s for s in wanted if available(s)]
    for missing in sorted(set(wanted) - set(stacks)):
        print(f"{missing}: not measured, {NEEDS[missing]} is not installed")

    began = time.monotonic()
    result = uvloop.run(measure(stacks, args.rounds, args.seconds, args.warmup,
                                args.concurrency))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1))
    print(table(result))
    print(f"({time.monotonic() - began:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
