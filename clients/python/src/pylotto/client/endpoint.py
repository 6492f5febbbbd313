"""Where the client connects, whether over TLS, and with which API token.

The environment is read as Dapr's Python SDK reads it (``dapr/conf/global_settings.py`` and
``dapr/conf/helpers.py`` of dapr 1.19), so an app started by ``dapr run`` or ``pylotto run``
needs no code for it:

- ``DAPR_API_TOKEN``: sent as ``dapr-api-token`` metadata on every call;
- ``DAPR_GRPC_ENDPOINT``: ``host:port``, ``host:port?tls=true``, ``https://host:port`` (TLS),
  ``http://host:port``, ``dns:host:port``, ``unix:/path``. TLS checks the sidecar's certificate
  against the system's roots, or the file named by ``GRPC_DEFAULT_SSL_ROOTS_FILE_PATH`` (gRPC's
  own variable), or the ``root_certificates`` given to the client.

pylotto's own ``PYLOTTO_GRPC_ADDRESS`` (set by ``pylotto run`` for its app) comes first, then
``DAPR_GRPC_ENDPOINT``, then Layotto's ``runtime_GRPC_PORT``, then ``127.0.0.1:34904``.
pylotto serves the Layotto runtime API on its Dapr gRPC port too, so a Dapr endpoint works.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import parse_qs

DEFAULT_ADDRESS = "127.0.0.1:34904"
TOKEN_HEADER = "dapr-api-token"


@dataclass(frozen=True)
class Endpoint:
    """``target``: what gRPC dials (``host:port``, ``unix:/path``...); ``tls``: whether to."""

    target: str
    tls: bool = False


def parse(address: str) -> Endpoint:
    """An address in any of the forms Dapr's SDK takes (see the module's doc)."""
    rest, _, query = address.partition("?")
    tls = False
    if query:
        options = parse_qs(query, keep_blank_values=True)
        unknown = set(options) - {"tls"}
        if unknown:
            raise ValueError(f"{address}: unknown option(s) {', '.join(sorted(unknown))}")
        tls = options["tls"][-1].lower() == "true"
    scheme, sep, remainder = rest.partition("://")
    if not sep:
        return Endpoint(rest, tls)
    if scheme in ("http", "https"):
        if query:
            raise ValueError(f"{address}: ?tls= goes with host:port, not with {scheme}://")
        return Endpoint(remainder.rstrip("/") or "localhost:443", scheme == "https")
    if scheme in ("dns", "unix", "unix-abstract", "vsock"):
        return Endpoint(rest, tls)
    raise ValueError(f"{address}: unknown scheme {scheme!r}")


def from_environment() -> Endpoint:
    """The endpoint the environment names (see the module's doc)."""
    if address := os.environ.get("PYLOTTO_GRPC_ADDRESS"):
        return parse(address)
    if address := os.environ.get("DAPR_GRPC_ENDPOINT"):
        return parse(address)
    if port := os.environ.get("runtime_GRPC_PORT"):  # noqa: SIM112 - Layotto's name
        return Endpoint(f"127.0.0.1:{port}")
    return Endpoint(DEFAULT_ADDRESS)


def token_from_environment() -> str | None:
    return os.environ.get("DAPR_API_TOKEN") or None
