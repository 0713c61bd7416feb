"""Tests for the built-in studio backend: determinism, sizes, product fidelity, calm copy."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageFilter

from bildwerk.backends.base import Capabilities, GenerationBackend, SceneRequest
from bildwerk.backends.studio import StudioBackend
from bildwerk.config.channels import Insets
from bildwerk.errors import InputImageError
from bildwerk.geometry import Box, plan_layout
from bildwerk.samples import draw_can, draw_serum

PALETTE = {
    "primary": "#1f3a5f",
    "secondary": "#9bb7d4",
    "accent": "#e07a5f",
    "text": "#1b1b1b",
    "background": "#f4f1ec",
}


@pytest.fixture(scope="module")
def products(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("cutouts")
    out = {}
    for slug, draw in (("serum", draw_serum), ("can", draw_can)):
        out[slug] = folder / f"{slug}.png"
        draw().save(out[slug])
    return out


def make_request(
    width: int = 1080,
    height: int = 1350,
    *,
    prompt: str = "",
    seed: int = 1,
    product: Path | None = None,
    params: Mapping[str, Any] | None = None,
    slots: Mapping[str, str] | None = None,
    unsafe: Insets | None = None,
    palette: Mapping[str, str] = PALETTE,
) -> SceneRequest:
    layout = plan_layout(width, height, unsafe or Insets(), 0.06)
    return SceneRequest(
        key="test",
        prompt=prompt,
        negative_prompt="",
        slots=slots or {},
        seed=seed,
        width=width,
        height=height,
        palette=palette,
        layout=layout,
        params=params or {},
        product=product,
    )


def render(request: SceneRequest) -> Any:
    (out,) = StudioBackend().generate([request])
    return out


def pixels(image: Image.Image) -> bytes:
    return hashlib.sha256(image.tobytes()).hexdigest().encode()


def test_implements_the_protocol() -> None:
    backend = StudioBackend()
    assert isinstance(backend, GenerationBackend)
    assert backend.name == "studio"
    assert backend.capabilities == Capabilities(
        text_to_image=True,
        product_placement=True,
        max_batch=1,
        needs_model=False,
        deterministic=True,
    )


def test_batch_renders_in_order(products: dict[str, Path]) -> None:
    a = make_request(600, 500, seed=3, product=products["serum"])
    b = make_request(400, 400, seed=4)
    out = StudioBackend().generate([a, b])
    assert [g.image.size for g in out] == [(600, 500), (400, 400)]


def test_same_request_same_pixels(products: dict[str, Path]) -> None:
    req = make_request(prompt="marble podium, pattern", seed=7, product=products["serum"])
    first, second = render(req), render(req)
    assert first.image.tobytes() == second.image.tobytes()
    assert first.params == second.params
    assert first.product_box == second.product_box


def test_same_pixels_in_another_process(products: dict[str, Path]) -> None:
    """No salted hash() or process state leaks into the seed."""
    req = make_request(600, 500, prompt="arch, spheres", seed=5, product=products["can"])
    here = pixels(render(req).image).decode()
    code = (
        "import hashlib, sys\n"
        "from pathlib import Path\n"
        "from bildwerk.backends.base import SceneRequest\n"
        "from bildwerk.backends.studio import StudioBackend\n"
        "from bildwerk.config.channels import Insets\n"
        "from bildwerk.geometry import plan_layout\n"
        f"pal = {PALETTE!r}\n"
        "req = SceneRequest(key='test', prompt='arch, spheres', negative_prompt='', slots={},"
        " seed=5, width=600, height=500, palette=pal,"
        " layout=plan_layout(600, 500, Insets(), 0.06), product=Path(sys.argv[1]))\n"
        "img = StudioBackend().generate([req])[0].image\n"
        "print(hashlib.sha256(img.tobytes()).hexdigest())\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [sys.executable, "-c", code, str(products["can"])],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == here


def test_different_seed_different_scene(products: dict[str, Path]) -> None:
    a = render(make_request(seed=1, product=products["serum"]))
    b = render(make_request(seed=2, product=products["serum"]))
    assert a.image.tobytes() != b.image.tobytes()
    # same explicit choices, different seed: still differs (grain, marble veins...)
    fixed = {
        "backdrop": "sweep",
        "props": ["podium"],
        "pattern": "none",
        "mood": "neutral",
        "finish": "marble",
        "reflection": False,
    }
    c = render(make_request(seed=1, params=fixed))
    d = render(make_request(seed=2, params=fixed))
    assert c.image.tobytes() != d.image.tobytes()


@pytest.mark.parametrize(
    ("width", "height", "unsafe"),
    [
        (1080, 1350, None),
        (1080, 1920, Insets(top=250, bottom=340)),
        (1920, 1080, None),
        (600, 500, None),
        (1200, 630, None),
        (300, 250, None),
    ],
)
def test_exact_size_and_product_inside_zone(
    products: dict[str, Path], width: int, height: int, unsafe: Insets | None
) -> None:
    req = make_request(width, height, seed=width + height, product=products["serum"], unsafe=unsafe)
    out = render(req)
    assert out.image.size == (width, height)
    assert out.image.mode == "RGB"
    box = out.product_box
    assert isinstance(box, Box)
    assert req.layout.product.contains(box)
    assert box.width > 0 and box.height > req.layout.product.height * 0.5
    cx, cy = box.center
    assert out.focal == pytest.approx((cx / width, cy / height))


def _expected_cutout(path: Path, box: Box) -> np.ndarray[Any, Any]:
    """The cutout trimmed to its visible extent and resized to the placed box, computed
    independently of the backend."""
    with Image.open(path) as im:
        rgba = im.convert("RGBA")
    visible = rgba.getchannel("A").point(lambda a: 255 if a > 8 else 0).getbbox()
    assert visible is not None
    resized = rgba.crop(visible).resize((box.width, box.height), Image.Resampling.LANCZOS)
    return np.asarray(resized)


@pytest.mark.parametrize("prompt", ["", "podium", "dark glossy reflection", "arch spheres"])
def test_product_pixels_are_composited_unchanged(products: dict[str, Path], prompt: str) -> None:
    out = render(make_request(prompt=prompt, seed=11, product=products["serum"]))
    box = out.product_box
    expected = _expected_cutout(products["serum"], box)
    placed = np.asarray(out.image.crop(box.as_tuple()))
    opaque = expected[..., 3] == 255
    assert opaque.mean() > 0.5
    np.testing.assert_array_equal(placed[opaque], expected[..., :3][opaque])


def _calm(image: Image.Image, box: Box) -> tuple[float, float]:
    """(std-dev, high-frequency std-dev) of the luminance inside ``box``."""
    grey = image.convert("L")
    region = np.asarray(grey.crop(box.as_tuple()), dtype=np.float32)
    smooth = np.asarray(
        grey.filter(ImageFilter.GaussianBlur(3)).crop(box.as_tuple()), dtype=np.float32
    )
    return float(region.std()), float((region - smooth).std())


@pytest.mark.parametrize(("width", "height"), [(1080, 1350), (1920, 1080), (600, 500)])
@pytest.mark.parametrize("pattern", ["dots", "flutes", "terrazzo"])
def test_copy_and_logo_zones_stay_calm(
    products: dict[str, Path], width: int, height: int, pattern: str
) -> None:
    params = {"pattern": pattern, "props": ["podium", "arch", "spheres"], "finish": "terrazzo"}
    req = make_request(width, height, seed=5, product=products["can"], params=params)
    out = render(req)
    for zone in (req.layout.copy, req.layout.logo):
        std, detail = _calm(out.image, zone)
        assert std < 10, f"{pattern}: zone {zone} std {std:.1f}"
        assert detail < 2.5, f"{pattern}: zone {zone} detail {detail:.2f}"
        assert not zone.intersects(out.product_box)


def test_scene_is_not_flat(products: dict[str, Path]) -> None:
    for seed in range(4):
        out = render(make_request(seed=seed, product=products["serum"]))
        grey = np.asarray(out.image.convert("L"), dtype=np.float32)
        assert grey.std() > 8
        background = np.asarray(out.image.convert("L").crop((0, 0, 1080, 500)), dtype=np.float32)
        assert background.max() - background.min() > 6  # a lit backdrop, not one flat fill


def test_no_product_places_a_hero_prop() -> None:
    req = make_request(1920, 1080, seed=2)
    out = render(req)
    assert "podium" in out.params["props"]
    assert req.layout.product.contains(out.product_box)
    inside = np.asarray(out.image.crop(out.product_box.as_tuple()).convert("L"), np.float32)
    assert inside.std() > 5  # something is drawn there


def test_keywords_pick_the_scene(products: dict[str, Path]) -> None:
    out = render(make_request(prompt="Serum on a marble plinth", seed=3, product=products["serum"]))
    assert "podium" in out.params["props"]
    assert out.params["finish"] == "marble"
    dark = render(make_request(prompt="", slots={"mood": "dark, night"}, seed=3))
    light = render(
        make_request(prompt="", slots={"mood": "bright"}, seed=3, params={"mood": "neutral"})
    )
    assert dark.params["mood"] == "dark"
    top = (0, 0, 1080, 400)
    dark_l = np.asarray(dark.image.crop(top).convert("L"), np.float32).mean()
    light_l = np.asarray(light.image.crop(top).convert("L"), np.float32).mean()
    assert dark_l < 90 < 200 < light_l


def test_colours_come_from_the_palette() -> None:
    warm = {**PALETTE, "background": "#f6e7d3"}
    cool = {**PALETTE, "background": "#dfe9f5"}
    fixed = {"backdrop": "sweep", "props": [], "pattern": "none", "mood": "neutral"}
    a = render(make_request(seed=1, params=fixed, palette=warm)).image
    b = render(make_request(seed=1, params=fixed, palette=cool)).image
    ra, _, ba = (float(np.asarray(c, np.float32).mean()) for c in a.crop((0, 0, 1080, 300)).split())
    rb, _, bb = (float(np.asarray(c, np.float32).mean()) for c in b.crop((0, 0, 1080, 300)).split())
    assert ra - ba > 5  # warm wall: more red than blue
    assert bb - rb > 5  # cool wall: more blue than red


def test_params_record_choices_and_reproduce(products: dict[str, Path]) -> None:
    req = make_request(prompt="pastel arch", seed=9, product=products["can"])
    out = render(req)
    json.dumps(out.params)  # recordable in a manifest
    for key in ("backdrop", "props", "pattern", "mood", "finish", "reflection", "colors"):
        assert key in out.params
    assert out.params["mood"] == "pastel" and "arch" in out.params["props"]
    chosen = {
        k: out.params[k] for k in ("backdrop", "props", "pattern", "mood", "finish", "reflection")
    }
    again = render(
        make_request(prompt="pastel arch", seed=9, product=products["can"], params=chosen)
    )
    assert again.image.tobytes() == out.image.tobytes()


def test_missing_product_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(InputImageError):
        render(make_request(product=tmp_path / "nope.png"))
    blank = tmp_path / "blank.png"
    Image.new("RGBA", (50, 50), (0, 0, 0, 0)).save(blank)
    with pytest.raises(InputImageError, match="transparent"):
        render(make_request(product=blank))
