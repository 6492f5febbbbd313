"""``pylotto run`` read as ``dapr run``: the Dapr CLI's flags turned into the sidecar's
configuration (see the flag table in docs/dapr.md).

What ``dapr run`` does and pylotto does too: an app id made up when none is given; with an app
command, a free port for every listener no flag and no config file gives (so that several apps
run side by side); name resolution by mDNS when the configuration chooses none; the Unix
sockets of ``--unix-domain-socket`` named ``<dir>/dapr-<app id>-{http,grpc}.socket``.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pylotto.config import model as config
from pylotto.core.errors import ConfigError
from pylotto.core.ports import free_port

LOG_LEVELS = {"debug": "debug", "info": "info", "warn": "warning", "warning": "warning",
              "error": "error", "fatal": "critical", "panic": "critical"}
"""Dapr's log levels → pylotto's (fatal and panic: only what makes the sidecar stop)."""

APP_PROTOCOLS = ("http", "https", "grpc", "grpcs", "h2c")
UNLIMITED_BYTES = 2**31 - 1
HEADER_BUFFER_BYTES = 8190
"""The request line / header size pylotto's HTTP server reads (aiohttp's limit)."""

_QUANTITY = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*(Ki|Mi|Gi|Ti|k|K|M|G|T)?\s*$")
_FACTORS = {None: 1, "Ki": 1024, "Mi": 1024**2, "Gi": 1024**3, "Ti": 1024**4,
            "k": 1000, "K": 1000, "M": 1000**2, "G": 1000**3, "T": 1000**4}


def parse_quantity(flag: str, value: str) -> int:
    """Bytes of a Kubernetes quantity (``4Mi``, ``10M``, ``4096``); a negative one: no limit
    (as in Dapr)."""
    match = _QUANTITY.match(value)
    if not match:
        raise ConfigError(f"{flag}: {value!r} is not a size (e.g. 4Mi, 512Ki, 1G)")
    number = float(match.group(1)) * _FACTORS[match.group(2)]
    return UNLIMITED_BYTES if number < 0 else int(number)


_ADJECTIVES = ("amber", "brave", "calm", "eager", "fuzzy", "gentle", "happy", "jolly",
               "lucky", "mellow", "nimble", "proud", "quiet", "rapid", "sunny", "witty")
_NOUNS = ("badger", "comet", "falcon", "gecko", "heron", "koala", "lynx", "otter", "panda",
          "quokka", "raven", "tiger", "walrus", "yak", "zebra", "beetle")


def made_up_app_id() -> str:
    """An app id for an app run without ``--app-id`` (Dapr's are silly names too)."""
    rng = random.SystemRandom()
    return f"{rng.choice(_ADJECTIVES)}-{rng.choice(_NOUNS)}-{rng.randrange(1000, 10000)}"


def is_dapr_configuration(path: Path) -> bool:
    """True when ``path`` is a Dapr ``kind: Configuration`` manifest (not a pylotto config)."""
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return False
    return isinstance(raw, dict) and raw.get("kind") == "Configuration"


@dataclass
class DaprRunFlags:
    """The ``dapr run`` flags given (None: not given)."""

    app_protocol: str | None = None
    app_ssl: bool = False
    app_channel_address: str | None = None
    app_max_concurrency: int | None = None
    internal_grpc_port: int | None = None
    metrics_port: int | None = None
    unix_domain_socket: Path | None = None
    listen_addresses: str | None = None
    max_body_size: str | None = None
    read_buffer_size: str | None = None
    enable_api_logging: bool = False
    enable_app_health_check: bool = False
    app_health_check_path: str | None = None
    app_health_probe_interval: int | None = None
    app_health_probe_timeout: int | None = None
    app_health_threshold: int | None = None
    refused: dict[str, str] = field(default_factory=dict)
    """Flags given that pylotto refuses: flag → why."""


def check_refused(flags: DaprRunFlags) -> None:
    if flags.refused:
        flag, why = next(iter(flags.refused.items()))
        raise ConfigError(f"{flag}: {why}")


def app_protocol(flags: DaprRunFlags) -> str | None:
    """The app protocol pylotto uses (None: keep the config's)."""
    protocol = flags.app_protocol
    if flags.app_ssl:  # deprecated in Dapr: http → https, grpc → grpcs
        protocol = {"http": "https", "grpc": "grpcs", None: "https"}.get(protocol, protocol)
    if protocol is None:
        return None
    protocol = protocol.lower()
    if protocol not in APP_PROTOCOLS:
        raise ConfigError(f"--app-protocol {protocol!r} is not one of "
                          f"{', '.join(APP_PROTOCOLS)}")
    return protocol


def apply(cfg: config.RuntimeConfig, flags: DaprRunFlags, *, with_app: bool,
          explicit_ports: set[str]) -> config.RuntimeConfig:
    """``cfg`` with the ``dapr run`` flags applied; ``explicit_ports``: the listeners a flag
    set (``dapr_http``, ``dapr_grpc``...), which are never replaced by free ports."""
    check_refused(flags)
    app_update: dict[str, Any] = {}
    if (protocol := app_protocol(flags)) is not None:
        app_update["protocol"] = protocol
    if flags.app_channel_address:
        app_update["host"] = flags.app_channel_address
    if flags.app_max_concurrency is not None:
        app_update["max_concurrency"] = (flags.app_max_concurrency
                                         if flags.app_max_concurrency >= 1 else None)
    if flags.enable_app_health_check:
        check = config.AppHealthCheck()
        app_update["health_check"] = config.AppHealthCheck(
            path=flags.app_health_check_path or check.path,
            interval_seconds=flags.app_health_probe_interval or check.interval_seconds,
            timeout_seconds=(flags.app_health_probe_timeout / 1000
                             if flags.app_health_probe_timeout else check.timeout_seconds),
            threshold=flags.app_health_threshold or check.threshold)
    app = cfg.app.model_copy(update=app_update)
    if with_app and not app.id:
        app = app.model_copy(update={"id": made_up_app_id()})
    listen = _listen(cfg, flags, app.id, with_app=with_app, explicit=explicit_ports)
    update: dict[str, Any] = {"app": app, "listen": listen}
    if flags.enable_api_logging:
        update["api_logging"] = True
    if flags.max_body_size is not None:
        update["max_body_bytes"] = parse_quantity("--max-body-size", flags.max_body_size)
    if flags.read_buffer_size is not None:
        size = parse_quantity("--read-buffer-size", flags.read_buffer_size)
        if size > HEADER_BUFFER_BYTES:
            raise ConfigError(f"--read-buffer-size {flags.read_buffer_size}: pylotto reads "
                              f"request lines and headers of up to {HEADER_BUFFER_BYTES} "
                              "bytes; a larger buffer is not supported")
    return cfg.model_copy(update=update)


def _listen(cfg: config.RuntimeConfig, flags: DaprRunFlags, app_id: str, *, with_app: bool,
            explicit: set[str]) -> config.ListenConfig:
    listen = cfg.listen
    from_file = listen.model_fields_set
    host = "127.0.0.1"
    if flags.listen_addresses:
        addresses = [a.strip() for a in flags.listen_addresses.split(",") if a.strip()]
        if len(addresses) != 1:
            raise ConfigError("--dapr-listen-addresses: pylotto listens on one address; "
                              f"{len(addresses)} given")
        host = addresses[0]
    update: dict[str, str] = {}
    if flags.internal_grpc_port is not None and flags.internal_grpc_port > 0:
        update["internal_grpc"] = f"{host}:{flags.internal_grpc_port}"
        explicit = explicit | {"internal_grpc"}
    if flags.metrics_port is not None and flags.metrics_port > 0:
        update["metrics"] = f"{host}:{flags.metrics_port}"
    if with_app:  # free ports for the listeners neither a flag nor the file sets
        chosen: set[int] = set()
        for name in ("dapr_http", "dapr_grpc", "layotto_grpc", "actuator", "internal_grpc"):
            if name not in explicit and name not in from_file and name not in update:
                port = free_port(host, taken=chosen)
                chosen.add(port)
                update[name] = f"{host}:{port}"
    if flags.listen_addresses:  # the host of every listener the flags left as they were
        for name in ("dapr_http", "dapr_grpc", "layotto_grpc"):
            current = update.get(name, getattr(listen, name))
            if current and not current.startswith("unix:"):
                update[name] = f"{host}:{current.rpartition(':')[2]}"
    if flags.unix_domain_socket is not None:
        folder = flags.unix_domain_socket
        if not folder.is_dir():
            raise ConfigError(f"--unix-domain-socket {folder}: not a folder")
        name = app_id or "pylotto"
        update["dapr_http"] = f"unix:{folder.resolve()}/dapr-{name}-http.socket"
        update["dapr_grpc"] = f"unix:{folder.resolve()}/dapr-{name}-grpc.socket"
    return listen.model_copy(update=update)


def with_default_resolution(cfg: config.RuntimeConfig,
                            mode: str = "standalone") -> config.RuntimeConfig:
    """The name resolution of ``mode`` when the configuration chooses none: mDNS (Dapr's
    self-hosted default), or ``kubernetes`` (cluster DNS) in ``--mode kubernetes``."""
    if cfg.name_resolution is not None:
        return cfg
    kind = "kubernetes" if mode == "kubernetes" else "mdns"
    return cfg.model_copy(update={"name_resolution": config.NameResolutionConfig(type=kind)})
