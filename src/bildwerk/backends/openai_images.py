"""The "openai" backend: scenes from the OpenAI Images API (gpt-image-1, dall-e-3/2).

Documented shapes implemented (OpenAI API reference, Images):

* ``POST {base}/v1/images/generations`` with a JSON body ``{model, prompt, n, size,
  quality, background?, output_format?}`` for gpt-image models, ``{model, prompt, n,
  size, quality?, response_format}`` for dall-e models. Sizes: gpt-image-1
  ``1024x1024|1536x1024|1024x1536|auto``; dall-e-3 ``1024x1024|1792x1024|1024x1792``;
  dall-e-2 ``256x256|512x512|1024x1024``.
* ``POST {base}/v1/images/edits`` as multipart/form-data: ``image[]`` (gpt-image) or
  ``image`` (dall-e-2, square PNG), ``mask`` (a PNG whose *transparent* pixels mark what
  may be edited), ``prompt``, ``model``, ``n``, ``size``, ``quality``...
* Response ``{"created": int, "data": [{"b64_json": ...} | {"url": ...}], "usage": {...}}``;
  gpt-image models always return ``b64_json``, a ``url`` (dall-e) is downloaded without
  the API key. Errors are ``{"error": {"message", "type", "param", "code"}}``.

The API has no negative prompt, so ``negative_prompt`` is appended as "Avoid: …", and no
seed, so scenes are not reproducible: ``capabilities.deterministic`` is False and the
request seed is recorded as ignored. With a product, the edits endpoint generates around
the cutout (the mask keeps it), then the original cutout is pasted back pixel-exact.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import httpx

from bildwerk.backends.base import Capabilities, Generated, SceneRequest
from bildwerk.backends.remote import (
    FilePart,
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

SIZES: dict[str, tuple[str, ...]] = {
    "gpt-image": ("1024x1024", "1536x1024", "1024x1536"),
    "dall-e-3": ("1024x1024", "1792x1024", "1024x1792"),
    "dall-e-2": ("256x256", "512x512", "1024x1024"),
}
QUALITIES: dict[str, tuple[str, ...]] = {
    "gpt-image": ("low", "medium", "high", "auto"),
    "dall-e-3": ("standard", "hd"),
    "dall-e-2": ("standard",),
}
DEFAULT_QUALITY = {"gpt-image": "medium", "dall-e-3": "standard", "dall-e-2": "standard"}
PROMPT_LIMIT = {"gpt-image": 32000, "dall-e-3": 4000, "dall-e-2": 1000}
REFUSAL_CODES = {"content_policy_violation", "moderation_blocked"}


def family(model: str) -> str:
    """'gpt-image', 'dall-e-3' or 'dall-e-2': the families differ in sizes and fields."""
    if model.startswith("gpt-image"):
        return "gpt-image"
    if model in ("dall-e-3", "dall-e-2"):
        return model
    raise UserError(
        f"OpenAI Images: unknown model '{model}'",
        hint="use gpt-image-1 (or another gpt-image model), dall-e-3 or dall-e-2",
    )


def choose_size(model: str, width: int, height: int, requested: Any = None) -> str:
    """The API size for a channel: an explicit ``size`` option if valid, else the size
    whose aspect is closest to the channel's (dall-e-2: the smallest square that is at
    least as large as the channel, since it is billed by size)."""
    fam = family(model)
    allowed = SIZES[fam]
    if requested is not None:
        text = requested if isinstance(requested, str) else "x".join(map(str, requested))
        if text in allowed or (text == "auto" and fam == "gpt-image"):
            return text
        raise UserError(
            f"OpenAI Images: size '{text}' is not offered for {model}",
            hint=f"use one of: {', '.join(allowed)}",
        )
    if fam == "dall-e-2":
        side = max(width, height)
        return next((s for s in allowed if int(s.split("x")[0]) >= side), allowed[-1])
    target = math.log(width / height)

    def distance(size: str) -> float:
        w, h = (int(v) for v in size.split("x"))
        return abs(math.log(w / h) - target)

    return min(allowed, key=distance)


def build_prompt(prompt: str, negative: str) -> str:
    """The prompt with the negative prompt appended as an instruction (no native field)."""
    negative = negative.strip().rstrip(".")
    return f"{prompt.strip()}\n\nAvoid: {negative}." if negative else prompt.strip()


def _parse_error(resp: httpx.Response) -> tuple[str, str | None]:
    try:
        err = resp.json().get("error") or {}
    except (ValueError, AttributeError):
        return resp.reason_phrase or "no details", None
    if not isinstance(err, dict):
        return str(err), None
    code = err.get("code") or err.get("type")
    return str(err.get("message") or "no details"), (str(code) if code else None)


def _refusal(status: int, code: str | None, message: str) -> bool:
    return status == 400 and (code in REFUSAL_CODES or "safety system" in message.lower())


def _permanent(status: int, code: str | None) -> bool:
    return status == 429 and code == "insufficient_quota"


PROFILE = ServiceProfile(
    name="openai",
    title="OpenAI Images",
    key_var="OPENAI_API_KEY",
    parse_error=_parse_error,
    refusal=_refusal,
    permanent=_permanent,
)


class OpenAIImagesBackend(RemoteBackend):
    """Scenes from the OpenAI Images API. Options per request (``params["generation"]``
    or style params): ``model``, ``size``, ``quality``, ``background``, ``mode``
    ("auto"|"txt2img"|"product"), ``response_format`` (dall-e), ``pricing``."""

    name = "openai"
    version = "1"
    capabilities = Capabilities(
        text_to_image=True,
        product_placement=True,
        max_batch=1,
        needs_model=False,
        deterministic=False,
    )
    profile = PROFILE
    base_env = "OPENAI_BASE_URL"
    default_base = "https://api.openai.com"

    def __init__(self, *, model: str = "gpt-image-1", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        family(model)
        self.model = model

    @property
    def base_url(self) -> str:
        """Without a trailing ``/v1``: the OpenAI SDKs' OPENAI_BASE_URL includes it."""
        return super().base_url.removesuffix("/v1")

    def generate(self, batch: Sequence[SceneRequest]) -> list[Generated]:
        return [self._one(request) for request in batch]

    def _one(self, request: SceneRequest) -> Generated:
        model = str(option(request, "model", self.model))
        fam = family(model)
        size = choose_size(model, request.width, request.height, option(request, "size"))
        quality = str(option(request, "quality", DEFAULT_QUALITY[fam]))
        if quality not in QUALITIES[fam]:
            raise UserError(
                f"OpenAI Images: quality '{quality}' is not offered for {model}",
                hint=f"use one of: {', '.join(QUALITIES[fam])}",
            )
        prompt = build_prompt(request.prompt, request.negative_prompt)
        if len(prompt) > PROMPT_LIMIT[fam]:
            raise UserError(
                f"OpenAI Images: the prompt has {len(prompt)} characters; {model} "
                f"accepts at most {PROMPT_LIMIT[fam]}",
                hint="shorten the prompt template or the negative prompt",
            )
        mode = str(option(request, "mode", "auto"))
        placement = place_product(request)
        edit = placement is not None and mode not in ("txt2img",)
        api_w, api_h = (int(v) for v in size.split("x")) if size != "auto" else (1024, 1024)
        fields: dict[str, Any] = {"model": model, "prompt": prompt, "n": 1, "size": size}
        if fam != "dall-e-2":
            fields["quality"] = quality
        if fam == "gpt-image":
            fields["output_format"] = "png"
            background = option(request, "background")
            if background is not None:
                fields["background"] = str(background)
        else:
            fields["response_format"] = str(option(request, "response_format", "b64_json"))
        client = self.client()
        key = idempotency_key(self.name, request.key, "edit" if edit else "generate")
        if edit:
            assert placement is not None
            if fam == "dall-e-3":
                raise UserError(
                    "OpenAI Images: dall-e-3 cannot edit around a product image",
                    hint="use model gpt-image-1 for product scenes, or mode txt2img",
                )
            canvas = api_canvas(api_w, api_h, request.width, request.height)
            image, alpha = product_layers(
                canvas, placement, request.palette.get("background", "#f4f1ec")
            )
            mask = image.convert("RGBA")
            mask.putalpha(alpha)  # opaque = keep the product; transparent = generate
            parts: list[tuple[str, str | FilePart]] = [
                (
                    "image[]" if fam == "gpt-image" else "image",
                    FilePart("scene.png", png_bytes(image)),
                ),
                ("mask", FilePart("mask.png", png_bytes(mask))),
            ]
            parts += [(k, str(v)) for k, v in fields.items()]
            body, ctype = encode_multipart(parts)
            endpoint = "/v1/images/edits"
            reply = client.request(
                "POST", endpoint, content=body, headers={"Content-Type": ctype}, idempotency=key
            )
        else:
            endpoint = "/v1/images/generations"
            reply = client.request("POST", endpoint, json=fields, idempotency=key)
        data = json_body(reply.response, self.name)
        items = data.get("data")
        if not isinstance(items, list) or not items or not isinstance(items[0], dict):
            raise RemoteError(self.name, "OpenAI Images returned no image in 'data'")
        item = items[0]
        if item.get("b64_json"):
            raw = decode_b64(item["b64_json"], self.name)
        elif item.get("url"):
            raw = client.request("GET", str(item["url"]), auth=False).response.content
        else:
            raise RemoteError(self.name, "OpenAI Images returned neither b64_json nor url")
        scene = finish_scene(decode_image(raw, self.name), request, placement)
        params: dict[str, Any] = {
            "service": self.name,
            "endpoint": endpoint,
            "model": model,
            "size": size,
            "quality": quality if fam != "dall-e-2" else None,
            "mode": "product-edit" if edit else "txt2img",
            "prompt_sent": prompt,
            "negative_prompt_applied_as": "prompt suffix 'Avoid: …'",
            "deterministic": False,
            "seed_ignored": request.seed,
            "idempotency_key": key,
            "request_id": reply.request_id,
            "attempts": reply.attempts,
            "created": data.get("created"),
        }
        for extra in ("usage", "background", "output_format"):
            if extra in data:
                params[extra] = data[extra]
        if item.get("revised_prompt"):
            params["revised_prompt"] = item["revised_prompt"]
        echoed = data.get("size")
        price_size = echoed if isinstance(echoed, str) and "x" in echoed else f"{api_w}x{api_h}"
        params.update(
            estimate_cost(
                self.name,
                model,
                price_size,
                quality if fam != "dall-e-2" else None,
                option(request, "pricing"),
            )
        )
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
