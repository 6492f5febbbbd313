"""A Layotto (MOSN) JSON config → parts of a :class:`RuntimeConfig` (configuration-file.md).

Read from Layotto's source at f9681450: the listeners MOSN opens (each ``servers[].listeners[]``,
TCP or ``"network": "unix"``), the ``grpc_config`` sections, what its runtime does with
``secret_ref`` / ``component_ref`` (pkg/runtime/ref), the keys its components read beside
``metadata``, and the top-level ``tracing`` / ``metrics`` sections and the ``flowControlFilter``
stream filter. What has no pylotto equivalent becomes a warning naming the section.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from pylotto.core.errors import ConfigError
from pylotto.core.registry import aliases

SECTIONS = {
    "hellos": "hello",
    "state": "state",
    "pub_subs": "pubsub",
    "lock": "lock",
    "sequencer": "sequencer",
    "config_store": "configuration",
    "file": "file",
    "secret_store": "secretstores",
    "bindings": "bindings",
    "email": "email",
    "cryption": "crypto",
    "oss": "oss",
}
"""Layotto ``grpc_config`` section → pylotto capability."""

UNSERVED_SECTIONS = {
    "phone": "Layotto's phone API", "sms": "Layotto's SMS API",
}
"""Layotto APIs pylotto does not serve: a config that configures one is refused."""

CLOUD_TYPES = {
    ("email", "aliyun.email"): "Aliyun DirectMail, a cloud service",
    ("cryption", "aliyun.kms"): "Aliyun KMS, a cloud service",
    ("cryption", "aws.kms"): "AWS KMS, a cloud service",
    ("oss", "aliyun.oss"): "Aliyun OSS, a cloud service",
    ("oss", "huaweicloud.oss"): "Huawei Cloud OBS, a cloud service",
    ("file", "aliyun.oss"): "Aliyun OSS, a cloud service",
    ("file", "tencent.oss"): "Tencent Cloud COS, a cloud service",
    ("file", "qiniu.oss"): "Qiniu Kodo, a cloud service",
}
"""Layotto component types of a served section that only talk to a cloud provider's API, which
cannot run here: refused by name, pointing at what pylotto has instead."""

WARNED_SECTIONS = {
    "custom_component": "Layotto's custom components are Go code built into Layotto (pylotto's "
                        "equivalent: a plugin, docs/plugins.md)",
    "rpcs": "Layotto's MOSN RPC invoker (pylotto's InvokeService uses name resolution, "
            "docs/invoke.md)",
    "extends": "Layotto's extension hooks are Go code",
}
"""``grpc_config`` sections pylotto has no equivalent of: warned about, not served."""

TOP_LEVEL_WARNED = {
    "pprof": "the Go profiler",
    "dynamic_resources": "MOSN's xDS client",
    "static_resources": "MOSN's xDS clusters",
    "admin": "MOSN's admin API",
    "cluster_manager": "MOSN's upstream clusters",
}
"""Top-level keys naming MOSN machinery pylotto does not run."""

SERVER_KEYS = {"default_log_path", "default_log_level", "routers", "listeners", "name",
               "graceful_timeout", "processor"}
"""Keys of ``servers[]`` read or harmless (logging, MOSN routers)."""

TRACING_EXPORTERS = "otlp-grpc, otlp-http, zipkin, console"


class Mapped:
    """What :func:`read` found: ``fields`` for RuntimeConfig, ``specs`` (dicts for
    ComponentSpec), ``warnings``."""

    def __init__(self) -> None:
        self.fields: dict[str, Any] = {}
        self.specs: list[dict[str, Any]] = []
        self.warnings: list[str] = []


def find_grpc_config(raw: dict[str, Any]) -> dict[str, Any] | None:
    if isinstance(raw.get("grpc_config"), dict):
        return raw["grpc_config"]  # type: ignore[no-any-return]
    for _listener, flt in _filters(raw):
        cfg = (flt.get("config") or {}).get("grpc_config")
        if isinstance(cfg, dict):
            return cfg
    return None


def _listeners(raw: dict[str, Any]) -> list[dict[str, Any]]:
    return [listener for server in raw.get("servers") or [] if isinstance(server, dict)
            for listener in server.get("listeners") or [] if isinstance(listener, dict)]


def _filters(raw: dict[str, Any]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    return [(listener, flt) for listener in _listeners(raw)
            for chain in listener.get("filter_chains") or []
            for flt in chain.get("filters") or [] if isinstance(flt, dict)]


def read(raw: dict[str, Any], grpc_config: dict[str, Any], path: Path) -> Mapped:
    out = Mapped()
    _read_listeners(raw, out)
    _read_tracing(raw.get("tracing"), out)
    _read_metrics(raw.get("metrics"), out)
    for key in raw:
        if key in TOP_LEVEL_WARNED:
            out.warnings.append(f"{key} ({TOP_LEVEL_WARNED[key]}): not part of pylotto; "
                                "ignored")
    app = grpc_config.get("app") or {}
    out.fields["app"] = {
        "app_id": app.get("app_id", ""),
        "grpc_callback_host": app.get("grpc_callback_host") or "127.0.0.1",
        "grpc_callback_port": app.get("grpc_callback_port"),
    }
    _read_sections(grpc_config, path, out)
    _check_refs(out, path)
    return out


# ---- listeners ----------------------------------------------------------------------------


def _address(listener: dict[str, Any]) -> str:
    address = str(listener.get("address") or "")
    if listener.get("network") == "unix" and address and not address.startswith("unix:"):
        return f"unix:{address}"
    return address


def _read_listeners(raw: dict[str, Any], out: Mapped) -> None:
    """Exactly the listeners the config declares: the one carrying ``grpc_config`` serves the
    Layotto API, the actuator one (named ``actuator`` or with the ``actuator_filter`` stream
    filter) the actuator; no Dapr listener, no actuator unless declared."""
    listen: dict[str, Any] = {"layotto_grpc": "", "dapr_grpc": "", "dapr_http": "",
                              "actuator": ""}
    for listener in _listeners(raw):
        name = listener.get("name") or listener.get("address")
        filters = [f for chain in listener.get("filter_chains") or []
                   for f in chain.get("filters") or [] if isinstance(f, dict)]
        stream = [s for s in listener.get("stream_filters") or [] if isinstance(s, dict)]
        if any((f.get("config") or {}).get("grpc_config") for f in filters):
            listen["layotto_grpc"] = _address(listener)
            for flt in filters:
                if flt.get("type") not in ("grpc", None):
                    out.warnings.append(f"listener {name}: filter {flt.get('type')!r} is MOSN's, "
                                        "not part of pylotto; ignored")
            for sf in stream:
                _read_stream_filter(str(name), sf, out)
        elif listener.get("name") == "actuator" or any(
                s.get("type") == "actuator_filter" for s in stream):
            listen["actuator"] = _address(listener)
        else:
            out.warnings.append(f"listener {name}: neither the gRPC API nor the actuator; "
                                "not opened")
    out.fields["listen"] = listen


def _read_stream_filter(listener: str, sf: dict[str, Any], out: Mapped) -> None:
    kind = sf.get("type")
    if kind == "grpc_metric":
        return  # pylotto records gRPC metrics always (actuator /metrics)
    if kind != "flowControlFilter":
        out.warnings.append(f"listener {listener}: stream filter {kind!r} is not part of "
                            "pylotto; ignored")
        return
    cfg = sf.get("config") or {}
    if not cfg.get("global_switch", False):
        return  # MOSN's flow control is off unless global_switch is true
    if cfg.get("limit_key_type", "PATH") != "PATH":
        out.warnings.append(f"flowControlFilter: limit_key_type {cfg.get('limit_key_type')!r} "
                            "is not supported (only PATH); its rules are ignored")
        return
    rules = out.fields.setdefault("rate_limits", [])
    for rule in cfg.get("rules") or []:
        resource = str(rule.get("resource") or "")
        grade = rule.get("grade", 1)
        if str(grade) != "1":  # sentinel: 1 = QPS, 0 = concurrency
            out.warnings.append(f"flowControlFilter: rule {resource!r} grade {grade} "
                                "(not QPS) is not supported; ignored")
            continue
        threshold = float(rule.get("threshold") or 0)
        if threshold <= 0:
            out.warnings.append(f"flowControlFilter: rule {resource!r} threshold {threshold:g} "
                                "admits nothing; ignored")
            continue
        api = resource.rsplit("/", 1)[-1] or "*"
        rules.append({"api": api, "rate": threshold, "burst": max(1, int(threshold)),
                      "refusal": "layotto", "counting": "window"})


# ---- tracing and metrics ------------------------------------------------------------------


def _read_tracing(tracing: Any, out: Mapped) -> None:
    if not isinstance(tracing, dict) or not tracing.get("enable"):
        return
    driver = str(tracing.get("driver") or "")
    cfg = tracing.get("config") or {}
    service = str(cfg.get("service_name") or "")
    if driver.lower() == "sofatracer":
        exporters = [str(e) for e in cfg.get("exporter") or []]
        if exporters and set(exporters) != {"stdout"}:
            out.warnings.append(f"tracing: SOFATracer exporter(s) {', '.join(exporters)} not "
                                "supported; spans go to stdout (the console exporter)")
        out.fields["tracing"] = {"exporter": "console", "service_name": service}
    elif driver.lower() == "zipkin":
        out.fields["tracing"] = {"exporter": "zipkin", "service_name": service,
                                 "endpoint": str(cfg.get("reporter_endpoint") or "")}
    elif driver.lower() == "jaeger":
        out.fields["tracing"] = {"exporter": "otlp-grpc", "service_name": service}
        out.warnings.append("tracing: driver jaeger: spans are exported over OTLP/gRPC to "
                            "127.0.0.1:4317 (Jaeger's OTLP port), not Jaeger's Thrift collector")
    else:
        out.warnings.append(f"tracing: driver {driver!r} is not supported (pylotto exports "
                            f"to {TRACING_EXPORTERS}); tracing is off")


def _read_metrics(metrics: Any, out: Mapped) -> None:
    if not isinstance(metrics, dict):
        return
    for sink in metrics.get("sinks") or []:
        kind = sink.get("type") if isinstance(sink, dict) else sink
        if kind == "prometheus":
            port = (sink.get("config") or {}).get("port")
            if port:  # MOSN's prometheus sink listens on ":port" at /metrics
                out.fields.setdefault("listen", {})["metrics"] = f"0.0.0.0:{int(port)}"
        else:
            out.warnings.append(f"metrics: sink {kind!r} is not supported (pylotto serves "
                                "Prometheus /metrics); ignored")
    for key in metrics:
        if key != "sinks":
            out.warnings.append(f"metrics.{key}: not supported; ignored")


# ---- components ---------------------------------------------------------------------------


def _read_sections(grpc_config: dict[str, Any], path: Path, out: Mapped) -> None:
    for section, entries in grpc_config.items():
        if section == "app":
            continue
        if section in WARNED_SECTIONS:
            if entries:
                out.warnings.append(f"{section}: {WARNED_SECTIONS[section]}; not served")
            continue
        if section in UNSERVED_SECTIONS:
            raise ConfigError(f"{path}: section {section!r} ({UNSERVED_SECTIONS[section]}) is "
                              f"not served by pylotto; served: {', '.join(SECTIONS)}")
        capability = SECTIONS.get(section)
        if capability is None:
            close = difflib.get_close_matches(section, list(SECTIONS), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"{path}: unknown section {section!r}{hint}; known: "
                              f"{', '.join(SECTIONS)}")
        if not isinstance(entries, dict):
            raise ConfigError(f"{path}: {section}: expected name → component")
        for name, body in entries.items():
            if not isinstance(body, dict) or "type" not in body:
                raise ConfigError(f"{path}: {section}.{name}: missing 'type'")
            cloud = CLOUD_TYPES.get((section, str(body["type"])))
            if cloud:
                raise ConfigError(f"{path}: {section}.{name}: type {body['type']!r} needs "
                                  f"{cloud}, which pylotto does not reach; pylotto's {section} "
                                  f"types: {', '.join(_served_types(capability))}")
            out.specs.append(_spec(section, capability, str(name), dict(body), path,
                                   out.warnings))


def _served_types(capability: str) -> list[str]:
    return sorted(n for n in aliases(capability) if "/" not in n)


def _spec(section: str, capability: str, name: str, body: dict[str, Any],
          path: Path, warnings: list[str]) -> dict[str, Any]:
    where = f"{path}: {section}.{name}"
    metadata = body.pop("metadata", None) or {}
    if not isinstance(metadata, dict):
        # Layotto's file stores read raw JSON metadata: its S3 ones a list of endpoints
        metadata = {"endpoints": metadata}
    comp_type = str(body.pop("type"))
    version = str(body.pop("version", "v1"))
    secret_refs = body.pop("secret_ref", None) or []
    component_ref = body.pop("component_ref", None) or {}
    etcd = comp_type.rsplit(".", 1)[-1] == "etcd"
    if section == "config_store":
        # Layotto's StoreConfig: address (list) and timeout (whole seconds) beside metadata
        address = body.pop("address", None)
        if address and etcd:
            addresses = address if isinstance(address, list) else [address]
            metadata.setdefault("endpoints", ",".join(str(a) for a in addresses))
        elif address:
            metadata.setdefault("address", address)
        timeout = body.pop("timeout", None)
        if timeout not in (None, ""):
            metadata.setdefault("timeout", str(timeout))
        if etcd:  # Layotto's keys, so that Layotto's data and pylotto's are one
            metadata.setdefault("layout", "layotto")
    if etcd and "dialTimeout" in metadata:  # Layotto's etcd key: whole seconds, the limit of
        metadata.setdefault("timeout", metadata["dialTimeout"])  # connecting and of its ping
    if section == "sequencer":
        _segment_keys(metadata)
    if section == "oss" and isinstance(metadata.get("basic_config"), dict):
        # Layotto's oss components read their keys from metadata.basic_config
        metadata = {**metadata.pop("basic_config"), **metadata}
    secrets = {}
    for ref in secret_refs if isinstance(secret_refs, list) else [secret_refs]:
        if not isinstance(ref, dict) or not ref.get("store_name") or not ref.get("key"):
            raise ConfigError(f"{where}: secret_ref needs store_name and key")
        sub_key = str(ref.get("sub_key") or "")
        if not sub_key:  # Layotto injects the secret's entries named sub_key: none
            warnings.append(f"{section}.{name}: secret_ref {ref['key']!r} has no sub_key; "
                            "nothing is injected (as Layotto)")
            continue
        inject_as = str(ref.get("inject_as") or "") or sub_key
        secrets[inject_as] = {"store": str(ref["store_name"]), "name": str(ref["key"]),
                              "key": sub_key, "optional": True}
    if not isinstance(component_ref, dict):
        raise ConfigError(f"{where}: component_ref: expected config_store / secret_store")
    refs = {k: str(v) for k, v in component_ref.items() if v}
    unknown = set(refs) - {"config_store", "secret_store"}
    if unknown:
        raise ConfigError(f"{where}: component_ref: unknown key(s) {', '.join(sorted(unknown))};"
                          " expected config_store, secret_store")
    # The rest Layotto puts beside metadata (biggerThan, hello, ...) is metadata here
    return {"name": name, "capability": capability, "type": comp_type, "version": version,
            "metadata": {**body, **metadata}, "secrets": secrets, "refs": refs}


def _segment_keys(metadata: dict[str, Any]) -> None:
    """``segmentCacheEnable`` / ``segmentStep``: written in Layotto's etcd sequencer configs,
    read by no Layotto code (its sequencers reserve no segments). pylotto's equivalent is
    ``segmentSize``: no cache is a segment of 1 id, a step is the segment's size."""
    enabled = metadata.pop("segmentCacheEnable", None)
    step = metadata.pop("segmentStep", None)
    if "segmentSize" in metadata:
        return
    if enabled is not None and str(enabled).strip().lower() in ("false", "0", "no", "off"):
        metadata["segmentSize"] = "1"
    elif step not in (None, ""):
        metadata["segmentSize"] = str(step)


def _check_refs(out: Mapped, path: Path) -> None:
    """As Layotto's injector: a ``component_ref`` / ``secret_ref`` naming a store the config
    does not have fails the start (``fail to get configStore``)."""
    names = {(s["capability"], s["name"]) for s in out.specs}
    for spec in out.specs:
        where = f"{path}: {spec['capability']}.{spec['name']}"
        for kind, capability in (("config_store", "configuration"),
                                 ("secret_store", "secretstores")):
            target = spec["refs"].get(kind)
            if target and (capability, target) not in names:
                raise ConfigError(f"{where}: component_ref {kind} {target!r} is not configured")
        for key, ref in spec["secrets"].items():
            if ("secretstores", ref["store"]) not in names:
                raise ConfigError(f"{where}: secret_ref for {key!r}: secret store "
                                  f"{ref['store']!r} is not configured")
