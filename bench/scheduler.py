"""The scheduler at 100,000 jobs: ``python -m bench.scheduler [--store sqlite|redis|postgresql]``.

One child process runs a :class:`SchedulerCapability` (the real core, its state component,
the sharded index) over a store holding ``--jobs`` jobs, written beforehand by this process.
It measures:

- **memory**: the child's RSS with the component open and no scheduler, then once the
  scheduler knows every job;
- **start-up**: from ``start()`` to knowing every job (the first poll reads every shard and
  every job record);
- **triggers**: then ``--rate`` times ``--seconds`` of those jobs are rescheduled by another writer
  (as another sidecar would: new records, ``enlist_many``) to fire at ``--rate`` per second;
  the scheduler learns them through the shard stamps and fires them. Reported: triggers per
  second over the busiest second and the whole burst, and each trigger's **lateness**
  (delivery to the app channel minus its due time), p50/p99;
- **baseline**: the same due times as bare ``loop.call_at`` timers in the same child, no
  store: the event loop's own lateness, the floor any Python scheduler has here;
- **beside**: during the burst, a bare ``loop.call_at`` timer at each job's due time, in the
  same event loop: how late the loop itself ran then (the machine's other load included), so a
  p99 can be told apart from one the machine caused; and the load average before and after.

Progress lines go to stderr; the figures to stdout and to
``bench/results/<time>-scheduler-<store>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.report import machine
from pylotto.appchannel.jobs import JobChannel
from pylotto.capabilities.base import ComponentSet, RuntimeContext
from pylotto.capabilities.scheduler import JobSpec, SchedulerCapability
from pylotto.capabilities.scheduler.job import new_record
from pylotto.capabilities.scheduler.store import SchedulerStore
from pylotto.capabilities.state import StateCapability, StateItem
from pylotto.components.base import ComponentContext
from pylotto.config.model import AppConfig
from pylotto.core.metadata import decode
from pylotto.core.registry import resolve

ROOT = Path(__file__).resolve().parent.parent
APP_ID = f"bench-sched-{os.getpid()}"
"""One per run (the child is given it): a run never sees an earlier one's jobs."""
WRITE_CHUNK = 1000
POSTGRES = "postgres://postgres@127.0.0.1:5432/test"
METADATA = {"redis": {"redisHost": "127.0.0.1:6379"},
            "postgresql": {"connectionString": POSTGRES}}


def progress(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024 / 1e6
    return 0.0


@asynccontextmanager
async def state_over(kind: str, db: str) -> AsyncIterator[StateCapability]:
    metadata = METADATA.get(kind, {"connectionString": db})
    cls = resolve("state", kind)
    settings = decode(cls.Settings, metadata, component=f"state.{kind}")
    data_dir = Path(tempfile.gettempdir())
    component = cls("jobs", settings, ComponentContext(
        app_id=APP_ID, data_dir=data_dir, logger=logging.getLogger("bench.jobs")))
    await component.init()
    try:
        app = AppConfig.model_validate({"app_id": APP_ID})
        yield StateCapability(ComponentSet("state store", {"jobs": component}),
                              RuntimeContext(app, data_dir))
    finally:
        await component.close()


async def write_jobs(store: SchedulerStore, specs: list[JobSpec]) -> dict[str, float]:
    """Records and index entries of ``specs``, in bulk; name → due time."""
    due: dict[str, float] = {}
    for at in range(0, len(specs), WRITE_CHUNK):
        records = [new_record(spec) for spec in specs[at:at + WRITE_CHUNK]]
        await store.state.save_state(store.store, [
            StateItem(store.job_key(r.spec.name), r.dumps()) for r in records])
        await store.enlist_many({r.spec.name: r.generation for r in records})
        for r in records:
            assert r.next_at is not None
            due[r.spec.name] = r.next_at.timestamp()
    return due


async def populate(kind: str, db: str, jobs: int) -> None:
    async with state_over(kind, db) as state:
        store = SchedulerStore(state, "jobs", APP_ID)
        began = time.monotonic()
        for at in range(0, jobs, 10_000):
            await write_jobs(store, [JobSpec(f"job-{i}", due_time="24h")
                                     for i in range(at, min(at + 10_000, jobs))])
            progress(f"written {min(at + 10_000, jobs)} / {jobs} jobs")
        progress(f"populated in {time.monotonic() - began:.1f} s")


async def drop_redis_keys() -> None:
    import redis.asyncio as aioredis
    client = aioredis.Redis(host="127.0.0.1", port=6379)
    batch = [key async for key in client.scan_iter(match=f"*_scheduler.{APP_ID}.*", count=5000)]
    for at in range(0, len(batch), 5000):
        await client.delete(*batch[at:at + 5000])
    progress(f"dropped the run's {len(batch)} Redis keys")
    await client.aclose()


async def drop_postgres_rows() -> None:
    import asyncpg
    conn = await asyncpg.connect(POSTGRES)
    try:
        status = await conn.execute("DELETE FROM state WHERE key LIKE $1",
                                    f"%_scheduler.{APP_ID}.%")
    finally:
        await conn.close()
    progress(f"dropped the run's PostgreSQL rows ({status})")


class Recorder(JobChannel):
    def __init__(self) -> None:
        self.at: dict[str, float] = {}

    async def trigger(self, name: str, type_url: str, value: bytes) -> bool:
        self.at.setdefault(name, time.time())
        return True


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def lateness(due: dict[str, float], at: dict[str, float]) -> dict[str, Any]:
    late = [(at[n] - due[n]) * 1000 for n in due if n in at]
    times = sorted(at[n] for n in due if n in at)
    busiest = 0
    start = 0
    for end, t in enumerate(times):  # the busiest one-second window
        while t - times[start] > 1.0:
            start += 1
        busiest = max(busiest, end - start + 1)
    span = times[-1] - times[0] if len(times) > 1 else 0.0
    return {"fired": len(late), "expected": len(due),
            "p50_ms": percentile(late, 0.5), "p99_ms": percentile(late, 0.99),
            "max_ms": max(late), "busiest_second": busiest,
            "per_second": len(times) / span if span else 0.0}


def _arrived(at: dict[str, float], name: str) -> None:
    at[name] = time.time()


async def baseline(due: dict[str, float]) -> dict[str, float]:
    loop = asyncio.get_running_loop()
    at: dict[str, float] = {}
    offset = time.time() - loop.time()
    def arrived(name: str) -> None:
        at[name] = time.time()

    for name, when in due.items():
        loop.call_at(when - offset, arrived, name)
    await asyncio.sleep(max(due.values()) - time.time() + 1.0)
    return at


async def measure(kind: str, db: str, jobs: int, rate: float, seconds: float) -> dict[str, Any]:
    async with state_over(kind, db) as state:
        rss_before = rss_mb()
        recorder = Recorder()
        scheduler = SchedulerCapability(state, state.context, store_name="jobs",
                                        channel=recorder)
        began = time.monotonic()
        await scheduler.start()
        while len(scheduler._known) < jobs:  # noqa: ASYNC110 (no event to wait on)
            await asyncio.sleep(0.05)
        startup = time.monotonic() - began
        rss_known = rss_mb()
        progress(f"scheduler knows {jobs} jobs after {startup:.2f} s; RSS {rss_before:.1f} → "
                 f"{rss_known:.1f} MB")
        count = int(rate * seconds)
        base_due = {f"base-{i}": time.time() + 2.0 + i / rate for i in range(count)}
        progress(f"baseline: {count} loop.call_at timers at {rate:.0f}/s")
        base = lateness(base_due, await baseline(base_due))
        writer = SchedulerStore(state, "jobs", APP_ID)
        t0 = datetime.now(UTC) + timedelta(seconds=5 + count / 2000)  # room for a slow write
        specs = [JobSpec(f"job-{i}", due_time=(t0 + timedelta(seconds=i / rate)).isoformat())
                 for i in range(count)]
        progress(f"rescheduling {count} jobs to fire at {rate:.0f}/s from {t0:%H:%M:%S}")
        load_before = os.getloadavg()[0]
        beside_at: dict[str, float] = {}
        loop = asyncio.get_running_loop()
        offset = time.time() - loop.time()
        for i, spec in enumerate(specs):  # set before the jobs are written
            when = (t0 + timedelta(seconds=i / rate)).timestamp()
            loop.call_at(when - offset, _arrived, beside_at, spec.name)
        due = await write_jobs(writer, specs)
        overrun = time.time() - min(due.values())
        if overrun > 0:
            progress(f"the jobs were written {overrun:.1f} s after the first was due: its "
                     "lateness is the writer's, not the scheduler's (a loaded machine?)")
        while time.time() < max(due.values()) + 30 and len(recorder.at) < count:
            await asyncio.sleep(0.5)
            progress(f"fired {len(recorder.at)} / {count}")
        rss_after = rss_mb()
        await scheduler.stop()
        result = {"store": kind, "jobs": jobs, "rate": rate, "seconds": seconds,
                  "startup_s": startup, "rss_without_scheduler_mb": rss_before,
                  "rss_knowing_all_mb": rss_known, "rss_after_burst_mb": rss_after,
                  "scheduler": lateness(due, recorder.at), "baseline": base,
                  "beside": lateness(due, beside_at),
                  "load_average": [load_before, os.getloadavg()[0]],
                  "written_after_first_due_s": max(overrun, 0.0)}
        return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=["sqlite", "redis", "postgresql"], default="sqlite")
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--db", default="")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--app-id", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    global APP_ID
    APP_ID = args.app_id or APP_ID
    logging.basicConfig(level=logging.WARNING)
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    if args.child:
        print(json.dumps(asyncio.run(measure(args.store, args.db, args.jobs, args.rate,
                                             args.seconds))))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or str(Path(tmp) / "jobs.db")
        asyncio.run(populate(args.store, db, args.jobs))
        child = subprocess.run(
            [sys.executable, "-m", "bench.scheduler", "--child", "--store", args.store,
             "--db", db, "--jobs", str(args.jobs), "--rate", str(args.rate),
             "--seconds", str(args.seconds), "--app-id", APP_ID],
            stdout=subprocess.PIPE, check=True, cwd=ROOT)
    if args.store == "redis":
        asyncio.run(drop_redis_keys())
    elif args.store == "postgresql":
        asyncio.run(drop_postgres_rows())
    result = json.loads(child.stdout)
    result["machine"] = machine()
    stamp = time.strftime("%Y-%m-%dT%H%M%SZ", time.gmtime())
    out = ROOT / "bench" / "results" / f"{stamp}-scheduler-{args.store}.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    s, b, o = result["scheduler"], result["baseline"], result["beside"]
    print(f"{args.store}: {args.jobs} jobs; start-up {result['startup_s']:.2f} s; RSS "
          f"{result['rss_without_scheduler_mb']:.1f} → {result['rss_knowing_all_mb']:.1f} MB; "
          f"fired {s['fired']}/{s['expected']}, busiest second {s['busiest_second']}/s, "
          f"{s['per_second']:.0f}/s over the burst; lateness p50 {s['p50_ms']:.1f} p99 "
          f"{s['p99_ms']:.1f} max {s['max_ms']:.1f} ms (baseline p50 {b['p50_ms']:.2f} p99 "
          f"{b['p99_ms']:.2f} ms; p99 ratio {s['p99_ms'] / max(b['p99_ms'], 0.001):.0f} x); "
          f"bare timers beside the burst p50 {o['p50_ms']:.1f} p99 {o['p99_ms']:.1f} ms; load "
          f"average {result['load_average'][0]:.2f} → {result['load_average'][1]:.2f}")
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
