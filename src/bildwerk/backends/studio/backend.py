"""The studio backend: one request → scene, colours, stage, drawing, grain, params."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from functools import lru_cache
from typing import Any

import numpy as np
from PIL import Image, ImageChops

from bildwerk.backends.base import Capabilities, Generated, SceneRequest
from bildwerk.backends.studio.backdrop import draw_pattern, render_backdrop
from bildwerk.backends.studio.common import SHADOW_SCALE
from bildwerk.backends.studio.palette import Colours, backdrop_in, derive_colours
from bildwerk.backends.studio.props import draw_arch, draw_podium, draw_spheres
from bildwerk.backends.studio.scene import Scene, choose_scene, scene_seed
from bildwerk.backends.studio.shadow import apply_shadow, draw_reflection, draw_shadows, shadow_blob
from bildwerk.backends.studio.stage import Stage, load_cutout, plan_stage


def add_grain(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    """±2 levels of seeded monochrome grain: breaks up banding in the smooth gradients."""
    grain = _grain(img.width, img.height, int(rng.integers(0, 4))).convert("RGB")
    return ImageChops.add(img, grain, 1.0, -2)


@lru_cache(maxsize=20)
def _grain(w: int, h: int, variant: int) -> Image.Image:
    """One of four fixed grain fields per size (cached: generating it costs more than
    applying it). Triangular noise in 0..4 from a fixed seed per variant."""
    rng = np.random.default_rng(0x5EED + variant)
    tile = rng.integers(0, 3, (256, 256), dtype=np.uint8) + rng.integers(
        0, 3, (256, 256), dtype=np.uint8
    )
    noise = np.tile(tile, (-(-h // 256), -(-w // 256)))[:h, :w]
    return Image.fromarray(np.ascontiguousarray(noise), "L")


# --------------------------------------------------------------------------- backend


_OVERRIDES = ("backdrop", "props", "pattern", "mood", "finish", "reflection")


def _apply_overrides(scene: Scene, params: dict[str, Any]) -> Scene:
    """Explicit ``request.params`` win over keywords and the RNG (for reproduction)."""
    values = {k: getattr(scene, k) for k in (*_OVERRIDES, "matched")}
    for key in _OVERRIDES:
        if key in params:
            values[key] = tuple(params[key]) if key == "props" else params[key]
    return Scene(**values)


def render(request: SceneRequest) -> Generated:
    """Render one studio scene for ``request``."""
    seed = scene_seed(request)
    rng = np.random.default_rng(seed)
    scene = _apply_overrides(choose_scene(request, rng), dict(request.params))
    # style params may recolour the set (a seasonal backdrop, say): {"palette": {role: hex}}
    # tints the whole set; {"backdrop_colour": hex} paints walls and floor in that colour.
    palette = {**request.palette, **dict(request.params.get("palette") or {})}
    colours = derive_colours(palette, scene.mood)
    if request.params.get("backdrop_colour"):
        colours = backdrop_in(colours, str(request.params["backdrop_colour"]))
    cut = load_cutout(request.product) if request.product is not None else None
    if cut is None and "podium" not in scene.props:  # the hero sphere needs its podium
        scene = replace(scene, props=("podium", *scene.props))
    if request.layout.width != request.width or request.layout.height != request.height:
        raise ValueError("the layout was planned for another canvas size")
    stage = plan_stage(request.layout, cut, scene)
    product = None
    if cut is not None:
        product = cut.image.resize(
            (stage.product.width, stage.product.height), Image.Resampling.LANCZOS
        )
    img = render_backdrop(request.layout, scene, colours, stage, rng)
    draw_pattern(img, request.layout, scene, colours, stage, rng)
    draw_arch(img, colours, stage)
    draw_shadows(img, colours, stage, product)
    draw_podium(img, request.layout, scene, colours, stage, rng)
    if stage.podium and (product is not None or stage.spheres):
        _podium_contact(img, colours, stage)
    draw_spheres(img, colours, stage)
    img = add_grain(img, rng)
    if product is not None:
        if scene.reflection:
            draw_reflection(img, product, stage)
        img.paste(product, (stage.product.x0, stage.product.y0), product)
    cx, cy = stage.product.center
    return Generated(
        image=img,
        focal=(cx / request.width, cy / request.height),
        product_box=stage.product,
        params=_params(scene, colours, stage, seed),
    )


def _podium_contact(img: Image.Image, colours: Colours, stage: Stage) -> None:
    """Contact shadow of the product (or hero sphere) on the podium's top face."""
    assert stage.podium is not None
    w, h = img.size
    lw, lh = -(-w // SHADOW_SCALE), -(-h // SHADOW_SCALE)
    dens = Image.new("L", (lw, lh), 0)
    bx = stage.product.center[0]
    bw = stage.base_w
    shadow_blob(dens, bx, stage.base_y - bw * 0.03, bw * 0.53, bw * 0.08, 200, bw * 0.025)
    shadow_blob(dens, bx + bw * 0.06, stage.base_y, bw * 0.7, bw * 0.12, 75, bw * 0.08)
    apply_shadow(img, dens, colours.shadow)


def _params(scene: Scene, colours: Colours, stage: Stage, seed: int) -> dict[str, Any]:
    out: dict[str, Any] = {
        "backdrop": scene.backdrop,
        "props": list(scene.props),
        "pattern": scene.pattern,
        "mood": scene.mood,
        "finish": scene.finish,
        "reflection": scene.reflection,
        "keywords": list(scene.matched),
        "colors": colours.as_hex(),
        "horizon_y": round(stage.horizon),
        "product_scale": round(stage.scale, 4),
        "rng_seed": seed,
    }
    if stage.podium:
        out["podium"] = [round(v, 1) for v in stage.podium]
    if stage.arch:
        out["arch"] = list(stage.arch.as_tuple())
    if stage.spheres:
        out["spheres"] = [[round(v, 1) for v in s[:3]] for s in stage.spheres]
    return out


class StudioBackend:
    """Packshot studio scenes from the brand palette; no model weights, deterministic."""

    name = "studio"
    version = "1"
    capabilities = Capabilities(
        text_to_image=True,
        product_placement=True,
        max_batch=1,
        needs_model=False,
        deterministic=True,
    )

    def generate(self, batch: Sequence[SceneRequest]) -> list[Generated]:
        """Render each request in order."""
        return [render(request) for request in batch]
