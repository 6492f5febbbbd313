"""The Python SDK against a secured sidecar (TLS and an API token): reaching it as
Dapr's SDK does (DAPR_API_TOKEN, DAPR_GRPC_ENDPOINT), the lock context manager, the
read-modify-write helper under 5 concurrent writers, a subscription that outlives a reload of
its pubsub component, and the retry of calls while the sidecar is away."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest

from pylotto.client import (
    AsyncClient,
    Client,
    ClientError,
    LockNotAcquired,
    RetryPolicy,
)
from pylotto.proto.layotto import lifecycle_pb2, lifecycle_pb2_grpc
from tests.e2e.sidecar import Sidecar, free_port

TOKEN = "sdk-s3cret"


def make_certs(folder: Path) -> Path:
    for args in (("ca", "--out", str(folder)),
                 ("app", "--app-id", "sdk", "--ca", str(folder), "--out", str(folder))):
        subprocess.run([sys.executable, "-m", "pylotto", "cert", *args], check=True,
                       capture_output=True)
    return folder


@pytest.fixture(scope="module")
def tls_car(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Sidecar, Path]]:
    workdir = tmp_path_factory.mktemp("sdk-tls")
    certs = make_certs(workdir / "certs")
    car = Sidecar(workdir / "car", env={"DAPR_API_TOKEN": TOKEN})
    car.extra_config = {"tls": {"cert_file": str(certs / "sdk.crt"),
                                "key_file": str(certs / "sdk.key")}}
    car.start()
    yield car, certs
    car.stop()


def test_the_token_is_sent_from_the_argument_or_dapr_api_token(
        tls_car: tuple[Sidecar, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    car, certs = tls_car
    address = f"https://{car.grpc_address}"
    ca = (certs / "ca.crt").read_bytes()
    monkeypatch.delenv("DAPR_API_TOKEN", raising=False)
    with (Client(address, root_certificates=ca) as bare,
          pytest.raises(ClientError) as info):
        bare.say_hello("quick_start_demo", "x")
    assert info.value.code == grpc.StatusCode.UNAUTHENTICATED
    with Client(address, api_token=TOKEN, root_certificates=ca) as client:
        assert client.say_hello("quick_start_demo", "token") == "greeting, token"
    monkeypatch.setenv("DAPR_API_TOKEN", TOKEN)
    with Client(address, root_certificates=ca) as client:
        client.save_state("in-memory", "tok", b"v")
        assert client.get_state("in-memory", "tok").value == b"v"
        with client.subscribe("in-memory", "token-topic") as sub:  # streams carry it too
            client.publish_event("in-memory", "token-topic", b"e")
            event = next(iter(sub))
            assert event.data == b"e"
            sub.ack(event)
        client.put_file("local", "tok.txt", b"abc")
        assert client.get_file("local", "tok.txt") == b"abc"


def test_tls_and_token_from_dapr_s_environment_variables(
        tls_car: tuple[Sidecar, Path], tmp_path: Path) -> None:
    car, certs = tls_car
    app = textwrap.dedent("""
        from pylotto.client import Client
        with Client() as client:
            client.save_state("in-memory", "tls-key", b"over tls")
            print(client.get_state("in-memory", "tls-key").value.decode(), client.tls)
    """)
    env = {**os.environ, "DAPR_GRPC_ENDPOINT": f"https://127.0.0.1:{car.grpc_port}",
           "DAPR_API_TOKEN": TOKEN, "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH": str(certs / "ca.crt")}
    env.pop("PYLOTTO_GRPC_ADDRESS", None)
    done = subprocess.run([sys.executable, "-c", app], env=env, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "over tls True"
    # the newer spelling, on the Dapr gRPC port (it serves the Layotto runtime API too)
    env["DAPR_GRPC_ENDPOINT"] = f"127.0.0.1:{car.dapr_grpc_port}?tls=true"
    done = subprocess.run([sys.executable, "-c", app], env=env, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.stdout.strip() == "over tls True", done.stderr


async def test_tls_with_the_ca_given_and_refusals(tls_car: tuple[Sidecar, Path],
                                                  tmp_path: Path) -> None:
    car, certs = tls_car
    ca = (certs / "ca.crt").read_bytes()
    async with AsyncClient(f"https://{car.grpc_address}", api_token=TOKEN,
                           root_certificates=ca) as client:
        assert await client.say_hello("quick_start_demo", "tls") == "greeting, tls"
    async with AsyncClient(f"https://{car.grpc_address}", api_token="wrong",
                           root_certificates=ca) as client:
        with pytest.raises(ClientError) as info:
            await client.say_hello()
        assert info.value.code == grpc.StatusCode.UNAUTHENTICATED
    stranger = make_certs(tmp_path / "other") / "ca.crt"
    async with AsyncClient(f"https://{car.grpc_address}", api_token=TOKEN,
                           root_certificates=stranger.read_bytes(), timeout=3,
                           retry=RetryPolicy(max_attempts=1)) as client:
        with pytest.raises(ClientError) as info:
            await client.say_hello()
        assert info.value.code == grpc.StatusCode.UNAVAILABLE  # the handshake fails


async def test_five_writers_lose_no_increment_with_update_state(
        tls_car: tuple[Sidecar, Path]) -> None:
    car, certs = tls_car
    ca = (certs / "ca.crt").read_bytes()
    clients = [AsyncClient(f"https://{car.grpc_address}", api_token=TOKEN,
                           root_certificates=ca) for _ in range(5)]
    key = f"counter-{os.getpid()}"

    def increment(current: bytes | None) -> bytes:
        return str(int(current or b"0") + 1).encode()

    async def writer(client: AsyncClient) -> None:
        for _ in range(30):
            await client.update_state("in-memory", key, increment, attempts=200)

    try:
        await asyncio.gather(*(writer(c) for c in clients))
        assert (await clients[0].get_state("in-memory", key)).value == b"150"
    finally:
        for client in clients:
            await client.close()


async def test_the_lock_context_manager_excludes_and_releases(
        tls_car: tuple[Sidecar, Path]) -> None:
    car, certs = tls_car
    ca = (certs / "ca.crt").read_bytes()
    resource = f"res-{os.getpid()}"
    inside: list[str] = []
    overlaps: list[str] = []
    async with AsyncClient(f"https://{car.grpc_address}", api_token=TOKEN,
                           root_certificates=ca) as client:

        async def worker(name: str) -> None:
            async with client.lock("in-memory", resource, name, expire=10, wait=10):
                if inside:
                    overlaps.append(name)
                inside.append(name)
                await asyncio.sleep(0.05)
                inside.remove(name)

        await asyncio.gather(*(worker(f"w{i}") for i in range(4)))
        assert overlaps == []
        async with client.lock("in-memory", resource, expire=10) as held:
            with pytest.raises(LockNotAcquired):
                async with client.lock("in-memory", resource, "other", expire=10, wait=0.2):
                    pass
            assert held.owner  # a random owner was made up
        with pytest.raises(RuntimeError):  # released although the block raised
            async with client.lock("in-memory", resource, "a", expire=10):
                raise RuntimeError("boom")
        assert await client.try_lock("in-memory", resource, "b", 10)
        await client.unlock("in-memory", resource, "b")
    with Client(f"https://{car.grpc_address}", api_token=TOKEN, root_certificates=ca) as sync:
        with sync.lock("in-memory", resource, "sync", expire=5):
            assert not sync.try_lock("in-memory", resource, "x", 5)
        assert sync.try_lock("in-memory", resource, "x", 5)


async def test_a_subscription_outlives_a_reload_of_its_pubsub(
        tls_car: tuple[Sidecar, Path]) -> None:
    car, certs = tls_car
    ca = (certs / "ca.crt").read_bytes()
    topic = f"reload-{os.getpid()}"
    got: list[bytes] = []
    async with (AsyncClient(f"https://{car.grpc_address}", api_token=TOKEN,
                            root_certificates=ca) as client,
                client.subscribe("in-memory", topic) as sub):

        async def consume() -> None:
            async for event in sub:
                got.append(event.data)
                await sub.ack(event)

        consumer = asyncio.create_task(consume())
        await client.publish_event("in-memory", topic, b"before")
        await _until(lambda: got == [b"before"])
        channel = grpc.aio.secure_channel(car.grpc_address, grpc.ssl_channel_credentials(ca))
        await lifecycle_pb2_grpc.LifecycleStub(channel).ApplyConfiguration(
            lifecycle_pb2.DynamicConfiguration(component_config=lifecycle_pb2.ComponentConfig(
                kind="pubsub", name="in-memory", metadata={"maxQueuedMessages": "5000"})),
            metadata=(("dapr-api-token", TOKEN),), timeout=30)
        await channel.close()
        await _until(lambda: sub.resubscribed == 1)  # the sidecar ended the stream
        for n in range(5):
            await client.publish_event("in-memory", topic, f"after-{n}")
        await _until(lambda: len(got) == 6)
        assert got == [b"before", *(f"after-{n}".encode() for n in range(5))]
        assert not consumer.done()
        consumer.cancel()


async def test_unavailable_calls_are_retried_until_the_sidecar_is_back(
        tmp_path: Path) -> None:
    port = free_port()
    car = Sidecar(tmp_path / "late", grpc_port=port)
    policy = RetryPolicy(max_attempts=40, initial_backoff=0.1, max_backoff=0.5)
    async with AsyncClient(f"127.0.0.1:{port}", retry=policy, timeout=5) as client:
        starting = asyncio.create_task(asyncio.to_thread(car.start))  # not up yet
        try:
            assert (await client.get_state("in-memory", "k")).value == b""  # retried meanwhile
            await starting
            with pytest.raises(ClientError) as info:  # a refusal is not retried
                await client.get_state("no-such-store", "k")
            assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
        finally:
            await starting
            car.stop()
    async with AsyncClient(f"127.0.0.1:{port}", retry=policy, timeout=5) as client:
        with pytest.raises(ClientError) as info:  # publishing may happen twice: one attempt
            await client.publish_event("in-memory", "t", b"x")
        assert info.value.code == grpc.StatusCode.UNAVAILABLE


async def _until(check: Callable[[], bool], within: float = 15) -> None:
    """Poll ``check`` (a condition on what another task records) until it holds."""
    async with asyncio.timeout(within):
        while not check():  # noqa: ASYNC110 - the condition has no event to wait on
            await asyncio.sleep(0.02)
