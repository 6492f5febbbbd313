import asyncio
import itertools
from pathlib import Path

import pytest

from pylotto.components.pubsub.base import (
    BackOffPolicy,
    BulkPublishEntry,
    Handler,
    Message,
    PubSubSettings,
    RetryPolicy,
)
from pylotto.core.errors import ConfigError, Unavailable
from pylotto.core.metadata import decode, parse_duration
from pylotto.core.registry import resolve
from tests.unit.pubsub.helpers import FAST_RETRY, broker, eventually, settle


def test_registered_as_in_memory() -> None:
    assert resolve("pubsub", "in-memory").__name__ == "InMemoryPubSub"
    assert resolve("pubsub", "pubsub.in-memory").__name__ == "InMemoryPubSub"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("500ms", 0.5), ("1m30s", 90.0), ("2h", 7200.0), ("1.5s", 1.5), ("3", 3.0), (2, 2.0),
     ("250us", 0.00025)],
)
def test_parse_duration(text: object, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["fast", "5x", "-1s", "-3", "inf", True])
def test_parse_duration_refuses(text: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_bad_backoff_metadata_names_the_key() -> None:
    with pytest.raises(ConfigError, match="backOffInitialInterval"):
        decode(PubSubSettings, {"backOffInitialInterval": "soon"}, component="pubsub.x")


def test_settings_build_the_retry_policy() -> None:
    settings = decode(
        PubSubSettings,
        {"backOffPolicy": "constant", "backOffDuration": "2s", "backOffMaxRetries": "3"},
        component="pubsub.x",
    )
    policy = settings.retry_policy()
    assert policy.policy is BackOffPolicy.CONSTANT
    assert policy.delay(1) == policy.delay(7) == 2.0
    assert policy.max_retries == 3


def test_exponential_delays_grow_to_the_cap() -> None:
    policy = RetryPolicy(initial_interval=1, multiplier=2, max_interval=5, randomization_factor=0)
    assert [policy.delay(n) for n in (1, 2, 3, 4, 10_000)] == [1, 2, 4, 5, 5]


def test_randomised_delay_stays_in_range() -> None:
    policy = RetryPolicy(initial_interval=1, randomization_factor=0.5)
    assert policy.delay(1, rand=lambda: 0.0) == 0.5
    assert policy.delay(1, rand=lambda: 1.0) == 1.5


def test_give_up_rules() -> None:
    assert not RetryPolicy(max_retries=-1, max_elapsed_time=0).gives_up(10_000, 1e9)
    assert not RetryPolicy(max_retries=2).gives_up(2, 0)
    assert RetryPolicy(max_retries=2).gives_up(3, 0)
    assert RetryPolicy(max_retries=0).gives_up(1, 0)
    assert RetryPolicy(max_elapsed_time=10).gives_up(1, 10)


async def test_one_group_shares_messages(tmp_path: Path) -> None:
    mem = await broker(tmp_path)
    got: dict[str, list[bytes]] = {"a": [], "b": []}

    def collect(name: str) -> Handler:
        async def handle(message: Message) -> None:
            got[name].append(message.data)
            await asyncio.sleep(0.01)

        return handle

    await mem.subscribe("t", collect("a"), {})
    await mem.subscribe("t", collect("b"), {})
    for i in range(20):
        await mem.publish("t", str(i).encode(), {})
    await eventually(lambda: len(got["a"]) + len(got["b"]) == 20)
    await settle()
    assert sorted(got["a"] + got["b"], key=int) == [str(i).encode() for i in range(20)]
    assert got["a"] and got["b"]
    await mem.close()


async def test_each_group_gets_every_message(tmp_path: Path) -> None:
    mem = await broker(tmp_path)
    got: dict[str, list[bytes]] = {"app": [], "audit": []}

    async def app(message: Message) -> None:
        got["app"].append(message.data)

    async def audit(message: Message) -> None:
        got["audit"].append(message.data)

    await mem.subscribe("t", app, {})
    await mem.subscribe("t", audit, {"consumerID": "audit"})
    for i in range(5):
        await mem.publish("t", bytes([i]), {"key": "k"})
    await eventually(lambda: len(got["app"]) == 5 and len(got["audit"]) == 5)
    assert got["app"] == got["audit"] == [bytes([i]) for i in range(5)]
    assert set(mem.groups("t")) == {"app", "audit"}
    await mem.close()


async def test_component_consumer_id_overrides_the_app_id(tmp_path: Path) -> None:
    mem = await broker(tmp_path, consumerID="workers")

    async def noop(message: Message) -> None:
        return None

    await mem.subscribe("t", noop, {})
    assert set(mem.groups("t")) == {"workers"}
    await mem.close()


async def test_publish_metadata_reaches_the_handler(tmp_path: Path) -> None:
    mem = await broker(tmp_path)
    got: list[Message] = []

    async def handle(message: Message) -> None:
        got.append(message)

    await mem.subscribe("t", handle, {})
    await mem.publish("t", b"x", {"key": "k1"})
    await eventually(lambda: len(got) == 1)
    assert got[0] == Message("t", b"x", {"key": "k1"})
    await mem.close()


async def test_topic_without_subscribers_drops(tmp_path: Path) -> None:
    mem = await broker(tmp_path)
    await mem.publish("nobody", b"x", {})
    got: list[bytes] = []

    async def handle(message: Message) -> None:
        got.append(message.data)

    await mem.subscribe("nobody", handle, {})
    await settle()
    assert got == []
    await mem.close()


async def test_nack_redelivers_with_backoff(tmp_path: Path) -> None:
    mem = await broker(tmp_path, **FAST_RETRY)
    times: list[float] = []
    loop = asyncio.get_running_loop()

    async def flaky(message: Message) -> None:
        times.append(loop.time())
        if len(times) < 4:
            raise RuntimeError("not yet")

    await mem.subscribe("t", flaky, {})
    await mem.publish("t", b"x", {})
    await eventually(lambda: len(times) == 4)
    await settle()
    assert len(times) == 4  # acked on the 4th attempt, never again
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert gaps[0] >= 0.009 and gaps[1] >= 0.019 and gaps[2] >= 0.039
    await mem.close()


async def test_gives_up_after_max_retries(tmp_path: Path) -> None:
    mem = await broker(tmp_path, backOffMaxRetries="2", **FAST_RETRY)
    calls: list[bytes] = []

    async def failing(message: Message) -> None:
        calls.append(message.data)
        raise RuntimeError("never")

    await mem.subscribe("t", failing, {})
    await mem.publish("t", b"x", {})
    await eventually(lambda: len(calls) == 3)
    await settle(0.2)
    assert len(calls) == 3  # first delivery + 2 redeliveries
    await mem.close()


async def test_in_flight_is_bounded(tmp_path: Path) -> None:
    mem = await broker(tmp_path, maxConcurrentHandlers="3")
    release = asyncio.Event()
    active = 0
    peak = 0
    done = 0

    async def slow(message: Message) -> None:
        nonlocal active, peak, done
        active += 1
        peak = max(peak, active)
        await release.wait()
        active -= 1
        done += 1

    await mem.subscribe("t", slow, {})
    for i in range(10):
        await mem.publish("t", bytes([i]), {})
    await eventually(lambda: active == 3)
    await settle()
    assert peak == 3
    assert mem.groups("t")["app"].backlog == 7
    release.set()
    await eventually(lambda: done == 10)
    assert peak == 3
    await mem.close()


async def test_close_waits_for_in_flight_handlers(tmp_path: Path) -> None:
    mem = await broker(tmp_path)
    finished: list[bytes] = []
    started = asyncio.Event()

    async def slow(message: Message) -> None:
        started.set()
        await asyncio.sleep(0.1)
        finished.append(message.data)

    sub = await mem.subscribe("t", slow, {})
    await mem.publish("t", b"x", {})
    await started.wait()
    await sub.close()
    assert finished == [b"x"]
    await mem.close()


async def test_unfinished_messages_go_to_the_next_subscriber(tmp_path: Path) -> None:
    mem = await broker(tmp_path, **FAST_RETRY)
    first_got = asyncio.Event()
    closing = asyncio.Event()

    async def leaving(message: Message) -> None:
        first_got.set()
        await closing.wait()
        raise RuntimeError("subscriber gone")

    sub = await mem.subscribe("t", leaving, {})
    await mem.publish("t", b"x", {})
    await first_got.wait()
    closing.set()
    await sub.close()
    # The group outlives its subscription: the message waits for the next subscriber.
    assert mem.groups("t")["app"].backlog == 1
    got: list[bytes] = []

    async def staying(message: Message) -> None:
        got.append(message.data)

    await mem.subscribe("t", staying, {})
    await eventually(lambda: got == [b"x"])
    await mem.close()


async def test_backlog_bound_drops_the_oldest(tmp_path: Path) -> None:
    mem = await broker(tmp_path, maxQueuedMessages="2")

    async def noop(message: Message) -> None:
        return None

    sub = await mem.subscribe("t", noop, {})
    await sub.close()
    for i in range(4):
        await mem.publish("t", bytes([i]), {})
    got: list[bytes] = []

    async def handle(message: Message) -> None:
        got.append(message.data)

    await mem.subscribe("t", handle, {})
    await eventually(lambda: len(got) == 2)
    assert got == [b"\x02", b"\x03"]
    await mem.close()


async def test_bulk_publish_default(tmp_path: Path) -> None:
    mem = await broker(tmp_path)
    got: list[Message] = []

    async def handle(message: Message) -> None:
        got.append(message)

    await mem.subscribe("t", handle, {})
    failures = await mem.bulk_publish(
        "t",
        [BulkPublishEntry("1", b"a", {"k": "1"}), BulkPublishEntry("2", b"b")],
        {"k": "req", "x": "y"},
    )
    assert failures == []
    await eventually(lambda: len(got) == 2)
    assert [(m.data, m.metadata) for m in got] == [
        (b"a", {"k": "1", "x": "y"}), (b"b", {"k": "req", "x": "y"})
    ]
    await mem.close()
    failures = await mem.bulk_publish("t", [BulkPublishEntry("1", b"a")], {})
    assert [f.entry_id for f in failures] == ["1"]
    assert "closed" in failures[0].error


async def test_closed_broker_is_unavailable(tmp_path: Path) -> None:
    mem = await broker(tmp_path)
    await mem.close()
    with pytest.raises(Unavailable):
        await mem.publish("t", b"x", {})


async def test_idle_groups_are_bounded(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Subscribers coming and going on ever new topics (a streaming subscription each) keep at
    most ``maxIdleGroups`` groups without a subscriber: the one idle longest goes first; a
    group that gets a subscriber again is no longer idle (issue 17: 2,000 groups per cycle of
    dropped streams were kept for ever)."""
    mem = await broker(tmp_path, maxIdleGroups="3")

    async def noop(message: Message) -> None:
        return None

    for n in range(5):
        await (await mem.subscribe(f"t{n}", noop, {})).close()
    assert [t for t in (f"t{n}" for n in range(5)) if mem.groups(t)] == ["t2", "t3", "t4"]
    back = await mem.subscribe("t2", noop, {})  # t2 has a member again: not idle
    await (await mem.subscribe("t5", noop, {})).close()
    kept = lambda: [t for t in (f"t{n}" for n in range(6)) if mem.groups(t)]  # noqa: E731
    assert kept() == ["t2", "t3", "t4", "t5"]  # three idle and one with a member
    await mem.publish("t3", b"nobody came back", {})
    await back.close()  # t2 idle again, the newest: t3 (idle longest) goes with its message
    assert kept() == ["t2", "t4", "t5"]
    assert "group 'app' dropped after 3 idle groups" in caplog.text
    assert "with 1 message(s)" in caplog.text
    await mem.close()
