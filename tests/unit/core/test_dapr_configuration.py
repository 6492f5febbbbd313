"""A Dapr ``kind: Configuration`` as ``--config``: what maps onto pylotto's settings, what is
refused by name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pylotto.config import model as config
from pylotto.core.errors import ConfigError

HEAD = "apiVersion: dapr.io/v1alpha1\nkind: Configuration\nmetadata: {name: appconfig}\n"


def load(tmp_path: Path, spec: str) -> config.RuntimeConfig:
    path = tmp_path / "config.yaml"
    path.write_text(HEAD + "spec:\n" + spec)
    return config.load(path)


def refused(tmp_path: Path, spec: str) -> str:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, spec)
    return info.value.message


def test_dapr_init_config_maps_to_zipkin_tracing_and_keeps_default_components(
        tmp_path: Path) -> None:
    cfg = load(tmp_path, "  tracing:\n    samplingRate: \"1\"\n    zipkin:\n"
                         "      endpointAddress: http://localhost:9411/api/v2/spans\n")
    assert cfg.tracing is not None
    assert (cfg.tracing.exporter, cfg.tracing.endpoint, cfg.tracing.sampling_rate) == (
        "zipkin", "http://localhost:9411/api/v2/spans", 1.0)
    assert cfg.components == config.embedded_default().components
    assert cfg.dapr is not None and cfg.dapr.name == "appconfig"


def test_otel_endpoints_follow_protocol_and_is_secure(tmp_path: Path) -> None:
    grpc = load(tmp_path, "  tracing:\n    samplingRate: '0.5'\n    otel:\n"
                          "      endpointAddress: collector:4317\n")
    assert grpc.tracing is not None
    assert (grpc.tracing.exporter, grpc.tracing.endpoint, grpc.tracing.secure) == (
        "otlp-grpc", "collector:4317", True)  # isSecure defaults to true, as in Dapr
    http = load(tmp_path, "  tracing:\n    samplingRate: '1'\n    otel:\n"
                          "      endpointAddress: localhost:4318\n      protocol: http\n"
                          "      isSecure: false\n")
    assert http.tracing is not None
    assert (http.tracing.exporter, http.tracing.endpoint) == (
        "otlp-http", "http://localhost:4318/v1/traces")


def test_sampling_rate_zero_or_no_exporter_records_nothing(tmp_path: Path) -> None:
    assert load(tmp_path, "  tracing: {samplingRate: '0', zipkin: {endpointAddress: x}}\n"
                ).tracing is None
    assert load(tmp_path, "  tracing: {samplingRate: '1'}\n").tracing is None
    assert "not a number" in refused(tmp_path, "  tracing: {samplingRate: lots}\n")
    assert "both set" in refused(tmp_path, "  tracing: {samplingRate: '1', stdout: true, "
                                           "zipkin: {endpointAddress: x}}\n")


def test_metrics_secret_scopes_features_and_name_resolution(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STORE", "vault")
    cfg = load(tmp_path, "  metric: {enabled: true}\n  metrics: {enabled: false}\n"
                         "  secrets:\n    scopes:\n    - storeName: ${STORE}\n"
                         "      defaultAccess: Deny\n      allowedSecrets: [a]\n"
                         "  features:\n  - {name: HotReload, enabled: false}\n"
                         "  - {name: ActorStateTTL, enabled: true}\n"
                         "  nameResolution: {component: kubernetes}\n")
    assert cfg.metrics_enabled is False  # spec.metrics wins over spec.metric, as in Dapr
    assert [(s.store_name, s.default_access, s.allowed_secrets) for s in cfg.secret_scopes] == [
        ("vault", "deny", ["a"])]
    assert cfg.hot_reload.enabled is False
    assert cfg.dapr is not None and cfg.dapr.enabled_features() == ["ActorStateTTL"]
    assert any("ActorStateTTL" in w for w in cfg.warnings)
    assert cfg.name_resolution is not None and cfg.name_resolution.type == "kubernetes"
    assert cfg.name_resolution.metadata == {}
    assert load(tmp_path, "  nameResolution: {component: mdns}\n").name_resolution is None
    assert "'consul' is not supported" in refused(
        tmp_path, "  nameResolution: {component: consul}\n")


@pytest.mark.parametrize(("spec", "named"), [
    ("  api:\n    allowed:\n    - {name: state, version: v1, protocal: grpc}\n",
     "spec.api.allowed.0.protocal"),
    ("  mtls: {enabled: true, sentryAddress: 'localhost:50001'}\n", "spec.mtls.enabled"),
    ("  metric:\n    enabled: true\n    rules:\n    - {name: dapr_runtime_service_invocation_"
     "req_sent_total}\n", "spec.metric.rules"),
    ("  httpPipeline:\n    handlers:\n    - {name: oauth2, type: middleware.http.oauth2}\n",
     "spec.httpPipeline"),
    ("  logging: {apiLogging: {enabled: true}}\n", "spec.logging.apiLogging"),
    ("  tracing: {samplingRate: '1', otel: {endpointAddress: x, headers: [a=b]}}\n",
     "spec.tracing.otel.headers"),
    ("  tracingg: {samplingRate: '1'}\n", "spec.tracingg is not a setting"),
    ("  secrets:\n    scopes:\n    - {storeName: s, defaultAccess: maybe}\n",
     "spec.secrets.scopes.0.defaultAccess"),
])
def test_what_pylotto_does_not_do_is_refused_by_name(tmp_path: Path, spec: str,
                                                     named: str) -> None:
    assert named in refused(tmp_path, spec)


def test_accepted_when_set_to_what_pylotto_does_anyway(tmp_path: Path) -> None:
    cfg = load(tmp_path, "  mtls: {enabled: false}\n  httpPipeline: {handlers: []}\n"
                         "  logging: {apiLogging: {enabled: false}}\n")
    assert cfg.dapr is not None


def test_access_control_is_validated_as_dapr_does(tmp_path: Path) -> None:
    message = refused(tmp_path, "  accessControl:\n    defaultAction: deny\n    policies:\n"
                                "    - {appId: frontend, defaultAction: allow}\n")
    assert message.endswith("invalid access control spec. missing trustdomain for apps: "
                            "[frontend], missing namespace for apps: [frontend], missing app "
                            "name on at least one of the app policies: false")


def test_repeated_secret_store_is_refused(tmp_path: Path) -> None:
    assert refused(tmp_path, "  secrets:\n    scopes:\n    - {storeName: s}\n"
                             "    - {storeName: s}\n").endswith(
        "s storeName is repeated in secrets configuration")


def test_api_lists_as_dapr(tmp_path: Path) -> None:
    cfg = load(tmp_path, "  api:\n    allowed:\n    - {name: state, version: v1, protocol: grpc}\n"
                         "    - {name: state, version: v1.0, protocol: http}\n"
                         "    - {name: lock, version: v1alpha1, protocol: http}\n"
                         "    denied:\n    - {name: state, version: v1alpha1, protocol: grpc}\n")
    assert cfg.dapr is not None and cfg.dapr.api is not None
    access = cfg.dapr.api.compiled()
    assert access is not None
    assert access.allows_grpc("/dapr.proto.runtime.v1.Dapr/GetState")
    assert not access.allows_grpc("/dapr.proto.runtime.v1.Dapr/GetSecret")
    assert not access.allows_grpc("/dapr.proto.runtime.v1.Dapr/QueryStateAlpha1")
    assert not access.allows_grpc("/spec.proto.runtime.v1.Runtime/GetState")  # no way around
    assert access.allows_grpc("/grpc.health.v1.Health/Check")
    assert access.allows_grpc("/my.own.Service/Method")  # gRPC proxying is not touched
    assert access.allows_http("/v1.0/state/store/key")  # legacy form: v1.0/state prefix
    assert access.allows_http("/v1.0-alpha1/lock/store")  # by group: lock v1alpha1
    assert not access.allows_http("/v1.0-alpha1/unlock/store")
    assert not access.allows_http("/v1.0/secrets/vault/key")
    assert access.allows_http("/v1.0/healthz") and access.allows_http("/v1.0/healthz/outbound")


def test_hot_reload_sees_the_components_start_saw(tmp_path: Path) -> None:
    """With a Dapr Configuration as --config, resources folders replace the embedded default,
    at start and on every reload (not the default plus the folder's)."""
    from pylotto.cli import with_manifests
    from pylotto.process.hotreload import ComponentSources

    folder = tmp_path / "components"
    folder.mkdir()
    (folder / "store.yaml").write_text(
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: statestore}\n"
        "spec: {type: state.in-memory, version: v1}\n")
    cfg = load(tmp_path, "  tracing: {samplingRate: '0'}\n")
    started = with_manifests(cfg, [folder], explicit_config=cfg.dapr is None)
    reloaded = ComponentSources(tmp_path / "config.yaml", (folder,)).load("")
    assert [s.name for s in started.components] == [s.name for s in reloaded] == ["statestore"]


def test_components_deny_list(tmp_path: Path) -> None:
    from pylotto.process.runtime import Runtime

    cfg = load(tmp_path, "  components:\n    deny: [state.in-memory, secretstores.local.env/v2,"
                         " sqlite]\n")  # a bare "sqlite" names no Dapr type
    cfg = cfg.model_copy(update={"data_dir": tmp_path / "data"})
    kept = {(s.capability, s.name) for s in Runtime(cfg).config.components}
    assert ("state", "in-memory") in {(s.capability, s.name) for s in cfg.components}
    assert ("state", "in-memory") not in kept  # its type in Dapr's spelling is denied
    assert ("state", "sqlite") in kept and ("pubsub", "in-memory") in kept
    assert dapr_settings(cfg).allows_component("x", "secretstores.local.env", "v1")
    assert not dapr_settings(cfg).allows_component("x", "secretstores.local.env", "v2")
    assert not dapr_settings(cfg).allows_component("x", "state.redis", "")  # as Dapr
    assert "only components.deny" in refused(tmp_path, "  components: {allow: [x]}\n")


def dapr_settings(cfg: config.RuntimeConfig) -> Any:
    assert cfg.dapr is not None
    return cfg.dapr
