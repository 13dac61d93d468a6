"""Where webhooks may go: public addresses only, checked when an endpoint is created and at every delivery.

A customer chooses the URL, so without a check the portal would POST, from inside the operator's network,
to whatever it names: the cloud metadata service (169.254.169.254), the database, an admin port on
localhost. Every address a host resolves to must be globally routable, and the check is made again at
every delivery by the resolver the HTTP client connects with (DNS can change after creation, and a
check-then-connect would leave a window): the client only ever connects to addresses that passed.
``WEBHOOKS_ALLOW_PRIVATE=true`` lifts it, for receivers on the operator's own network (and DEV_MODE).
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import socket
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver
from aiohttp.resolver import DefaultResolver

MAX_URL = 2000
RESOLVE_TIMEOUT = 5.0


class UrlRefused(Exception):
    """The URL may not receive webhooks; the message says why (for the customer)."""

    def __init__(self, message: str, code: str = "url_refused") -> None:
        super().__init__(message)
        self.code = code


# IPv6 prefixes that carry an IPv4 address in their last 32 bits, which a translator on the way (NAT64,
# or a host still speaking the deprecated IPv4-compatible form) turns back into that IPv4 address.
EMBEDS_IPV4_LAST = tuple(ipaddress.ip_network(n) for n in ("64:ff9b::/96", "64:ff9b:1::/48", "::/96"))


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped, 6to4, Teredo, NAT64, IPv4-compatible), if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]  # the client's address (the server's is public by definition)
    if any(address in net for net in EMBEDS_IPV4_LAST) and int(address) > 1:  # ::, ::1 are themselves
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def refused_address(text: str) -> str | None:
    """Why ``text`` (an IP address) must not receive webhooks, or None when it is a public address."""
    address = ipaddress.ip_address(text.split("%", 1)[0])  # an IPv6 zone ("fe80::1%eth0") says nothing more
    if isinstance(address, ipaddress.IPv6Address) and (inner := embedded_ipv4(address)) is not None:
        address = inner
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address (where cloud metadata services answer)"
    if address.is_multicast or address.is_unspecified:
        return "not a unicast address"
    if not address.is_global:
        return "a private or reserved address"
    return None


def parse_url(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of an acceptable endpoint URL; :class:`UrlRefused` (code ``bad_url``) otherwise."""
    if len(url) > MAX_URL:
        raise UrlRefused(f"the URL is longer than {MAX_URL} characters", "bad_url")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UrlRefused(f"the URL is malformed: {exc}", "bad_url") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UrlRefused("the URL must be an absolute http:// or https:// URL, e.g. https://example.com/hooks",
                         "bad_url")
    if parts.username is not None or parts.password is not None:
        raise UrlRefused("the URL must not carry a user name or password: webhooks are signed instead", "bad_url")
    if parts.fragment:
        raise UrlRefused("the URL must not have a #fragment", "bad_url")
    if any(ch.isspace() or ord(ch) < 0x20 for ch in url):
        raise UrlRefused("the URL must not contain spaces or control characters", "bad_url")
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80)


def is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True


async def check_url(url: str, *, allow_private: bool) -> None:
    """Refuse ``url`` (:class:`UrlRefused`) when it is malformed or any address its host resolves to is not public."""
    _scheme, host, port = parse_url(url)
    if allow_private:
        return
    if is_ip(host):
        addresses = [host]
    else:
        try:
            infos = await asyncio.wait_for(
                asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM), RESOLVE_TIMEOUT)
        except (OSError, asyncio.TimeoutError) as exc:
            raise UrlRefused(f"the host {host} cannot be resolved ({exc or 'timed out'})", "url_unresolvable") from None
        addresses = [info[4][0] for info in infos]
    for address in addresses:
        reason = refused_address(address)
        if reason:
            raise UrlRefused(f"the URL's host {host} is {address}, {reason}; webhooks go to public addresses only")


class AddressRefused(OSError):
    """Raised by :class:`PublicOnlyResolver`; aiohttp wraps it, and the deliverer logs its ``strerror``."""

    def __init__(self, message: str) -> None:
        super().__init__(errno.EACCES, message)


class PublicOnlyResolver(AbstractResolver):
    """aiohttp's resolver, refusing a host any of whose addresses is not public (so the client never connects
    to one). aiohttp does not ask the resolver about IP literals: the deliverer checks those itself."""

    def __init__(self) -> None:
        self._resolver = DefaultResolver()

    async def resolve(self, host: str, port: int = 0, family: int = socket.AF_INET):
        resolved = await self._resolver.resolve(host, port, family)
        for entry in resolved:
            reason = refused_address(entry["host"])
            if reason:
                raise AddressRefused(f"{host} resolves to {entry['host']}, {reason} (WEBHOOKS_ALLOW_PRIVATE)")
        return resolved

    async def close(self) -> None:
        await self._resolver.close()
