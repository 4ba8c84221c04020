"""The network rules every probe shares: which URLs go through the environment's proxy (never a loopback one), an
HTTP GET that follows that rule, and one TCP connect."""

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
    the hosts ``NO_PROXY`` names) applies to ``url``; never to a loopback host, which no proxy can reach for us."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    if is_loopback(parts.hostname or ""):
        return False
    proxies = urllib.request.getproxies()
    if not (proxies.get(parts.scheme) or proxies.get("all")):
        return False
    return not urllib.request.proxy_bypass(host)


def open_url(request: urllib.request.Request | str, timeout: float):  # noqa: ANN201  (an http.client response)
    """``urlopen`` of ``request`` through the environment's proxy when ``proxied`` says so, else directly."""
    url = request.full_url if isinstance(request, urllib.request.Request) else request
    return (urllib.request.build_opener() if proxied(url) else DIRECT).open(request, timeout=timeout)


def connect_error(host: str, port: int, timeout: float) -> OSError | None:
    """Why one name lookup and TCP connect to ``host``:``port`` failed (closed at once), or None when it worked."""
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as error:
        return error
    return None
