"""Shared plumbing for remote image APIs (OpenAI Images, Stability): HTTP, secrets, cost.

Remote services fail in ways a local backend does not, and they cost money per call, so
every remote backend goes through :class:`RemoteClient`:

* timeouts on connect and read; retries through :mod:`bildwerk.httpretry` (transport
  errors, 408/425/429/5xx, full-jitter backoff, a capped ``Retry-After`` on 429/503);
* no retry on other 4xx: 400/401/403 become :class:`RemoteUserError` (a ``UserError``)
  naming the service and what to check; content refusals become :class:`RefusedError`;
* an ``Idempotency-Key`` header derived from the scene key, identical across retries and
  re-runs, so a service that honours it never bills one scene twice;
* API keys only from the environment or a private secrets file, wrapped in
  :class:`Secret` so they never reach logs, ``repr``, exception text or recorded params.

Cost per image is an *estimate* from :data:`PRICES` (list prices as of
:data:`PRICES_AS_OF`), overridable per brief with ``params["pricing"]``.

Modules: :mod:`.errors`, :mod:`.apikeys`, :mod:`.client` (HTTP, retries, multipart),
:mod:`.cost`, :mod:`.images` (canvas, product, decoding) and :mod:`.backend` (the base
class).
"""

from __future__ import annotations

from bildwerk.backends.remote.apikeys import SECRETS_ENV, Secret, resolve_api_key, secrets_path
from bildwerk.backends.remote.backend import RemoteBackend
from bildwerk.backends.remote.client import (
    USER_AGENT,
    FilePart,
    RemoteClient,
    Reply,
    ServiceProfile,
    encode_multipart,
    idempotency_key,
)
from bildwerk.backends.remote.cost import PRICES, PRICES_AS_OF, estimate_cost
from bildwerk.backends.remote.errors import RefusedError, RemoteError, RemoteUserError, public_url
from bildwerk.backends.remote.images import (
    ApiCanvas,
    Placement,
    api_canvas,
    decode_b64,
    decode_image,
    finish_scene,
    json_body,
    option,
    place_product,
    png_bytes,
    product_layers,
)
from bildwerk.httpretry import RetryPolicy, parse_retry_after

__all__ = [
    "PRICES",
    "PRICES_AS_OF",
    "SECRETS_ENV",
    "USER_AGENT",
    "ApiCanvas",
    "FilePart",
    "Placement",
    "RefusedError",
    "RemoteBackend",
    "RemoteClient",
    "RemoteError",
    "RemoteUserError",
    "Reply",
    "RetryPolicy",
    "Secret",
    "ServiceProfile",
    "api_canvas",
    "decode_b64",
    "decode_image",
    "encode_multipart",
    "estimate_cost",
    "finish_scene",
    "idempotency_key",
    "json_body",
    "option",
    "parse_retry_after",
    "place_product",
    "png_bytes",
    "product_layers",
    "public_url",
    "resolve_api_key",
    "secrets_path",
]
