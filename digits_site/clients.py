"""Who a client is: the address that counts for limits, quotas and lockouts.

A request's ``X-Forwarded-For`` is whatever the sender wrote, so it is read only
when the request came from a proxy we run (``DIGITS_TRUSTED_PROXIES``), and then
from the right: the last address that is not one of our proxies is the client.
Anything else would let a client invent a new address per request and walk
through every limit.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import ipaddress

from django.conf import settings

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@functools.cache
def _trusted(spec: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(item, strict=False) for item in spec)


def trusted_proxies() -> tuple[Network, ...]:
    return _trusted(tuple(settings.DIGITS_TRUSTED_PROXIES))


def parse_address(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    value = value.strip()
    if value.startswith("[") and "]" in value:  # "[::1]:443"
        value = value[1 : value.index("]")]
    elif value.count(":") == 1:  # "1.2.3.4:5678"
        value = value.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def is_trusted_proxy(address) -> bool:
    """Whether ``address`` (an ``ip_address``) is one of our proxies."""
    return any(address in network for network in trusted_proxies())


def address_group(address: str) -> str | None:
    """What counts as one client's address: IPv4 as it is, IPv6 as its /64 (one
    subscriber's allocation, which a single client can rotate through freely);
    None for what is no address (a unix socket, 'unknown')."""
    parsed = parse_address(address)
    if parsed is None:
        return None
    if isinstance(parsed, ipaddress.IPv6Address):
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return str(parsed)


def login_address(request) -> str | None:
    """:func:`client_address` for django-axes, which stores it in an IP column:
    None when the socket gave none (a unix socket, Django's ``force_login``), since
    PostgreSQL's ``inet`` refuses the text 'unknown' (SQLite took it)."""
    address = client_address(request)
    return None if address == "unknown" else address


def client_address(request) -> str:
    """The client's IP address as text ('unknown' if the socket gave none)."""
    meta = request.META
    peer = parse_address(meta.get("REMOTE_ADDR") or "")
    if peer is None:
        return "unknown"
    if not is_trusted_proxy(peer):
        return str(peer)
    for hop in reversed((meta.get("HTTP_X_FORWARDED_FOR") or "").split(",")):
        address = parse_address(hop)
        if address is None:
            break  # a malformed hop: trust nothing further left
        if not is_trusted_proxy(address):
            return str(address)
        peer = address
    return str(peer)


def client_key(request) -> str:
    """A stable, private name for the client, for counters and stored rows.

    Signed-in users are themselves; anyone else is their address, with IPv6
    taken as its /64 (one subscriber's allocation, which a single client can
    rotate through freely). Addresses are keyed with the secret key, so stored
    rows and Redis keys hold no raw addresses.
    """
    user = getattr(request, "user", None)
    if user is not None and getattr(user, "is_authenticated", False):
        return f"user:{user.pk}"
    return address_key(request)


def address_key(request) -> str:
    """:func:`client_key` for the address alone, whoever is signed in (failed
    sign-ins count against the address)."""
    address = client_address(request)
    address = address_group(address) or address
    digest = hmac.new(settings.SECRET_KEY.encode(), address.encode(), hashlib.sha256)
    return "addr:" + digest.hexdigest()[:24]
