"""The network rules every probe shares: which URLs go through the environment's proxy (and that this package's own
probes never send a loopback one there), an HTTP GET that follows that rule, and one TCP connect."""

from __future__ import annotations

import ipaddress
import socket
import urllib.request
from urllib.parse import urlsplit

LOOPBACK_NAMES = ("localhost", "localhost.localdomain")
DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address, IPv6 with or without brackets) is this machine's loopback."""
    host = host.strip("[]").lower()
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def proxied(url: str) -> bool:
    """Whether a proxy from the environment (``HTTPS_PROXY``, ``HTTP_PROXY``, ``ALL_PROXY``, in either case, less
    the hosts ``NO_PROXY`` names) applies to ``url``, as the HTTP libraries (requests, the hub's) read it."""
    parts = urlsplit(url)
    proxies = urllib.request.getproxies()
    if not (proxies.get(parts.scheme) or proxies.get("all")):
        return False
    return not urllib.request.proxy_bypass(parts.netloc.rpartition("@")[2])


def asked_directly(url: str) -> bool:
    """The rule of this package's own probes (a service's health, a judge's model list): a loopback URL is asked
    directly (no proxy can reach this machine's loopback for us), any other through the proxy ``proxied`` names."""
    return is_loopback(urlsplit(url).hostname or "") or not proxied(url)


def open_url(request: urllib.request.Request | str, timeout: float):  # noqa: ANN201  (an http.client response)
    """``urlopen`` of ``request`` as ``asked_directly`` says: directly, or through the environment's proxy."""
    url = request.full_url if isinstance(request, urllib.request.Request) else request
    return (DIRECT if asked_directly(url) else urllib.request.build_opener()).open(request, timeout=timeout)


def connect_error(host: str, port: int, timeout: float) -> OSError | None:
    """Why one name lookup and TCP connect to ``host``:``port`` failed (closed at once), or None when it worked."""
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as error:
        return error
    return None
