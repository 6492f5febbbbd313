"""Name resolution ``kubernetes``: the address form of Dapr's nameresolution.kubernetes and the
lookup of its cluster DNS name (answered by a stub at the resolver's DNS boundary)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pylotto.config.model import RuntimeConfig
from pylotto.core.errors import ConfigError
from pylotto.resolution.kubernetes import KubernetesResolver, pod_namespace, system_lookup


class StubDns:
    """The cluster DNS: a fixed table of names, recording each question."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table
        self.asked: list[tuple[str, int]] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append((host, port))
        return list(self.table.get(host, []))


def test_address_is_daprs_form(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NAMESPACE", "abc")
    # components-contrib's own cases: myid in abc, port 1234
    assert KubernetesResolver({"port": "1234"}).address("myid") == \
        "myid-dapr.abc.svc.cluster.local:1234"
    assert KubernetesResolver({"port": "1234", "clusterDomain": "mydomain.com"}).address(
        "myid") == "myid-dapr.abc.svc.mydomain.com:1234"
    assert KubernetesResolver({"port": "1234", "template":
                               "{{.ID}}-{{.Namespace}}.internal:{{.Port}}"}).address(
        "myid") == "myid-abc.internal:1234"
    assert KubernetesResolver({}).address("orders") == \
        "orders-dapr.abc.svc.cluster.local:50001"
    assert KubernetesResolver({"namespace": "shop"}).address("orders") == \
        "orders-dapr.shop.svc.cluster.local:50001"


def test_namespace_from_env_then_service_account(tmp_path: Path) -> None:
    account = tmp_path / "namespace"
    assert pod_namespace({"NAMESPACE": "prod"}, account) == "prod"
    assert pod_namespace({}, account) == "default"
    account.write_text("payments\n")
    assert pod_namespace({}, account) == "payments"
    assert pod_namespace({"NAMESPACE": " "}, account) == "payments"


async def test_every_address_of_the_name_is_a_sidecar(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NAMESPACE", "shop")
    dns = StubDns({"orders-dapr.shop.svc.cluster.local": ["10.1.0.7", "10.1.0.5", "10.1.0.7"],
                   "v6-dapr.shop.svc.cluster.local": ["fd00::5"]})
    resolver = KubernetesResolver({"port": "50002"}, lookup=dns)
    assert await resolver.resolve("orders") == ["10.1.0.5:50002", "10.1.0.7:50002"]
    assert await resolver.resolve("v6") == ["[fd00::5]:50002"]
    assert await resolver.resolve("nobody") == []
    assert dns.asked == [("orders-dapr.shop.svc.cluster.local", 50002),
                         ("v6-dapr.shop.svc.cluster.local", 50002),
                         ("nobody-dapr.shop.svc.cluster.local", 50002)]


async def test_template_port_is_the_one_called() -> None:
    dns = StubDns({"orders.internal": ["10.2.0.1"]})
    resolver = KubernetesResolver({"template": "{{.ID}}.internal:7000"}, lookup=dns)
    assert await resolver.resolve("orders") == ["10.2.0.1:7000"]
    bare = KubernetesResolver({"template": "{{ .ID }}.internal", "port": "7001"}, lookup=dns)
    assert await bare.resolve("orders") == ["10.2.0.1:7001"]


def test_bad_metadata_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"\.Data"):
        KubernetesResolver({"template": "{{.ID}}-{{.Data.region}}:1"})
    with pytest.raises(ConfigError, match=r"\{\{\.ID\}\}"):
        KubernetesResolver({"template": "fixed:1"})
    with pytest.raises(ConfigError, match="only"):
        KubernetesResolver({"template": "{{.ID}}{{if .Port}}x{{end}}"})
    with pytest.raises(ConfigError, match="port"):
        KubernetesResolver({"port": "http"})


async def test_system_lookup_reads_the_system_resolver() -> None:
    assert "127.0.0.1" in await system_lookup("localhost", 1)
    assert await system_lookup("no-such-app.invalid", 1) == []


def test_pylotto_yaml_takes_the_type() -> None:
    cfg = RuntimeConfig.model_validate({"name_resolution": {
        "type": "kubernetes", "metadata": {"clusterDomain": "corp.example"}}})
    assert cfg.name_resolution is not None and cfg.name_resolution.type == "kubernetes"


def test_the_default_port_is_the_sidecars_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NAMESPACE", "shop")
    assert KubernetesResolver({}, default_port=50002).address("orders") == \
        "orders-dapr.shop.svc.cluster.local:50002"
    assert KubernetesResolver({"port": "7000"}, default_port=50002).address("orders") == \
        "orders-dapr.shop.svc.cluster.local:7000"


def test_mode_kubernetes_makes_it_the_default() -> None:
    from pylotto.config.model import embedded_default
    from pylotto.process.dapr_run import with_default_resolution

    chosen = with_default_resolution(embedded_default(), "kubernetes").name_resolution
    assert chosen is not None and chosen.type == "kubernetes"
    standalone = with_default_resolution(embedded_default()).name_resolution
    assert standalone is not None and standalone.type == "mdns"
