"""Several hosts (issue 22): three sidecars on three hosts — Linux network namespaces joined by
veth links to a bridge (tests/e2e/netns.py), addresses in a private subnet only they have —
invoke each other's apps by app id over mTLS, finding each other by name resolution ``redis``
(a Redis server on the bridge), ``static`` and ``mdns`` (multicast on the bridge).

Each sidecar keeps its APIs on 127.0.0.1 of its host and only the internal mTLS port on every
interface (``0.0.0.0``), with no ``advertise``: what it announces is its host's address (hosts 1
and 2 have no route but their subnet: found from the interfaces; host 3 has a default route:
found from it; a host with loopback only: an error asking for ``advertise``). And an API
listener on the network with no API token is refused at start, unless allowed explicitly; with
a token it serves, to callers carrying it.

Needs root and iproute2 (``scripts/start-services.sh`` installs it); without them the tests
fail, they are never skipped.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from pylotto.security.certs import make_app_cert, make_ca
from tests.e2e.netns import BRIDGE_ADDRESS, Host, NetnsUnavailable, Network, stop_process

pytestmark = pytest.mark.e2e

APPS = ("alpha", "beta", "gamma")
"""The app id of host 1, 2, 3."""
REDIS_PORT = 46379
# Each host is a namespace of its own, with ports of its own: these collide with nothing.
APP_PORT = 43080
DAPR_HTTP_PORT = 43500
DAPR_GRPC_PORT = 43001
LAYOTTO_PORT = 43904
INTERNAL_PORT = 43002
ACTUATOR_PORT = 43999
EXPOSED_PORT = 44500
READY_SECONDS = 90.0
"""Generous: on a loaded machine three sidecars importing at once take a while."""
FOUND_SECONDS = 30.0
HOST_APP = Path(__file__).parent / "apps" / "host_app.py"
UNSET_ENV = ("DAPR_HOST_IP", "DAPR_API_TOKEN", "PYLOTTO_ALLOW_INSECURE_NETWORK")
"""What the runner's environment must not decide for the sidecars under test."""


@dataclass
class Agent:
    """The app of one host (tests/e2e/apps/host_app.py), which also makes HTTP calls from
    inside the host for the test."""

    host: Host
    app_id: str
    process: subprocess.Popen[str]

    def get(self, url: str, token: str = "") -> tuple[int, str]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(f"GET {url} {token}".rstrip() + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        assert line, f"the app of {self.host.namespace} exited"
        answer = json.loads(line)
        return int(answer["status"]), str(answer["body"])


@dataclass
class World:
    network: Network
    agents: list[Agent]
    certs: Path
    workdir: Path


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    workdir = tmp_path_factory.mktemp("hosts")
    network = Network(3, routed=[3])
    try:
        network.create()
    except NetnsUnavailable as exc:
        pytest.fail(f"cannot make the test hosts with ip netns: {exc}")
    try:
        certs = workdir / "certs"  # what `pylotto cert ca` and `pylotto cert app` write
        make_ca(certs)
        for app_id in APPS:
            make_app_cert(app_id, certs, certs)
        network.bridge.popen(
            ["redis-server", "--bind", BRIDGE_ADDRESS, "--port", str(REDIS_PORT), "--save", "",
             "--appendonly", "no", "--protected-mode", "no", "--dir", str(workdir)],
            log=workdir / "redis.log")  # no other client can reach this private subnet
        agents = []
        for host, app_id in zip(network.hosts, APPS, strict=True):
            process = host.popen([sys.executable, str(HOST_APP), str(APP_PORT), app_id],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            assert process.stdout is not None
            assert json.loads(process.stdout.readline()) == {"ready": True}
            agents.append(Agent(host, app_id, process))
        _wait_redis(network.bridge)
        yield World(network, agents, certs, workdir)
    finally:
        network.close()


def _wait_redis(bridge: Host) -> None:
    deadline = time.monotonic() + 10
    while bridge.run(["redis-cli", "-h", BRIDGE_ADDRESS, "-p", str(REDIS_PORT),
                      "PING"]).stdout.strip() != "PONG":
        assert time.monotonic() < deadline, "redis-server did not start on the bridge"
        time.sleep(0.1)


def _resolution(kind: str, network: Network) -> dict[str, Any]:
    if kind == "redis":
        return {"type": "redis", "metadata": {"redisHost": f"{BRIDGE_ADDRESS}:{REDIS_PORT}",
                                              "ttl": "5s"}}
    if kind == "static":
        return {"type": "static", "metadata": {"apps": {
            app_id: [f"{host.address}:{INTERNAL_PORT}"]
            for host, app_id in zip(network.hosts, APPS, strict=True)}}}
    return {"type": "mdns", "metadata": {"interfaces": "all", "resolveTimeout": "3s"}}


@dataclass
class Car:
    host: Host
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def _start(world: World, host: Host, name: str, body: dict[str, Any],
           *args: str) -> Car:
    folder = world.workdir / name
    folder.mkdir(parents=True, exist_ok=True)
    body = {"data_dir": str(folder / "data"), "grace_period_seconds": 2,
            "hot_reload": {"enabled": False}, **body}
    (folder / "pylotto.yaml").write_text(yaml.safe_dump(body))
    log = folder / "sidecar.log"
    env = {k: v for k, v in os.environ.items() if k not in UNSET_ENV}
    process = host.popen([sys.executable, "-m", "pylotto", "run", "-c",
                          str(folder / "pylotto.yaml"), "--log-level", "debug", *args],
                         log=log, cwd=folder, env=env)
    return Car(host, process, log)


def _wait_ready(car: Car) -> None:
    deadline = time.monotonic() + READY_SECONDS
    while "pylotto ready" not in car.output():
        if car.process.poll() is not None:
            raise AssertionError(f"{car.host.namespace}: pylotto exited with "
                                 f"{car.process.returncode}:\n{car.output()}")
        assert time.monotonic() < deadline, f"not ready:\n{car.output()}"
        time.sleep(0.05)


def _sidecar_config(world: World, app_id: str, resolution: dict[str, Any]) -> dict[str, Any]:
    return {
        "app": {"app_id": app_id, "port": APP_PORT},
        "listen": {"layotto_grpc": f"127.0.0.1:{LAYOTTO_PORT}",
                   "dapr_grpc": f"127.0.0.1:{DAPR_GRPC_PORT}",
                   "dapr_http": f"127.0.0.1:{DAPR_HTTP_PORT}",
                   "actuator": f"127.0.0.1:{ACTUATOR_PORT}",
                   "internal_grpc": f"0.0.0.0:{INTERNAL_PORT}"},
        "mtls": {"ca_file": str(world.certs / "ca.crt"),
                 "cert_file": str(world.certs / f"{app_id}.crt"),
                 "key_file": str(world.certs / f"{app_id}.key")},
        "name_resolution": resolution,
        "components": {"state": {"in-memory": {"type": "in-memory"}}},
    }


@pytest.mark.parametrize("kind", ["redis", "static", "mdns"])
def test_three_hosts_invoke_each_other_over_mtls(world: World, kind: str) -> None:
    network = world.network
    resolution = _resolution(kind, network)
    cars = [_start(world, host, f"{kind}-{app_id}",
                   _sidecar_config(world, app_id, resolution))
            for host, app_id in zip(network.hosts, APPS, strict=True)]
    try:
        for car in cars:
            _wait_ready(car)
        for agent in world.agents:
            for peer in APPS:
                if peer == agent.app_id:
                    continue
                url = (f"http://127.0.0.1:{DAPR_HTTP_PORT}/v1.0/invoke/{peer}/method/who"
                       f"?from={agent.app_id}")
                deadline = time.monotonic() + FOUND_SECONDS
                while (answer := agent.get(url))[0] != 200:
                    assert time.monotonic() < deadline, (agent.app_id, peer, answer)
                    time.sleep(0.2)
                # served by the peer's app, which learnt the caller from its certificate
                assert json.loads(answer[1]) == {"app": peer, "caller": agent.app_id,
                                                 "path": f"/who?from={agent.app_id}"}
        for car, host, app_id in zip(cars, network.hosts, APPS, strict=True):
            announced = f"{host.address}:{INTERNAL_PORT}"
            if kind == "redis":  # what the registry holds: the host's address, no wildcard
                entries = network.bridge.run(
                    ["redis-cli", "-h", BRIDGE_ADDRESS, "-p", str(REDIS_PORT), "--raw",
                     "HKEYS", f"pylotto-apps:{app_id}"]).stdout.split()
                assert entries == [announced]
            if kind != "static":
                assert f"announcing {announced} to name resolution" in car.output()
    finally:  # every sidecar stopped before any verdict: the next case reuses the ports
        codes = [stop_process(car.process) for car in cars]
    assert codes == [0, 0, 0], [car.output() for car in cars]


PROBE = ("from pylotto.core.errors import ConfigError\n"
         "from pylotto.resolution.advertise import advertised_address\n"
         "try:\n"
         "    print(advertised_address('0.0.0.0:50002'))\n"
         "except ConfigError as exc:\n"
         "    print(exc.message)\n")


def test_a_wildcard_listener_announces_its_hosts_address(world: World) -> None:
    """What each host's sidecar announces for ``0.0.0.0:50002`` (in the host itself): from its
    interfaces (no route), from its default route, or an error where loopback is all."""
    network = world.network
    env = {k: v for k, v in os.environ.items() if k not in UNSET_ENV}

    def probe(host: Host) -> str:
        done = host.run([sys.executable, "-c", PROBE], env=env)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    assert probe(network.hosts[0]) == f"{network.hosts[0].address}:50002"
    assert probe(network.hosts[2]) == f"{network.hosts[2].address}:50002"
    assert probe(network.isolated) == (
        "the sidecars' port listens on every interface (0.0.0.0:50002) and this host has no "
        "address but loopback to announce: set name_resolution.advertise (host or host:port) "
        "or DAPR_HOST_IP")


def _exposed_config(world: World) -> dict[str, Any]:
    return {"listen": {"layotto_grpc": "", "dapr_grpc": "",
                       "dapr_http": f"0.0.0.0:{EXPOSED_PORT}",
                       "actuator": f"127.0.0.1:{ACTUATOR_PORT + 1}"},
            "components": {"state": {"in-memory": {"type": "in-memory"}}}}


def test_an_api_on_the_network_without_a_token_is_refused(world: World) -> None:
    host = world.network.hosts[0]
    car = _start(world, host, "refused", _exposed_config(world))
    assert car.process.wait(READY_SECONDS) == 2, car.output()
    assert (f"refusing to start: Dapr HTTP API on 0.0.0.0:{EXPOSED_PORT} would be reachable "
            "from the network with no API token") in car.output()
    assert "listen.allow_insecure_network: true, --allow-insecure-network" in car.output()


def test_an_api_on_the_network_serves_when_allowed_or_with_a_token(world: World) -> None:
    host, other = world.network.hosts[0], world.agents[1]
    url = f"http://{host.address}:{EXPOSED_PORT}/v1.0/metadata"
    allowed = _start(world, host, "allowed", _exposed_config(world), "--allow-insecure-network")
    try:
        _wait_ready(allowed)
        assert other.get(url)[0] == 200  # another host reaches it, as allowed
        assert "reachable from the network with no API token" in allowed.output()
    finally:
        assert stop_process(allowed.process) == 0, allowed.output()
    token = _start(world, host, "token", _exposed_config(world), "--api-token", "s3cret")
    try:
        _wait_ready(token)
        assert other.get(url)[0] == 401
        assert other.get(url, "s3cret")[0] == 200
    finally:
        assert stop_process(token.process) == 0, token.output()
