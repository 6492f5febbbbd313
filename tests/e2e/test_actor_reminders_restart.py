"""Reminders across a restart of every sidecar (issue 19, docs/actors.md "Timers and
reminders", docs/scheduler.md "Missed triggers fire once"): two ``pylotto run`` sidecars of
one app id, each with its own copy of an SDK actor app (tests/e2e/apps/reminder_app.py), over
one Redis actor state store. Six reminders of a 1 s period on three actor ids are registered
through the HTTP API; the apps record every tick in one Redis list. Both sidecars and both
apps are stopped (SIGTERM), stay down for a few periods, and are started again.

Then every reminder fires again after the restart; across both sidecars each tick is
delivered once (no two ticks of one reminder close together); and the ticks missed while
everything was down fire once, not once per missed period (the count of ticks of a reminder
over its lifetime stays within one per period plus the one missed tick)."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
import redis.asyncio as redis

from tests.e2e.dapr_run import unique
from tests.e2e.sidecar import Sidecar
from tests.support.ports import free_port
from tests.support.servers import require

pytestmark = pytest.mark.timeout(300)

APP = Path(__file__).parent / "apps" / "reminder_app.py"
ROOT = Path(__file__).parents[2]
PERIOD = 1.0
REMINDERS = [(f"t{i}", f"r{j}") for i in range(3) for j in range(2)]  # (actor id, name)
DOWN_SECONDS = 3.5
WAIT_SECONDS = 60.0
ATTACHED = "hosts actor types Ticker"


@dataclass
class Node:
    name: str
    car: Sidecar
    app_port: int
    app: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return self.car.dapr_http_url


@dataclass
class Cluster:
    workdir: Path
    app_id: str
    ns: str
    nodes: list[Node] = field(default_factory=list)

    def add(self, name: str) -> Node:
        app_port = free_port()
        car = Sidecar(self.workdir / name, app={"app_id": self.app_id, "port": app_port},
                      components={"state": {"actorstore": {"type": "redis", "metadata": {
                          "redisHost": "127.0.0.1:6379", "redisPassword": "",
                          "actorStateStore": "true"}}}})
        node = Node(name, car, app_port)
        self.nodes.append(node)
        return node

    async def start(self, node: Node) -> None:
        """Starts the sidecar and its app (same ports each time) and waits until the app's
        types are attached (counted in the log, which a restart appends to)."""
        before = node.car.logs().count(ATTACHED)
        await asyncio.to_thread(node.car.start)
        node.app = await asyncio.to_thread(self._app, node)
        deadline = time.monotonic() + WAIT_SECONDS
        while node.car.logs().count(ATTACHED) <= before:
            assert node.app.poll() is None, f"the app of {node.name} exited"
            assert time.monotonic() < deadline, f"{node.name}: the app's types never attached"
            await asyncio.sleep(0.1)

    def _app(self, node: Node) -> subprocess.Popen[bytes]:
        log = (self.workdir / f"{node.name}.app.log").open("ab")
        app = subprocess.Popen(
            [sys.executable, str(APP), "--port", str(node.app_port), "--name", node.name,
             "--ns", self.ns],
            stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT),
                 "DAPR_RUNTIME_HOST": "127.0.0.1",
                 "DAPR_HTTP_PORT": str(node.car.dapr_http_port),
                 "DAPR_GRPC_PORT": str(node.car.dapr_grpc_port)})
        log.close()
        return app

    def stop(self, node: Node) -> None:
        node.car.stop()  # SIGTERM; first, so it deactivates its actors in the app
        if node.app is not None:
            node.app.terminate()
            try:
                node.app.wait(10)
            except subprocess.TimeoutExpired:
                node.app.kill()
                node.app.wait()
            node.app = None

    def logs(self) -> str:
        out = []
        for node in self.nodes:
            app_log = self.workdir / f"{node.name}.app.log"
            app = app_log.read_text(errors="replace") if app_log.exists() else ""
            out.append(f"--- {node.name} sidecar (tail)\n{node.car.logs()[-4000:]}\n"
                       f"--- {node.name} app (tail)\n{app[-2000:]}")
        return "\n".join(out)


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    require("redis")
    made = Cluster(tmp_path, unique("reminders"), f"reminders-{uuid.uuid4().hex[:8]}")
    try:
        yield made
    finally:
        for node in made.nodes:
            await asyncio.to_thread(made.stop, node)
        store = redis.Redis.from_url("redis://127.0.0.1:6379/0")
        keys = [k async for k in store.scan_iter(f"{made.ns}:*")]
        keys += [k async for k in store.scan_iter(f"*{made.app_id}*")]
        if keys:
            await store.delete(*keys)
        await store.aclose()


async def ticks(ns: str) -> dict[tuple[str, str], list[tuple[float, str]]]:
    """Per (actor id, reminder name), the (wall time, app) of each tick, in time order."""
    store = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    try:
        raw = await store.lrange(f"{ns}:ticks", 0, -1)
    finally:
        await store.aclose()
    out: dict[tuple[str, str], list[tuple[float, str]]] = {}
    for line in raw:
        tick = json.loads(line)
        out.setdefault((tick["id"], tick["name"]), []).append((float(tick["t"]), tick["app"]))
    for got in out.values():
        got.sort()
    return out


async def eventually(cluster: Cluster, what: str, check: object) -> None:
    assert callable(check)
    deadline = time.monotonic() + WAIT_SECONDS
    while not await check():
        if time.monotonic() > deadline:
            got = await ticks(cluster.ns)
            raise AssertionError(f"{what} not seen within {WAIT_SECONDS:g}s; ticks "
                                 f"{ {k: len(v) for k, v in got.items()} }\n{cluster.logs()}")
        await asyncio.sleep(0.2)


async def test_reminders_fire_once_per_period_after_every_sidecar_restarts(
        cluster: Cluster) -> None:
    nodes = [cluster.add("s1"), cluster.add("s2")]
    for node in nodes:
        await cluster.start(node)

    async with aiohttp.ClientSession() as http:
        for i, (actor_id, name) in enumerate(REMINDERS):
            node = nodes[i % 2]  # registered through both sidecars
            url = f"{node.url}/v1.0/actors/Ticker/{actor_id}/reminders/{name}"
            async with http.post(url, json={"dueTime": "1s", "period": f"{PERIOD:g}s",
                                            # the SDK reads reminder data as base64 text
                                            "data": base64.b64encode(b"%d" % i).decode()}
                                 ) as resp:
                assert resp.status == 204, f"{url}: {resp.status} {await resp.text()}"

        async def each_ticked(times: int, after: float) -> bool:
            got = await ticks(cluster.ns)
            return all(sum(1 for t, _ in got.get(r, []) if t > after) >= times
                       for r in REMINDERS)

        await eventually(cluster, "three ticks of every reminder",
                         lambda: each_ticked(3, 0.0))

        # every sidecar and every app goes down, stays down a few periods, comes back
        for node in nodes:
            await asyncio.to_thread(cluster.stop, node)
        stopped_at = time.time()
        before = await ticks(cluster.ns)
        await asyncio.sleep(DOWN_SECONDS)
        assert await ticks(cluster.ns) == before, "a tick arrived while everything was down"
        back_at = time.time()
        for node in nodes:
            await cluster.start(node)
        restarted_at = time.time()

        await eventually(cluster, "three ticks of every reminder after the restart",
                         lambda: each_ticked(3, restarted_at))
        # a few more periods, so that a second delivery of a tick would have shown up
        await asyncio.sleep(3 * PERIOD)
        got = await ticks(cluster.ns)

        for actor_id, name in REMINDERS:
            url = f"{nodes[0].url}/v1.0/actors/Ticker/{actor_id}/reminders/{name}"
            async with http.delete(url) as resp:
                assert resp.status in (200, 204), f"{url}: {resp.status} {await resp.text()}"

    assert set(got) == set(REMINDERS), sorted(got)
    for reminder in REMINDERS:
        times = got[reminder]
        # nothing ticked while every sidecar was down
        assert not [t for t, _ in times if stopped_at < t < back_at]
        # each tick delivered once across both sidecars: a second delivery of one tick lands
        # right next to the first (whichever app took it); ticks are ~PERIOD apart, but a
        # tick late on the loaded machine may be followed closely by the next one on time,
        # and the missed tick fired on restart by the next scheduled one
        for (a, app_a), (b, app_b) in itertools.pairwise(times):
            assert b - a >= 0.25 * PERIOD, (
                f"{reminder} fired twice for one period: {a:.3f} on {app_a}, "
                f"{b:.3f} on {app_b}; all: {[round(t, 3) for t, _ in times]}")
        # once per period, plus one for the ticks missed while down (not one per missed
        # period: that would be ~DOWN_SECONDS / PERIOD more), plus one of slack for the ends
        before_stop = [t for t, _ in times if t <= stopped_at]
        after = [t for t, _ in times if t >= back_at]
        for span, label in ((before_stop, "before the stop"), (after, "after the restart")):
            allowed = (span[-1] - span[0]) / PERIOD + 2
            assert len(span) <= allowed, (
                f"{reminder} {label}: {len(span)} ticks in {span[-1] - span[0]:.2f}s "
                f"(at most {allowed:.1f}): {[round(t, 3) for t in span]}")
        # fired again after the restart: at least three times
        assert len([t for t in after if t > restarted_at]) >= 3
    apps = {app for times in got.values() for _, app in times}
    assert apps <= {"s1", "s2"}, apps
