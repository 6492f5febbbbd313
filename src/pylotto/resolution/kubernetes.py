"""``kubernetes``: the sidecars of an app id are the addresses of its cluster DNS name, as
Dapr's ``nameresolution.kubernetes`` resolves them.

The name is ``<app-id>-dapr.<namespace>.svc.<clusterDomain>:<port>`` — the Service in front of
the app's sidecars (``deploy/kubernetes/``: a headless Service ``<app-id>-dapr``, so the name
gives one address per pod). Every address the name resolves to is one sidecar; names are
looked up on every call (the cluster DNS and the system resolver cache).

Metadata (Dapr's ``nameResolution.configuration`` keys):

- ``clusterDomain`` (default ``cluster.local``);
- ``template``: a Go-template address such as Dapr takes, with ``{{.ID}}``, ``{{.Namespace}}``
  and ``{{.Port}}`` (``{{.ID}}-{{.Namespace}}.internal:{{.Port}}``); replaces the form above;
- ``namespace`` (default ``$NAMESPACE``, which the injector sets from the pod, then the pod's
  service-account namespace file, then ``default``);
- ``port``: the sidecars' port other sidecars call (default: this sidecar's own, as daprd
  resolves with its own internal port — the Dapr gRPC port ``50001``, or the internal port
  ``50002`` when the sidecars use ``mtls``).
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from pydantic import Field

from pylotto.core.errors import ConfigError
from pylotto.core.metadata import ComponentSettings, decode
from pylotto.resolution.base import Resolver

DEFAULT_CLUSTER_DOMAIN = "cluster.local"
NAMESPACE_ENV = "NAMESPACE"
SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
TEMPLATE_FIELD = re.compile(r"\{\{\s*\.([\w.]+)\s*\}\}")
TEMPLATE_FIELDS = ("ID", "Namespace", "Port")

Lookup = Callable[[str, int], Awaitable[list[str]]]
"""Host name and port → the IP addresses (text) the name resolves to; empty when none."""


class KubernetesSettings(ComponentSettings):
    cluster_domain: str = Field(DEFAULT_CLUSTER_DOMAIN, alias="clusterDomain", min_length=1)
    template: str = ""
    namespace: str = ""
    port: int | None = Field(None, gt=0, lt=65536)


async def system_lookup(host: str, port: int) -> list[str]:
    """The addresses of ``host`` from the system resolver (the cluster DNS in a pod)."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port,
                                                             type=socket.SOCK_STREAM)
    except socket.gaierror:
        return []
    return [str(info[4][0]) for info in infos]


def pod_namespace(environ: Mapping[str, str] = os.environ,
                  account_file: Path = SERVICE_ACCOUNT_NAMESPACE) -> str:
    """The namespace this sidecar runs in: ``$NAMESPACE``, else the service account's, else
    ``default``."""
    if environ.get(NAMESPACE_ENV, "").strip():
        return environ[NAMESPACE_ENV].strip()
    try:
        return account_file.read_text().strip() or "default"
    except OSError:
        return "default"


def _check_template(template: str) -> None:
    for name in TEMPLATE_FIELD.findall(template):
        if name not in TEMPLATE_FIELDS:
            raise ConfigError(f"name_resolution kubernetes: template field .{name} is not "
                              f"known (use {', '.join('.' + f for f in TEMPLATE_FIELDS)})")
    if "{{" in TEMPLATE_FIELD.sub("", template):
        raise ConfigError("name_resolution kubernetes: template may hold only "
                          "{{.ID}}, {{.Namespace}} and {{.Port}}")
    if "{{.ID}}" not in template.replace(" ", ""):
        raise ConfigError("name_resolution kubernetes: template must contain {{.ID}}")


def _split_port(address: str, default: int) -> tuple[str, int]:
    host, colon, port = address.rpartition(":")
    if colon and port.isdigit() and not host.endswith(":"):
        return host.strip("[]"), int(port)
    return address.strip("[]"), default


class KubernetesResolver(Resolver):
    def __init__(self, metadata: Mapping[str, Any], lookup: Lookup = system_lookup, *,
                 default_port: int = 50001) -> None:
        self.settings = decode(KubernetesSettings, metadata, component="name_resolution")
        if self.settings.template:
            _check_template(self.settings.template)
        self.port = self.settings.port or default_port
        self.namespace = self.settings.namespace or pod_namespace()
        self._lookup = lookup

    def address(self, app_id: str) -> str:
        """The ``host:port`` that names the sidecars of ``app_id`` (before the DNS lookup)."""
        if self.settings.template:
            values = {"ID": app_id, "Namespace": self.namespace,
                      "Port": str(self.port)}
            return TEMPLATE_FIELD.sub(lambda m: values[m.group(1)], self.settings.template)
        return (f"{app_id}-dapr.{self.namespace}.svc.{self.settings.cluster_domain}"
                f":{self.port}")

    async def resolve(self, app_id: str) -> list[str]:
        host, port = _split_port(self.address(app_id), self.port)
        hosts = sorted(set(await self._lookup(host, port)))
        return [f"[{h}]:{port}" if ":" in h else f"{h}:{port}" for h in hosts]
