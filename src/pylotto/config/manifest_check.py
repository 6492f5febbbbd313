"""``pylotto check-config`` for Dapr manifests: a resources folder, or one manifest file
(components, subscriptions, resiliency, ``kind: Configuration``; several documents per file).

Each document is checked as ``pylotto run`` reads it: a component's type must be one pylotto
has and its metadata must decode; a subscription and a resiliency spec must parse; a
Configuration's ``spec`` keys must be Dapr's. Problems are collected per document (all of them
reported, not only the first); what parses but pylotto does not do is a warning.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from pylotto.config import manifests
from pylotto.config import model as config
from pylotto.core.errors import ConfigError
from pylotto.core.resiliency import ResiliencyConfig

API_VERSIONS = {"Component": {"dapr.io/v1alpha1"},
                "Subscription": {"dapr.io/v1alpha1", "dapr.io/v2alpha1"},
                "Resiliency": {"dapr.io/v1alpha1"},
                "Configuration": {"dapr.io/v1alpha1"},
                "HTTPEndpoint": {"dapr.io/v1alpha1"}}
CONFIGURATION_KEYS = {
    "appHttpPipeline", "httpPipeline", "tracing", "metric", "metrics", "logging", "mtls",
    "secrets", "accessControl", "nameResolution", "features", "api", "components",
    "workflow", "wasm",
}
"""The keys of a Dapr Configuration's ``spec`` (dapr/dapr pkg/config ConfigurationSpec)."""
CONFIGURATION_NOT_DONE = {"httpPipeline", "appHttpPipeline", "workflow", "wasm", "mtls"}
"""Configuration keys pylotto parses but does not act on (middleware pipelines, workflows,
Dapr's Sentry mTLS: pylotto's mTLS is configured with ``pylotto cert``)."""


@dataclass
class Finding:
    where: str
    message: str
    error: bool


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def error(self, where: str, message: str) -> None:
        self.findings.append(Finding(where, message, True))

    def warning(self, where: str, message: str) -> None:
        self.findings.append(Finding(where, message, False))

    @property
    def errors(self) -> int:
        return sum(f.error for f in self.findings)

    @property
    def warnings(self) -> int:
        return sum(not f.error for f in self.findings)


def is_manifest_file(path: Path) -> bool:
    """True when ``path`` holds Dapr manifests (``apiVersion`` + ``kind``), not a pylotto or
    Layotto config."""
    try:
        loaded = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    except (OSError, yaml.YAMLError):
        return False
    return bool(loaded) and all(isinstance(d, dict) and "kind" in d and "apiVersion" in d
                                for d in loaded)


def _file_documents(path: Path) -> list[tuple[Path, dict[str, Any]]]:
    try:
        loaded = list(yaml.safe_load_all(path.read_text()))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    return [(path, d) for d in loaded if d is not None]


class _Warnings(logging.Handler):
    """What the loaders log as warnings (an unknown metadata key...), kept as findings."""

    def __init__(self, report: Report, where: str) -> None:
        super().__init__(logging.WARNING)
        self.report, self.where = report, where

    def emit(self, record: logging.LogRecord) -> None:
        self.report.warning(self.where, record.getMessage())


def check(path: Path) -> Report:
    """Check the manifests of ``path`` (a folder or a file)."""
    report = Report()
    handler = _Warnings(report, str(path))
    logging.getLogger("pylotto").addHandler(handler)
    try:
        _check(path, report)
    finally:
        logging.getLogger("pylotto").removeHandler(handler)
    return report


def _check(path: Path, report: Report) -> None:
    try:
        documents = (list(manifests.documents(path)) if path.is_dir()
                     else _file_documents(path))
    except ConfigError as exc:
        report.error(str(path), exc.message)
        return
    components: list[config.ComponentSpec] = []
    for file, document in documents:
        if not isinstance(document, dict):
            report.error(str(file), "each document must be a mapping")
            continue
        kind = str(document.get("kind") or "")
        name = str((document.get("metadata") or {}).get("name") or "")
        where = f"{file}: {kind or '?'} {name}".rstrip()
        report.counts[kind or "?"] = report.counts.get(kind or "?", 0) + 1
        version = document.get("apiVersion")
        if kind not in API_VERSIONS:
            report.error(where, f"kind {kind!r} is not a Dapr resource pylotto reads "
                                f"({', '.join(sorted(API_VERSIONS))})")
            continue
        if version not in API_VERSIONS[kind]:
            report.error(where, f"apiVersion {version!r} is not "
                                f"{' or '.join(sorted(API_VERSIONS[kind]))}")
        if not name:
            report.error(where, "metadata.name is missing")
        try:
            _check_one(kind, file, document, where, report, components)
        except ConfigError as exc:
            report.error(where, exc.message)
    _check_components(components, str(path), report)


def _check_one(kind: str, file: Path, document: dict[str, Any], where: str, report: Report,
               components: list[config.ComponentSpec]) -> None:
    spec = document.get("spec")
    if kind == "Component":
        components.append(manifests.component(file, document))
    elif kind == "Subscription":
        manifests.subscription(file, document)
    elif kind == "Resiliency":
        try:
            ResiliencyConfig.model_validate(spec or {})
        except ValidationError as exc:
            error = exc.errors()[0]
            loc = ".".join(str(p) for p in error["loc"])
            raise ConfigError(f"resiliency spec.{loc}: {error['msg']}") from None
    elif kind == "Configuration":
        if spec is not None and not isinstance(spec, dict):
            raise ConfigError("spec must be a mapping")
        for key in spec or {}:
            if key not in CONFIGURATION_KEYS:
                report.error(where, f"spec.{key} is not a key of a Dapr Configuration")
            elif key in CONFIGURATION_NOT_DONE:
                report.warning(where, f"spec.{key} is read but not applied by pylotto")
    elif kind == "HTTPEndpoint":
        report.warning(where, "HTTPEndpoint resources are not served by pylotto")


def _check_components(components: list[config.ComponentSpec], source: str,
                      report: Report) -> None:
    seen: set[tuple[str, str]] = set()
    for spec in components:
        if (spec.capability, spec.name) in seen:
            report.error(f"{source}: {spec.capability}.{spec.name}", "defined twice")
            continue
        seen.add((spec.capability, spec.name))
        try:
            config.validate_components(config.RuntimeConfig(components=[spec], source=source))
        except ConfigError as exc:
            report.error(f"{spec.capability}.{spec.name} ({spec.type})", exc.message)
