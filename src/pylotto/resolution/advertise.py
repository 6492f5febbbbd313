"""The address a sidecar announces to name resolution (what other sidecars call it at).

In order:

1. ``name_resolution.advertise``, as given (a host alone gets the listener's port);
2. ``DAPR_HOST_IP`` (daprd's variable) with the listener's port;
3. the listener's own address, when it names a host;
4. a listener on every interface (``0.0.0.0``, ``::``): this host's address — the source
   address of the route the kernel would take towards the network (asked for with a UDP
   socket; no packet is sent), else the first IPv4 address of an interface that is not
   loopback (link-local ones last), as daprd's ``GetHostAddress`` does;
5. none found: :class:`ConfigError` asking for ``advertise``.

Announcing ``0.0.0.0`` would make every peer call itself, so a wildcard is never announced.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import socket

from pylotto.core.addresses import is_unix, is_wildcard, join_host_port, split_host_port
from pylotto.core.errors import ConfigError

log = logging.getLogger("pylotto.resolution")

HOST_IP_ENV = "DAPR_HOST_IP"
"""The host address daprd (and the Dapr CLI, which sets it to 127.0.0.1 when unset) announces to
name resolution (dapr/dapr utils.GetHostAddress)."""
ROUTE_PROBE = ("192.0.2.1", 9)
"""A documentation address (RFC 5737): connecting a UDP socket to it only picks a route."""


def _routed_ipv4() -> str | None:
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(ROUTE_PROBE)
            found = ipaddress.IPv4Address(probe.getsockname()[0])
    except OSError:  # no route towards the network
        return None
    return None if found.is_loopback or found.is_unspecified else str(found)


def _interface_ipv4() -> str | None:
    import ifaddr

    candidates: list[ipaddress.IPv4Address] = []
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            if isinstance(ip.ip, str):  # ifaddr: IPv4 as a str, IPv6 as a tuple
                address = ipaddress.IPv4Address(ip.ip)
                if not address.is_loopback and not address.is_unspecified:
                    candidates.append(address)
    candidates.sort(key=lambda a: a.is_link_local)  # stable: the OS order otherwise
    return str(candidates[0]) if candidates else None


def host_ip() -> str | None:
    """This host's address towards the network (None: it has none but loopback)."""
    return _routed_ipv4() or _interface_ipv4()


def advertised_address(listen_address: str, *, explicit: str = "") -> str:
    """The address to announce for a sidecar whose internal calls arrive on
    ``listen_address`` (``host:port``); see the module's docstring for the order."""
    _, port = split_host_port(listen_address)
    if explicit:
        host, given_port = split_host_port(explicit)
        if is_wildcard(host):
            raise ConfigError(f"name_resolution.advertise {explicit!r}: announce an address "
                              "other sidecars can reach, not a wildcard")
        if given_port:
            return explicit
        if not port.isdigit():
            raise ConfigError(f"name_resolution.advertise {explicit!r}: give host:port (the "
                              f"listener {listen_address!r} has no port to add)")
        return join_host_port(host, port)
    if is_unix(listen_address) or not port.isdigit():
        return listen_address
    env_ip = os.environ.get(HOST_IP_ENV, "").strip()
    if env_ip:
        return join_host_port(env_ip, port)
    host, _ = split_host_port(listen_address)
    if not is_wildcard(host):
        return listen_address
    found = host_ip()
    if found is None:
        raise ConfigError(
            f"the sidecars' port listens on every interface ({listen_address}) and this host "
            "has no address but loopback to announce: set name_resolution.advertise "
            f"(host or host:port) or {HOST_IP_ENV}")
    address = join_host_port(found, port)
    log.info("listening on %s: announcing %s to name resolution (set "
             "name_resolution.advertise to choose another)", listen_address, address)
    return address
