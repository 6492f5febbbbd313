"""A Redis server replaying its data after a restart answers ``-LOADING``: that is
UNAVAILABLE (retry), not INTERNAL (issue 17). A redis-server of the test's own is filled,
saved and restarted with ``key-load-delay`` (Redis' own knob for testing a slow load), so it
stays in the loading state for seconds; both clients are asked meanwhile: the pipelined one
(state, lock, sequencer) and redis-py's pool (pub/sub, configuration)."""

from __future__ import annotations

import asyncio
import logging
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from pylotto.components.base import Component, ComponentContext
from pylotto.components.state.base import Consistency, SetRequest
from pylotto.core.errors import Unavailable
from pylotto.core.metadata import decode
from pylotto.core.registry import resolve
from tests.support.ports import free_port

KEYS = 1500
LOAD_DELAY_US = 2000
"""Per key while loading: 1,500 keys take about 3 s to load."""


def start(folder: Path, port: int, *extra: str) -> subprocess.Popen[bytes]:
    server = shutil.which("redis-server")
    assert server, "redis-server is not installed (scripts/start-services.sh installs it)"
    process = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder),
         "--dbfilename", "dump.rdb", "--save", "", "--appendonly", "no", *extra],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process
        except OSError:
            assert process.poll() is None, "redis-server did not start"
            assert time.monotonic() < deadline, "redis-server not listening after 10 s"
            time.sleep(0.05)


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class SlowLoadingRedis:
    """A redis-server of the test's own; :meth:`restart_loading_slowly` fills it with
    ``KEYS`` keys, saves, and starts it again with a slow load of them."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.process = start(folder, self.port)

    def restart_loading_slowly(self) -> None:
        rows = [f"SET preload:{i} {'v' * 64}\r\n" for i in range(KEYS)]
        with socket.create_connection(("127.0.0.1", self.port)) as conn:
            conn.sendall("".join(rows).encode() + b"SAVE\r\n")
            received = b""
            while received.count(b"\r\n") < KEYS + 1:
                received += conn.recv(1 << 16)
        assert received.endswith(b"+OK\r\n")
        stop(self.process)
        assert (self.folder / "dump.rdb").stat().st_size > KEYS * 10  # compressed values
        self.process = start(self.folder, self.port, "--key-load-delay", str(LOAD_DELAY_US),
                             "--loading-process-events-interval-bytes", "1024")


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[SlowLoadingRedis]:
    server = SlowLoadingRedis(tmp_path)
    yield server
    stop(server.process)


async def build(capability: str, port: int, tmp_path: Path) -> Any:
    cls = resolve(capability, "redis")
    settings = decode(cls.Settings, {"redisHost": f"127.0.0.1:{port}", "timeout": "3s"},
                      component=f"{capability}.loading")
    component: Component = cls("loading", settings, ComponentContext(
        app_id="app", data_dir=tmp_path, logger=logging.getLogger("test.loading")))
    await component.init()
    return component


@pytest.mark.timeout(60)
async def test_loading_is_unavailable_then_served(redis_server: SlowLoadingRedis,
                                                  tmp_path: Path) -> None:
    state = await build("state", redis_server.port, tmp_path)
    pubsub = await build("pubsub", redis_server.port, tmp_path)
    raw = Redis(host="127.0.0.1", port=redis_server.port)
    try:
        await state.set(SetRequest("kept", b"saved before the restart"))
        redis_server.restart_loading_slowly()
        assert (await raw.info("persistence"))["loading"] == 1
        with pytest.raises(Unavailable, match="LOADING"):
            await state.get("kept", Consistency.UNSPECIFIED, {})
        with pytest.raises(Unavailable, match=r"[Ll]oading"):
            await pubsub.publish("topic", b"x", {})
        with pytest.raises(Unavailable, match="LOADING"):  # a component starting meanwhile
            await build("lock", redis_server.port, tmp_path)
        assert (await raw.info("persistence"))["loading"] == 1  # still, after all three
        deadline = time.monotonic() + 30
        while True:  # what a retry policy does: the same call succeeds once loaded
            try:
                got = await state.get("kept", Consistency.UNSPECIFIED, {})
                break
            except Unavailable:
                assert time.monotonic() < deadline, "still loading after 30 s"
                await asyncio.sleep(0.2)
        assert got is not None and got.value == b"saved before the restart"
        await pubsub.publish("topic", b"x", {})
    finally:
        await raw.aclose()
        await state.close()
        await pubsub.close()
