"""Actor method calls against plain invocation: ``python -m bench.actors calls``.

One ``pylotto run`` sidecar with its actor state store in the real Redis, and one app
(:mod:`bench.actor_app`) that echoes its body (``--body`` bytes; empty by default, as the issue
measures) both as the actor type ``BenchActor`` and as ``POST /echo``. Over the sidecar's
Dapr HTTP API, with ``--concurrency`` clients in a closed loop, alternating ``--rounds``
rounds of ``--seconds`` each:

- **invoke**: ``POST /v1.0/invoke/bench/method/echo`` (the baseline: the same app, the same
  body, through the same sidecar);
- **actor, 1000 ids**: ``POST /v1.0/actors/BenchActor/<i mod 1000>/method/echo`` — placement,
  activation (once per id), the turn lock, then the app;
- **actor, one hot id**: every call to one id, so the calls queue for its turn (turn-based
  concurrency: at most one in the app at a time).

Reported per path: calls/s, p50/p99, the sidecar's CPU per call, and the ratios against invoke
(throughput ratio; added p50). Fencing costs nothing here: it is paid by state transactions,
not by calls. Results in ``bench/results/<time>-actors-calls.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.load import closed_loop
from bench.procs import ServerProcess, Sidecar, cpu_seconds, free_port
from bench.report import machine
from bench.stats import median_summary

ROOT = Path(__file__).resolve().parent.parent
IDS = 1000


async def measure(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    import aiohttp

    app = ServerProcess("bench.actor_app").start()
    http_port = free_port()
    car = Sidecar(workdir / "sidecar", {"state": {"actorstore": {"type": "redis", "metadata": {
        "redisHost": "127.0.0.1:6379", "actorStateStore": "true"}}}},
        extra_args=["--dapr-http-port", str(http_port)],
        config={"app": {"id": "bench", "port": app.port}})
    car.start()
    base = f"http://127.0.0.1:{http_port}/v1.0"
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=args.concurrency))
    counter = 0

    body = b"x" * args.body

    async def post(url: str) -> None:
        async with session.post(url, data=body) as resp:
            if resp.status != 200:
                raise RuntimeError(f"{resp.status} {(await resp.read())[:200]!r}")
            await resp.read()

    async def invoke(i: int) -> None:
        await post(f"{base}/invoke/bench/method/echo")

    async def spread(i: int) -> None:
        nonlocal counter
        counter += 1
        await post(f"{base}/actors/BenchActor/{counter % IDS}/method/echo")

    async def hot(i: int) -> None:
        await post(f"{base}/actors/BenchActor/hot/method/echo")

    def cpu() -> float:
        return cpu_seconds(car.pid)

    paths = {"invoke": invoke, "actor, 1000 ids": spread, "actor, one hot id": hot}
    rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in paths}
    try:
        deadline = time.monotonic() + 30  # the app's types attach once /dapr/config answers
        while True:
            try:
                await hot(0)
                break
            except (RuntimeError, aiohttp.ClientError):
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)
        for index in range(args.rounds):
            order = list(paths) if index % 2 == 0 else list(reversed(paths))
            for name in order:
                summary = (await closed_loop(paths[name], args.concurrency, args.seconds,
                                             args.warmup, cpu)).summary()
                rounds[name].append(summary)
                print(f"r{index + 1} {name:<20} {summary['items_per_s']:8.0f} calls/s  p50 "
                      f"{summary['p50_ms']:.2f} p99 {summary['p99_ms']:.2f} ms  cpu "
                      f"{summary['cpu_us_per_req'] or 0:.0f} µs/call  errors "
                      f"{summary['errors']} {summary['first_error']}", file=sys.stderr,
                      flush=True)
    finally:
        await session.close()
        car.stop()
        app.stop()
    medians = {name: median_summary(values) for name, values in rounds.items()}
    baseline = medians["invoke"]
    return {
        "concurrency": args.concurrency, "seconds": args.seconds, "rounds": args.rounds,
        "body_bytes": args.body,
        "paths": medians,
        "ratios": {name: {
            "throughput_vs_invoke": m["items_per_s"] / baseline["items_per_s"]
            if baseline["items_per_s"] else None,
            "added_p50_ms": m["p50_ms"] - baseline["p50_ms"],
        } for name, m in medians.items() if name != "invoke"},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.actors calls")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--body", type=int, default=0, help="request body bytes (default: empty)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        result = asyncio.run(measure(args, Path(tmp)))
    result["machine"] = machine()
    stamp = time.strftime("%Y-%m-%dT%H%M%SZ", time.gmtime())
    out = ROOT / "bench" / "results" / f"{stamp}-actors-calls.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    for name, ratio in result["ratios"].items():
        m = result["paths"][name]
        print(f"{name}: {m['items_per_s']:.0f} calls/s, p50 {m['p50_ms']:.2f} ms; "
              f"{ratio['throughput_vs_invoke']:.2f}x invoke's throughput, "
              f"{ratio['added_p50_ms']:+.2f} ms p50")
    i = result["paths"]["invoke"]
    print(f"invoke: {i['items_per_s']:.0f} calls/s, p50 {i['p50_ms']:.2f} ms "
          f"(body {args.body} bytes, C={args.concurrency})")
    print(f"results: {out}")
    return 0
