"""A pod's annotations → the pylotto sidecar it asks for.

Dapr's annotations (``dapr.io/...``, names and defaults of dapr/dapr pkg/injector) and Layotto's
(``layotto/...``, mosn/layotto pkg/injector) both ask for a sidecar; pylotto's own
(``pylotto.io/...``) add what neither has. An annotation Dapr has but pylotto does not honour is
reported back (an admission warning), never silently dropped; a value that cannot be read
(``dapr.io/app-port: http``) refuses the pod with a message naming the annotation.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

DAPR = "dapr.io/"
LAYOTTO = "layotto/"
PYLOTTO = "pylotto.io/"

ENABLED = DAPR + "enabled"
LAYOTTO_INJECT = LAYOTTO + "sidecar-inject"
INJECT = PYLOTTO + "inject"
"""``"false"``: leave this pod alone although Dapr's or Layotto's annotation asks for a
sidecar (the pod keeps them for a real daprd or Layotto)."""
RESOURCES = PYLOTTO + "resources"
"""The ConfigMap holding the Dapr manifests (Components, Subscriptions, Resiliency...)."""

TRUTHY = frozenset({"y", "yes", "true", "t", "on", "1"})
"""Dapr's ``kit/strings.IsTruthy``."""
APP_PROTOCOLS = ("http", "https", "grpc", "grpcs", "h2c")
LOG_LEVELS = ("debug", "info", "warn", "warning", "error", "fatal", "panic")
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
ENV_SPLIT = re.compile(r",\s*(?=[A-Za-z_][A-Za-z0-9_]*=)")

HONOURED = frozenset({
    "enabled", "app-id", "app-port", "app-protocol", "app-ssl", "config", "log-level",
    "log-as-json", "enable-api-logging", "sidecar-image", "api-token-secret",
    "app-token-secret", "app-max-concurrency", "enable-metrics", "env", "env-from-secret",
    "grpc-port", "internal-grpc-port", "sidecar-cpu-request", "sidecar-cpu-limit",
    "sidecar-memory-request", "sidecar-memory-limit", "sidecar-listen-addresses",
    "sidecar-liveness-probe-delay-seconds", "sidecar-liveness-probe-timeout-seconds",
    "sidecar-liveness-probe-period-seconds", "sidecar-liveness-probe-threshold",
    "sidecar-readiness-probe-delay-seconds", "sidecar-readiness-probe-timeout-seconds",
    "sidecar-readiness-probe-period-seconds", "sidecar-readiness-probe-threshold",
    "sidecar-seccomp-profile-type", "max-body-size", "http-max-request-size",
    "read-buffer-size", "http-read-buffer-size", "volume-mounts", "volume-mounts-rw",
    "enable-app-health-check", "app-health-check-path", "app-health-probe-interval",
    "app-health-probe-timeout", "app-health-threshold", "app-channel-address",
    "placement-host-address", "scheduler-host-address", "unix-domain-socket-path",
    "enable-native-sidecar",
})
"""Dapr annotations (after ``dapr.io/``) the injector acts on. The placement and scheduler
addresses are accepted and need nothing: pylotto places actors and keeps jobs without them."""


class AnnotationError(ValueError):
    """An annotation whose value cannot be read; the pod is refused with this message."""


@dataclass(frozen=True)
class Probe:
    delay: int
    timeout: int
    period: int
    threshold: int


@dataclass(frozen=True)
class VolumeMount:
    volume: str
    path: str
    read_only: bool


@dataclass(frozen=True)
class SecretEnv:
    name: str
    secret: str
    key: str


@dataclass(frozen=True)
class Sidecar:
    """What one pod's annotations ask of its sidecar."""

    app_id: str
    image: str
    app_port: int | None = None
    app_protocol: str = "http"
    config_map: str = ""
    """``dapr.io/config``: a ConfigMap whose ``config.yaml`` (a Dapr Configuration or a
    pylotto.yaml) is the sidecar's ``--config``."""
    layotto_config_volume: str = ""
    """``layotto/config-volume``: a pod volume holding Layotto's ``config.json``."""
    resources_config_map: str = ""
    log_level: str = "info"
    log_as_json: bool = False
    api_logging: bool = False
    grpc_port: int = 50001
    internal_grpc_port: int | None = None
    listen_address: str = ""
    api_token_secret: str = ""
    app_token_secret: str = ""
    app_max_concurrency: int | None = None
    metrics_enabled: bool = True
    max_body_size: str = ""
    read_buffer_size: str = ""
    app_channel_address: str = ""
    app_health_check: bool = False
    app_health_check_path: str = "/healthz"
    app_health_probe_interval: int = 5
    app_health_probe_timeout: int = 500
    app_health_threshold: int = 3
    liveness: Probe = Probe(delay=180, timeout=3, period=10, threshold=5)
    readiness: Probe = Probe(delay=1, timeout=1, period=1, threshold=5)
    resources: dict[str, dict[str, str]] = field(default_factory=dict)
    seccomp_profile: str = ""
    env: tuple[tuple[str, str], ...] = ()
    secret_env: tuple[SecretEnv, ...] = ()
    volume_mounts: tuple[VolumeMount, ...] = ()
    unix_socket_path: str = ""
    """``dapr.io/unix-domain-socket-path``: where the app containers find the APIs' sockets."""
    native_sidecar: bool = False
    """``dapr.io/enable-native-sidecar``: an init container with ``restartPolicy: Always``."""
    ignored: tuple[str, ...] = ()
    """Annotations given that pylotto does not act on (answered as admission warnings)."""


def truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in TRUTHY


def wants_sidecar(annotations: Mapping[str, str]) -> bool:
    """Dapr's or Layotto's annotation asks for a sidecar and pylotto's does not opt out."""
    if INJECT in annotations and not truthy(annotations[INJECT]):
        return False
    dapr = str(annotations.get(ENABLED, "")).strip().lower() == "true"  # Dapr: "true" only
    return dapr or truthy(annotations.get(LAYOTTO_INJECT))


class _Reader:
    def __init__(self, annotations: Mapping[str, str]) -> None:
        self.values = {k: str(v) for k, v in annotations.items()}

    def text(self, name: str, default: str = "", *, prefix: str = DAPR) -> str:
        value = self.values.get(prefix + name, "").strip()
        return value or default

    def number(self, name: str, default: int, *, low: int = 0, high: int = 2**31 - 1) -> int:
        value = self.optional_number(name, low=low, high=high)
        return default if value is None else value

    def optional_number(self, name: str, *, low: int = 0,
                        high: int = 2**31 - 1) -> int | None:
        text = self.text(name)
        if not text:
            return None
        try:
            value = int(text)
        except ValueError:
            raise AnnotationError(f"annotation {DAPR}{name}: {text!r} is not a whole "
                                  "number") from None
        if not low <= value <= high:
            raise AnnotationError(f"annotation {DAPR}{name}: {value} is outside "
                                  f"{low}..{high}")
        return value

    def flag(self, name: str, default: bool = False) -> bool:
        text = self.text(name)
        return truthy(text) if text else default

    def probe(self, kind: str, default: Probe) -> Probe:
        base = f"sidecar-{kind}-probe-"
        return Probe(delay=self.number(base + "delay-seconds", default.delay),
                     timeout=self.number(base + "timeout-seconds", default.timeout, low=1),
                     period=self.number(base + "period-seconds", default.period, low=1),
                     threshold=self.number(base + "threshold", default.threshold, low=1))


def app_id_of(annotations: Mapping[str, str], pod_name: str) -> str:
    """``dapr.io/app-id``, else the pod's name (as Dapr), checked as Dapr checks it: the app's
    Service ``<app-id>-dapr`` must be a DNS label."""
    app_id = str(annotations.get(DAPR + "app-id", "")).strip() or pod_name
    if not app_id:
        raise AnnotationError(f"annotation {DAPR}app-id: not set and the pod has no name")
    service = f"{app_id}-dapr"
    if len(service) > 63 or not DNS_LABEL.fullmatch(service):
        raise AnnotationError(f"annotation {DAPR}app-id: {app_id!r} is not a valid app id "
                              f"('{service}' must be a DNS label: lower case letters, digits "
                              "and '-', at most 63 characters)")
    return app_id


def _mounts(text: str, *, read_only: bool, key: str) -> list[VolumeMount]:
    mounts = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        volume, colon, path = item.partition(":")
        if not colon or not volume or not path.startswith("/"):
            raise AnnotationError(f"annotation {key}: {item!r} is not <volume>:<absolute path>")
        mounts.append(VolumeMount(volume.strip(), path.strip(), read_only))
    return mounts


def _absolute(path: str, key: str) -> str:
    if path and not path.startswith("/"):
        raise AnnotationError(f"annotation {key}: {path!r} is not an absolute path")
    return path


def _env(text: str) -> list[tuple[str, str]]:
    pairs = []
    for item in filter(None, (part.strip() for part in ENV_SPLIT.split(text))):
        name, equals, value = item.partition("=")
        if equals:
            pairs.append((name.strip(), value))
    return pairs


def _secret_env(text: str) -> list[SecretEnv]:
    found = []
    for name, source in _env(text):
        secret, colon, key = source.strip().partition(":")
        found.append(SecretEnv(name, secret.strip(), key.strip() if colon else secret.strip()))
    return found


def _resources(read: _Reader) -> dict[str, dict[str, str]]:
    resources: dict[str, dict[str, str]] = {}
    for kind in ("cpu", "memory"):
        for bound, section in (("request", "requests"), ("limit", "limits")):
            value = read.text(f"sidecar-{kind}-{bound}")
            if value:
                resources.setdefault(section, {})[kind] = value
    return resources


def _size(read: _Reader, name: str, legacy: str, unit: str) -> str:
    """``dapr.io/max-body-size`` (a quantity), else the legacy number of MB / KB."""
    if read.text(name):
        return read.text(name)
    number = read.optional_number(legacy, low=1)
    return f"{number}{unit}" if number is not None else ""


def read(annotations: Mapping[str, str], *, pod_name: str, default_image: str,
         default_resources: str) -> Sidecar:
    """The sidecar ``annotations`` ask for (call only when :func:`wants_sidecar`)."""
    r = _Reader(annotations)
    protocol = r.text("app-protocol", "http").lower()
    if protocol not in APP_PROTOCOLS:
        raise AnnotationError(f"annotation {DAPR}app-protocol: {protocol!r} is not one of "
                              f"{', '.join(APP_PROTOCOLS)}")
    if r.flag("app-ssl"):  # deprecated in Dapr: the TLS form of the protocol
        protocol = {"http": "https", "grpc": "grpcs"}.get(protocol, protocol)
    level = r.text("log-level", "info").lower()
    if level not in LOG_LEVELS:
        raise AnnotationError(f"annotation {DAPR}log-level: {level!r} is not one of "
                              f"{', '.join(LOG_LEVELS)}")
    config_map = r.text("config")
    layotto_volume = r.text("config-volume", prefix=LAYOTTO)
    if config_map and layotto_volume:
        raise AnnotationError(f"annotations {DAPR}config and {LAYOTTO}config-volume both give "
                              "the sidecar's configuration; keep one")
    mounts = [*_mounts(r.text("volume-mounts"), read_only=True, key=DAPR + "volume-mounts"),
              *_mounts(r.text("volume-mounts-rw"), read_only=False,
                       key=DAPR + "volume-mounts-rw"),
              *_mounts(r.text("volume-mounts", prefix=LAYOTTO), read_only=True,
                       key=LAYOTTO + "volume-mounts"),
              *_mounts(r.text("volume-mounts-rw", prefix=LAYOTTO), read_only=False,
                       key=LAYOTTO + "volume-mounts-rw")]
    listen = r.text("sidecar-listen-addresses")
    if "," in listen:
        raise AnnotationError(f"annotation {DAPR}sidecar-listen-addresses: pylotto listens on "
                              f"one address; {listen!r} names several")
    ignored = sorted(key for key in annotations
                     if key.startswith(DAPR) and key[len(DAPR):] not in HONOURED)
    return Sidecar(
        app_id=app_id_of(annotations, pod_name),
        image=(r.text("sidecar-image") or r.text("sidecar-image", prefix=LAYOTTO)
               or default_image),
        app_port=r.optional_number("app-port", low=1, high=65535),
        app_protocol=protocol,
        config_map=config_map,
        layotto_config_volume=layotto_volume,
        resources_config_map=r.text("resources", default_resources, prefix=PYLOTTO),
        log_level=level,
        log_as_json=r.flag("log-as-json"),
        api_logging=r.flag("enable-api-logging"),
        grpc_port=r.number("grpc-port", 50001, low=1, high=65535),
        internal_grpc_port=r.optional_number("internal-grpc-port", low=1, high=65535),
        listen_address=listen,
        api_token_secret=r.text("api-token-secret"),
        app_token_secret=r.text("app-token-secret"),
        app_max_concurrency=r.optional_number("app-max-concurrency", low=-1),
        metrics_enabled=r.flag("enable-metrics", True),
        max_body_size=_size(r, "max-body-size", "http-max-request-size", "Mi"),
        read_buffer_size=_size(r, "read-buffer-size", "http-read-buffer-size", "Ki"),
        app_channel_address=r.text("app-channel-address"),
        app_health_check=r.flag("enable-app-health-check"),
        app_health_check_path=r.text("app-health-check-path", "/healthz"),
        app_health_probe_interval=r.number("app-health-probe-interval", 5, low=1),
        app_health_probe_timeout=r.number("app-health-probe-timeout", 500, low=1),
        app_health_threshold=r.number("app-health-threshold", 3, low=1),
        liveness=r.probe("liveness", Sidecar.liveness),
        readiness=r.probe("readiness", Sidecar.readiness),
        resources=_resources(r),
        seccomp_profile=r.text("sidecar-seccomp-profile-type"),
        env=tuple(_env(r.text("env"))),
        secret_env=tuple(_secret_env(r.text("env-from-secret"))),
        volume_mounts=tuple(mounts),
        unix_socket_path=_absolute(r.text("unix-domain-socket-path"),
                                   DAPR + "unix-domain-socket-path"),
        native_sidecar=r.flag("enable-native-sidecar"),
        ignored=tuple(ignored),
    )
