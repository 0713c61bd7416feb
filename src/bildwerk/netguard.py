"""Limits and an SSRF guard for every outbound connection.

Two things a remote party must not be able to do to bildwerk:

* **cost unbounded time or memory**: :class:`Limits` gives each request a connect and a
  read timeout, an overall deadline and a cap on the reply's size; the retry layer
  (:mod:`bildwerk.httpretry`) streams replies and aborts past either;
* **point it at the inside network** (SSRF): a webhook URL, a remote base URL, a URL a
  reply names, an S3 endpoint or a time-stamp authority that resolves to a loopback,
  private, link-local, multicast, reserved or unspecified address is refused unless
  ``network.allow_hosts`` names the host, the address or its network.

The guard resolves a host **once**, checks every address, and connects to the checked
address itself (``bildwerk.httpretry.GuardedBackend``, httpcore's network backend; for
s3fs, :func:`pinned_resolver` in aiohttp's connector): a DNS answer that changes between
the check and the connect (DNS rebinding) cannot slip through. The URL, the ``Host``
header and TLS SNI/certificate checks keep the host name. The one client that connects
on its own is the C2PA SDK's time-stamp request: its URL is checked up front only.

The workspace's settings become the process-wide :class:`NetPolicy` through
:func:`configure`, which also exports it in ``BILDWERK_NETWORK`` so spawned workers see the
same policy.
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from bildwerk.errors import ServiceError, UserError

if TYPE_CHECKING:
    import httpx

ENV = "BILDWERK_NETWORK"
"""Environment variable carrying the policy (JSON) into spawned worker processes."""

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
MB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """What one request may cost. ``deadline`` bounds a whole attempt (connect, send and
    the streamed reply; a single read is also bounded by ``read``); ``max_bytes`` the
    decoded reply body."""

    connect: float = 10.0
    read: float = 60.0
    deadline: float = 300.0
    max_bytes: int = 64 * MB

    def __post_init__(self) -> None:
        if min(self.connect, self.read, self.deadline) <= 0 or self.max_bytes <= 0:
            raise ValueError("timeouts, deadline and max_bytes must be > 0")

    def timeout(self) -> httpx.Timeout:
        """httpx timeouts, none longer than the deadline."""
        import httpx  # here: settings import this module and must stay light

        read = min(self.read, self.deadline)
        connect = min(self.connect, self.deadline)
        return httpx.Timeout(read, connect=connect, pool=connect)


DEFAULT_LIMITS: Mapping[str, Limits] = {
    # image APIs: large b64 bodies, slow generations
    "image_api": Limits(connect=10.0, read=180.0, deadline=300.0, max_bytes=64 * MB),
    # a CMS answering a webhook: small replies, quick answers
    "webhook": Limits(connect=5.0, read=10.0, deadline=30.0, max_bytes=4 * MB),
}


def describe_size(n: int) -> str:
    return f"{n / MB:g} MB" if n >= MB else f"{n} bytes"


@dataclass(frozen=True)
class NetPolicy:
    """Which inside hosts may be reached, and the limits per kind of call
    (``image_api``, ``webhook``)."""

    allow_hosts: frozenset[str] = frozenset()
    allow_networks: tuple[IPNetwork, ...] = ()
    limits: Mapping[str, Limits] = field(default_factory=lambda: dict(DEFAULT_LIMITS))

    @classmethod
    def build(
        cls, allow: Iterable[str] = (), limits: Mapping[str, Limits] | None = None
    ) -> NetPolicy:
        """``allow`` entries are host names, addresses or networks (``10.0.0.0/8``)."""
        hosts: set[str] = set()
        nets: list[IPNetwork] = []
        for entry in allow:
            text = entry.strip().lower().strip("[]")
            if not text:
                continue
            try:
                nets.append(ipaddress.ip_network(text, strict=False))
            except ValueError:
                hosts.add(text.rstrip("."))
        merged = dict(DEFAULT_LIMITS)
        merged.update(limits or {})
        return cls(frozenset(hosts), tuple(nets), merged)

    def limits_for(self, kind: str) -> Limits:
        return self.limits.get(kind) or DEFAULT_LIMITS.get(kind) or Limits()

    def host_allowed(self, host: str) -> bool:
        return host.lower().rstrip(".").strip("[]") in self.allow_hosts

    def address_allowed(self, host: str, address: IPAddress) -> bool:
        """True when the address is public, or the host or address is allow-listed."""
        if blocked_reason(address) is None or self.host_allowed(host):
            return True
        return any(address in net for net in self.allow_networks if net.version == address.version)

    def to_json(self) -> str:
        return json.dumps(
            {
                "allow": sorted(self.allow_hosts) + [str(n) for n in self.allow_networks],
                "limits": {
                    k: [v.connect, v.read, v.deadline, v.max_bytes] for k, v in self.limits.items()
                },
            }
        )

    @classmethod
    def from_json(cls, text: str) -> NetPolicy:
        data = json.loads(text)
        limits = {
            k: Limits(float(c), float(r), float(d), int(b))
            for k, (c, r, d, b) in data.get("limits", {}).items()
        }
        return cls.build(data.get("allow", ()), limits)


_policy: NetPolicy | None = None


def configure(policy: NetPolicy) -> None:
    """Make ``policy`` the process-wide default (and that of workers spawned later)."""
    global _policy
    _policy = policy
    os.environ[ENV] = policy.to_json()


def current_policy() -> NetPolicy:
    """The configured policy, else one from ``BILDWERK_NETWORK``, else the defaults
    (nothing inside allowed)."""
    if _policy is not None:
        return _policy
    text = os.environ.get(ENV)
    if text:
        try:
            return NetPolicy.from_json(text)
        except (ValueError, TypeError, KeyError):
            raise UserError(f"${ENV} is not a network policy bildwerk wrote") from None
    return NetPolicy()


# --------------------------------------------------------------------------- addresses


def blocked_reason(address: IPAddress) -> str | None:
    """Why an address is off-limits by default, or None when it is public."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    for name in ("loopback", "private", "link_local", "multicast", "reserved", "unspecified"):
        if getattr(address, f"is_{name}"):
            return name.replace("_", "-")
    if not address.is_global:
        return "not globally routable"
    return None


class BlockedAddressError(UserError):
    """An outbound URL resolves to an address the network policy refuses."""

    def __init__(self, what: str, host: str, address: str, reason: str) -> None:
        self._args = (what, host, address, reason)
        self.host, self.address = host, address
        shown = host if host == address else f"{host} ({address})"
        super().__init__(
            f"{what}: refusing to connect to {shown}: a {reason} address",
            hint=f"if this host is yours, add {host!r} to network.allow_hosts in bildwerk.yaml",
        )

    def __reduce__(self) -> tuple[type[BlockedAddressError], tuple[str, str, str, str]]:
        return (type(self), self._args)  # raised in workers, re-raised in the parent


def resolve(host: str, port: int, policy: NetPolicy, what: str = "outbound request") -> list[str]:
    """Resolve ``host`` once and return its addresses, every one checked against
    ``policy``; raises :class:`BlockedAddressError` if any is refused (an answer mixing
    public and inside addresses is refused whole)."""
    bare = host.strip("[]")
    try:
        infos = socket.getaddrinfo(bare, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise ServiceError(
            f"{what}: cannot resolve host {bare!r} ({exc})",
            hint="check the host name in the URL and the network",
        ) from None
    addresses: list[str] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        text = str(sockaddr[0]).split("%", 1)[0]
        address = ipaddress.ip_address(text)
        if not policy.address_allowed(bare, address):
            raise BlockedAddressError(what, bare, text, blocked_reason(address) or "refused")
        if text not in addresses:
            addresses.append(text)
    if not addresses:
        raise ServiceError(f"{what}: host {bare!r} has no address")
    return addresses


def check_url(url: str, what: str, policy: NetPolicy | None = None) -> None:
    """Refuse an http(s) URL up front when its host resolves to an inside address
    (for clients that connect themselves: s3fs, the C2PA SDK's time-stamp requests)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UserError(f"{what}: {url!r} is not an http(s) URL")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    resolve(parts.hostname, port, policy or current_policy(), what)


def endpoint_urls(options: Mapping[str, typing.Any]) -> list[str]:
    """The endpoints named in fsspec/s3fs storage options (``endpoint_url``, also under
    ``client_kwargs``)."""
    client = options.get("client_kwargs")
    found = (
        options.get("endpoint_url"),
        client.get("endpoint_url") if isinstance(client, Mapping) else None,
    )
    return [v for v in found if isinstance(v, str) and v]


def limits_from(
    base: Limits,
    *,
    connect: float | None = None,
    read: float | None = None,
    deadline: float | None = None,
    max_bytes: int | None = None,
) -> Limits:
    """``base`` with the given fields replaced (explicit arguments beat settings)."""
    changes: dict[str, float | int] = {}
    for name, value in (
        ("connect", connect),
        ("read", read),
        ("deadline", deadline),
        ("max_bytes", max_bytes),
    ):
        if value is not None:
            changes[name] = value
    return replace(base, **changes)  # type: ignore[arg-type]


def pinned_resolver(
    what: str, urls: Iterable[str] = (), policy: NetPolicy | None = None
) -> typing.Any:
    """An aiohttp resolver for clients built on aiohttp (s3fs/aiobotocore: pass it as
    ``config_kwargs={"connector_args": {"resolver": ...}}``). The hosts of ``urls`` are
    resolved and checked here, up front (a refused one raises now); any other host on
    first use. Each answer is pinned: every later connection goes to the addresses that
    were checked, so a DNS answer that changes afterwards is never followed."""
    from aiohttp.abc import AbstractResolver, ResolveResult

    checked = policy or current_policy()
    pinned: dict[tuple[str, int], list[str]] = {}

    def pin(host: str, port: int) -> list[str]:
        if (host, port) not in pinned:
            pinned[(host, port)] = resolve(host, port, checked, what)
        return pinned[(host, port)]

    for url in urls:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UserError(f"{what}: {url!r} is not an http(s) URL")
        pin(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))

    class PinnedResolver(AbstractResolver):
        async def resolve(
            self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
        ) -> list[ResolveResult]:
            return [
                ResolveResult(
                    hostname=host,
                    host=address,
                    port=port,
                    family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                    proto=0,
                    flags=socket.AI_NUMERICHOST,
                )
                for address in pin(host, port)
            ]

        async def close(self) -> None:
            return None

    return PinnedResolver()


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address literal) stays on this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
