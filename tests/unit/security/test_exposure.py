"""An API listener reachable from the network needs an API token, or an explicit allowance
(issue 22, several hosts)."""

from __future__ import annotations

import logging
import re

import pytest

from pylotto.config.model import ListenConfig, RuntimeConfig
from pylotto.core.addresses import reachable_from_network, split_host_port
from pylotto.core.errors import ConfigError
from pylotto.process.server import Sidecar
from pylotto.security.exposure import check_exposure, open_listeners


@pytest.mark.parametrize(("address", "reachable"), [
    ("127.0.0.1:50001", False), ("127.0.0.5:50001", False), ("[::1]:50001", False),
    ("localhost:50001", False), ("unix:/tmp/dapr.sock", False), ("", False),
    ("0.0.0.0:50001", True), (":50001", True), ("[::]:50001", True), ("10.1.2.3:3500", True),
    ("[fd00::1]:3500", True), ("no-such-host.invalid:3500", True),
])
def test_what_is_reachable_from_the_network(address: str, reachable: bool) -> None:
    assert reachable_from_network(address) is reachable


@pytest.mark.parametrize(("address", "parts"), [
    ("10.0.0.1:80", ("10.0.0.1", "80")), ("[fd00::1]:80", ("fd00::1", "80")),
    ("fd00::1", ("fd00::1", "")), ("[fd00::1]", ("fd00::1", "")), (":80", ("", "80")),
    ("node", ("node", "")),
])
def test_host_and_port_are_split(address: str, parts: tuple[str, str]) -> None:
    assert split_host_port(address) == parts


LOOPBACK = {"layotto_grpc": "127.0.0.1:34904", "dapr_grpc": "127.0.0.1:50001",
            "dapr_http": "127.0.0.1:3500"}


def test_apis_on_the_loopback_start_with_no_token() -> None:
    check_exposure(LOOPBACK, api_token=False, allowed=False)


def test_an_api_on_the_network_with_no_token_is_refused_naming_it() -> None:
    listen = {**LOOPBACK, "dapr_grpc": "0.0.0.0:50001", "dapr_http": "10.0.0.7:3500"}
    assert open_listeners(listen) == ["Dapr gRPC API on 0.0.0.0:50001",
                                      "Dapr HTTP API on 10.0.0.7:3500"]
    with pytest.raises(ConfigError) as refused:
        check_exposure(listen, api_token=False, allowed=False)
    message = refused.value.message
    assert message.startswith("refusing to start: Dapr gRPC API on 0.0.0.0:50001, Dapr HTTP "
                              "API on 10.0.0.7:3500 would be reachable from the network")
    assert "listen.allow_insecure_network: true, --allow-insecure-network" in message


def test_a_token_or_the_allowance_lets_it_start(caplog: pytest.LogCaptureFixture) -> None:
    listen = {**LOOPBACK, "layotto_grpc": "0.0.0.0:34904"}
    check_exposure(listen, api_token=True, allowed=False)
    assert not caplog.records
    with caplog.at_level(logging.WARNING, "pylotto.security"):
        check_exposure(listen, api_token=False, allowed=True)
    assert "Layotto gRPC API on 0.0.0.0:34904: reachable from the network with no API " \
           "token" in caplog.text


def test_the_internal_port_actuator_and_metrics_are_not_api_listeners() -> None:
    """The internal port serves mTLS clients only; probes and scrapes need no token."""
    check_exposure({**LOOPBACK, "internal_grpc": "0.0.0.0:50002", "actuator": "0.0.0.0:34999",
                    "metrics": "0.0.0.0:9090"}, api_token=False, allowed=False)


def test_the_sidecar_refuses_before_it_binds_anything() -> None:
    config = RuntimeConfig(listen=ListenConfig(dapr_http="0.0.0.0:3500"))
    refusal = re.escape("refusing to start: Dapr HTTP API on 0.0.0.0:3500")
    with pytest.raises(ConfigError, match=refusal):
        Sidecar(config)


def test_workers_are_refused_before_any_is_spawned() -> None:
    from pylotto.process.hotreload import ComponentSources
    from pylotto.process.workers import run_workers

    config = RuntimeConfig(components=[], listen=ListenConfig(layotto_grpc="0.0.0.0:34904"))
    with pytest.raises(ConfigError, match="refusing to start: Layotto gRPC API"):
        run_workers(config, ComponentSources(None, ()), 2, use_uvloop=False,
                    log_level="info", log_format="text")
