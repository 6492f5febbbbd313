"""The address announced to name resolution: never a wildcard (issue 22, several hosts)."""

from __future__ import annotations

import pytest

from pylotto.config.model import ListenConfig, MtlsConfig, NameResolutionConfig, RuntimeConfig
from pylotto.core.errors import ConfigError
from pylotto.process.assembly import advertised
from pylotto.resolution import advertise
from pylotto.resolution.advertise import HOST_IP_ENV, advertised_address


@pytest.fixture(autouse=True)
def _no_host_ip(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(HOST_IP_ENV, raising=False)


def _host(monkeypatch: pytest.MonkeyPatch, routed: str | None, interface: str | None) -> None:
    monkeypatch.setattr(advertise, "_routed_ipv4", lambda: routed)
    monkeypatch.setattr(advertise, "_interface_ipv4", lambda: interface)


@pytest.mark.parametrize("listen", ["127.0.0.1:50001", "10.1.2.3:50001", "[fd00::5]:50001",
                                    "sidecar.example:50001", "unix:/tmp/s.sock"])
def test_a_listener_naming_its_host_is_announced_as_it_is(listen: str) -> None:
    assert advertised_address(listen) == listen


@pytest.mark.parametrize("listen", ["0.0.0.0:50002", ":50002", "[::]:50002"])
def test_a_wildcard_listener_announces_the_routed_address(
        monkeypatch: pytest.MonkeyPatch, listen: str) -> None:
    _host(monkeypatch, "192.168.7.9", "10.0.0.1")
    assert advertised_address(listen) == "192.168.7.9:50002"


def test_with_no_route_the_first_interface_address_is_announced(
        monkeypatch: pytest.MonkeyPatch) -> None:
    _host(monkeypatch, None, "10.203.0.2")
    assert advertised_address("0.0.0.0:50002") == "10.203.0.2:50002"


def test_a_host_with_only_loopback_asks_for_advertise(monkeypatch: pytest.MonkeyPatch) -> None:
    _host(monkeypatch, None, None)
    with pytest.raises(ConfigError, match=r"set name_resolution\.advertise"):
        advertised_address("0.0.0.0:50002")


def test_dapr_host_ip_wins_over_the_listener(monkeypatch: pytest.MonkeyPatch) -> None:
    _host(monkeypatch, "192.168.7.9", None)
    monkeypatch.setenv(HOST_IP_ENV, "172.16.0.4")
    assert advertised_address("0.0.0.0:50002") == "172.16.0.4:50002"
    assert advertised_address("127.0.0.1:50002") == "172.16.0.4:50002"  # as daprd
    monkeypatch.setenv(HOST_IP_ENV, "fd00::4")
    assert advertised_address("0.0.0.0:50002") == "[fd00::4]:50002"


@pytest.mark.parametrize(("explicit", "expected"), [
    ("10.9.9.9:7000", "10.9.9.9:7000"),
    ("10.9.9.9", "10.9.9.9:50002"),           # a host alone: the listener's port
    ("node-3.internal", "node-3.internal:50002"),
    ("fd00::9", "[fd00::9]:50002"),
    ("[fd00::9]:7000", "[fd00::9]:7000"),
])
def test_advertise_wins_over_everything(monkeypatch: pytest.MonkeyPatch, explicit: str,
                                        expected: str) -> None:
    monkeypatch.setenv(HOST_IP_ENV, "172.16.0.4")
    assert advertised_address("0.0.0.0:50002", explicit=explicit) == expected


@pytest.mark.parametrize("explicit", ["0.0.0.0:50002", "[::]:1", "0.0.0.0"])
def test_a_wildcard_advertise_is_refused(explicit: str) -> None:
    with pytest.raises(ConfigError, match="not a wildcard"):
        advertised_address("127.0.0.1:50002", explicit=explicit)


def test_the_sidecars_port_is_the_internal_one_with_mtls(
        monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    _host(monkeypatch, "192.168.7.9", None)
    listen = ListenConfig(dapr_grpc="0.0.0.0:50001", internal_grpc="0.0.0.0:50002")
    plain = RuntimeConfig(listen=listen, name_resolution=NameResolutionConfig(type="redis"))
    assert advertised(plain) == "192.168.7.9:50001"
    mtls = MtlsConfig(ca_file="ca.crt", cert_file="a.crt", key_file="a.key")  # type: ignore[arg-type]
    assert advertised(plain.model_copy(update={"mtls": mtls})) == "192.168.7.9:50002"
    assert advertised(RuntimeConfig(listen=ListenConfig(dapr_grpc="", layotto_grpc=":34904"))
                      ) == "192.168.7.9:34904"

