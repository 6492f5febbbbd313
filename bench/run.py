"""Run the benchmark suite: ``python -m bench [--quick]`` (``make bench``).

Every scenario measures the pylotto path and its baseline in the same run, in interleaved
rounds (pylotto, baseline, pylotto, baseline...), and reports medians of the rounds. Sidecar
CPU comes from /proc/<pid>/stat. Results go to bench/results/*.json and docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from bench.brokers import FLOOR, scenario_brokers
from bench.harness import VALUE, Progress, Runner, Settings, channels, interleave
from bench.invoke import DAPR_GRPC, DAPR_HTTP, HEADERS_RELAYS, scenario_invoke
from bench.load import closed_loop, fixed_rate
from bench.procs import ServerProcess, Sidecar, cpu_seconds, rss_mb
from bench.pubsub import through_redis, through_sidecar
from bench.report import machine, write_results
from bench.span_sink import SpanSink
from bench.stats import Comparison, Round, ratio
from pylotto.proto.layotto import runtime_pb2, runtime_pb2_grpc

ROOT = Path(__file__).resolve().parent.parent
STORE = "redis"
KEYS = [f"bench-k{i}" for i in range(100)]
"""Keys the sidecar writes (as Redis hashes, its own layout)."""
BASE_KEYS = [f"bench-base-k{i}" for i in range(100)]
"""Keys the baselines write as plain Redis strings (never the sidecar's keys)."""
REDIS_STATE = {"state": {STORE: {"type": "redis", "metadata": {"redisHost": "127.0.0.1:6379"}}},
               "pubsub": {"bus": {"type": "in-memory", "metadata": {}}}}
WORKERS_COMPONENTS = {**REDIS_STATE, "pubsub": {"bus": {
    "type": "redis", "metadata": {"redisHost": "127.0.0.1:6379", "consumerID": "bench"}}}}
"""With ``--workers``: an in-memory broker would be one per worker, so the bus is Redis."""


def get_state_op(stubs: list[runtime_pb2_grpc.RuntimeStub],
                 keys: list[str]) -> Callable[[int], Awaitable[Any]]:
    """Request ``i``: GetState of ``keys[i]`` on the stubs in turn."""
    def op(i: int) -> Any:
        return stubs[i % len(stubs)].GetState(
            runtime_pb2.GetStateRequest(store_name=STORE, key=keys[i]))
    return op


async def seed_sidecar(stub: runtime_pb2_grpc.RuntimeStub) -> None:
    """The sidecar's keys, saved through it (as hashes, its own layout)."""
    await stub.SaveState(runtime_pb2.SaveStateRequest(
        store_name=STORE, states=[runtime_pb2.StateItem(key=k, value=VALUE) for k in KEYS]))


async def scenario_state(car: Sidecar, base: ServerProcess, settings: Settings,
                         progress: Progress) -> tuple[list[Comparison], dict[str, Any]]:
    """Scenarios 1 and 2: GetState (C=1, C=16, fixed rate), SaveState, GetBulkState,
    ExecuteStateTransaction against redis-py direct and the minimal grpc.aio server."""
    side16, base16 = channels(car.address, 16), channels(base.address, 16)
    direct = aioredis.Redis(host="127.0.0.1", port=6379, max_connections=32)
    await direct.delete(*KEYS, *BASE_KEYS)  # leftovers of an interrupted run
    await seed_sidecar(side16[0])
    await direct.mset(dict.fromkeys(BASE_KEYS, VALUE))
    car_cpu, base_cpu = (lambda: cpu_seconds(car.pid)), (lambda: cpu_seconds(base.pid))
    s = settings
    rows: list[Comparison] = []
    extra: dict[str, Any] = {}

    def redis_get(i: int) -> Awaitable[Any]:
        return direct.get(BASE_KEYS[i])

    def closed(op: Callable[[int], Awaitable[Any]], c: int, items: int = 1) -> Runner:
        return lambda cpu: closed_loop(op, c, s.seconds, s.warmup, cpu, items)

    def rated(op: Callable[[int], Awaitable[Any]], c: int) -> Runner:
        return lambda cpu: fixed_rate(op, s.rate, c, s.seconds, s.warmup, cpu)

    variants = [("C=1, max", 1, closed), ("C=16, max", 16, closed),
                (f"C=16, {s.rate:.0f} req/s", 16, rated)]
    for variant, c, kind in variants:
        med = await interleave(f"1 GetState {variant}", {
            "pylotto": (kind(get_state_op(side16, KEYS), c), car_cpu),
            "grpc.aio+redis": (kind(get_state_op(base16, BASE_KEYS), c), base_cpu),
            "redis-py": (kind(redis_get, c), None),
        }, s, progress)
        rows.append(Comparison("1 GetState 1 KB", variant, med["pylotto"], "grpc.aio+redis",
                               med["grpc.aio+redis"]))
        rows.append(Comparison("1 GetState 1 KB", variant, med["pylotto"], "redis-py direct",
                               med["redis-py"]))
        extra[f"getstate {variant}"] = med

    Factory = Callable[[list[runtime_pb2_grpc.RuntimeStub], list[str]],
                       Callable[[int], Awaitable[Any]]]

    def save(stubs: list[runtime_pb2_grpc.RuntimeStub],
             keys: list[str]) -> Callable[[int], Awaitable[Any]]:
        def op(i: int) -> Any:
            return stubs[i % len(stubs)].SaveState(runtime_pb2.SaveStateRequest(
                store_name=STORE, states=[runtime_pb2.StateItem(key=keys[i], value=VALUE)]))
        return op

    def bulk(stubs: list[runtime_pb2_grpc.RuntimeStub],
             keys: list[str]) -> Callable[[int], Awaitable[Any]]:
        request = runtime_pb2.GetBulkStateRequest(store_name=STORE, keys=keys)
        return lambda i: stubs[i % len(stubs)].GetBulkState(request)

    def txn(stubs: list[runtime_pb2_grpc.RuntimeStub],
            keys: list[str]) -> Callable[[int], Awaitable[Any]]:
        prefix = keys[0]

        def op(i: int) -> Any:
            return stubs[i % len(stubs)].ExecuteStateTransaction(
                runtime_pb2.ExecuteStateTransactionRequest(storeName=STORE, operations=[
                    runtime_pb2.TransactionalStateOperation(
                        operationType="upsert",
                        request=runtime_pb2.StateItem(key=f"{prefix}-t{i}-a", value=VALUE)),
                    runtime_pb2.TransactionalStateOperation(
                        operationType="upsert",
                        request=runtime_pb2.StateItem(key=f"{prefix}-t{i}-b", value=VALUE)),
                ]))
        return op

    table: list[tuple[str, Factory, int]] = [
        ("SaveState 1 KB", save, 1), ("GetBulkState 100 keys", bulk, len(KEYS)),
        ("ExecuteStateTransaction 2 upserts", txn, 1)]
    for name, factory, items in table:
        med = await interleave(f"2 {name} C=16", {
            "pylotto": (closed(factory(side16, KEYS), 16, items), car_cpu),
            "grpc.aio+redis": (closed(factory(base16, BASE_KEYS), 16, items), base_cpu),
        }, s, progress)
        rows.append(Comparison(f"2 {name}", "C=16, max", med["pylotto"], "grpc.aio+redis",
                               med["grpc.aio+redis"]))
        extra[name] = med
    await direct.aclose()
    return rows, extra


async def scenario_interference(car: Sidecar, settings: Settings, progress: Progress
                                ) -> tuple[list[Comparison], dict[str, Any]]:
    """Scenario 5: GetState p99 at a fixed rate alone vs with a PublishEvent stream beside it
    (4 publishers at max rate, to the in-memory broker)."""
    get_stub = channels(car.address, 1)[0]
    pub_stubs = channels(car.address, 4)
    s = settings
    car_cpu = lambda: cpu_seconds(car.pid)  # noqa: E731
    published = 0

    def get(i: int) -> Any:
        return get_stub.GetState(runtime_pb2.GetStateRequest(store_name=STORE, key=KEYS[i]))

    async def publisher(index: int) -> None:
        nonlocal published
        request = runtime_pb2.PublishEventRequest(pubsub_name="bus", topic="noise", data=VALUE)
        while True:
            await pub_stubs[index].PublishEvent(request)
            published += 1

    async def alone(cpu: Callable[[], float] | None) -> Round:
        return await fixed_rate(get, s.rate / 2, 4, s.seconds, s.warmup, None)

    async def with_pubsub(cpu: Callable[[], float] | None) -> Round:
        nonlocal published
        published = 0
        tasks = [asyncio.create_task(publisher(i)) for i in range(4)]
        try:
            result = await fixed_rate(get, s.rate / 2, 4, s.seconds, s.warmup, None)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        rates.append(published / (s.seconds + s.warmup))
        return result

    rates: list[float] = []
    med = await interleave("5 GetState alone vs with publish stream", {
        "with pub/sub": (with_pubsub, car_cpu), "alone": (alone, car_cpu)}, s, progress)
    row = Comparison("5 Interference", f"GetState at {s.rate / 2:.0f} req/s",
                     med["with pub/sub"], "GetState alone", med["alone"])
    return [row], {"interference": med, "publish_rate": statistics.median(rates)}


async def scenario_pubsub(car: Sidecar, settings: Settings, progress: Progress
                          ) -> tuple[list[Comparison], dict[str, Any]]:
    """Scenario 3: PublishEvent to delivery on a SubscribeTopicEvents stream, 4 publishers,
    vs PUBLISH/SUBSCRIBE straight on Redis."""
    stub = channels(car.address, 1)[0]
    s = settings

    async def sidecar(cpu: Callable[[], float] | None) -> Round:
        return await through_sidecar(stub, "bus", "bench-e2e", 4, s.seconds, s.warmup, cpu)

    async def broker(cpu: Callable[[], float] | None) -> Round:
        return await through_redis("bench-e2e", 4, s.seconds, s.warmup)

    med = await interleave("3 PublishEvent -> delivery", {
        "pylotto": (sidecar, lambda: cpu_seconds(car.pid)),
        "redis PUBLISH/SUBSCRIBE": (broker, None)}, s, progress)
    row = Comparison("3 PublishEvent → subscriber", "4 publishers, max, 1 KB", med["pylotto"],
                     "redis-py PUBLISH/SUBSCRIBE", med["redis PUBLISH/SUBSCRIBE"])
    return [row], {"pubsub": med}


def scenario_startup(workdir: Path, runs: int) -> dict[str, Any]:
    """Scenario 6: start to ready and idle RSS with the embedded default components."""
    ready: list[float] = []
    rss: list[float] = []
    for index in range(runs):
        car = Sidecar(workdir / f"startup-{index}", None).start()
        try:
            ready.append(car.ready_seconds)
            time.sleep(1.0)
            rss.append(rss_mb(car.pid))
        finally:
            car.stop()
        print(f"6 start-up run {index + 1}: ready {ready[-1]:.3f} s, idle RSS {rss[-1]:.1f} MB",
              file=sys.stderr, flush=True)
    return {"ready_s": statistics.median(ready), "ready_s_runs": ready,
            "idle_rss_mb": statistics.median(rss), "idle_rss_mb_runs": rss}


def targets(extra: dict[str, Any], startup: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets with measured values."""
    out: list[dict[str, Any]] = []

    def add(name: str, required: str, value: float | None, text: str, ok: bool | None) -> None:
        out.append({"name": name, "required": required, "value": value, "measured": text,
                    "met": ok})

    g16 = extra["getstate C=16, max"]
    r = ratio(g16["pylotto"]["rps"], g16["grpc.aio+redis"]["rps"])
    add("GetState throughput vs grpc.aio+redis (C=16)", ">= 1.0 x", r,
        f"{r:.2f} x" if r else "-", r >= 1.0 if r else None)
    g1 = extra["getstate C=1, max"]
    added = g1["pylotto"]["p50_ms"] - g1["redis-py"]["p50_ms"]
    add("GetState added p50 vs redis-py (C=1)", "<= 0.6 ms", added, f"{added:.2f} ms",
        added <= 0.6)
    cpu = g16["pylotto"]["cpu_us_per_req"]
    add("Sidecar CPU per GetState (C=16, max)", "<= 450 µs", cpu,
        f"{cpu:.0f} µs" if cpu else "-", cpu <= 450 if cpu else None)
    bulk = ratio(extra["GetBulkState 100 keys"]["pylotto"]["items_per_s"], g16["pylotto"]["rps"])
    add("GetBulkState 100 keys: keys/s vs GetState keys/s (C=16)", ">= 20 x", bulk,
        f"{bulk:.1f} x" if bulk else "-", bulk >= 20 if bulk else None)
    inter = extra["interference"]
    p99 = ratio(inter["with pub/sub"]["p99_ms"], inter["alone"]["p99_ms"])
    add(f"GetState p99 with pub/sub ({extra['publish_rate']:.0f} msg/s) vs alone", "<= 1.3 x",
        p99, f"{p99:.2f} x" if p99 else "-", p99 <= 1.3 if p99 else None)
    get_cpu = g16["pylotto"]["cpu_us_per_req"]
    invoke16 = extra.get("invoke C=16, max")
    if invoke16 and get_cpu:
        for name, label in (("pylotto", "Layotto InvokeService"), (DAPR_GRPC, DAPR_GRPC),
                            (DAPR_HTTP, DAPR_HTTP)):
            if name not in invoke16 or not invoke16[name]["cpu_us_per_req"]:
                continue
            per_hop = invoke16[name]["cpu_us_per_req"] / 2
            add(f"Invocation CPU per hop, {label} (C=16; both sidecars / 2) vs GetState CPU "
                "+ 150 µs", f"<= {get_cpu + 150:.0f} µs", per_hop, f"{per_hop:.0f} µs",
                per_hop <= get_cpu + 150)
        for name, label in (("grpc.aio relays", "two grpc.aio relays"),
                            (HEADERS_RELAYS, HEADERS_RELAYS)):
            floor = ratio(invoke16["pylotto"]["cpu_us_per_req"], invoke16[name]["cpu_us_per_req"])
            add(f"Invocation CPU vs {label} (C=16): the floor", "-", floor,
                f"{floor:.2f} x" if floor else "-", None)
    for key in sorted(k for k in extra if k == "pubsub" or k.startswith("pubsub ")):
        per_message = extra[key]["pylotto"]["cpu_us_per_req"]
        if get_cpu and per_message:
            broker = key.removeprefix("pubsub").strip() or "in-memory"
            add(f"Pub/sub sidecar CPU per published and delivered message ({broker}) vs "
                "2 x GetState CPU", f"<= {2 * get_cpu:.0f} µs", per_message,
                f"{per_message:.0f} µs", per_message <= 2 * get_cpu)
    floor_run = extra.get("pubsub redis", {}).get(FLOOR)
    if floor_run and floor_run["cpu_us_per_req"]:
        over = ratio(extra["pubsub redis"]["pylotto"]["cpu_us_per_req"],
                     floor_run["cpu_us_per_req"])
        add("Pub/sub CPU per message (redis) vs the grpc.aio floor server's: the floor", "-",
            over, f"{over:.2f} x" if over else "-", None)
    add("Idle RSS, embedded default", "<= 80 MB", startup["idle_rss_mb"],
        f"{startup['idle_rss_mb']:.1f} MB", startup["idle_rss_mb"] <= 80)
    add("Start to ready, embedded default", "<= 1.0 s", startup["ready_s"],
        f"{startup['ready_s']:.2f} s", startup["ready_s"] <= 1.0)
    return out


async def scenario_getstate_variant(variant: str, car: Sidecar, base: ServerProcess,
                                   settings: Settings, progress: Progress
                                   ) -> tuple[list[Comparison], dict[str, Any]]:
    """GetState C=16 on another configuration of the sidecar (started by the caller) against
    the baseline handler, interleaved like the other scenarios. No target: the targets are
    measured on the default sidecar."""
    side, base16 = channels(car.address, 16), channels(base.address, 16)
    await seed_sidecar(side[0])

    def get(stubs: list[runtime_pb2_grpc.RuntimeStub], keys: list[str]) -> Runner:
        op = get_state_op(stubs, keys)
        return lambda cpu: closed_loop(op, 16, settings.seconds, settings.warmup, cpu)

    med = await interleave(f"1 GetState {variant}", {
        "pylotto": (get(side, KEYS), lambda: cpu_seconds(car.pid)),
        "grpc.aio+redis": (get(base16, BASE_KEYS), lambda: cpu_seconds(base.pid)),
    }, settings, progress)
    return ([Comparison("1 GetState 1 KB", variant, med["pylotto"], "grpc.aio+redis",
                        med["grpc.aio+redis"])], {f"getstate {variant}": med})


async def scenario_fully_traced(workdir: Path, base: ServerProcess, settings: Settings,
                                progress: Progress, sidecar_args: list[str]
                                ) -> tuple[list[Comparison], dict[str, Any]]:
    """What tracing all traffic costs: a sidecar recording every call (sampling rate 1)."""
    sink = await SpanSink().start()
    car = Sidecar(workdir / "traced", REDIS_STATE, extra_args=sidecar_args,
                  config={"tracing": sink.tracing(1.0)}).start()
    try:
        rows, extra = await scenario_getstate_variant("C=16, max, every call traced", car, base,
                                                      settings, progress)
    finally:
        await asyncio.to_thread(car.stop)  # graceful: it exports what it holds to the sink
        await sink.stop()
    extra["getstate C=16, max, every call traced"]["spans_received"] = sink.spans
    return rows, extra


async def scenario_workers(workdir: Path, base: ServerProcess, settings: Settings,
                           progress: Progress, sidecar_args: list[str]
                           ) -> tuple[list[Comparison], dict[str, Any]]:
    """The ``--workers 2`` lever: two sidecar processes sharing the port (CPU: both)."""
    car = Sidecar(workdir / "workers", WORKERS_COMPONENTS,
                  extra_args=[*sidecar_args, "--workers", "2"]).start()
    try:
        return await scenario_getstate_variant("C=16, max, --workers 2", car, base, settings,
                                               progress)
    finally:
        car.stop()


async def run_async(settings: Settings, workdir: Path, sidecar_args: list[str]
                    ) -> tuple[list[Comparison], dict[str, Any], dict[str, float]]:
    progress = Progress()
    workers = any(arg.startswith("--workers") for arg in sidecar_args)
    sink = await SpanSink().start()
    car = Sidecar(workdir / "sidecar", WORKERS_COMPONENTS if workers else REDIS_STATE,
                  extra_args=sidecar_args,
                  config={"tracing": sink.tracing(settings.sampling_rate)}).start()
    base = ServerProcess().start()
    memory: dict[str, float] = {"redis_idle_rss_mb": rss_mb(car.pid)}
    try:
        rows, extra = await scenario_state(car, base, settings, progress)
        memory["loaded_rss_mb"] = rss_mb(car.pid)
        more, inter = await scenario_interference(car, settings, progress)
        rows += more
        extra.update(inter)
        more, delivered = await scenario_pubsub(car, settings, progress)
        rows += more
        extra.update(delivered)
        await asyncio.to_thread(car.stop)  # graceful: it exports what it holds to the sink
        extra["tracing"] = {"sampling_rate": settings.sampling_rate, "spans_received": sink.spans}
        more, traced = await scenario_fully_traced(workdir, base, settings, progress,
                                                   sidecar_args)
        rows += more
        extra.update(traced)
        if not workers:
            more, scaled = await scenario_workers(workdir, base, settings, progress,
                                                  sidecar_args)
            rows += more
            extra.update(scaled)
    finally:
        base.stop()
        car.stop()
    more, brokered = await scenario_brokers(workdir, settings, progress, sidecar_args)
    rows += more
    extra.update(brokered)
    more, invoked = await scenario_invoke(workdir, settings, progress, sidecar_args)
    rows += more
    extra.update(invoked)
    await sink.stop()
    return rows, extra, memory


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="2 rounds of 2 s (about 3 min)")
    parser.add_argument("--rounds", type=int, help="interleaved rounds per path")
    parser.add_argument("--seconds", type=float, help="measured seconds per round")
    parser.add_argument("--rate", type=float, default=400.0, help="fixed rate, req/s")
    parser.add_argument("--sampling-rate", type=float, default=0.01,
                        help="tracing sampling rate of the sidecar under test (default 0.01)")
    parser.add_argument("--sidecar-arg", action="append", default=[],
                        help="extra argument for `pylotto run` (e.g. --no-uvloop, --workers=2: "
                             "then the pub/sub scenarios use Redis, not in-memory); repeatable")
    parser.add_argument("--doc", type=Path, default=ROOT / "docs" / "performance.md")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args(argv)
    mode = "quick" if args.quick else "full"
    settings = Settings(rounds=args.rounds or (2 if args.quick else 5),
                        seconds=args.seconds or (2.0 if args.quick else 5.0),
                        warmup=0.5 if args.quick else 1.0, rate=args.rate, mode=mode,
                        sampling_rate=args.sampling_rate)
    import uvloop

    with tempfile.TemporaryDirectory(prefix="pylotto-bench-") as tmp:
        workdir = Path(tmp)
        startup = scenario_startup(workdir, 3 if args.quick else 5)
        rows, extra, memory = uvloop.run(run_async(settings, workdir, args.sidecar_arg))
    startup.update(memory)
    results: dict[str, Any] = {
        "command": "python -m bench" + (" --quick" if args.quick else ""),
        "mode": mode, "rounds": settings.rounds, "round_seconds": settings.seconds,
        "sidecar_args": args.sidecar_arg,
        "finished_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": machine(), "startup": startup,
        "targets": targets(extra, startup), "details": extra,
    }
    path = write_results(results, rows, args.out, args.doc)
    print(f"results: {path}\ntable: {args.doc}", file=sys.stderr)
    return 0
