"""Image plumbing shared by remote backends: API canvas sizes, product placement and
layers, decoding replies and finishing the scene at the requested size."""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from PIL import Image

from bildwerk.backends.base import SceneRequest
from bildwerk.backends.remote.errors import RemoteError
from bildwerk.backends.studio import load_cutout
from bildwerk.config.brand import hex_to_rgb
from bildwerk.geometry import Box
from bildwerk.imagefit import crop_box, fit

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
