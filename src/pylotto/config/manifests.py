"""Dapr resource manifests: ``kind: Component`` and ``kind: Subscription`` YAML files from
``--resources-path`` folders.

Every ``*.yaml`` / ``*.yml`` file of a folder may hold several documents (``---``)::

    apiVersion: dapr.io/v1alpha1
    kind: Component
    metadata: {name: statestore}
    spec:
      type: state.redis          # <capability>.<type>: the capability comes from the prefix
      version: v1
      metadata:
      - name: redisHost
        value: localhost:6379
      - name: redisPassword
        secretKeyRef: {name: redis-secret, key: password}
    auth: {secretStore: my-secrets}   # where secretKeyRef values are read
    scopes: [orders]                  # app ids that load it (all when absent)

A ``secretKeyRef`` is resolved at start, through the named secret store, before the component is
built. Declarative subscriptions, in either of Dapr's forms::

    apiVersion: dapr.io/v2alpha1          # v1alpha1: spec.route instead of spec.routes
    kind: Subscription
    metadata: {name: orders}
    spec:
      pubsubname: pubsub
      topic: orders
      routes:
        rules: [{match: 'event.type == "widget"', path: /widgets}]
        default: /orders
      deadLetterTopic: poison
      metadata: {rawPayload: "true"}
    scopes: [checkout]

A ``kind: Resiliency`` manifest gives the resiliency policies (its ``spec``; see
:mod:`pylotto.core.resiliency`). A Dapr ``kind: Configuration`` is applied by
:func:`with_configuration` (see :mod:`pylotto.config.dapr_configuration`). Documents of other
kinds are reported and skipped.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from pylotto.config.model import ComponentSpec, RuntimeConfig, SecretRef, SubscriptionSpec
from pylotto.core.errors import ConfigError
from pylotto.core.metadata import bulk_subscribe
from pylotto.core.registry import CAPABILITIES
from pylotto.core.resiliency import ResiliencyConfig

log = logging.getLogger("pylotto.manifests")

_PREFIXES = sorted(((info.dapr_prefix, name) for name, info in CAPABILITIES.items()),
                   key=lambda pair: -len(pair[0]))


def documents(folder: Path) -> Iterator[tuple[Path, dict[str, Any]]]:
    """(file, document) for every YAML document in ``folder``, files in name order."""
    if not folder.is_dir():
        raise ConfigError(f"resources path {folder} is not a directory")
    for path in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]):
        try:
            loaded = list(yaml.safe_load_all(path.read_text()))
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"{path}: cannot read: {exc}") from None
        for document in loaded:
            if document is None:
                continue
            if not isinstance(document, dict):
                raise ConfigError(f"{path}: each document must be a mapping")
            yield path, document


def load_resiliency(folders: list[Path], app_id: str) -> ResiliencyConfig | None:
    """The spec of the ``kind: Resiliency`` manifest scoped to ``app_id`` (the last one wins)."""
    found = None
    for folder in folders:
        for path, document in documents(folder):
            scopes = document.get("scopes") or []
            if document.get("kind") != "Resiliency" or (scopes and app_id not in scopes):
                continue
            try:
                found = ResiliencyConfig.model_validate(document.get("spec") or {})
            except ValidationError as exc:
                error = exc.errors()[0]
                where = ".".join(str(p) for p in error["loc"])
                raise ConfigError(f"{path}: resiliency spec.{where}: {error['msg']}") from None
    return found


def with_configuration(config: RuntimeConfig, folders: list[Path]) -> RuntimeConfig:
    """``config`` with the one Dapr ``kind: Configuration`` manifest in ``folders`` scoped to
    its app applied (two are refused by name). A Configuration given with ``--config`` wins:
    the folder's is then reported and left out."""
    from pylotto.config import dapr_configuration
    from pylotto.config.model import with_dapr_configuration

    found: list[tuple[Path, dict[str, Any]]] = []
    for folder in folders:
        for path, document in documents(folder):
            scopes = document.get("scopes") or []
            if dapr_configuration.is_configuration(document) and (
                    not scopes or config.app.id in scopes):
                found.append((path, document))
    if len(found) > 1:
        names = ", ".join(f"{p} ({(d.get('metadata') or {}).get('name', '')})"
                          for p, d in found)
        raise ConfigError(f"more than one Dapr Configuration in the resources folders: "
                          f"{names}; keep one, or pass it with --config")
    if not found:
        return config
    path, document = found[0]
    name = (document.get("metadata") or {}).get("name", "")
    if config.dapr is not None:
        log.warning("%s: Dapr Configuration %s not applied: --config gave %s", path, name,
                    config.dapr.name)
        return config
    fields = dapr_configuration.runtime_fields(document, path)
    for warning in fields.get("warnings", []):
        log.warning("%s", warning)
    log.info("%s: Dapr Configuration %s applied", path, name)
    return with_dapr_configuration(config, fields)


def load(folders: list[Path], app_id: str) -> tuple[list[ComponentSpec],
                                                    list[SubscriptionSpec]]:
    """The components and subscriptions of the manifests in ``folders`` scoped to ``app_id``."""
    components, subscriptions = [], []
    for folder in folders:
        for path, document in documents(folder):
            kind = document.get("kind")
            if kind in ("Resiliency", "Configuration"):
                continue  # read by load_resiliency, with_configuration
            if kind not in ("Component", "Subscription"):
                log.info("%s: %s manifest %s skipped", path, kind,
                         (document.get("metadata") or {}).get("name", ""))
                continue
            spec: ComponentSpec | SubscriptionSpec = (
                component(path, document) if kind == "Component"
                else subscription(path, document))
            scopes = document.get("scopes") or []
            if scopes and app_id not in scopes:
                log.info("%s: %s %s is scoped to %s, not loaded for app %r", path,
                         kind.lower(), spec.name, ", ".join(map(str, scopes)), app_id)
                continue
            if isinstance(spec, ComponentSpec):
                components.append(spec)
            else:
                subscriptions.append(spec)
    return components, subscriptions


def load_components(folders: list[Path], app_id: str) -> list[ComponentSpec]:
    """The components of every ``kind: Component`` manifest in ``folders`` scoped to
    ``app_id``."""
    return load(folders, app_id)[0]


def subscription(path: Path, document: dict[str, Any]) -> SubscriptionSpec:
    """The SubscriptionSpec of one ``kind: Subscription`` document (v1alpha1 or v2alpha1)."""
    meta = document.get("metadata") or {}
    spec = document.get("spec") or {}
    name = meta.get("name") if isinstance(meta, dict) else None
    if not name:
        raise ConfigError(f"{path}: subscription without metadata.name")
    where = f"{path}: subscription {name}"
    if not isinstance(spec, dict) or not spec.get("pubsubname") or not spec.get("topic"):
        raise ConfigError(f"{where}: spec.pubsubname and spec.topic are required")
    routes = spec.get("routes") or {}
    if not isinstance(routes, dict):
        raise ConfigError(f"{where}: spec.routes must be a mapping of rules and default")
    rules = []
    for rule in routes.get("rules") or []:
        if not isinstance(rule, dict) or not rule.get("match") or not rule.get("path"):
            raise ConfigError(f"{where}: each routing rule needs a match and a path")
        rules.append((str(rule["match"]), str(rule["path"])))
    metadata = spec.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise ConfigError(f"{where}: spec.metadata must be a mapping")
    return SubscriptionSpec(
        name=str(name), pubsub_name=str(spec["pubsubname"]), topic=str(spec["topic"]),
        metadata={str(k): _text(v) for k, v in metadata.items()}, rules=rules,
        default_path=str(routes.get("default") or spec.get("route") or ""),
        dead_letter_topic=str(spec.get("deadLetterTopic") or ""),
        bulk_subscribe=bulk_subscribe(spec.get("bulkSubscribe")))



def component(path: Path, document: dict[str, Any]) -> ComponentSpec:
    """The ComponentSpec of one ``kind: Component`` document."""
    meta = document.get("metadata") or {}
    spec = document.get("spec") or {}
    name = meta.get("name") if isinstance(meta, dict) else None
    if not name:
        raise ConfigError(f"{path}: component without metadata.name")
    where = f"{path}: component {name}"
    if not isinstance(spec, dict) or not spec.get("type"):
        raise ConfigError(f"{where}: missing spec.type (like state.redis)")
    full_type = str(spec["type"])
    capability = next((cap for prefix, cap in _PREFIXES if full_type.startswith(prefix)), None)
    if capability is None:
        known = ", ".join(prefix + "*" for prefix, _ in _PREFIXES)
        raise ConfigError(f"{where}: spec.type {full_type!r} names no capability ({known})")
    auth = document.get("auth") or {}
    secret_store = str(auth.get("secretStore") or "") if isinstance(auth, dict) else ""
    metadata: dict[str, Any] = {}
    secrets: dict[str, SecretRef] = {}
    for entry in spec.get("metadata") or []:
        if not isinstance(entry, dict) or not entry.get("name"):
            raise ConfigError(f"{where}: each spec.metadata entry needs a name")
        key = str(entry["name"])
        ref = entry.get("secretKeyRef")
        if ref is not None:
            if not isinstance(ref, dict) or not ref.get("name"):
                raise ConfigError(f"{where}: {key}: secretKeyRef needs a name")
            if not secret_store:
                raise ConfigError(f"{where}: {key} uses secretKeyRef but auth.secretStore "
                                  "names no secret store")
            secrets[key] = SecretRef(store=secret_store, name=str(ref["name"]),
                                     key=str(ref.get("key") or ref["name"]))
        else:
            metadata[key] = _text(entry.get("value", ""))
    if capability == "state" and not any(key.lower() == "keyprefix"
                                         for key in (*metadata, *secrets)):
        # daprd's default strategy is the app id (pkg/components/state/state_config.go:
        # strategyDefault = strategyAppid), so that a store is shared with daprd sidecars key
        # for key; a Layotto config's and pylotto.yaml's default stays "none", as Layotto's
        metadata["keyPrefix"] = "appid"
    return ComponentSpec(name=str(name), capability=capability, type=full_type,
                         version=str(spec.get("version") or ""), metadata=metadata,
                         secrets=secrets)


def _text(value: object) -> str:
    """A metadata value as Dapr reads YAML: strings as they are, ``true`` for true."""
    return str(value).lower() if isinstance(value, bool) else str(value)
