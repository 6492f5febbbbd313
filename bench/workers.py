"""``--workers`` scaling on the embedded default: ``python -m bench.workers``.

Two sidecars run side by side with no file (the embedded default, each with its own data
dir): one with ``--workers 1``, one with ``--workers 2`` (whose in-memory state store is a
sqlite file in /dev/shm the two workers share, docs/operations.md). For each path — GetState
and SaveState of 1 KB, on the ``in-memory`` and on the ``sqlite`` store — rounds alternate
between the two sidecars (interleaved: the machine's other load falls on both alike).

The load comes from ``--clients`` processes (one Python process cannot keep two workers busy),
each a closed loop of ``--concurrency`` / ``--clients`` requests over as many connections of
its own (the kernel spreads connections over the workers). Reported per path: the median
throughput and sidecar CPU per call (the parent and its workers) over the rounds, and the
**ratio** of ``--workers 2`` to ``--workers 1`` throughput; with the load average before and
after, since on a shared machine the ratio says little when the cores are already busy.

Progress lines go to stderr; the figures to stdout and to
``bench/results/<time>-workers.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

import grpc

from bench.procs import Sidecar, cpu_seconds
from bench.report import machine
from bench.stats import percentile, ratio
from pylotto.proto.layotto import runtime_pb2, runtime_pb2_grpc

ROOT = Path(__file__).resolve().parent.parent
VALUE = os.urandom(512).hex().encode()  # 1 KB
KEYS = 100
PATHS = [(verb, store) for store in ("in-memory", "sqlite") for verb in ("GetState", "SaveState")]


def progress(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Load:
    address: str
    verb: str
    store: str
    concurrency: int
    warmup: float
    seconds: float


def _client(load: Load, barrier: Barrier, results: Any) -> None:
    """One client process: a closed loop measured between the two barrier waits."""
    results.put(asyncio.run(_closed_loop(load, barrier)))


async def _closed_loop(load: Load, barrier: Barrier) -> tuple[int, int, list[float]]:
    channels = [grpc.aio.insecure_channel(load.address,
                                          options=[("grpc.use_local_subchannel_pool", 1)])
                for _ in range(load.concurrency)]
    stubs = [runtime_pb2_grpc.RuntimeStub(channel) for channel in channels]
    latencies: list[float] = []
    errors = 0
    measuring = stop = False

    async def one(index: int) -> None:
        nonlocal errors
        stub = stubs[index]
        n = index
        while not stop:
            key = f"bench-workers-{n % KEYS}"
            n += load.concurrency
            began = time.perf_counter()
            try:
                if load.verb == "GetState":
                    await stub.GetState(runtime_pb2.GetStateRequest(
                        store_name=load.store, key=key), timeout=10)
                else:
                    await stub.SaveState(runtime_pb2.SaveStateRequest(
                        store_name=load.store, states=[runtime_pb2.StateItem(
                            key=key, value=VALUE)]), timeout=10)
            except grpc.aio.AioRpcError:
                if measuring:
                    errors += 1
                continue
            if measuring:
                latencies.append(time.perf_counter() - began)

    tasks = [asyncio.create_task(one(i)) for i in range(load.concurrency)]
    await asyncio.sleep(load.warmup)
    await asyncio.to_thread(barrier.wait)
    measuring = True
    await asyncio.sleep(load.seconds)
    measuring = False
    done = len(latencies)
    await asyncio.to_thread(barrier.wait)
    stop = True
    await asyncio.gather(*tasks, return_exceptions=True)
    for channel in channels:
        await channel.close()
    return done, errors, latencies[:done]


def measure(car: Sidecar, verb: str, store: str, args: argparse.Namespace) -> dict[str, Any]:
    """One round: ``args.clients`` processes against ``car``; throughput, latency, CPU."""
    spawn = multiprocessing.get_context("spawn")
    barrier = spawn.Barrier(args.clients + 1)
    results = spawn.Queue()
    load = Load(car.address, verb, store, max(1, args.concurrency // args.clients),
                args.warmup, args.seconds)
    clients = [spawn.Process(target=_client, args=(load, barrier, results))
               for _ in range(args.clients)]
    for client in clients:
        client.start()
    barrier.wait()
    cpu0, began = cpu_seconds(car.pid), time.perf_counter()
    barrier.wait()
    cpu1, elapsed = cpu_seconds(car.pid), time.perf_counter() - began
    parts = [results.get(timeout=60) for _ in clients]
    for client in clients:
        client.join(30)
    requests = sum(part[0] for part in parts)
    latencies = sorted(lat for part in parts for lat in part[2])
    return {"requests": requests, "errors": sum(part[1] for part in parts),
            "rps": requests / elapsed,
            "p50_ms": percentile(latencies, 50) * 1e3 if latencies else None,
            "p99_ms": percentile(latencies, 99) * 1e3 if latencies else None,
            "cpu_us_per_req": (cpu1 - cpu0) * 1e6 / requests if requests else None}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.workers", description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--clients", type=int, default=2, help="client processes")
    args = parser.parse_args(argv)
    load_before = os.getloadavg()
    workdir = Path(tempfile.mkdtemp(prefix="bench-workers-"))
    cars = {count: Sidecar(workdir / f"w{count}", None, extra_args=[
        "--workers", str(count), "--no-hot-reload", "--dapr-internal-grpc-port", "0"])
        for count in (1, 2)}
    rounds: dict[str, dict[int, list[dict[str, Any]]]] = {
        f"{verb} {store}": {1: [], 2: []} for verb, store in PATHS}
    try:
        for car in cars.values():
            car.start()
        for n in range(args.rounds):
            for verb, store in PATHS:
                for count, car in cars.items():
                    got = measure(car, verb, store, args)
                    rounds[f"{verb} {store}"][count].append(got)
                    progress(f"round {n + 1}: {verb} {store}, --workers {count}: "
                             f"{got['rps']:.0f} req/s, {got['errors']} errors, "
                             f"{got['cpu_us_per_req'] or 0:.0f} us CPU/call")
    finally:
        for car in cars.values():
            car.stop()
    summary: dict[str, Any] = {}
    for path, by_count in rounds.items():
        medians = {count: {metric: statistics.median(
            [r[metric] for r in runs if r[metric] is not None] or [0.0])
            for metric in ("rps", "p50_ms", "p99_ms", "cpu_us_per_req")}
            for count, runs in by_count.items()}
        summary[path] = {"workers_1": medians[1], "workers_2": medians[2],
                         "ratio_2_to_1": ratio(medians[2]["rps"], medians[1]["rps"]),
                         "errors": sum(r["errors"] for runs in by_count.values()
                                       for r in runs),
                         "runs": {str(count): runs for count, runs in by_count.items()}}
    result = {"when": datetime.now(UTC).isoformat(timespec="seconds"), "machine": machine(),
              "settings": vars(args), "load_average_before": load_before,
              "load_average_after": os.getloadavg(), "paths": summary}
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = ROOT / "bench" / "results" / f"{stamp}-workers.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"{'path':<20} {'1 worker req/s':>15} {'2 workers req/s':>16} {'ratio':>6} "
          f"{'CPU us/call 1 / 2':>18}")
    for path, row in summary.items():
        print(f"{path:<20} {row['workers_1']['rps']:>15.0f} {row['workers_2']['rps']:>16.0f} "
              f"{row['ratio_2_to_1'] or 0:>6.2f} {row['workers_1']['cpu_us_per_req']:>8.0f} / "
              f"{row['workers_2']['cpu_us_per_req']:<8.0f}")
    print(f"load average before {load_before[0]:.1f}, after {os.getloadavg()[0]:.1f} "
          f"({os.cpu_count()} cores); results: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
