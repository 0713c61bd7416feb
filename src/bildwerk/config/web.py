"""``web:`` in ``bildwerk.yaml``: how ``bildwerk serve`` learns who is asking.

By default only its own logins and API tokens say who someone is. Behind a reverse proxy
that authenticates people itself (single sign-on), ``trusted_proxy`` lets the proxy name
the user in a header, but only on connections from the proxy's own addresses; the name
must be an existing, enabled account, whose roles then apply. Off unless configured:
a header any client can send is never trusted on its own.
"""

from __future__ import annotations

import ipaddress

from pydantic import BaseModel, ConfigDict, Field, field_validator


class TrustedProxy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    header: str = Field(
        "X-Forwarded-User", pattern=r"^[A-Za-z0-9-]{1,64}$",
        description="the header the proxy puts the user name in",
    )  # fmt: skip
    addresses: list[str] = Field(
        min_length=1,
        description="the proxy's own addresses or networks (e.g. 127.0.0.1, 10.0.0.5/32); "
        "the header is ignored on connections from anywhere else",
    )

    @field_validator("addresses")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not an address or network") from None
        return value

    def trusts(self, client: str | None) -> bool:
        """Whether a connection from ``client`` comes from the proxy."""
        if not client:
            return False
        try:
            address = ipaddress.ip_address(client)
        except ValueError:
            return False
        return any(address in ipaddress.ip_network(n, strict=False) for n in self.addresses)


class WebSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    trusted_proxy: TrustedProxy | None = None
