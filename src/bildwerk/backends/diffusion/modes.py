"""Generation modes: what goes into the pipeline and what is pasted back afterwards.

Every mode is built on a canvas of exactly the requested size. :class:`Frame` maps that
canvas into the generation size (a multiple of the VAE's scale, or ``size`` from the
brief) and back, so masks, control maps and pasted layers always line up. Whatever must
survive untouched — the product cutout, the outpainting source, the kept part of an
inpainting source — is pasted back after decoding and resizing, so it is pixel-exact.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageChops, ImageFilter

from bildwerk.backends.base import Generated, SceneRequest
from bildwerk.backends.diffusion.controls import control_image, flatten
from bildwerk.backends.diffusion.spec import GenerationSpec
from bildwerk.backends.studio import (
    Scene,
    Stage,
    derive_colours,
    draw_shadows,
    load_cutout,
    plan_stage,
)
from bildwerk.config.brand import hex_to_rgb
from bildwerk.errors import UserError
from bildwerk.geometry import Box
from bildwerk.imagefit import fit
from bildwerk.imageinput import load_image

Task = str  # "txt2img" | "img2img" | "inpaint"

# a bare studio: only the product, so plan_stage sizes it like the studio backend does
_BARE = Scene("sweep", (), "none", "neutral", "matte", False)
_LANCZOS = Image.Resampling.LANCZOS


def round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


@dataclass(frozen=True)
class Frame:
    """Where the request canvas (``width`` × ``height``) sits inside the generation
    canvas: scaled to ``inner``'s size and centred; the margin is generated and cut."""

    width: int
    height: int
    gen_width: int
    gen_height: int
    inner: tuple[int, int, int, int]

    @classmethod
    def plan(cls, width: int, height: int, size: tuple[int, int] | None, multiple: int) -> Frame:
        if size is None:  # the request size, padded up to the VAE's multiple
            gw, gh = round_up(width, multiple), round_up(height, multiple)
            cw, ch = width, height
        else:  # the brief's size; the canvas is scaled to fit inside it
            gw, gh = round_up(size[0], multiple), round_up(size[1], multiple)
            k = min(gw / width, gh / height)
            cw, ch = min(gw, max(1, round(width * k))), min(gh, max(1, round(height * k)))
        x0, y0 = (gw - cw) // 2, (gh - ch) // 2
        return cls(width, height, gw, gh, (x0, y0, x0 + cw, y0 + ch))

    @property
    def gen_size(self) -> tuple[int, int]:
        return self.gen_width, self.gen_height

    @property
    def scaled(self) -> bool:
        x0, y0, x1, y1 = self.inner
        return (x1 - x0, y1 - y0) != (self.width, self.height)

    def to_gen(self, image: Image.Image, fill: tuple[int, ...] | int) -> Image.Image:
        x0, y0, x1, y1 = self.inner
        if self.scaled:
            image = image.resize((x1 - x0, y1 - y0), _LANCZOS)
        out = Image.new(image.mode, self.gen_size, fill)
        out.paste(image, (x0, y0))
        return out

    def mask_to_gen(self, mask: Image.Image) -> Image.Image:
        """Regenerate-masks grow when scaled (any partly masked pixel is masked) and the
        margin is always generated."""
        x0, y0, x1, y1 = self.inner
        if self.scaled:
            mask = mask.resize((x1 - x0, y1 - y0), Image.Resampling.BILINEAR)
            mask = mask.point(lambda v: 255 if v > 0 else 0)
        out = Image.new("L", self.gen_size, 255)
        out.paste(mask, (x0, y0))
        return out

    def from_gen(self, image: Image.Image, upscaler: str | None = None) -> Image.Image:
        """Crop the canvas out of the generated frame; when it was generated smaller than
        the request, scale it up with the registered upscaler (Lanczos without one)."""
        out = image.crop(self.inner)
        if not self.scaled:
            return out
        if upscaler is not None and out.width < self.width:
            from bildwerk.upscale import upscale

            scale = max(self.width / out.width, self.height / out.height)
            out = upscale(out, scale, model=Path(upscaler))
        return out.resize((self.width, self.height), _LANCZOS)

    def record(self) -> dict[str, Any]:
        return {"generated": [self.gen_width, self.gen_height], "inner": list(self.inner)}


@dataclass
class Prepared:
    """One request made ready for a pipeline call, plus what to do with its output."""

    request: SceneRequest
    mode: str
    task: Task
    frame: Frame
    strength: float
    init: Image.Image | None = None  # generation size, RGB
    mask: Image.Image | None = None  # generation size, L, white = regenerate
    control: Image.Image | None = None  # generation size, RGB
    layer: Image.Image | None = None  # request size RGBA, pasted back at ``box``
    box: Box | None = None
    stage: Stage | None = None  # product placement, for the contact shadow
    notes: dict[str, Any] = field(default_factory=dict)
    upscaler: str | None = None  # weights for scaling a smaller generation up


def resolve_mode(spec: GenerationSpec, request: SceneRequest) -> str:
    """``auto``: product placement when there is a product, img2img with a reference,
    else text-to-image. Explicit modes are checked for their inputs."""
    mode = spec.mode
    if mode == "auto":
        if request.product is not None:
            return "product"
        return "img2img" if spec.reference is not None else "txt2img"
    if mode == "product" and request.product is None:
        raise UserError(
            "generation.mode is 'product' but this variant has no product image",
            hint="add products to the brief, or use mode: txt2img",
        )
    if mode in ("img2img", "inpaint") and spec.reference is None:
        raise UserError(
            f"generation.mode is '{mode}' but generation.reference is not set",
            hint="set generation.reference.image to the source image",
        )
    if mode == "outpaint" and spec.reference is None and request.product is None:
        raise UserError(
            "generation.mode is 'outpaint' but there is nothing to extend",
            hint="set generation.reference.image (or give the variant a product)",
        )
    return mode


def seam_width(width: int, height: int) -> int:
    """How far the regenerated area reaches under a kept edge, so the scene continues
    beneath soft cutout edges instead of stopping at them."""
    return max(1, round(min(width, height) / 256))


def _background(request: SceneRequest) -> tuple[int, int, int]:
    return hex_to_rgb(request.palette.get("background", "#f4f1ec"))


def _mean_colour(image: Image.Image) -> tuple[int, int, int]:
    arr = np.asarray(image.convert("RGBA"), dtype=np.float64)
    weight = arr[..., 3:] / 255.0
    total = float(weight.sum())
    if total <= 0:
        return (128, 128, 128)
    mean = (arr[..., :3] * weight).sum(axis=(0, 1)) / total
    return (round(float(mean[0])), round(float(mean[1])), round(float(mean[2])))


def _keep_mask(alpha: Image.Image, seam: int) -> Image.Image:
    """Fully opaque pixels, shrunk by ``seam``: what the model must not repaint."""
    solid = alpha.point(lambda a: 255 if a >= 250 else 0)
    return solid.filter(ImageFilter.MinFilter(2 * seam + 1)) if seam > 0 else solid


def _reference(spec: GenerationSpec, width: int, height: int) -> Image.Image:
    assert spec.reference is not None
    image = load_image(Path(spec.reference.image)).image
    return fit(image, width, height, mode="crop")


def prepare(
    request: SceneRequest, spec: GenerationSpec, frame: Frame, inpaint_model: bool
) -> Prepared:
    """Build canvases, masks and control maps for ``request`` in its resolved mode. An
    inpainting checkpoint (9-channel UNet) runs every mode through its inpaint pipeline."""
    mode = resolve_mode(spec, request)
    w, h = request.width, request.height
    if (request.layout.width, request.layout.height) != (w, h):
        raise ValueError("the layout was planned for another canvas size")
    grey = (128, 128, 128)
    ref_strength = spec.reference.strength if spec.reference else 1.0
    canvas: Image.Image | None = None
    keep: Image.Image | None = None  # request size, L, 255 = keep
    prep = Prepared(request, mode, "txt2img", frame, 1.0, upscaler=spec.upscaler)
    if mode == "txt2img":
        prep.task = "txt2img"
    elif mode == "img2img":
        canvas = flatten(_reference(spec, w, h))
        prep.task, prep.strength = "img2img", ref_strength
    elif mode == "inpaint":
        canvas, keep, prep.layer = _inpaint_source(spec, w, h)
        prep.task, prep.box = "inpaint", Box(0, 0, w, h)
    elif mode == "outpaint":
        canvas, keep = _outpaint(request, spec, prep)
        prep.task = "inpaint"
    else:
        canvas, keep = _product(request, spec, prep)
        prep.task, prep.strength = "inpaint", ref_strength if spec.reference else 1.0
    if spec.controlnet is not None:
        prep.control = frame.to_gen(control_image(spec.controlnet, canvas, w, h), 0)
    if canvas is not None:
        prep.init = frame.to_gen(canvas, _mean_colour(canvas))
    if keep is not None:
        if keep.getextrema() == (255, 255):  # e.g. outpainting to the source's own aspect
            prep.notes["source_covers_canvas"] = True
        prep.mask = frame.mask_to_gen(ImageChops.invert(keep))
    if prep.task == "txt2img" and spec.model.architecture == "sdxl-refiner":
        raise UserError(
            f"model '{spec.model.name}' is an SDXL refiner, which only refines images",
            hint="use mode img2img with generation.reference, or an SDXL base model",
        )
    if inpaint_model and prep.task != "inpaint":  # 9-channel UNets only inpaint
        if prep.init is None:
            prep.init = Image.new("RGB", frame.gen_size, grey)
        prep.mask = Image.new("L", frame.gen_size, 255)
        prep.task = "inpaint"
    return prep


def _inpaint_source(
    spec: GenerationSpec, w: int, h: int
) -> tuple[Image.Image, Image.Image, Image.Image]:
    """The reference as the source; regenerate its transparent pixels, or the white of
    ``reference.mask`` when given. Returns the canvas, the keep mask for the model
    (shrunk by the seam) and the layer to paste back (the whole kept area)."""
    assert spec.reference is not None
    source = _reference(spec, w, h)
    if spec.reference.mask is not None:
        mask = fit(load_image(Path(spec.reference.mask)).image.convert("L"), w, h, mode="crop")
        kept = mask.point(lambda v: 0 if v > 127 else 255)
        layer = source.convert("RGBA")
        layer.putalpha(kept)
    elif source.mode == "RGBA":
        kept, layer = source.getchannel("A"), source
    else:
        raise UserError(
            "generation.mode is 'inpaint' but the reference image is fully opaque",
            hint="give generation.reference.mask (white = regenerate) or a transparent image",
        )
    return flatten(source, _mean_colour(source)), _keep_mask(kept, seam_width(w, h)), layer


def _outpaint(
    request: SceneRequest, spec: GenerationSpec, prep: Prepared
) -> tuple[Image.Image, Image.Image]:
    """Fit the source inside the canvas, centred on the layout's product zone (clamped
    to the canvas); everything around it is generated."""
    w, h = request.width, request.height
    if spec.reference is not None:
        source = load_image(Path(spec.reference.image)).image.convert("RGBA")
    else:
        assert request.product is not None
        source = load_cutout(request.product).image
    scale = min(w / source.width, h / source.height)
    if abs(scale - 1.0) <= 0.01:
        scale = 1.0  # keep the original pixels, not a near-identity resample
    pw = min(w, max(1, round(source.width * scale)))
    ph = min(h, max(1, round(source.height * scale)))
    if (pw, ph) != source.size:
        source = source.resize((pw, ph), _LANCZOS)
    cx, cy = request.layout.product.center
    x0 = int(min(max(round(cx - pw / 2), 0), w - pw))
    y0 = int(min(max(round(cy - ph / 2), 0), h - ph))
    canvas = Image.new("RGB", (w, h), _mean_colour(source))
    canvas.paste(source.convert("RGB"), (x0, y0), source.getchannel("A"))
    keep = Image.new("L", (w, h), 0)
    keep.paste(_keep_mask(source.getchannel("A"), seam_width(w, h)), (x0, y0))
    prep.layer, prep.box = source, Box(x0, y0, x0 + pw, y0 + ph)
    prep.notes["source_scale"] = round(scale, 6)
    return canvas, keep


def _product(
    request: SceneRequest, spec: GenerationSpec, prep: Prepared
) -> tuple[Image.Image, Image.Image]:
    """Place the cutout as the studio backend does (same size and spot in the layout's
    product zone); the scene is generated around it."""
    assert request.product is not None
    w, h = request.width, request.height
    cut = load_cutout(request.product)
    stage = plan_stage(request.layout, cut, _BARE)
    box = stage.product
    product = cut.image.resize((box.width, box.height), _LANCZOS)
    if spec.reference is not None:
        canvas = flatten(_reference(spec, w, h), _background(request))
    else:
        canvas = Image.new("RGB", (w, h), _background(request))
    canvas.paste(product.convert("RGB"), (box.x0, box.y0), product.getchannel("A"))
    keep = Image.new("L", (w, h), 0)
    keep.paste(_keep_mask(product.getchannel("A"), seam_width(w, h)), (box.x0, box.y0))
    prep.layer, prep.box, prep.stage = product, box, stage
    prep.notes["product_scale"] = round(box.width / cut.image.width, 6)
    return canvas, keep


def _shadow_colour(scene: Image.Image, stage: Stage) -> tuple[float, float, float]:
    """A darker tone of the generated floor right around the product's base."""
    box = stage.product
    pad = max(2, box.width // 6)
    x0, x1 = max(0, box.x0 - pad), min(scene.width, box.x1 + pad)
    y0 = max(0, stage.base_y - max(2, box.height // 10))
    y1 = min(scene.height, stage.base_y + max(2, box.height // 20))
    if x1 <= x0 or y1 <= y0:
        return (60.0, 60.0, 60.0)
    floor = np.asarray(scene.crop((x0, y0, x1, y1)).convert("RGB"), dtype=np.float32)
    med = np.median(floor.reshape(-1, 3), axis=0) * 0.3
    return (float(med[0]), float(med[1]), float(med[2]))


def finish(prep: Prepared, image: Image.Image) -> Generated:
    """Resize the decoded scene to the request, add the contact shadow, paste the kept
    layer back pixel-exact."""
    scene = prep.frame.from_gen(image.convert("RGB"), prep.upscaler)
    req = prep.request
    if prep.stage is not None and prep.layer is not None:
        colours = derive_colours(dict(req.palette), "neutral")
        colours = replace(colours, shadow=_shadow_colour(scene, prep.stage))
        draw_shadows(scene, colours, prep.stage, prep.layer)
    if prep.layer is not None and prep.box is not None:
        scene.paste(
            prep.layer.convert("RGB"), (prep.box.x0, prep.box.y0), prep.layer.getchannel("A")
        )
    focal = (0.5, 0.5)
    product_box = None
    if prep.box is not None and prep.mode in ("product", "outpaint"):
        cx, cy = prep.box.center
        focal, product_box = (cx / req.width, cy / req.height), prep.box
    return Generated(image=scene, focal=focal, product_box=product_box)
