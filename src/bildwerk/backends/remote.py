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
"""

from __future__ import annotations

import base64
import hashlib
import io
import logging
import math
import os
import random as _random
import re
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from PIL import Image

from bildwerk.backends.base import SceneRequest
from bildwerk.backends.studio import load_cutout
from bildwerk.config.brand import hex_to_rgb
from bildwerk.config.yamlfile import read_yaml
from bildwerk.errors import BildwerkError, ConfigError, UserError
from bildwerk.geometry import Box
from bildwerk.httpretry import RetryingClient, retryable_status
from bildwerk.httpretry import RetryPolicy as RetryPolicy  # re-exported for backends
from bildwerk.httpretry import parse_retry_after as parse_retry_after
from bildwerk.imagefit import crop_box, fit

_log = logging.getLogger("bildwerk.remote")

SECRETS_ENV = "BILDWERK_SECRETS"
USER_AGENT = "bildwerk-remote/1"

# --------------------------------------------------------------------------- errors


class RemoteError(BildwerkError):
    """A remote image API call failed (after retries where retrying made sense)."""

    def __init__(
        self,
        service: str,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        attempts: int = 1,
        hint: str | None = None,
    ) -> None:
        self.service = service
        self.status = status
        self.code = code
        self.attempts = attempts
        self.message = message
        self.hint = hint
        # not super().__init__: in RemoteUserError the MRO would route through UserError
        BildwerkError.__init__(self, self.__str__())

    def __str__(self) -> str:
        return f"{self.message}\n  → {self.hint}" if self.hint else self.message


class RemoteUserError(RemoteError, UserError):
    """The service rejected the request for a reason the user can fix (400/401/403,
    exhausted quota); the CLI prints it without a traceback."""


class RefusedError(RemoteError):
    """The service refused to produce this image (content filter). The job is recorded
    as refused with :attr:`reason`; retrying the same prompt would not help."""

    def __init__(self, service: str, reason: str, message: str, **kw: Any) -> None:
        self.reason = reason
        super().__init__(service, message, **kw)


# --------------------------------------------------------------------------- secrets


class Secret:
    """An API key that does not show itself: ``repr``/``str`` are masked and
    :meth:`redact` scrubs it from any text a server sends back."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        value = value.strip()
        if not value:
            raise ValueError("empty secret")
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def redact(self, text: str) -> str:
        """``text`` without the key, without any 8+ character piece of it that a server
        might echo (OpenAI shows a masked prefix and suffix), and without key-like tokens."""
        out = text.replace(self._value, "[redacted]")
        if len(self._value) >= 16:
            for piece in (self._value[:8], self._value[-8:]):
                out = out.replace(piece, "[redacted]")
        return _KEYLIKE.sub("[redacted]", out)


_KEYLIKE = re.compile(r"\b(?:sk|pk|rk)-[A-Za-z0-9_\-*.]{6,}")


def secrets_path(environ: Mapping[str, str] | None = None) -> Path:
    """``$BILDWERK_SECRETS``, else ``$XDG_CONFIG_HOME``/``~/.config`` + bildwerk/secrets.yaml."""
    env = os.environ if environ is None else environ
    if env.get(SECRETS_ENV):
        return Path(env[SECRETS_ENV]).expanduser()
    base = Path(env["XDG_CONFIG_HOME"]) if env.get("XDG_CONFIG_HOME") else Path("~/.config")
    return base.expanduser() / "bildwerk" / "secrets.yaml"


def resolve_api_key(
    var: str,
    *,
    service: str,
    environ: Mapping[str, str] | None = None,
    secrets_file: Path | None = None,
) -> Secret:
    """The key from the environment variable ``var``, else from the secrets file (a YAML
    mapping ``VAR: value``). A secrets file accessible to group or others is refused."""
    env = os.environ if environ is None else environ
    if env.get(var, "").strip():
        return Secret(env[var])
    path = secrets_file or secrets_path(env)
    if path.exists():
        mode = path.stat().st_mode
        if os.name != "nt" and mode & 0o077:
            raise UserError(
                f"{path}: the secrets file is accessible by group or others "
                f"(mode {mode & 0o777:o}); refusing to read API keys from it",
                hint=f"run: chmod 600 {path}",
            )
        doc = read_yaml(path)
        if doc.data is not None and not isinstance(doc.data, dict):
            raise ConfigError(path, "the secrets file must be a mapping of NAME: value", line=1)
        value = (doc.data or {}).get(var)
        if value is not None and not isinstance(value, str):
            raise ConfigError(path, "must be a string", line=doc.line_of((var,)), field=var)
        if value and value.strip():
            return Secret(value)
    elif env.get(SECRETS_ENV):
        raise UserError(f"{path}: the secrets file named by ${SECRETS_ENV} does not exist")
    raise UserError(
        f"no API key for {service}: {var} is not set",
        hint=f"export {var}=… or add '{var}: …' to {path} (chmod 600)",
    )


# --------------------------------------------------------------------------- retries


def idempotency_key(service: str, scene_key: str, purpose: str = "generate") -> str:
    """Stable per scene, service and call purpose: the same across retries and re-runs."""
    digest = hashlib.sha256(f"{service}\n{purpose}\n{scene_key}".encode()).hexdigest()
    return f"bw-{digest[:40]}"


# --------------------------------------------------------------------------- client


@dataclass(frozen=True)
class ServiceProfile:
    """What differs between services: names, the key variable, and how errors read.

    ``parse_error(response) -> (message, code)``; ``refusal(status, code, message)`` says
    whether a failure is a content refusal; ``permanent(status, code)`` marks a 429/5xx
    that must not be retried (OpenAI's ``insufficient_quota``)."""

    name: str
    title: str
    key_var: str
    parse_error: Callable[[httpx.Response], tuple[str, str | None]]
    refusal: Callable[[int, str | None, str], bool]
    permanent: Callable[[int, str | None], bool]
    docs_hint: str = ""


@dataclass(frozen=True)
class Reply:
    response: httpx.Response
    attempts: int
    idempotency_key: str | None

    @property
    def request_id(self) -> str | None:
        value = self.response.headers.get("x-request-id")
        return str(value) if value is not None else None


class RemoteClient:
    """The shared :class:`~bildwerk.httpretry.RetryingClient` with the timeout,
    authorisation, error and redaction rules above. ``sleep``, ``random`` and ``clock``
    are injectable so tests never wait."""

    def __init__(
        self,
        profile: ServiceProfile,
        base_url: str,
        api_key: Secret,
        *,
        connect_timeout: float = 10.0,
        read_timeout: float = 180.0,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        random: Callable[[], float] = _random.random,
        clock: Callable[[], float] = time.time,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.profile = profile
        self.base_url = base_url.rstrip("/")
        self._key = api_key
        self.retry = retry or RetryPolicy()
        timeout = httpx.Timeout(read_timeout, connect=connect_timeout, pool=connect_timeout)
        self._http = RetryingClient(
            profile.name,
            policy=self.retry,
            timeout=timeout,
            transport=transport,
            headers={"User-Agent": USER_AGENT},
            sleep=sleep,
            random=random,
            clock=clock,
        )

    def __repr__(self) -> str:
        return f"RemoteClient({self.profile.name!r}, {self.base_url!r})"

    def close(self) -> None:
        self._http.close()

    def request(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        idempotency: str | None = None,
        auth: bool = True,
    ) -> Reply:
        """Send with retries; ``url`` is a path under the base URL or an absolute URL
        (absolute URLs get no ``Authorization``: they are result downloads on other hosts
        unless ``auth`` says otherwise)."""
        absolute = url.startswith(("http://", "https://"))
        full = url if absolute else self.base_url + url
        send = dict(headers or {})
        if auth and not absolute:
            send["Authorization"] = f"Bearer {self._key.reveal()}"
        title = self.profile.title
        outcome = self._http.send(
            method,
            full,
            json=json,
            content=content,
            headers=send,
            idempotency_key=idempotency,
            may_retry=self._may_retry,
        )
        attempt, resp = outcome.attempts, outcome.response
        if resp is None:
            kind = type(outcome.error).__name__
            host = httpx.URL(full).host
            raise RemoteError(
                self.profile.name,
                f"{title}: no answer from {host} after {attempt} attempt(s) ({kind})",
                attempts=attempt,
                hint="check the network or the base URL; a slow service may need "
                "a longer read timeout",
            ) from None
        if resp.is_success:
            return Reply(resp, attempt, idempotency)
        message, code = self._error(resp)
        status = resp.status_code
        if self.profile.refusal(status, code, message):
            raise RefusedError(
                self.profile.name,
                code or "refused",
                f"{title} refused the request (HTTP {status}): {message}",
                status=status,
                code=code,
                attempts=attempt,
            )
        if retryable_status(status) and not self.profile.permanent(status, code):
            raise RemoteError(
                self.profile.name,
                f"{title} failed with HTTP {status} after {attempt} attempt(s): {message}",
                status=status,
                code=code,
                attempts=attempt,
                hint="the service is busy or failing; run again later (finished scenes are kept)",
            )
        raise self._rejected(status, code, message, attempt)

    def _error(self, resp: httpx.Response) -> tuple[str, str | None]:
        message, code = self.profile.parse_error(resp)
        return self._key.redact(message)[:500], code

    def _may_retry(self, resp: httpx.Response) -> bool:
        """Refusals and permanent failures (an exhausted quota) are final."""
        message, code = self._error(resp)
        status = resp.status_code
        return not (
            self.profile.refusal(status, code, message) or self.profile.permanent(status, code)
        )

    def _rejected(self, status: int, code: str | None, message: str, attempt: int) -> RemoteError:
        title, var = self.profile.title, self.profile.key_var
        hints = {
            400: "check the generation settings in the brief (model, size, quality, "
            f"prompt length) against the {title} documentation",
            401: f"check {var} (environment or secrets file): the key is missing, "
            "mistyped or revoked",
            403: f"check that the account behind {var} may use this model or endpoint",
            429: f"check the billing and quota of the account behind {var}",
        }
        text = f"{title} rejected the request (HTTP {status}" + (f", {code}" if code else "")
        text += f"): {message}"
        if status in hints:
            return RemoteUserError(
                self.profile.name,
                text,
                status=status,
                code=code,
                attempts=attempt,
                hint=hints[status],
            )
        return RemoteError(self.profile.name, text, status=status, code=code, attempts=attempt)


# --------------------------------------------------------------------------- multipart


@dataclass(frozen=True)
class FilePart:
    filename: str
    content: bytes
    content_type: str = "image/png"


def encode_multipart(fields: Sequence[tuple[str, str | FilePart]]) -> tuple[bytes, str]:
    """A multipart/form-data body (RFC 7578) and its Content-Type. Built here rather
    than by httpx because Stability requires multipart even when no file is sent."""
    boundary = uuid.uuid4().hex
    out = io.BytesIO()
    for name, value in fields:
        quoted = name.replace('"', "%22")
        out.write(f"--{boundary}\r\n".encode())
        if isinstance(value, FilePart):
            fname = value.filename.replace('"', "%22")
            out.write(
                f'Content-Disposition: form-data; name="{quoted}"; filename="{fname}"\r\n'
                f"Content-Type: {value.content_type}\r\n\r\n".encode()
            )
            out.write(value.content)
        else:
            out.write(f'Content-Disposition: form-data; name="{quoted}"\r\n\r\n'.encode())
            out.write(value.encode("utf-8"))
        out.write(b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue(), f"multipart/form-data; boundary={boundary}"


# --------------------------------------------------------------------------- cost

PRICES_AS_OF = "2025-06-01"
# USD per output image from the services' public list prices on PRICES_AS_OF. Keys are
# "model/size/quality", "model/size" or "model"; the most specific match wins. An
# estimate only: OpenAI also bills input tokens of edits, and prices change.
PRICES: Mapping[str, Mapping[str, float]] = {
    "openai": {
        "gpt-image-1/1024x1024/low": 0.011,
        "gpt-image-1/1024x1536/low": 0.016,
        "gpt-image-1/1536x1024/low": 0.016,
        "gpt-image-1/1024x1024/medium": 0.042,
        "gpt-image-1/1024x1536/medium": 0.063,
        "gpt-image-1/1536x1024/medium": 0.063,
        "gpt-image-1/1024x1024/high": 0.167,
        "gpt-image-1/1024x1536/high": 0.25,
        "gpt-image-1/1536x1024/high": 0.25,
        "dall-e-3/1024x1024/standard": 0.04,
        "dall-e-3/1024x1792/standard": 0.08,
        "dall-e-3/1792x1024/standard": 0.08,
        "dall-e-3/1024x1024/hd": 0.08,
        "dall-e-3/1024x1792/hd": 0.12,
        "dall-e-3/1792x1024/hd": 0.12,
        "dall-e-2/256x256": 0.016,
        "dall-e-2/512x512": 0.018,
        "dall-e-2/1024x1024": 0.02,
    },
    "stability": {  # credits at $0.01
        "core": 0.03,
        "ultra": 0.08,
        "sd3.5-large": 0.065,
        "sd3.5-large-turbo": 0.04,
        "sd3.5-medium": 0.035,
        "inpaint": 0.03,
        "outpaint": 0.04,
    },
}


def estimate_cost(
    service: str, model: str, size: str | None, quality: str | None, overrides: Any = None
) -> dict[str, Any]:
    """``{"cost_usd": float | None, "cost_estimate": {...}}`` for one image.

    ``overrides`` is ``request.params["pricing"]``: the same flat key → USD mapping as
    :data:`PRICES` (plus an optional ``as_of`` date); any matching override, even a less
    specific one such as just the model, wins over the table."""
    table = dict(PRICES.get(service, {}))
    as_of, source = PRICES_AS_OF, "bildwerk price table"
    custom: dict[str, float] = {}
    if overrides is not None:
        if not isinstance(overrides, Mapping):
            raise UserError(
                "params.pricing must be a mapping",
                hint="write it as 'model/size/quality: USD per image', e.g. "
                "'gpt-image-1/1024x1024/medium: 0.042'",
            )
        for key, value in overrides.items():
            if key == "as_of":
                as_of = str(value)
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise UserError(
                    f"params.pricing.{key}: the price must be a non-negative number (USD)"
                )
            custom[str(key)] = float(value)
    parts = [p for p in (model, size, quality) if p]
    candidates = ["/".join(parts[:n]) for n in range(len(parts), 0, -1)]
    for origin, prices in (("params.pricing", custom), (source, table)):
        for key in candidates:
            if key in prices:
                return {
                    "cost_usd": round(prices[key], 6),
                    "cost_estimate": {
                        "basis": "estimate from list prices, per output image",
                        "price_key": key,
                        "source": origin,
                        "prices_as_of": as_of if origin == "params.pricing" else PRICES_AS_OF,
                    },
                }
    return {
        "cost_usd": None,
        "cost_estimate": {
            "basis": "no price known",
            "price_key": candidates[0] if candidates else model,
            "source": source,
            "prices_as_of": PRICES_AS_OF,
        },
    }


# --------------------------------------------------------------------------- images


def option(request: SceneRequest, name: str, default: Any = None) -> Any:
    """A generation option: ``params["generation"][name]`` first (the brief's
    generation settings), then ``params[name]`` (style params), else ``default``."""
    gen = request.params.get("generation")
    if isinstance(gen, Mapping) and gen.get(name) is not None:
        return gen[name]
    value = request.params.get(name)
    return default if value is None else value


@dataclass(frozen=True)
class Placement:
    """The product cutout at final scale (RGBA) and its box on the final canvas."""

    image: Image.Image
    box: Box


def place_product(request: SceneRequest) -> Placement | None:
    """Fit the trimmed cutout into the layout's product zone (90 %), standing on the
    zone's floor and centred, so the copy zone stays free. None without a product."""
    if request.product is None:
        return None
    cut = load_cutout(request.product).image
    zone = request.layout.product
    scale = min(zone.width * 0.9 / cut.width, zone.height * 0.9 / cut.height)
    w, h = max(1, round(cut.width * scale)), max(1, round(cut.height * scale))
    x0 = round(zone.x0 + (zone.width - w) / 2)
    y1 = zone.y1 - round(zone.height * 0.04)
    image = cut if (w, h) == cut.size else cut.resize((w, h), Image.Resampling.LANCZOS)
    return Placement(image, Box(x0, y1 - h, x0 + w, y1))


@dataclass(frozen=True)
class ApiCanvas:
    """An image of the API's size, and the window of it that becomes the scene (the
    same centred cover-crop :func:`finish_scene` applies)."""

    width: int
    height: int
    window: tuple[float, float, float, float]
    target: tuple[int, int]

    def to_api(self, box: Box) -> Box:
        """A final-canvas box in API pixels."""
        x0, y0, x1, y1 = self.window
        sx, sy = (x1 - x0) / self.target[0], (y1 - y0) / self.target[1]
        return Box(
            max(0, math.floor(x0 + box.x0 * sx)),
            max(0, math.floor(y0 + box.y0 * sy)),
            min(self.width, math.ceil(x0 + box.x1 * sx)),
            min(self.height, math.ceil(y0 + box.y1 * sy)),
        )


def api_canvas(api_w: int, api_h: int, width: int, height: int) -> ApiCanvas:
    return ApiCanvas(
        api_w, api_h, crop_box(api_w, api_h, width, height, (0.5, 0.5)), (width, height)
    )


def product_layers(
    canvas: ApiCanvas, placement: Placement, fill: str
) -> tuple[Image.Image, Image.Image]:
    """The API-sized input image (``fill`` backdrop + product, RGB) and the product's
    alpha on it ('L'), for edit endpoints that generate around the product."""
    box = canvas.to_api(placement.box)
    small = placement.image.resize(
        (max(1, box.width), max(1, box.height)), Image.Resampling.LANCZOS
    )
    image = Image.new("RGB", (canvas.width, canvas.height), hex_to_rgb(fill))
    image.paste(small, (box.x0, box.y0), small)
    alpha = Image.new("L", image.size, 0)
    alpha.paste(small.getchannel("A"), (box.x0, box.y0))
    return image, alpha


def finish_scene(
    generated: Image.Image, request: SceneRequest, placement: Placement | None
) -> Image.Image:
    """Cover-crop the API image to exactly ``request.width × request.height`` and paste
    the original cutout back, so opaque product pixels are exactly the cutout's."""
    scene = fit(generated.convert("RGB"), request.width, request.height, mode="crop")
    if placement is not None:
        scene.paste(placement.image, (placement.box.x0, placement.box.y0), placement.image)
    return scene


def decode_image(data: bytes, service: str) -> Image.Image:
    """Decode image bytes from a service; garbage is a RemoteError, not a crash."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            return im.copy()
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise RemoteError(
            service, f"{service} returned data that is not an image ({exc})"
        ) from None


def decode_b64(text: Any, service: str) -> bytes:
    if not isinstance(text, str) or not text:
        raise RemoteError(service, f"{service} returned an empty or non-string base64 image")
    try:
        return base64.b64decode(text, validate=True)
    except ValueError:
        raise RemoteError(service, f"{service} returned invalid base64 image data") from None


def png_bytes(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG", compress_level=3)
    return buf.getvalue()


def json_body(resp: httpx.Response, service: str) -> dict[str, Any]:
    try:
        data = resp.json()
    except ValueError:
        raise RemoteError(service, f"{service} returned a body that is not JSON") from None
    if not isinstance(data, dict):
        raise RemoteError(service, f"{service} returned JSON that is not an object")
    return data


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
        connect_timeout: float = 10.0,
        read_timeout: float = 180.0,
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
