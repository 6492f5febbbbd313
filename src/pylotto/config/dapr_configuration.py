"""Dapr's ``kind: Configuration`` (``apiVersion: dapr.io/v1alpha1``): ``pylotto run --config
config.yaml`` with the file ``dapr run --config`` takes, or such a manifest in a resources
folder. What it says maps onto pylotto's own settings:

- ``spec.tracing``: ``samplingRate`` (a string, "0" to "1"; "0" or no exporter: nothing
  recorded, trace context passed on), ``zipkin.endpointAddress``, ``otel.endpointAddress`` /
  ``protocol: grpc|http`` / ``isSecure`` (default true, as Dapr), ``stdout: true`` (spans
  printed) → ``tracing``. One exporter at a time.
- ``spec.metric`` / ``spec.metrics`` (the latter wins, as in Dapr): ``enabled: false`` turns
  ``/metrics`` off.
- ``spec.secrets.scopes`` → the secret scopes (:mod:`pylotto.security.secret_scopes`).
- ``spec.accessControl`` → Dapr's access list (:mod:`pylotto.security.dapr_acl`).
- ``spec.api`` (``allowed`` / ``denied``) → the API allow and deny lists
  (:mod:`pylotto.security.api_allowlist`).
- ``spec.components.deny`` (``<type>`` or ``<type>/<version>``): such components are not
  loaded (logged), from any source.
- ``spec.nameResolution.component``: ``mdns`` (Dapr's self-hosted default) keeps pylotto's
  default; ``kubernetes`` → pylotto's ``kubernetes`` resolver (``<app-id>-dapr.<namespace>.svc.
  <clusterDomain>``; ``clusterDomain`` and ``template`` passed on).
- ``spec.features``: ``HotReload`` → hot reload on or off; other names are recorded, with
  a warning (pylotto has nothing they switch).
- ``spec.mtls.enabled: false``, empty pipelines, ``spec.logging.apiLogging.enabled: false``:
  accepted (what pylotto does anyway).

Refused by name, with the reason: what pylotto does not do — HTTP middleware
pipelines, Sentry mTLS (``spec.mtls.enabled: true``; use the ``mtls`` certificate files of
pylotto.yaml), metric rules and the other metric options, API logging,
the WASM strict sandbox, workflow limits, OTLP headers and timeouts, and any key Dapr's
Configuration does not have. As ``daprd``, ``$VAR`` / ``${VAR}`` in the file are replaced by
the environment's values.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pylotto.core.errors import ConfigError
from pylotto.observability.tracing import TracingConfig
from pylotto.security.api_allowlist import ApiSpec
from pylotto.security.dapr_acl import AccessControlSpec
from pylotto.security.secret_scopes import SecretScope, SecretScopes

log = logging.getLogger("pylotto.config")

KIND = "Configuration"
API_GROUP = "dapr.io/"
HOT_RELOAD = "HotReload"
KNOWN_FEATURES = {
    HOT_RELOAD: "hot reload of component files",
    "ActorStateTTL": "", "WorkflowsClusteredDeployment": "",
    "WorkflowsRemoteActivityReminder": "", "WorkflowHistorySigning": "", "WorkflowsFastPath": "",
}
"""Dapr's preview features (pkg/config); "" for those that change nothing in pylotto
(workflows, which it does not serve; ``ActorStateTTL``: actor state takes ``ttlInSeconds``
always): accepted, with a warning."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ZipkinSpec(_Model):
    endpoint_address: str = Field("", alias="endpointAddress")


class OtelSpec(_Model):
    protocol: str = ""
    endpoint_address: str = Field("", alias="endpointAddress")
    is_secure: bool | None = Field(None, alias="isSecure")
    headers: Any = None
    timeout: Any = None


class TracingSpec(_Model):
    sampling_rate: str = Field("", alias="samplingRate")
    stdout: bool = False
    zipkin: ZipkinSpec | None = None
    otel: OtelSpec | None = None


class MetricSpec(_Model):
    enabled: bool | None = None
    record_error_codes: Any = Field(None, alias="recordErrorCodes")
    http: Any = None
    latency_distribution_buckets: Any = Field(None, alias="latencyDistributionBuckets")
    workflow: Any = None
    rules: Any = None


class SecretsSpec(_Model):
    scopes: list[SecretScope] = Field(default_factory=list)


class NameResolutionSpec(_Model):
    component: str = ""
    version: str = ""
    configuration: Any = None


class FeatureSpec(_Model):
    name: str
    enabled: bool = False


class MtlsSpec(_Model):
    enabled: bool = False
    workload_cert_ttl: str = Field("", alias="workloadCertTTL")
    allowed_clock_skew: str = Field("", alias="allowedClockSkew")
    sentry_address: str = Field("", alias="sentryAddress")
    control_plane_trust_domain: str = Field("", alias="controlPlaneTrustDomain")
    token_validators: Any = Field(None, alias="tokenValidators")


class ConfigurationSpec(_Model):
    http_pipeline: Any = Field(None, alias="httpPipeline")
    app_http_pipeline: Any = Field(None, alias="appHttpPipeline")
    tracing: TracingSpec | None = None
    mtls: MtlsSpec | None = None
    metric: MetricSpec | None = None
    metrics: MetricSpec | None = None
    secrets: SecretsSpec | None = None
    access_control: AccessControlSpec | None = Field(None, alias="accessControl")
    name_resolution: NameResolutionSpec | None = Field(None, alias="nameResolution")
    features: list[FeatureSpec] = Field(default_factory=list)
    api: ApiSpec | None = None
    components: Any = None
    logging: Any = None
    wasm: Any = None
    workflow: Any = None


class DaprSettings(_Model):
    """What a Dapr Configuration sets that has no pylotto setting of its own."""

    name: str = ""
    """``metadata.name`` of the Configuration applied."""
    access_control: AccessControlSpec | None = None
    features: dict[str, bool] = Field(default_factory=dict)
    """Dapr's preview features as the Configuration lists them."""
    api: ApiSpec | None = None
    """The API allow/deny lists (:mod:`pylotto.security.api_allowlist`)."""
    components_deny: list[str] = Field(default_factory=list)
    """``spec.components.deny``: ``<type>`` or ``<type>/<version>`` never loaded."""

    def allows_component(self, name: str, component_type: str, version: str) -> bool:
        """False for a component the deny list names (Dapr: with a deny list, a component
        without a type or version is denied too); logged as Dapr logs it."""
        if not self.components_deny:
            return True
        denied = not component_type or not version or any(
            denied_type == component_type and denied_version in ("", version)
            for denied_type, _, denied_version in (e.partition("/")
                                                   for e in self.components_deny))
        if denied:
            log.warning("component '%s' cannot be loaded because components of type "
                        "'%s/%s' are not allowed", name, component_type, version)
        return not denied

    def enabled_features(self) -> list[str]:
        return [name for name, on in self.features.items() if on]


def is_configuration(document: dict[str, Any]) -> bool:
    """True for a ``kind: Configuration`` document of Dapr's API group."""
    return document.get("kind") == KIND and str(document.get("apiVersion") or "").startswith(
        API_GROUP)


def expand_env(text: str) -> str:
    """``$VAR`` and ``${VAR}`` replaced by the environment's values (unset: ""), as daprd's
    ``os.ExpandEnv`` does before it reads the file."""

    def value(match: re.Match[str]) -> str:
        return os.environ.get(match.group(1) or match.group(2), "")

    return re.sub(r"\$\{([^}]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)", value, text)


def runtime_fields(document: dict[str, Any], path: Path) -> dict[str, Any]:
    """The RuntimeConfig fields a Configuration document sets (plain values, validated by
    the caller); ConfigError names the file, the key and why it is refused."""
    where = f"{path}: Configuration {(document.get('metadata') or {}).get('name', '')}"
    extra = sorted(set(document) - {"apiVersion", "kind", "metadata", "spec", "scopes"})
    if extra:
        raise ConfigError(f"{where}: unknown top-level key(s) {', '.join(extra)}")
    try:
        spec = ConfigurationSpec.model_validate(document.get("spec") or {})
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = ".".join(str(p) for p in error["loc"])
        if error["type"] == "extra_forbidden":
            raise ConfigError(f"{where}: spec.{loc} is not a setting of Dapr's Configuration"
                              ) from None
        raise ConfigError(f"{where}: spec.{loc}: {error['msg']}") from None
    _refuse_unsupported(spec, where)
    warnings: list[str] = []
    fields: dict[str, Any] = {"warnings": warnings}
    if spec.tracing is not None:
        fields["tracing"] = _tracing(spec.tracing, where)
    metric = spec.metrics if spec.metrics is not None and spec.metrics.enabled is not None \
        else spec.metric
    if metric is not None and metric.enabled is not None:
        fields["metrics_enabled"] = metric.enabled
    if spec.secrets is not None:
        try:
            SecretScopes(spec.secrets.scopes)  # Dapr's validation, at load time
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc.message}") from None
        fields["secret_scopes"] = spec.secrets.scopes
    resolution = _name_resolution(spec.name_resolution, where)
    if resolution is not None:
        fields["name_resolution"] = resolution
    features: dict[str, bool] = {}
    for feature in spec.features:
        features[feature.name] = feature.enabled
        if feature.name == HOT_RELOAD:
            fields["hot_reload"] = {"enabled": feature.enabled}
        elif feature.name not in KNOWN_FEATURES:
            warnings.append(f"{where}: feature {feature.name!r} is not one Dapr or pylotto "
                            "knows; it changes nothing")
        elif feature.enabled:
            warnings.append(f"{where}: feature {feature.name} changes nothing in pylotto "
                            "(workflows are not served; actor state TTLs always are)")
    if spec.access_control is not None:
        spec.access_control.compiled(http=True)  # Dapr's validation, at load time
    fields["dapr"] = DaprSettings(name=str((document.get("metadata") or {}).get("name", "")),
                                  access_control=spec.access_control, features=features,
                                  api=spec.api, components_deny=_deny_list(spec.components,
                                                                           where))
    return fields


def _refuse_unsupported(spec: ConfigurationSpec, where: str) -> None:
    refused = {
        "spec.httpPipeline": (_handlers(spec.http_pipeline),
                              "HTTP middleware pipelines are not supported"),
        "spec.appHttpPipeline": (_handlers(spec.app_http_pipeline),
                                 "app HTTP middleware pipelines are not supported"),
        "spec.components": (spec.components if not isinstance(spec.components, dict) else
                            sorted(set(spec.components) - {"deny"}),
                            "only components.deny is a setting"),
        "spec.logging.apiLogging": (_api_logging(spec.logging),
                                    "API logging is not supported"),
        "spec.wasm.strictSandbox": ((spec.wasm or {}).get("strictSandbox")
                                    if isinstance(spec.wasm, dict) else spec.wasm,
                                    "the WASM strict sandbox is not supported"),
        "spec.workflow": (spec.workflow, "workflow settings (concurrency limits, state "
                                         "retention) are not supported"),
    }
    if spec.mtls is not None and spec.mtls.enabled:
        refused["spec.mtls.enabled"] = (True, "Sentry mTLS is not supported: give pylotto "
                                        "the certificate files (mtls in pylotto.yaml)")
    for metric_key, metric in (("metric", spec.metric), ("metrics", spec.metrics)):
        if metric is None:
            continue
        for key, value in (("recordErrorCodes", metric.record_error_codes),
                           ("http", metric.http), ("rules", metric.rules),
                           ("latencyDistributionBuckets", metric.latency_distribution_buckets),
                           ("workflow", metric.workflow)):
            refused[f"spec.{metric_key}.{key}"] = (
                value, "not supported: pylotto's metrics are its own (pylotto_*), only "
                "'enabled' applies")
    if spec.tracing is not None and spec.tracing.otel is not None:
        refused["spec.tracing.otel.headers"] = (spec.tracing.otel.headers,
                                                "OTLP exporter headers are not supported")
        refused["spec.tracing.otel.timeout"] = (spec.tracing.otel.timeout,
                                                "OTLP exporter timeouts are not supported")
    for key, (value, reason) in refused.items():
        if value not in (None, False, "", [], {}):
            raise ConfigError(f"{where}: {key}: {reason}")


def _deny_list(components: Any, where: str) -> list[str]:
    deny = components.get("deny") if isinstance(components, dict) else None
    if deny is None:
        return []
    if not isinstance(deny, list) or not all(isinstance(d, str) for d in deny):
        raise ConfigError(f"{where}: spec.components.deny must be a list of component types")
    return [d for d in deny if d]


def _handlers(pipeline: Any) -> Any:
    return pipeline.get("handlers") if isinstance(pipeline, dict) else pipeline


def _api_logging(logging: Any) -> Any:
    if not isinstance(logging, dict):
        return logging
    api = logging.get("apiLogging")
    return api.get("enabled") if isinstance(api, dict) else api


def _tracing(spec: TracingSpec, where: str) -> TracingConfig | None:
    try:
        rate = float(spec.sampling_rate) if spec.sampling_rate else 0.0
    except ValueError:
        raise ConfigError(f"{where}: spec.tracing.samplingRate {spec.sampling_rate!r} is not "
                          "a number") from None
    if not 0.0 <= rate <= 1.0:
        raise ConfigError(f"{where}: spec.tracing.samplingRate must be from 0 to 1")
    otel = spec.otel if spec.otel is not None and spec.otel.endpoint_address else None
    zipkin = spec.zipkin.endpoint_address if spec.zipkin is not None else ""
    chosen = [name for name, on in (("otel", otel), ("zipkin", zipkin),
                                    ("stdout", spec.stdout)) if on]
    if len(chosen) > 1:
        raise ConfigError(f"{where}: spec.tracing: {' and '.join(chosen)} both set; pylotto "
                          "exports spans to one place")
    if rate == 0.0 or not chosen:
        return None  # Dapr records nothing then; trace context is still passed on
    if zipkin:
        return TracingConfig(sampling_rate=rate, exporter="zipkin", endpoint=zipkin)
    if otel is not None:
        secure = otel.is_secure is None or otel.is_secure
        protocol = otel.protocol.lower() or "grpc"
        if protocol not in ("grpc", "http"):
            raise ConfigError(f"{where}: spec.tracing.otel.protocol must be grpc or http")
        address = otel.endpoint_address
        if protocol == "http":
            if "://" not in address:
                address = f"{'https' if secure else 'http'}://{address}"
            if not address.rstrip("/").endswith("/v1/traces"):
                address = address.rstrip("/") + "/v1/traces"
            return TracingConfig(sampling_rate=rate, exporter="otlp-http", endpoint=address)
        return TracingConfig(sampling_rate=rate, exporter="otlp-grpc", endpoint=address,
                             secure=secure)
    return TracingConfig(sampling_rate=rate, exporter="console")


def _name_resolution(spec: NameResolutionSpec | None, where: str) -> dict[str, Any] | None:
    if spec is None or not spec.component or spec.component == "mdns":
        return None  # Dapr's self-hosted default: pylotto's own default
    if spec.component == "kubernetes":
        settings = spec.configuration if isinstance(spec.configuration, dict) else {}
        return {"type": "kubernetes", "metadata": {
            key: str(value) for key, value in settings.items() if value not in (None, "")}}
    raise ConfigError(f"{where}: spec.nameResolution.component {spec.component!r} is not "
                      "supported (mdns or kubernetes; pylotto's own: name_resolution in "
                      "pylotto.yaml — static, redis, dns, kubernetes)")
