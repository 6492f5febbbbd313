"""A pod and the sidecar its annotations ask for → the JSON patch (RFC 6902) that adds it.

The patch adds the ``pylotto`` container (``pylotto run`` with the flags the annotations
give), its volumes (a data folder, ``/tmp``, the ConfigMaps of the manifests and of
``dapr.io/config``), the labels ``pylotto.io/sidecar-injected`` and ``dapr.io/app-id``, and to
each app container the variables Dapr's injector sets (``DAPR_HTTP_PORT``, ``DAPR_GRPC_PORT``,
``APP_PROTOCOL``), keeping a variable the container already has. The sidecar's probes are the
actuator's ``/actuator/health/liveness`` and ``/actuator/health/readiness``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pylotto.deploy.annotations import AnnotationError, Probe, Sidecar

JsonObject = dict[str, Any]

CONTAINER = "pylotto"
KNOWN_SIDECARS = (CONTAINER, "daprd", "layotto")
"""Containers that are a sidecar already: a pod holding one is left alone (a real Dapr or
Layotto injector was there first, or this pod was injected before)."""
INJECTED_LABEL = "pylotto.io/sidecar-injected"
APP_ID_LABEL = "dapr.io/app-id"
METRICS_LABEL = "dapr.io/metrics-enabled"

HTTP_PORT = 3500
LAYOTTO_PORT = 34904
INTERNAL_PORT = 50002
ACTUATOR_PORT = 34999
LIVENESS_PATH = "/actuator/health/liveness"
READINESS_PATH = "/actuator/health/readiness"

DATA_VOLUME, DATA_PATH = "pylotto-data", "/var/lib/pylotto"
TMP_VOLUME, TMP_PATH = "pylotto-tmp", "/tmp"
RESOURCES_VOLUME, RESOURCES_PATH = "pylotto-resources", "/etc/pylotto/resources"
CONFIG_VOLUME, CONFIG_PATH = "pylotto-config", "/etc/pylotto/config"
CONFIG_FILE = "config.yaml"
SOCKET_VOLUME, SOCKET_PATH = "dapr-unix-domain-socket", "/var/run/dapr-sockets"
"""Dapr's names: the in-memory folder of the APIs' Unix sockets, and its path in the sidecar."""
LAYOTTO_CONFIG_PATH = "/runtime/configs"
"""Where Layotto's injector mounts ``layotto/config-volume``; ``config.json`` in it."""


def _pointer(name: str) -> str:
    """``name`` as one JSON Pointer segment (RFC 6901)."""
    return name.replace("~", "~0").replace("/", "~1")


def already_injected(pod: Mapping[str, Any]) -> bool:
    spec = pod.get("spec") or {}
    names = {c.get("name") for key in ("containers", "initContainers")
             for c in spec.get(key) or [] if isinstance(c, Mapping)}
    labels = (pod.get("metadata") or {}).get("labels") or {}
    return bool(names & set(KNOWN_SIDECARS)) or labels.get(INJECTED_LABEL) == "true"


def _args(sidecar: Sidecar) -> list[str]:
    args = ["run", "--mode", "kubernetes", "--app-id", sidecar.app_id,
            "--app-protocol", sidecar.app_protocol, "--log-level", sidecar.log_level,
            "--dapr-http-port", str(HTTP_PORT), "--dapr-grpc-port", str(sidecar.grpc_port),
            "--actuator-address", f"0.0.0.0:{ACTUATOR_PORT}", "--data-dir", DATA_PATH,
            "--resources-path", RESOURCES_PATH]
    optional: list[tuple[str, object]] = [
        ("--app-port", sidecar.app_port),
        ("--dapr-internal-grpc-port", sidecar.internal_grpc_port),
        ("--dapr-listen-addresses", sidecar.listen_address),
        ("--app-max-concurrency", sidecar.app_max_concurrency),
        ("--max-body-size", sidecar.max_body_size),
        ("--read-buffer-size", sidecar.read_buffer_size),
        ("--app-channel-address", sidecar.app_channel_address),
    ]
    if sidecar.config_map:
        optional.append(("--config", f"{CONFIG_PATH}/{CONFIG_FILE}"))
    if sidecar.unix_socket_path:
        optional.append(("--unix-domain-socket", SOCKET_PATH))
    if sidecar.layotto_config_volume:
        optional.append(("--config", f"{LAYOTTO_CONFIG_PATH}/config.json"))
    args += [part for flag, value in optional if value not in (None, "")
             for part in (flag, str(value))]
    if sidecar.log_as_json:
        args.append("--log-as-json")
    if sidecar.api_logging:
        args.append("--enable-api-logging")
    if sidecar.app_health_check:
        args += ["--enable-app-health-check",
                 "--app-health-check-path", sidecar.app_health_check_path,
                 "--app-health-probe-interval", str(sidecar.app_health_probe_interval),
                 "--app-health-probe-timeout", str(sidecar.app_health_probe_timeout),
                 "--app-health-threshold", str(sidecar.app_health_threshold)]
    return args


def _field_env(name: str, path: str) -> JsonObject:
    return {"name": name, "valueFrom": {"fieldRef": {"fieldPath": path}}}


def _secret_env(name: str, secret: str, key: str) -> JsonObject:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def _sidecar_env(sidecar: Sidecar) -> list[JsonObject]:
    env = [_field_env("NAMESPACE", "metadata.namespace"),
           _field_env("POD_NAME", "metadata.name"),
           _field_env("DAPR_HOST_IP", "status.podIP")]
    if sidecar.api_token_secret:
        env.append(_secret_env("DAPR_API_TOKEN", sidecar.api_token_secret, "token"))
    if sidecar.app_token_secret:
        env.append(_secret_env("APP_API_TOKEN", sidecar.app_token_secret, "token"))
    env += [{"name": name, "value": value} for name, value in sidecar.env]
    env += [_secret_env(s.name, s.secret, s.key) for s in sidecar.secret_env]
    return env


def _probe(path: str, probe: Probe) -> JsonObject:
    return {"httpGet": {"path": path, "port": ACTUATOR_PORT},
            "initialDelaySeconds": probe.delay, "timeoutSeconds": probe.timeout,
            "periodSeconds": probe.period, "failureThreshold": probe.threshold}


def _mounts(sidecar: Sidecar, volumes: set[str]) -> tuple[list[JsonObject], list[str]]:
    """The sidecar's volume mounts, and a warning for each annotation's volume the pod lacks
    (skipped, as Dapr and Layotto skip it)."""
    mounts: list[JsonObject] = [{"name": DATA_VOLUME, "mountPath": DATA_PATH},
              {"name": TMP_VOLUME, "mountPath": TMP_PATH},
              {"name": RESOURCES_VOLUME, "mountPath": RESOURCES_PATH, "readOnly": True}]
    if sidecar.config_map:
        mounts.append({"name": CONFIG_VOLUME, "mountPath": CONFIG_PATH, "readOnly": True})
    if sidecar.unix_socket_path:
        mounts.append({"name": SOCKET_VOLUME, "mountPath": SOCKET_PATH})
    if sidecar.layotto_config_volume:
        if sidecar.layotto_config_volume not in volumes:
            raise AnnotationError(f"annotation layotto/config-volume: the pod has no volume "
                                  f"{sidecar.layotto_config_volume!r}")
        mounts.append({"name": sidecar.layotto_config_volume,
                       "mountPath": LAYOTTO_CONFIG_PATH, "readOnly": True})
    warnings = []
    for mount in sidecar.volume_mounts:
        if mount.volume not in volumes:
            warnings.append(f"pylotto sidecar: volume {mount.volume!r} of the volume-mounts "
                            "annotation is not in the pod; not mounted")
            continue
        mounts.append({"name": mount.volume, "mountPath": mount.path,
                       "readOnly": mount.read_only})
    return mounts, warnings


def container(sidecar: Sidecar, volumes: set[str], pull_policy: str,
              ) -> tuple[JsonObject, list[str]]:
    """The sidecar container, and the warnings its volume mounts raised."""
    mounts, warnings = _mounts(sidecar, volumes)
    security: JsonObject = {"allowPrivilegeEscalation": False, "runAsNonRoot": True,
                            "readOnlyRootFilesystem": True,
                            "capabilities": {"drop": ["ALL"]}}
    if sidecar.seccomp_profile:
        security["seccompProfile"] = {"type": sidecar.seccomp_profile}
    ports = [("dapr-http", HTTP_PORT), ("dapr-grpc", sidecar.grpc_port),
             ("dapr-internal", sidecar.internal_grpc_port or INTERNAL_PORT),
             ("layotto-grpc", LAYOTTO_PORT), ("actuator", ACTUATOR_PORT)]
    spec: JsonObject = {
        "name": CONTAINER, "image": sidecar.image, "imagePullPolicy": pull_policy,
        "command": ["pylotto"], "args": _args(sidecar),
        "ports": [{"name": name, "containerPort": port, "protocol": "TCP"}
                  for name, port in ports],
        "env": _sidecar_env(sidecar), "volumeMounts": mounts,
        "livenessProbe": _probe(LIVENESS_PATH, sidecar.liveness),
        "readinessProbe": _probe(READINESS_PATH, sidecar.readiness),
        "securityContext": security,
    }
    if sidecar.resources:
        spec["resources"] = sidecar.resources
    if sidecar.native_sidecar:
        spec["restartPolicy"] = "Always"
    return spec, warnings


def _volumes(sidecar: Sidecar) -> list[JsonObject]:
    volumes: list[JsonObject] = [
        {"name": DATA_VOLUME, "emptyDir": {}},
        {"name": TMP_VOLUME, "emptyDir": {}},
        {"name": RESOURCES_VOLUME,
         "configMap": {"name": sidecar.resources_config_map, "optional": True}},
    ]
    if sidecar.config_map:
        volumes.append({"name": CONFIG_VOLUME, "configMap": {"name": sidecar.config_map}})
    if sidecar.unix_socket_path:
        volumes.append({"name": SOCKET_VOLUME, "emptyDir": {"medium": "Memory"}})
    return volumes


def _app_env(sidecar: Sidecar) -> list[JsonObject]:
    return [{"name": "DAPR_HTTP_PORT", "value": str(HTTP_PORT)},
            {"name": "DAPR_GRPC_PORT", "value": str(sidecar.grpc_port)},
            {"name": "APP_PROTOCOL", "value": sidecar.app_protocol}]


def _add(path: str, value: Any) -> JsonObject:
    return {"op": "add", "path": path, "value": value}


def _list_ops(path: str, existing: list[Any], added: list[JsonObject]) -> list[JsonObject]:
    """Add ``added`` to the list at ``path``: the whole list when there is none yet."""
    if not existing:
        return [_add(path, added)] if added else []
    return [_add(f"{path}/-", item) for item in added]


def pod_patch(pod: Mapping[str, Any], sidecar: Sidecar, *, pull_policy: str = "IfNotPresent",
              ) -> tuple[list[JsonObject], list[str]]:
    """The JSON patch that injects ``sidecar`` into ``pod``, and the warnings to answer."""
    spec = pod.get("spec") or {}
    containers = list(spec.get("containers") or [])
    if not containers or not all(isinstance(c, Mapping) for c in containers):
        raise AnnotationError("the pod has no containers (or one that is not an object)")
    existing_volumes = list(spec.get("volumes") or [])
    volume_names = {str(v.get("name")) for v in existing_volumes if isinstance(v, Mapping)}
    added_volumes = _volumes(sidecar)
    clash = sorted(volume_names & {v["name"] for v in added_volumes})
    if clash:
        raise AnnotationError(f"the pod already has volume(s) {', '.join(clash)} that the "
                              "pylotto sidecar needs")
    sidecar_container, warnings = container(sidecar, volume_names, pull_policy)
    labels = (pod.get("metadata") or {}).get("labels")
    ops: list[JsonObject] = []
    if not labels:
        ops.append(_add("/metadata/labels", {}))
    ops += [_add(f"/metadata/labels/{_pointer(INJECTED_LABEL)}", "true"),
            _add(f"/metadata/labels/{_pointer(APP_ID_LABEL)}", sidecar.app_id),
            _add(f"/metadata/labels/{_pointer(METRICS_LABEL)}",
                 str(sidecar.metrics_enabled).lower())]
    ops += _list_ops("/spec/volumes", existing_volumes, added_volumes)
    if sidecar.native_sidecar:
        ops += _list_ops("/spec/initContainers", list(spec.get("initContainers") or []),
                         [sidecar_container])
    else:
        ops.append(_add("/spec/containers/-", sidecar_container))
    for index, app in enumerate(containers):
        env = list(app.get("env") or [])
        have = {e.get("name") for e in env if isinstance(e, Mapping)}
        ops += _list_ops(f"/spec/containers/{index}/env", env,
                         [e for e in _app_env(sidecar) if e["name"] not in have])
        if sidecar.unix_socket_path:
            mounts = list(app.get("volumeMounts") or [])
            taken = {m.get("mountPath") for m in mounts if isinstance(m, Mapping)} | {
                m.get("name") for m in mounts if isinstance(m, Mapping)}
            if not taken & {SOCKET_VOLUME, sidecar.unix_socket_path}:
                ops += _list_ops(f"/spec/containers/{index}/volumeMounts", mounts, [
                    {"name": SOCKET_VOLUME, "mountPath": sidecar.unix_socket_path}])
    warnings += [f"pylotto sidecar: annotation {key} is not supported; ignored"
                 for key in sidecar.ignored]
    return ops, warnings
