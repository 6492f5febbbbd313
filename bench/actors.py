"""Actor reminders at scale: ``python -m bench.actors reminders [--store sqlite|redis|postgresql]``
(``python -m bench.actors calls``: actor calls against plain invocation, :mod:`bench.actor_calls`).

The design's open risk (docs/design/actors.md §4.1): reminders are scheduler jobs, and every
registration rewrites one of the 64 index shards by compare-and-set, so 1000 actors x k
reminders registered at once contend on them. This measures, in one process with
``--instances`` :class:`SchedulerReminders` over one store (as many sidecars of one app id):

- **registration**: ``--actors`` x ``--per-actor`` reminders registered ``--concurrency`` at
  a time (due in a day): registrations per second and each one's latency, p50/p99;
- **ticks**: every reminder is then registered again (overwritten; its time reported too)
  due at one common time ``T0`` (RFC 3339) after the second round ends, and repeats every
  ``--period`` seconds; for ``--seconds`` every tick handed to the TickSink is recorded.
  Reported: ticks expected and delivered, **duplicates** (a reminder ticking twice for one
  period: must be 0), ticks per instance, and each tick's **lateness** (delivery minus its
  slot ``T0 + k·period``), p50/p99/max.

Progress lines go to stderr; the figures to stdout and to
``bench/results/<time>-actors-reminders-<store>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.report import machine
from bench.stats import percentile
from pylotto.capabilities.actors.api import ActorRef, ReminderSpec, Tick, TickOutcome, TickSink
from pylotto.capabilities.actors.reminders import SchedulerReminders
from pylotto.capabilities.base import ComponentSet, RuntimeContext
from pylotto.capabilities.state import StateCapability
from pylotto.components.base import ComponentContext
from pylotto.config.model import AppConfig
from pylotto.core.metadata import decode
from pylotto.core.registry import resolve

ROOT = Path(__file__).resolve().parent.parent
APP_ID = f"bench-actors-{os.getpid()}"
"""One per run: a run never sees an earlier one's reminders."""
ACTOR_TYPE = "BenchActor"
METADATA = {
    "redis": {"redisHost": "127.0.0.1:6379"},
    "postgresql": {"connectionString": "postgres://postgres@127.0.0.1:5432/test"},
}


def progress(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


@asynccontextmanager
async def state_over(kind: str, db: str, instance: int) -> AsyncIterator[StateCapability]:
    metadata = METADATA.get(kind, {"connectionString": db})
    cls = resolve("state", kind)
    settings = decode(cls.Settings, metadata, component=f"state.{kind}")
    data_dir = Path(tempfile.gettempdir())
    component = cls(f"actors{instance}", settings, ComponentContext(
        app_id=APP_ID, data_dir=data_dir, logger=logging.getLogger("bench.actors")))
    await component.init()
    try:
        app = AppConfig.model_validate({"app_id": APP_ID})
        yield StateCapability(ComponentSet("state store", {"actors": component}),
                              RuntimeContext(app, data_dir))
    finally:
        await component.close()


class Sink:
    """The router's place: each tick's delivery time, by reminder and instance."""

    def __init__(self) -> None:
        self.at: dict[str, list[tuple[float, str]]] = {}

    def of(self, instance: str) -> TickSink:
        async def fire(tick: Tick) -> TickOutcome:
            self.at.setdefault(f"{tick.actor.id}/{tick.name}", []).append(
                (time.time(), instance))
            return TickOutcome(True)
        return fire


def summary_ms(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {"p50_ms": percentile(ordered, 50) * 1000, "p99_ms": percentile(ordered, 99) * 1000,
            "max_ms": (ordered[-1] if ordered else float("nan")) * 1000}


async def reminders(args: argparse.Namespace, db: str) -> dict[str, Any]:
    sink = Sink()
    async with AsyncExitStack() as stack:
        instances = []
        for k in range(args.instances):
            state = await stack.enter_async_context(state_over(args.store, db, k))
            each = SchedulerReminders(state, "actors", poll=args.poll)
            await each.start(sink.of(f"i{k}"))
            stack.push_async_callback(each.stop)
            instances.append(each)
        first = instances[0]
        total = args.actors * args.per_actor
        names = [(ActorRef(ACTOR_TYPE, f"a{a}"), f"r{r}")
                 for a in range(args.actors) for r in range(args.per_actor)]

        async def register_all(spec: ReminderSpec) -> tuple[float, list[float]]:
            latencies: list[float] = []
            queue = iter(names)

            async def register() -> None:
                for actor, name in queue:
                    started = time.perf_counter()
                    await first.register(actor, name, spec, overwrite=True)
                    latencies.append(time.perf_counter() - started)

            began = time.perf_counter()
            await asyncio.gather(*(register() for _ in range(args.concurrency)))
            return time.perf_counter() - began, latencies

        progress(f"registering {total} reminders, {args.concurrency} at a time (due in a day)")
        took, latencies = await register_all(ReminderSpec(due_time="24h",
                                                          period=f"{args.period}s"))
        lead = 1.5 * took + 3.0  # the second round takes about as long: done before T0
        t0 = float(int(time.time() + lead) + 1)
        due = datetime.fromtimestamp(t0, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        progress(f"registered in {took:.2f} s; again, now due at {due}, every {args.period} s")
        again, _ = await register_all(ReminderSpec(due_time=due, period=f"{args.period}s"))
        valid = time.time() < t0
        if not valid:
            progress("warning: the second registration outlasted the lead: ticks not valid")
        ended = t0 + args.seconds
        await asyncio.sleep(max(0.0, ended + 2.0 - time.time()))  # late ones of the last slot
        progress("cleaning up")
        await first.unregister_all(ACTOR_TYPE, None)

    lateness: list[float] = []
    slots_per_reminder = math.ceil(args.seconds / args.period)  # those due before the end
    duplicates = 0
    delivered = 0
    by_instance: Counter[str] = Counter()
    for times in sink.at.values():
        slots: Counter[int] = Counter()
        for at, instance in times:
            slot = int((at - t0) // args.period)
            if slot >= slots_per_reminder:
                continue
            delivered += 1
            by_instance[instance] += 1
            slots[slot] += 1
            lateness.append(at - (t0 + slot * args.period))
        duplicates += sum(count - 1 for count in slots.values() if count > 1)
    ordered = sorted(latencies)
    return {
        "store": args.store, "instances": args.instances, "actors": args.actors,
        "per_actor": args.per_actor, "period_s": args.period, "seconds": args.seconds,
        "register": {"count": total, "concurrency": args.concurrency, "seconds": took,
                     "seconds_overwriting": again,
                     "per_second": total / took if took else 0.0,
                     "p50_ms": percentile(ordered, 50) * 1000,
                     "p99_ms": percentile(ordered, 99) * 1000},
        "ticks": {"valid": valid, "expected": total * slots_per_reminder,
                  "delivered": delivered,
                  "duplicates": duplicates, "by_instance": dict(by_instance),
                  **summary_ms(lateness)},
    }


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["calls"]:
        from bench.actor_calls import main as calls

        return calls(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m bench.actors")
    parser.add_argument("what", choices=["reminders", "calls"])
    parser.add_argument("--store", choices=["sqlite", "redis", "postgresql"], default="sqlite")
    parser.add_argument("--db", default="", help="sqlite: the database file (default: a "
                        "temporary one)")
    parser.add_argument("--instances", type=int, default=2)
    parser.add_argument("--actors", type=int, default=1000)
    parser.add_argument("--per-actor", type=int, default=1)
    parser.add_argument("--period", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--poll", type=float, default=0.5)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or str(Path(tmp) / "actors.db")
        result = asyncio.run(reminders(args, db))
    result["machine"] = machine()
    stamp = time.strftime("%Y-%m-%dT%H%M%SZ", time.gmtime())
    out = ROOT / "bench" / "results" / f"{stamp}-actors-reminders-{args.store}.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    r, t = result["register"], result["ticks"]
    print(f"{args.store}, {args.instances} instances: {r['count']} reminders registered at "
          f"{r['per_second']:.0f}/s (C={r['concurrency']}; p50 {r['p50_ms']:.1f} p99 "
          f"{r['p99_ms']:.1f} ms); ticks{'' if t['valid'] else ' (NOT VALID)'} "
          f"{t['delivered']}/{t['expected']}, duplicates "
          f"{t['duplicates']}, by instance {t['by_instance']}; lateness p50 "
          f"{t['p50_ms']:.0f} p99 {t['p99_ms']:.0f} max {t['max_ms']:.0f} ms")
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
