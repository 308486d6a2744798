"""The SSRF guard of outgoing HTTP calls (`http.request` runs, alert webhooks and Slack posts).

A worker sits inside the network: left alone, whoever may define a config could make it call
the cloud metadata service (169.254.169.254), the database or Redis. So destinations in the
loopback, link-local, private, unique-local, multicast and unspecified ranges are refused,
except networks opened on purpose by `HTTP_TASK_ALLOWED_NETWORKS`.

Two checks, one rule (`refusal`):
- a literal IP in a URL is refused when the parameters are validated (422 at the API);
- a host name is resolved when the connection is made, EVERY address it resolves to is
  checked, and the connection goes to the checked address (no second lookup: no DNS-rebinding
  window). It happens in the network backend of httpx's connection pool, so each redirect,
  a new connection, is checked too. TLS still verifies the certificate against the host name.
"""

import ipaddress
import socket
from collections.abc import Iterable, Sequence

import anyio
import httpcore
import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_REFUSED: dict[str, tuple[str, ...]] = {
    "loopback": ("127.0.0.0/8", "::1/128"),
    "link-local": ("169.254.0.0/16", "fe80::/10"),
    "private": ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10"),
    "unique-local": ("fc00::/7",),
    "multicast": ("224.0.0.0/4", "ff00::/8"),
    # 0.0.0.0 and :: reach the local host on Linux.
    "unspecified": ("0.0.0.0/8", "::/128"),
}
REFUSED_RANGES: dict[str, tuple[IPNetwork, ...]] = {
    name: tuple(ipaddress.ip_network(cidr) for cidr in cidrs) for name, cidrs in _REFUSED.items()
}


class DestinationRefused(Exception):
    """An outgoing call to an address in a refused range."""


def refusal(address: IPAddress, allowed: Sequence[IPNetwork]) -> str | None:
    """The name of the refused range the address is in, or None if it may be called."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    if any(address in network for network in allowed):
        return None
    for name, networks in REFUSED_RANGES.items():
        if any(address in network for network in networks):
            return name
    return None


def literal_refusal(host: str | None, allowed: Sequence[IPNetwork]) -> str | None:
    """For a URL's host that is an IP literal, why it is refused; None for a name."""
    try:
        address = ipaddress.ip_address((host or "").strip("[]"))
    except ValueError:
        return None
    reason = refusal(address, allowed)
    return None if reason is None else refused_message(str(address), reason)


def refused_message(address: str, reason: str) -> str:
    return (
        f"destination {address} is in a {reason} range, which outgoing calls may not reach "
        "(HTTP_TASK_ALLOWED_NETWORKS opens networks on purpose)"
    )


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's default backend, connecting only to resolved addresses that passed."""

    def __init__(self, allowed: Sequence[IPNetwork]) -> None:
        self._allowed = tuple(allowed)
        self._backend = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await _resolve(host, port, timeout)
        for address in addresses:
            reason = refusal(ipaddress.ip_address(address), self._allowed)
            if reason is not None:
                raise DestinationRefused(f"{host}: {refused_message(address, reason)}")
        error: Exception = httpcore.ConnectError(f"{host} resolves to no address")
        for address in addresses:
            try:
                return await self._backend.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc  # the next address, as a resolver-driven connect would
        raise error

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise DestinationRefused("outgoing calls do not use unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


async def _resolve(host: str, port: int, timeout: float | None) -> list[str]:
    try:
        with anyio.fail_after(timeout):
            infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except TimeoutError as exc:
        raise httpcore.ConnectTimeout(f"resolving {host} timed out") from exc
    except OSError as exc:
        raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
    # The scope of a link-local IPv6 address (`fe80::1%eth0`) is not part of the address.
    return list(dict.fromkeys(str(info[4][0]).split("%")[0] for info in infos))


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport on a pool whose connections pass the guard. No proxy from the
    environment: through a proxy the guard would see only the proxy's address."""

    def __init__(self, allowed: Sequence[IPNetwork]) -> None:
        super().__init__(trust_env=False)
        # httpx takes no network backend, its connection pool does: the same pool, guarded.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            network_backend=_GuardedBackend(allowed),
        )


def client(
    allowed: Sequence[IPNetwork], *, timeout: float, follow_redirects: bool = False
) -> httpx.AsyncClient:
    """An httpx client whose every connection (redirects too) passes the guard."""
    return httpx.AsyncClient(
        transport=GuardedTransport(allowed),
        trust_env=False,
        timeout=timeout,
        follow_redirects=follow_redirects,
    )
