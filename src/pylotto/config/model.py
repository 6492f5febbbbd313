"""Configuration: ``pylotto.yaml`` or a Layotto JSON config → :class:`RuntimeConfig`.

Both forms name components per capability (name → type + metadata). A Layotto config is
recognised by its ``grpc_config`` block (bare, or inside MOSN's ``servers[].listeners[]``) and
mapped section by section (``pub_subs`` → pubsub, ``config_store`` → configuration, ...).
With no file at all, :func:`embedded_default` serves every capability from embedded components.
"""

from __future__ import annotations

import difflib
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from pylotto.config import dapr_configuration, layotto
from pylotto.config.dapr_configuration import DaprSettings
from pylotto.core.errors import ConfigError
from pylotto.core.metadata import decode
from pylotto.core.registry import CAPABILITIES, resolve
from pylotto.core.resiliency import ResiliencyConfig
from pylotto.observability.tracing import TracingConfig
from pylotto.security.access import AccessControl
from pylotto.security.ratelimit import RateRule
from pylotto.security.secret_scopes import SecretScope
from pylotto.wasm.config import WasmConfig

log = logging.getLogger("pylotto.config")

LAYOTTO_SECTIONS = layotto.SECTIONS


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class SecretRef(_Model):
    """A metadata value read from a secret store at start (Dapr's ``secretKeyRef``)."""

    store: str
    name: str
    key: str
    optional: bool = False
    """Layotto's ``secret_ref``: a secret without ``key`` injects nothing (a warning), where
    Dapr's ``secretKeyRef`` fails the component."""


class ComponentSpec(_Model):
    name: str
    capability: str
    type: str
    version: str = "v1"
    metadata: dict[str, Any] = Field(default_factory=dict)
    secrets: dict[str, SecretRef] = Field(default_factory=dict)
    """Metadata keys whose values come from a secret store (resolved at start)."""
    refs: dict[str, str] = Field(default_factory=dict)
    """Layotto's ``component_ref``: ``config_store`` / ``secret_store`` → the name of the
    component of this config it refers to (checked to exist, as Layotto does)."""


class SubscriptionSpec(_Model):
    """A declarative subscription (Dapr's ``kind: Subscription``): events of ``topic`` on
    ``pubsub_name`` go to the app, on its routes."""

    name: str
    pubsub_name: str
    topic: str
    metadata: dict[str, str] = Field(default_factory=dict)
    rules: list[tuple[str, str]] = Field(default_factory=list)
    """(CEL match, path) pairs, tried in order."""
    default_path: str = ""
    dead_letter_topic: str = ""
    bulk_subscribe: tuple[int, int] | None = None
    """Enabled ``bulkSubscribe``: (maxMessagesCount, maxAwaitDurationMs)."""


class NameResolutionConfig(_Model):
    """How this sidecar finds the sidecars of other app ids (service invocation)."""

    type: Literal["static", "redis", "dns", "mdns", "kubernetes"] = "static"
    metadata: dict[str, Any] = Field(default_factory=dict)
    advertise: str = Field("", description="the address (host:port, or a host: the "
                           "listener's port on it) other sidecars call this one at; default: "
                           "the internal port with mtls, else the Dapr gRPC one, else the "
                           "Layotto one, on this host's address when it listens on every "
                           "interface (pylotto.resolution.advertise)")


class AppHealthCheck(_Model):
    """Probe the app (dapr run --enable-app-health-check): while it fails ``threshold`` times
    in a row, the sidecar delivers no events to it and refuses invocations of it."""

    path: str = "/healthz"
    interval_seconds: float = Field(5.0, gt=0)
    timeout_seconds: float = Field(0.5, gt=0)
    threshold: int = Field(3, ge=1)


class AppConfig(_Model):
    """How the sidecar reaches its app; the capabilities read it through their context."""

    id: str = Field("", alias="app_id")
    port: int | None = Field(None, description="the app's port (service invocation, Dapr "
                             "pub/sub delivery)")
    protocol: Literal["http", "https", "h2c", "grpc", "grpcs"] = Field(
        "http", description="what the app serves on its port: HTTP (https: over TLS, the "
        "app's certificate not checked, as Dapr does; h2c: HTTP/2 without TLS), or Dapr's "
        "AppCallback gRPC (grpcs: over TLS, the certificate not checked either)")
    host: str = Field("127.0.0.1", description="the address the app listens on "
                      "(dapr run --app-channel-address)")
    max_concurrency: int | None = Field(None, ge=1, description="calls to the app at once "
                                        "(invocations and deliveries); none: no limit")
    health_check: AppHealthCheck | None = None
    grpc_callback_host: str = "127.0.0.1"
    grpc_callback_port: int | None = Field(None, description="the app's AppCallback gRPC port")
    api_token: SecretStr = Field(SecretStr(""), description="sent to the app as dapr-api-token "
                                 "(APP_API_TOKEN)")

    @property
    def is_grpc(self) -> bool:
        """The app serves Dapr's AppCallback gRPC (``grpc`` or ``grpcs``) on its port."""
        return self.protocol in ("grpc", "grpcs")

    # The spellings API plugins have read since ``PluginContext.app`` was a separate record
    # (``AppSettings``, now this model): kept so their code runs unchanged.
    @property
    def app_id(self) -> str:
        """The app's id (``id``)."""
        return self.id

    @property
    def http_port(self) -> int | None:
        """The app's port (``port``): its HTTP server, or its gRPC one with ``protocol: grpc``."""
        return self.port


class MtlsConfig(_Model):
    """Mutual TLS between sidecars (``pylotto cert`` makes these files for local use)."""

    ca_file: Path
    cert_file: Path
    key_file: Path

    def read(self) -> tuple[bytes, bytes, bytes]:
        """(CA, certificate, key) PEM bytes; ConfigError naming an unreadable file."""
        out = []
        for path in (self.ca_file, self.cert_file, self.key_file):
            try:
                out.append(path.read_bytes())
            except OSError as exc:
                raise ConfigError(f"mtls: cannot read {path}: {exc.strerror}") from None
        return out[0], out[1], out[2]


class TlsConfig(_Model):
    """TLS on the API listeners (Layotto and Dapr gRPC, Dapr HTTP)."""

    cert_file: Path
    key_file: Path

    def read(self) -> tuple[bytes, bytes]:
        out = []
        for path in (self.cert_file, self.key_file):
            try:
                out.append(path.read_bytes())
            except OSError as exc:
                raise ConfigError(f"tls: cannot read {path}: {exc.strerror}") from None
        return out[0], out[1]


class ListenConfig(_Model):
    """Listen addresses; an empty string turns that listener off."""

    layotto_grpc: str = "127.0.0.1:34904"
    internal_grpc: str = Field("127.0.0.1:50002", description="sidecar-to-sidecar calls, "
                               "over mTLS (used when mtls is configured)")
    dapr_grpc: str = "127.0.0.1:50001"
    dapr_http: str = "127.0.0.1:3500"
    actuator: str = "127.0.0.1:34999"
    metrics: str = Field("", description="a listener serving only /metrics (Prometheus), as "
                         "Layotto's prometheus metrics sink; empty: /metrics on the actuator "
                         "only")
    reuse_port: bool = Field(False, description="bind with SO_REUSEPORT, so that several "
                             "worker processes share each port (set by --workers)")
    allow_insecure_network: bool = Field(False, description="start even when an API "
                                         "listener is reachable from the network with no "
                                         "api_token (refused otherwise; see "
                                         "pylotto.security.exposure)")


class HotReloadConfig(_Model):
    """Component files (the config file's components and the manifests of the resources
    folders) watched while running; see docs/operations.md."""

    enabled: bool = True
    interval_seconds: float = Field(1.0, gt=0, description="how often files are checked")
    drain_seconds: float = Field(5.0, ge=0, description="how long a replaced or removed "
                                 "component stays open for the calls already using it")


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "pylotto"


class SchedulerConfig(_Model):
    """The durable scheduler of the Jobs API (docs/scheduler.md)."""

    state_store: str = Field("", description="the state store keeping the jobs; empty: the "
                             "first state store with etags whose data outlives the process")
    poll_seconds: float = Field(0.5, gt=0, description="how often the job index is re-read")
    lease_seconds: float = Field(5.0, gt=0, description="how long a trigger being delivered "
                                 "stays claimed without a renewal (a dead sidecar's trigger "
                                 "fires elsewhere after it)")


class ActorsConfig(_Model):
    """Dapr's virtual actors (docs/actors.md): placed across the sidecars of one app id by
    leases on hash partitions in the actor state store, with no placement service."""

    state_store: str = Field("", description="the actor state store; empty: the component "
                             "whose metadata says actorStateStore: true")
    partitions: int = Field(64, ge=1, le=4096, description="hash partitions of each type's "
                            "actor ids; a partition is leased by one sidecar at a time")
    lease_seconds: float = Field(5.0, gt=0, description="how long a partition stays leased "
                                 "without a renewal (a dead sidecar's actors move after it)")
    poll_seconds: float = Field(0.5, gt=0, description="how often the members are re-read")
    clock_skew_seconds: float = Field(1.0, ge=0, description="the largest difference between "
                                      "the sidecars' clocks that placement stays safe under")
    handover_timeout_seconds: float = Field(10.0, gt=0, description="how long a call waits for "
                                            "its actor's partition to be handed over")
    fencing: bool = Field(True, description="every state transaction of an actor checks that "
                          "this sidecar still owns it (one more write per transaction)")


class PluggableConfig(_Model):
    """Pluggable components on Unix sockets (docs/pluggable.md)."""

    socket_folder: Path = Field(Path("/tmp/dapr-components-sockets"), description="each "
                                "<name>.sock in it serves component types <capability>.<name>")


class RuntimeConfig(_Model):
    app: AppConfig = Field(default_factory=lambda: AppConfig())
    listen: ListenConfig = Field(default_factory=ListenConfig)
    data_dir: Path = Field(default_factory=default_data_dir)
    grace_period_seconds: float = 10.0
    api_logging: bool = Field(False, description="log every API call at INFO "
                              "(dapr run --enable-api-logging)")
    max_body_bytes: int = Field(64 * 1024 * 1024, ge=1, description="the largest request "
                                "the APIs accept (dapr run --max-body-size)")
    heap_trim_interval_seconds: float = Field(30.0, ge=0, description="how often freed heap "
                                              "memory is given back to the OS (glibc "
                                              "malloc_trim); 0: never")
    api_token: SecretStr = Field(SecretStr(""), description="required from callers as "
                                 "dapr-api-token (DAPR_API_TOKEN); empty: no token")
    metrics_require_token: bool = Field(False, description="with an api_token, /metrics needs "
                                        "it too (default: open to scrapes, as the probes)")
    components: list[ComponentSpec] = Field(default_factory=list)
    subscriptions: list[SubscriptionSpec] = Field(default_factory=list)
    name_resolution: NameResolutionConfig | None = None
    access_control: AccessControl | None = None
    secret_scopes: list[SecretScope] = Field(default_factory=list)
    """Which secrets of which store the app may read (Dapr's ``spec.secrets.scopes``)."""
    resiliency: ResiliencyConfig | None = None
    rate_limits: list[RateRule] = Field(default_factory=list)
    tracing: TracingConfig | None = None
    metrics_enabled: bool = True
    """False: no ``/metrics`` (a Dapr Configuration's ``spec.metric.enabled: false``)."""
    dashboard: bool = True
    """The dashboard at ``/dashboard`` on the actuator (``--no-dashboard``: off)."""
    mtls: MtlsConfig | None = None
    tls: TlsConfig | None = None
    hot_reload: HotReloadConfig = Field(default_factory=HotReloadConfig)
    wasm: WasmConfig | None = None
    """WebAssembly functions served by id through service invocation (docs/wasm.md)."""
    pluggable: PluggableConfig = Field(default_factory=PluggableConfig)
    scheduler: SchedulerConfig = Field(default_factory=SchedulerConfig)
    actors: ActorsConfig = Field(default_factory=ActorsConfig)
    """Components served by other processes over gRPC on Unix sockets (docs/pluggable.md)."""
    dapr: DaprSettings | None = None
    """What a Dapr ``kind: Configuration`` set beyond pylotto's own settings (docs/dapr.md);
    None when none was given."""
    source: str = "<embedded default>"
    warnings: list[str] = Field(default_factory=list)
    """What the file says that pylotto does not do (logged once, by :func:`load`)."""

    def of(self, capability: str) -> list[ComponentSpec]:
        return [spec for spec in self.components if spec.capability == capability]


def embedded_default() -> RuntimeConfig:
    """Every capability on embedded components: what `pylotto run` serves with no file."""
    specs = [
        ("hello", "quick_start_demo", "helloworld", {"hello": "greeting"}),
        ("state", "in-memory", "in-memory", {}),
        ("state", "sqlite", "sqlite", {"actorStateStore": "true"}),
        ("pubsub", "in-memory", "in-memory", {}),
        ("lock", "in-memory", "in-memory", {}),
        ("sequencer", "in-memory", "in-memory", {}),
        ("sequencer", "sqlite", "sqlite", {}),
        ("configuration", "in-memory", "in-memory", {}),
        ("secretstores", "local.env", "local.env", {}),
        ("file", "local", "local", {}),
    ]
    return RuntimeConfig(
        components=[
            ComponentSpec(capability=c, name=n, type=t, metadata=m) for c, n, t, m in specs
        ]
    )


# ---- loading ---------------------------------------------------------------------------------


def load(path: str | Path) -> RuntimeConfig:
    """Read ``path`` (YAML or Layotto JSON); ConfigError names the file and what is wrong."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        raw = yaml.safe_load(text)  # JSON is YAML too
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML/JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    grpc_config = layotto.find_grpc_config(raw)
    try:
        if dapr_configuration.is_configuration(raw):
            config = _from_dapr_configuration(text, path)
        elif grpc_config is not None:
            config = _from_layotto(raw, grpc_config, path)
        else:
            config = _from_pylotto(raw, path)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise ConfigError(f"{path}: {where}: {err['msg']}") from None
    validate_components(config)
    for warning in config.warnings:
        log.warning("%s: %s", path, warning)
    return config


def _from_dapr_configuration(text: str, path: Path) -> RuntimeConfig:
    """A Dapr Configuration file: the embedded default components (resources folders replace
    them, as for no file) with what the Configuration sets."""
    raw = yaml.safe_load(dapr_configuration.expand_env(text))
    fields = dapr_configuration.runtime_fields(raw, path)
    base = embedded_default().model_copy(update={"source": str(path)})
    return with_dapr_configuration(base, fields)


def with_dapr_configuration(config: RuntimeConfig, fields: dict[str, Any]) -> RuntimeConfig:
    """``config`` with the fields of a Dapr Configuration
    (:func:`pylotto.config.dapr_configuration.runtime_fields`), validated as RuntimeConfig
    fields; its warnings are added to the config's."""
    fields = dict(fields)
    warnings = fields.pop("warnings", [])
    checked = RuntimeConfig.model_validate(fields)
    update = {name: getattr(checked, name) for name in fields}
    if "hot_reload" in fields:
        update["hot_reload"] = config.hot_reload.model_copy(
            update={"enabled": checked.hot_reload.enabled})
    update["warnings"] = [*config.warnings, *warnings]
    return config.model_copy(update=update)


def _from_pylotto(raw: dict[str, Any], path: Path) -> RuntimeConfig:
    raw = dict(raw)
    sections = raw.pop("components", None) or {}
    if not isinstance(sections, dict):
        raise ConfigError(f"{path}: components: expected capability → name → component")
    specs = list(_specs(sections, path))
    if "data_dir" in raw:
        raw["data_dir"] = (path.parent / str(raw["data_dir"])).resolve()
    return RuntimeConfig.model_validate({**raw, "components": specs, "source": str(path)})


def _specs(sections: dict[str, Any], path: Path) -> Iterator[ComponentSpec]:
    for section, entries in sections.items():
        if section not in CAPABILITIES:
            close = difflib.get_close_matches(section, list(CAPABILITIES), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"{path}: unknown section {section!r}{hint}; known: "
                              f"{', '.join(CAPABILITIES)}")
        if not isinstance(entries, dict):
            raise ConfigError(f"{path}: {section}: expected name → component")
        for name, body in entries.items():
            if not isinstance(body, dict) or "type" not in body:
                raise ConfigError(f"{path}: {section}.{name}: missing 'type'")
            body = dict(body)
            metadata = body.pop("metadata", None) or {}
            comp_type = str(body.pop("type"))
            version = str(body.pop("version", "v1"))
            if body:
                raise ConfigError(
                    f"{path}: {section}.{name}: unknown key(s) {', '.join(sorted(body))}; "
                    "expected type, version, metadata"
                )
            yield ComponentSpec(name=str(name), capability=section, type=comp_type,
                                version=version, metadata=metadata)


def _from_layotto(raw: dict[str, Any], grpc_config: dict[str, Any], path: Path) -> RuntimeConfig:
    mapped = layotto.read(raw, grpc_config, path)
    return RuntimeConfig.model_validate(
        {**mapped.fields, "components": mapped.specs, "source": str(path),
         "warnings": mapped.warnings}
    )


def validate_components(config: RuntimeConfig) -> None:
    """Resolve every type and decode every metadata; the first problem raises ConfigError."""
    from pylotto.components.pluggable.discovery import use_socket_folder

    use_socket_folder(config.pluggable.socket_folder)
    seen: set[tuple[str, str]] = set()
    for spec in config.components:
        where = f"{config.source}: {spec.capability}.{spec.name}"
        if (spec.capability, spec.name) in seen:
            raise ConfigError(f"{where}: defined twice")
        seen.add((spec.capability, spec.name))
        try:
            cls = resolve(spec.capability, spec.type, spec.version)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc.message}") from None
        if spec.secrets:
            continue  # decoded at start, once its secrets are read
        try:
            decode(cls.Settings, spec.metadata, component=f"{spec.capability}.{spec.name}")
        except ConfigError as exc:
            raise ConfigError(f"{config.source}: {exc.message}") from None


def to_json(config: RuntimeConfig) -> str:
    return json.dumps(config.model_dump(mode="json", by_alias=True), indent=2)
