"""No API open to the network by accident: a listener of the app-facing APIs (Layotto gRPC, Dapr
gRPC, Dapr HTTP) that other machines can reach — a wildcard (``0.0.0.0``, ``::``), a
non-loopback address, a name that is not only loopback — needs an API token, or the sidecar
refuses to start. Every caller of those ports gets the whole state, secrets and pub/sub API.

What does not count as protection: ``mtls`` (it guards the internal sidecar-to-sidecar port
only, which is why several hosts need only that port on the network), and ``tls`` (it encrypts,
but lets anyone call). Not covered: the internal port (mTLS only), the actuator and the metrics
listener (probes and scrapes; the actuator's other paths need the token when one is set).

``listen.allow_insecure_network: true`` (``pylotto run --allow-insecure-network``) starts
anyway, for networks where something else keeps strangers out; the exposure is logged.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from pylotto.core.addresses import reachable_from_network
from pylotto.core.errors import ConfigError

log = logging.getLogger("pylotto.security")

API_LISTENERS = {"layotto_grpc": "Layotto gRPC API", "dapr_grpc": "Dapr gRPC API",
                 "dapr_http": "Dapr HTTP API"}
"""The ``listen`` keys of the app-facing APIs, and their names in messages."""
ALLOW_KEY = "listen.allow_insecure_network"
ALLOW_FLAG = "--allow-insecure-network"


def open_listeners(listen: Mapping[str, str]) -> list[str]:
    """``<API> on <address>`` for every API listener of ``listen`` (key → address) that other
    machines can reach."""
    return [f"{what} on {listen[key]}" for key, what in API_LISTENERS.items()
            if reachable_from_network(listen.get(key, ""))]


def check_exposure(listen: Mapping[str, str], *, api_token: bool, allowed: bool) -> None:
    """ConfigError when an API listens on the network with no API token and ``allowed`` is
    not set; a warning when it is."""
    if api_token:
        return
    exposed = open_listeners(listen)
    if not exposed:
        return
    listed = ", ".join(exposed)
    if allowed:
        log.warning("%s: reachable from the network with no API token (%s is set): anyone "
                    "who can connect may use every API", listed, ALLOW_KEY)
        return
    raise ConfigError(
        f"refusing to start: {listed} would be reachable from the network with no API token, "
        "so anyone who can connect could read and write all state. Listen on 127.0.0.1 "
        "(with mtls, only listen.internal_grpc needs a network address for other sidecars), "
        f"or set an API token (api_token, --api-token, DAPR_API_TOKEN), or allow it "
        f"explicitly ({ALLOW_KEY}: true, {ALLOW_FLAG})")
