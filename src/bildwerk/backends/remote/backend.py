"""The base of every remote backend: configuration, with the client and key made on first use."""

from __future__ import annotations

import os
import random as _random
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import httpx

from bildwerk.backends.remote.apikeys import Secret, resolve_api_key
from bildwerk.backends.remote.client import RemoteClient, ServiceProfile
from bildwerk.errors import UserError
from bildwerk.httpretry import RetryPolicy

# --------------------------------------------------------------------------- backend base


class RemoteBackend:
    """Configuration every remote backend shares; the HTTP client and the key are
    created on first use, so registering the backend needs no key."""

    profile: ServiceProfile
    base_env: str
    default_base: str

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        connect_timeout: float | None = None,
        read_timeout: float | None = None,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        random: Callable[[], float] = _random.random,
        clock: Callable[[], float] = time.time,
        transport: httpx.BaseTransport | None = None,
        environ: Mapping[str, str] | None = None,
        secrets_file: Path | None = None,
    ) -> None:
        self._api_key = Secret(api_key) if api_key else None
        self._base_url = base_url
        self._client_args: dict[str, Any] = {
            "connect_timeout": connect_timeout,
            "read_timeout": read_timeout,
            "retry": retry,
            "sleep": sleep,
            "random": random,
            "clock": clock,
            "transport": transport,
        }
        self._environ = environ
        self._secrets_file = secrets_file
        self._client: RemoteClient | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r})"

    @property
    def base_url(self) -> str:
        env = os.environ if self._environ is None else self._environ
        url = (self._base_url or env.get(self.base_env) or self.default_base).rstrip("/")
        if not url.startswith(("http://", "https://")):
            raise UserError(
                f"{self.profile.title}: base URL '{url}' is not an http(s) URL",
                hint=f"check ${self.base_env}",
            )
        return url

    def client(self) -> RemoteClient:
        if self._client is None:
            key = self._api_key or resolve_api_key(
                self.profile.key_var,
                service=self.profile.title,
                environ=self._environ,
                secrets_file=self._secrets_file,
            )
            self._client = RemoteClient(self.profile, self.base_url, key, **self._client_args)
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
