"""Upscaling: a registered super-resolution model (see :mod:`bildwerk.upscalers`), else
plain Lanczos.

Models run tile by tile so a 4x pass over a large image fits in modest memory. Tiles
overlap; in each overlap the outer quarter of a tile (where it lacked context) gets no
weight and the middle is cross-faded, so a model whose receptive field fits in that
quarter gives the same pixels as one whole-image pass, and larger ones show no seams.
The final resize to the exact target is Lanczos, so any scale works with a fixed 2x/4x
model.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from bildwerk.errors import UserError
from bildwerk.upscalers import load as _loader
from bildwerk.upscalers.load import MODEL_SUFFIXES, Upscaler

if TYPE_CHECKING:
    import torch

__all__ = [
    "MAX_SIDE",
    "MODEL_SUFFIXES",
    "Upscaler",
    "UpscalerInfo",
    "clear_cache",
    "describe_upscaler",
    "load_upscaler",
    "recognises",
    "target_size",
    "tiled_apply",
    "upscale",
]

MAX_SIDE = 16384
_CACHE_SIZE = 2
_cache: OrderedDict[tuple[str, int, int], Upscaler] = OrderedDict()
_lock = threading.Lock()


@dataclass(frozen=True)
class UpscalerInfo:
    """What an upscaler file is (recorded when a model is registered)."""

    architecture: str  # lower case: "esrgan", "compact", or spandrel's id ("swinir", …)
    scale: int
    purpose: str  # "SR" or "Restoration" (1x)
    input_channels: int
    output_channels: int
    tags: tuple[str, ...]


_need_torch = _loader.need_torch


def recognises(shapes: Mapping[str, tuple[int, ...]]) -> bool:
    """Whether these tensor names and shapes are an upscaler bildwerk can load (its own
    ESRGAN/Real-ESRGAN networks; other architectures when spandrel is installed)."""
    return _loader.recognises(shapes)


def load_upscaler(path: Path) -> Upscaler:
    """The upscaler in ``path``, in eval mode on the best device (fp32 on CPU, fp16 on
    CUDA where the model allows it); cached per file version."""
    path = Path(path).expanduser()
    try:
        st = path.resolve().stat()
    except OSError:
        raise UserError(f"{path}: no such upscaler file", hint="check the path") from None
    key = (str(path.resolve()), st.st_mtime_ns, st.st_size)
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    model = _loader.load(path.resolve())
    with _lock:
        _cache[key] = model
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return model


def clear_cache() -> None:
    """Drop loaded upscalers (frees their memory)."""
    with _lock:
        _cache.clear()


def describe_upscaler(path: Path) -> UpscalerInfo:
    model = load_upscaler(path)
    return UpscalerInfo(
        architecture=model.architecture,
        scale=model.scale,
        purpose=model.purpose,
        input_channels=model.input_channels,
        output_channels=model.output_channels,
        tags=model.tags,
    )


def target_size(size: tuple[int, int], scale: float) -> tuple[int, int]:
    if not (isinstance(scale, int | float) and math.isfinite(scale) and scale > 0):
        raise UserError(f"upscale factor must be a positive number, got {scale!r}")
    w, h = (max(1, round(side * scale)) for side in size)
    if max(w, h) > MAX_SIDE:
        raise UserError(
            f"{size[0]}x{size[1]} at {scale}x would be {w}x{h}, over {MAX_SIDE} px a side",
            hint="use a smaller factor",
        )
    return w, h


def upscale(
    image: Image.Image,
    scale: float,
    *,
    model: Path | None = None,
    tile: int = 512,
    overlap: int = 32,
) -> Image.Image:
    """Enlarge ``image`` by ``scale`` (exact target size: round(side * scale)).

    With ``model`` (a local upscaler weights file) the model runs tiled, then Lanczos
    fits its fixed scale to the target; alpha is resized with Lanczos alone. Without a
    model, Lanczos does all of it."""
    size = target_size(image.size, scale)
    if tile < 16 or overlap < 0 or 2 * overlap > tile:
        raise UserError(
            f"invalid tiling: tile {tile}, overlap {overlap}",
            hint="use tile >= 16 and overlap between 0 and tile/2",
        )
    if image.mode not in ("L", "LA", "RGB", "RGBA"):
        has_alpha = "transparency" in image.info or image.mode in ("PA", "La", "RGBa")
        image = image.convert("RGBA" if has_alpha else "RGB")
    if model is None:
        return image.resize(size, Image.Resampling.LANCZOS)
    desc = load_upscaler(model)
    alpha = image.getchannel("A") if image.mode in ("LA", "RGBA") else None
    colour = image.convert("L" if desc.input_channels == 1 else "RGB")
    out = _run_model(desc, colour, tile=tile, overlap=overlap)
    if out.size != size:
        out = out.resize(size, Image.Resampling.LANCZOS)
    if alpha is not None:
        out = out.convert("LA" if out.mode == "L" else "RGBA")
        out.putalpha(alpha.resize(size, Image.Resampling.LANCZOS))
    return out


def _run_model(desc: Upscaler, image: Image.Image, *, tile: int, overlap: int) -> Image.Image:
    _need_torch()
    import torch

    param = next(iter(desc.model.parameters()), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None else torch.float32
    arr = np.asarray(image, dtype=np.float32) / 255.0
    if arr.ndim == 2:
        arr = arr[:, :, None]
    x = torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))[None]

    def run(part: torch.Tensor) -> torch.Tensor:
        return desc(part.to(device=device, dtype=dtype)).float().cpu()

    with torch.inference_mode():
        y = tiled_apply(run, x, int(desc.scale), tile=tile, overlap=overlap)
    pixels = (y[0].clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    return Image.fromarray(pixels[:, :, 0] if pixels.shape[2] == 1 else pixels)


def _starts(length: int, tile: int, overlap: int) -> list[int]:
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile, tile - overlap))
    return [*starts, length - tile]


def _ramp(length: int, lead: bool, trail: bool, overlap: int, margin: int) -> torch.Tensor:
    """Per-pixel weights along one axis of a tile: 0 within ``margin`` of an edge that
    borders another tile, rising linearly to 1 at ``overlap``; 1 at image borders."""
    import torch

    w = torch.ones(length)
    if overlap == 0:
        return w
    i = torch.arange(overlap, dtype=torch.float32)
    rise = ((i + 0.5 - margin) / max(overlap - 2 * margin, 1)).clamp(0, 1)
    if lead:
        w[:overlap] = torch.minimum(w[:overlap], rise)
    if trail:
        w[length - overlap :] = torch.minimum(w[length - overlap :], rise.flip(0))
    return w


def tiled_apply(
    fn: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    scale: int,
    *,
    tile: int,
    overlap: int,
) -> torch.Tensor:
    """Apply a ``scale``-times upscaling ``fn`` to ``x`` (1, C, H, W) tile by tile and
    blend the overlaps (see the module docstring); one call when the image fits a tile."""
    _need_torch()
    import torch

    _, _, h, w = x.shape
    if h <= tile and w <= tile:
        return fn(x)
    margin = overlap // 4
    out: torch.Tensor | None = None
    total = torch.zeros(1, 1, h * scale, w * scale)
    for y0 in _starts(h, tile, overlap):
        th = min(tile, h)
        wy = _ramp(th * scale, y0 > 0, y0 + th < h, overlap * scale, margin * scale)
        for x0 in _starts(w, tile, overlap):
            tw = min(tile, w)
            wx = _ramp(tw * scale, x0 > 0, x0 + tw < w, overlap * scale, margin * scale)
            part = fn(x[:, :, y0 : y0 + th, x0 : x0 + tw])
            if out is None:
                out = torch.zeros(1, part.shape[1], h * scale, w * scale)
            weight = (wy[:, None] * wx[None, :])[None, None]
            ys, xs = slice(y0 * scale, (y0 + th) * scale), slice(x0 * scale, (x0 + tw) * scale)
            out[:, :, ys, xs] += part * weight
            total[:, :, ys, xs] += weight
    assert out is not None
    return out / total
