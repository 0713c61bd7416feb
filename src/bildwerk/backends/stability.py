"""The "stability" backend: scenes from Stability AI's Stable Image API (v2beta).

Documented shapes implemented (Stability REST API reference, v2beta):

* ``POST {base}/v2beta/stable-image/generate/{core|ultra|sd3}``, multipart/form-data
  with ``prompt``, ``negative_prompt``, ``aspect_ratio`` (16:9 1:1 21:9 2:3 3:2 4:5 5:4
  9:16 9:21), ``seed`` (0..4294967294; 0 means random), ``output_format``
  (png|jpeg|webp; sd3: png|jpeg) and, for sd3, ``model`` (e.g. sd3.5-large).
* ``POST {base}/v2beta/stable-image/edit/inpaint`` with ``image``, ``mask`` (greyscale:
  white = regenerate, black = keep), ``prompt``, ``negative_prompt``, ``seed``,
  ``output_format``; ``.../edit/outpaint`` with ``image``, ``left``/``right``/``up``/
  ``down`` (pixels to add, 0..2000), ``prompt``, ``seed``, ``output_format`` (no
  negative prompt there: it is dropped for outpaint).
* ``Accept: image/*`` returns the image bytes with ``finish-reason`` and ``seed``
  headers; ``Accept: application/json`` returns ``{"image": b64, "finish_reason",
  "seed"}``. ``finish_reason == "CONTENT_FILTERED"`` (or HTTP 403 ``content_moderation``)
  means refused: :class:`RefusedError`. Errors are ``{"id", "name", "errors": [...]}``.

The API is seeded (the request seed is mapped into 1..4294967294, never 0), but the
service may change models under the same name, so ``deterministic`` is False.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import httpx

from bildwerk.backends.base import Capabilities, Generated, SceneRequest
from bildwerk.backends.remote import (
    ApiCanvas,
    FilePart,
    Placement,
    RefusedError,
    RemoteBackend,
    RemoteError,
    ServiceProfile,
    api_canvas,
    decode_b64,
    decode_image,
    encode_multipart,
    estimate_cost,
    finish_scene,
    idempotency_key,
    json_body,
    option,
    place_product,
    png_bytes,
    product_layers,
)
from bildwerk.errors import UserError
from bildwerk.geometry import Box

ASPECT_RATIOS = ("16:9", "1:1", "21:9", "2:3", "3:2", "4:5", "5:4", "9:16", "9:21")
SEED_MAX = 4294967294
EDIT_PIXELS = 1024 * 1024  # canvas size for inpaint/outpaint (API limit: 4096..9.4M px)
EDIT_MAX_ASPECT = 2.5  # inpaint/outpaint accept aspect ratios between 1:2.5 and 2.5:1


def closest_aspect(width: int, height: int) -> str:
    """The documented aspect ratio nearest to ``width / height`` (in log space)."""
    target = math.log(width / height)

    def distance(ratio: str) -> float:
        w, h = (int(v) for v in ratio.split(":"))
        return abs(math.log(w / h) - target)

    return min(ASPECT_RATIOS, key=distance)


def api_seed(seed: int) -> int:
    """Map any int seed into 1..4294967294 (0 would ask the service for a random one)."""
    return 1 + seed % SEED_MAX


def edit_size(width: int, height: int) -> tuple[int, int]:
    """An inpaint/outpaint canvas of about 1 MP, multiples of 64, aspect within limits."""
    aspect = min(max(width / height, 1 / EDIT_MAX_ASPECT), EDIT_MAX_ASPECT)
    w = max(64, round(math.sqrt(EDIT_PIXELS * aspect) / 64) * 64)
    h = max(64, round(math.sqrt(EDIT_PIXELS / aspect) / 64) * 64)
    return w, h


def _endpoint(model: str) -> tuple[str, str | None]:
    """(generate endpoint, value of the ``model`` field) for a model name."""
    if model in ("core", "stable-image-core"):
        return "core", None
    if model in ("ultra", "stable-image-ultra"):
        return "ultra", None
    if model.startswith("sd3"):
        return "sd3", model
    raise UserError(
        f"Stability: unknown model '{model}'",
        hint="use core, ultra or an SD3 model such as sd3.5-large",
    )


def _parse_error(resp: httpx.Response) -> tuple[str, str | None]:
    try:
        data = resp.json()
    except ValueError:
        return resp.reason_phrase or "no details", None
    if not isinstance(data, dict):
        return str(data), None
    errors = data.get("errors")
    message = "; ".join(map(str, errors)) if isinstance(errors, list) else str(errors or "")
    name = data.get("name")
    return message or "no details", (str(name) if name else None)


def _refusal(status: int, code: str | None, message: str) -> bool:
    return status == 403 and code == "content_moderation"


def _permanent(status: int, code: str | None) -> bool:
    return False


PROFILE = ServiceProfile(
    name="stability",
    title="Stability",
    key_var="STABILITY_API_KEY",
    parse_error=_parse_error,
    refusal=_refusal,
    permanent=_permanent,
)


class StabilityBackend(RemoteBackend):
    """Scenes from Stable Image v2beta. Options per request (``params["generation"]`` or
    style params): ``model`` (core|ultra|sd3.x), ``mode`` ("auto"|"txt2img"|"inpaint"|
    "outpaint"; "auto" inpaints around a product), ``output_format``, ``pricing``."""

    name = "stability"
    version = "1"
    capabilities = Capabilities(
        text_to_image=True,
        product_placement=True,
        max_batch=1,
        needs_model=False,
        deterministic=False,
    )
    profile = PROFILE
    base_env = "STABILITY_API_BASE"
    default_base = "https://api.stability.ai"

    def __init__(self, *, model: str = "core", accept: str = "image/*", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        _endpoint(model)
        if accept not in ("image/*", "application/json"):
            raise ValueError("accept must be 'image/*' or 'application/json'")
        self.model = model
        self.accept = accept

    def generate(self, batch: Sequence[SceneRequest]) -> list[Generated]:
        return [self._one(request) for request in batch]

    def _one(self, request: SceneRequest) -> Generated:
        model = str(option(request, "model", self.model))
        endpoint_name, model_field = _endpoint(model)
        fmt = str(option(request, "output_format", "png"))
        allowed = ("png", "jpeg") if endpoint_name == "sd3" else ("png", "jpeg", "webp")
        if fmt not in allowed:
            raise UserError(
                f"Stability: output_format '{fmt}' is not offered here",
                hint=f"use one of: {', '.join(allowed)}",
            )
        if len(request.prompt) > 10000 or len(request.negative_prompt) > 10000:
            raise UserError("Stability: prompt and negative prompt allow 10000 characters")
        mode = str(option(request, "mode", "auto"))
        placement = place_product(request)
        seed = api_seed(request.seed)
        common: list[tuple[str, str | FilePart]] = [("prompt", request.prompt)]
        if request.negative_prompt.strip():
            common.append(("negative_prompt", request.negative_prompt))
        common += [("seed", str(seed)), ("output_format", fmt)]
        extra: dict[str, Any] = {}
        if placement is None or mode == "txt2img":
            kind, price_key = "txt2img", (model_field or endpoint_name)
            aspect = closest_aspect(request.width, request.height)
            fields = [*common, ("aspect_ratio", aspect)]
            if model_field:
                fields.append(("model", model_field))
            endpoint = f"/v2beta/stable-image/generate/{endpoint_name}"
            extra["aspect_ratio"] = aspect
        else:
            w, h = edit_size(request.width, request.height)
            canvas = api_canvas(w, h, request.width, request.height)
            fill = request.palette.get("background", "#f4f1ec")
            fields, kind = _edit_fields(mode == "outpaint", canvas, placement, fill, common)
            price_key = kind
            endpoint = f"/v2beta/stable-image/edit/{kind}"
            extra["edit_canvas"] = [canvas.width, canvas.height]
        key = idempotency_key(self.name, request.key, kind)
        body, ctype = encode_multipart(fields)
        reply = self.client().request(
            "POST",
            endpoint,
            content=body,
            headers={"Content-Type": ctype, "Accept": self.accept},
            idempotency=key,
        )
        raw, finish, seed_out = self._read(reply.response)
        if finish == "CONTENT_FILTERED":
            raise RefusedError(
                self.name,
                "CONTENT_FILTERED",
                "Stability filtered the generated image (finish-reason CONTENT_FILTERED)",
                status=reply.response.status_code,
                code="CONTENT_FILTERED",
                attempts=reply.attempts,
            )
        if finish not in (None, "SUCCESS"):
            raise RemoteError(self.name, f"Stability finished with reason '{finish}'")
        scene = finish_scene(decode_image(raw, self.name), request, placement)
        params: dict[str, Any] = {
            "service": self.name,
            "endpoint": endpoint,
            "model": model,
            "mode": kind,
            "seed_sent": seed,
            "seed": seed_out,
            "finish_reason": finish,
            "output_format": fmt,
            "deterministic": False,
            "idempotency_key": key,
            "request_id": reply.request_id,
            "attempts": reply.attempts,
            **extra,
        }
        params.update(estimate_cost(self.name, price_key, None, None, option(request, "pricing")))
        focal = (0.5, 0.5)
        if placement is not None:
            cx, cy = placement.box.center
            focal = (cx / request.width, cy / request.height)
            params["product_box"] = list(placement.box.as_tuple())
        return Generated(
            image=scene,
            focal=focal,
            product_box=placement.box if placement else None,
            params=params,
        )

    def _read(self, resp: httpx.Response) -> tuple[bytes, str | None, int | None]:
        """(image bytes, finish reason, seed) from either documented response shape."""
        if resp.headers.get("content-type", "").startswith("application/json"):
            data = json_body(resp, self.name)
            finish = str(data["finish_reason"]) if data.get("finish_reason") else None
            seed = _int(data.get("seed"))
            if finish == "CONTENT_FILTERED":
                return b"", finish, seed
            return decode_b64(data.get("image"), self.name), finish, seed
        return resp.content, resp.headers.get("finish-reason"), _int(resp.headers.get("seed"))


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _edit_fields(
    outpaint: bool,
    canvas: ApiCanvas,
    placement: Placement,
    fill: str,
    common: list[tuple[str, str | FilePart]],
) -> tuple[list[tuple[str, str | FilePart]], str]:
    """Multipart fields for inpaint (whole canvas + mask) or outpaint (the product's
    neighbourhood, extended to the canvas). Outpaint falls back to inpaint when the
    product leaves no room to extend."""
    image, alpha = product_layers(canvas, placement, fill)
    if outpaint:
        box = canvas.to_api(placement.box)
        pad_x, pad_y = round(box.width * 0.08), round(box.height * 0.08)
        region = Box(
            max(0, box.x0 - pad_x),
            max(0, box.y0 - pad_y),
            min(canvas.width, box.x1 + pad_x),
            min(canvas.height, box.y1 + pad_y),
        )
        sides = {
            "left": region.x0,
            "right": canvas.width - region.x1,
            "up": region.y0,
            "down": canvas.height - region.y1,
        }
        if any(sides.values()):
            crop = image.crop(region.as_tuple())
            fields: list[tuple[str, str | FilePart]] = [
                ("image", FilePart("product.png", png_bytes(crop)))
            ]
            fields += [(k, str(v)) for k, v in sides.items()]
            # outpaint documents no negative_prompt field
            return fields + [c for c in common if c[0] != "negative_prompt"], "outpaint"
    mask = alpha.point(lambda a: 0 if a > 0 else 255)  # white = regenerate, black = keep
    fields = [
        ("image", FilePart("scene.png", png_bytes(image))),
        ("mask", FilePart("mask.png", png_bytes(mask))),
    ]
    return fields + common, "inpaint"
