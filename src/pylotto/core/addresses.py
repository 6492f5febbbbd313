"""Listen and advertised addresses: ``host:port`` (an IPv6 host in brackets) or ``unix:/path``.

The one place that says which hosts mean "every interface" and which only this machine.
"""

from __future__ import annotations

import ipaddress
import socket

UNIX_PREFIX = "unix:"
WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::"})
"""Hosts a listener binds on every interface with (``:50001`` too: an empty host)."""
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def is_unix(address: str) -> bool:
    return address.startswith(UNIX_PREFIX)


def split_host_port(address: str) -> tuple[str, str]:
    """(host without brackets, port) of ``host:port``; the port is "" when there is none
    (``10.0.0.5``, ``fd00::1``, ``[fd00::1]``)."""
    if address.startswith("["):
        host, _, rest = address[1:].partition("]")
        return host, rest.removeprefix(":")
    if address.count(":") > 1:  # a bare IPv6 address has no port
        return address, ""
    host, colon, port = address.rpartition(":")
    return (host, port) if colon else (address, "")


def join_host_port(host: str, port: str | int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def is_wildcard(host: str) -> bool:
    """True for a host that binds every interface (``0.0.0.0``, ``::``, empty)."""
    return host in WILDCARD_HOSTS


def is_loopback(host: str) -> bool:
    """True when ``host`` can only be reached from this machine: a loopback address, or a
    name every address of which is a loopback one. A wildcard or a name that does not
    resolve is not (what it would be bound to is unknown, so it counts as reachable)."""
    if is_wildcard(host):
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        return False
    found = {str(info[4][0]) for info in infos}
    return bool(found) and all(ipaddress.ip_address(a.split("%")[0]).is_loopback
                               for a in found)


def reachable_from_network(address: str) -> bool:
    """True for a listen address other machines may connect to: not a Unix socket, not a
    loopback host. An empty address (the listener is off) is not."""
    if not address or is_unix(address):
        return False
    host, _ = split_host_port(address)
    return not is_loopback(host)
