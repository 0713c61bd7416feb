"""Measure near-duplicate thresholds on synthetic product scenes.

Families of product scenes share a template (backdrop palette, horizon, products); the
variants of a family are what a campaign really produces from one template and must NOT
be merged: products moved, recoloured, rescaled or rearranged, or the backdrop recoloured,
each a fresh render with its own texture and grain. Every scene is also put through the
transforms a published copy goes through (JPEG, resize, light crop, brightness), and those
copies MUST be merged with their original. Prints recall/precision over a threshold grid.

    .venv/bin/python benchmarks/dedup_eval.py [--families 12]
"""

from __future__ import annotations

import argparse
import colorsys
import io
import itertools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter

from bildwerk.dedup import COLOUR_MAX, PHASH_MAX, ImageHashes, OperatingPoint, evaluate, hash_image

SIZE = (480, 360)
VARIANTS = ("template", "moved", "recoloured", "backdrop", "rescaled", "rearranged")
PHASH_GRID = tuple(range(4, 21, 2))
COLOUR_GRID = tuple(range(0, 9))
Colour = tuple[int, int, int]


@dataclass(frozen=True)
class Product:
    kind: str  # "bottle" | "box" | "jar"
    x: float  # centre, fraction of width
    width: float  # fraction of width
    height: float  # fraction of height
    colour: Colour


@dataclass(frozen=True)
class Scene:
    top: Colour
    bottom: Colour
    horizon: float  # floor starts here, fraction of height
    products: tuple[Product, ...]
    seed: int  # texture, decor and grain


def _rgb(hue: float, sat: float, val: float) -> Colour:
    r, g, b = colorsys.hsv_to_rgb(hue % 1.0, sat, val)
    return round(r * 255), round(g * 255), round(b * 255)


def _hue_shift(colour: Colour, turn: float) -> Colour:
    h, s, v = colorsys.rgb_to_hsv(*(c / 255 for c in colour))
    return _rgb(h + turn, max(s, 0.45), v)


def family(seed: int, variants: int = 6) -> list[Scene]:
    """A template and its distinct variants (the first is the template itself)."""
    rng = np.random.default_rng(seed)
    hue = rng.random()
    top = _rgb(hue, 0.08 + 0.2 * rng.random(), 0.85 + 0.1 * rng.random())
    bottom = _rgb(hue + 0.05, 0.2 + 0.25 * rng.random(), 0.45 + 0.2 * rng.random())
    products = []
    for i in range(int(rng.integers(1, 4))):
        products.append(
            Product(
                kind=str(rng.choice(["bottle", "box", "jar"])),
                x=0.2 + 0.6 * (i + rng.random()) / 3,
                width=0.1 + 0.08 * rng.random(),
                height=0.3 + 0.25 * rng.random(),
                colour=_rgb(rng.random(), 0.5 + 0.4 * rng.random(), 0.45 + 0.45 * rng.random()),
            )
        )
    base = Scene(top, bottom, 0.62 + 0.1 * rng.random(), tuple(products), seed * 100)
    changes: list[Callable[[Scene, np.random.Generator], Scene]] = [
        _moved,
        _recoloured,
        _backdrop,
        _rescaled,
        _rearranged,
    ]
    scenes = [base]  # named by VARIANTS, in this order
    for v in range(1, variants):
        scene = changes[(v - 1) % len(changes)](base, rng)
        scenes.append(Scene(scene.top, scene.bottom, scene.horizon, scene.products, base.seed + v))
    return scenes


def _with(scene: Scene, products: list[Product]) -> Scene:
    return Scene(scene.top, scene.bottom, scene.horizon, tuple(products), scene.seed)


def _moved(scene: Scene, rng: np.random.Generator) -> Scene:
    """Products slide a quarter of the frame, as another layout of the same shot."""
    step = (0.22 + 0.08 * rng.random()) * (1 if rng.random() < 0.5 else -1)
    moved = []
    for p in scene.products:
        x = p.x + step
        x = x if 0.12 < x < 0.88 else p.x - step
        moved.append(Product(p.kind, x, p.width, p.height, p.colour))
    return _with(scene, moved)


def _recoloured(scene: Scene, rng: np.random.Generator) -> Scene:
    turn = 0.33 + 0.34 * rng.random()  # 120..240 degrees away
    return _with(
        scene,
        [
            Product(p.kind, p.x, p.width, p.height, _hue_shift(p.colour, turn))
            for p in scene.products
        ],
    )


def _backdrop(scene: Scene, rng: np.random.Generator) -> Scene:
    turn = 0.3 + 0.4 * rng.random()
    return Scene(
        _hue_shift(scene.top, turn), _hue_shift(scene.bottom, turn), scene.horizon,
        scene.products, scene.seed,
    )  # fmt: skip


def _rescaled(scene: Scene, rng: np.random.Generator) -> Scene:
    """A closer shot: products 1.5x larger, centred on the same spots."""
    k = 1.4 + 0.2 * rng.random()
    return _with(
        scene,
        [
            Product(p.kind, p.x, p.width * k, min(p.height * k, 0.6), p.colour)
            for p in scene.products
        ],
    )


def _rearranged(scene: Scene, rng: np.random.Generator) -> Scene:
    """Another product line-up: one product more (or fewer), shapes swapped."""
    kinds = {"bottle": "jar", "jar": "box", "box": "bottle"}
    products = [Product(kinds[p.kind], p.x, p.width, p.height, p.colour) for p in scene.products]
    if len(products) > 1:
        products.pop(int(rng.integers(len(products))))
    else:
        x = products[0].x + (0.3 if products[0].x < 0.5 else -0.3)
        products.append(Product("box", x, 0.16, 0.3, _hue_shift(products[0].colour, 0.5)))
    return _with(scene, products)


def render(scene: Scene, size: tuple[int, int] = SIZE) -> Image.Image:
    """Draw a scene: textured gradient wall and floor, shaded products with labels and
    soft shadows, a few decor shapes, sensor grain."""
    w, h = size
    rng = np.random.default_rng(scene.seed)
    v = np.linspace(0.0, 1.0, h, dtype=np.float64)[:, None, None]
    wall = np.array(scene.top, np.float64) * (1 - v) + np.array(scene.bottom, np.float64) * v
    pixels = np.broadcast_to(wall, (h, w, 3)).copy()
    floor = int(scene.horizon * h)
    pixels[floor:] *= 0.8
    pixels += 22.0 * (_noise(rng, w, h) - 0.5)[..., None]
    img = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(img)
    for _ in range(5):  # decor: thin rings and leaves
        cx, cy, r = rng.random() * w, rng.random() * floor, 6 + 20 * rng.random()
        tint = _rgb(rng.random(), 0.3, 0.9)
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), outline=tint, width=2)
    for p in scene.products:
        _product(img, p, floor)
    grain = rng.standard_normal((h, w, 3), dtype=np.float32) * 4.0
    out = np.asarray(img, np.float32) + grain
    return Image.fromarray(np.clip(out + 0.5, 0, 255).astype(np.uint8), "RGB")


def _noise(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    acc = np.zeros((h, w), np.float64)
    for i, cells in enumerate((4, 12, 40, 120)):
        grid = rng.random((max(2, cells * h // w), cells)).astype(np.float32)
        layer = Image.fromarray(grid, "F").resize((w, h), Image.Resampling.BICUBIC)
        acc += np.asarray(layer, np.float64) / 1.7**i
    normalised: np.ndarray = (acc - acc.min()) / (acc.max() - acc.min())
    return normalised


def _product(img: Image.Image, p: Product, floor: int) -> None:
    w, h = img.size
    pw, ph = int(p.width * w), int(p.height * h)
    x0, y0 = int(p.x * w) - pw // 2, floor - ph + h // 40
    shadow = Image.new("L", img.size, 0)
    ImageDraw.Draw(shadow).ellipse(
        (x0 - pw // 5, y0 + ph - 8, x0 + pw + pw // 5, y0 + ph + 10), 110
    )
    img.paste((20, 15, 10), (0, 0), shadow.filter(ImageFilter.GaussianBlur(6)))
    shade = np.linspace(0.55, 1.2, pw)[None, :, None]
    body = np.clip(np.array(p.colour, np.float64) * shade, 0, 255)
    body = np.repeat(body, ph, axis=0).astype(np.uint8)
    mask = Image.new("L", (pw, ph), 0)
    shape = ImageDraw.Draw(mask)
    if p.kind == "jar":
        shape.rounded_rectangle((0, ph // 5, pw - 1, ph - 1), radius=pw // 3, fill=255)
        shape.rectangle((pw // 8, 0, pw - pw // 8, ph // 5), fill=255)
    elif p.kind == "bottle":
        shape.rounded_rectangle((0, ph // 3, pw - 1, ph - 1), radius=pw // 4, fill=255)
        shape.polygon(
            [(0, ph // 3 + 4), (pw // 3, ph // 8), (2 * pw // 3, ph // 8), (pw, ph // 3 + 4)], 255
        )
        shape.rectangle((pw // 3, 0, 2 * pw // 3, ph // 8), fill=255)
    else:
        shape.rectangle((0, 0, pw - 1, ph - 1), fill=255)
    img.paste(Image.fromarray(body, "RGB"), (x0, y0), mask)
    draw = ImageDraw.Draw(img)
    label = (x0 + pw // 8, y0 + ph // 2, x0 + pw - pw // 8, y0 + ph // 2 + ph // 5)
    draw.rectangle(label, fill=(240, 236, 226))
    for k in range(3):  # lines of "text" on the label
        ly = label[1] + 4 + k * 6
        draw.line((label[0] + 4, ly, label[2] - 4 - 7 * k, ly), fill=(40, 40, 48), width=2)


def _jpeg(quality: int) -> Callable[[Image.Image], Image.Image]:
    def apply(img: Image.Image) -> Image.Image:
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=quality)
        return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")

    return apply


def _resize(scale: float) -> Callable[[Image.Image], Image.Image]:
    def apply(img: Image.Image) -> Image.Image:
        size = (round(img.width * scale), round(img.height * scale))
        return img.resize(size, Image.Resampling.LANCZOS)

    return apply


def _crop(share: float) -> Callable[[Image.Image], Image.Image]:
    """Cut ``share`` of the width and of the height, two thirds from the left/top."""

    def apply(img: Image.Image) -> Image.Image:
        dx, dy = share * img.width, share * img.height
        box = (
            round(2 * dx / 3),
            round(2 * dy / 3),
            round(img.width - dx / 3),
            round(img.height - dy / 3),
        )
        return img.crop(box)

    return apply


def _brightness(factor: float) -> Callable[[Image.Image], Image.Image]:
    def apply(img: Image.Image) -> Image.Image:
        return ImageEnhance.Brightness(img).enhance(factor)

    return apply


TRANSFORMS: dict[str, Callable[[Image.Image], Image.Image]] = {
    "jpeg50": _jpeg(50),
    "jpeg70": _jpeg(70),
    "jpeg90": _jpeg(90),
    "resize50": _resize(0.5),
    "resize65": _resize(0.65),
    "resize80": _resize(0.8),
    "crop5": _crop(0.05),
    "crop10": _crop(0.10),
    "bright+15": _brightness(1.15),
    "bright-15": _brightness(0.85),
    "resize60+jpeg70": lambda img: _jpeg(70)(_resize(0.6)(img)),
}


@dataclass(frozen=True)
class EvalSet:
    """Labelled hash pairs: (original, transformed copy) and (variant, variant) within
    a family; ``transform_of`` names the transform behind each duplicate pair and
    ``variants_of`` the two variants of each distinct pair ("template~moved")."""

    duplicates: list[tuple[ImageHashes, ImageHashes]]
    transform_of: list[str]
    distinct: list[tuple[ImageHashes, ImageHashes]]
    variants_of: list[str]


def build(families: int = 12, variants: int = 6) -> EvalSet:
    duplicates, names, distinct, kinds = [], [], [], []
    for f in range(families):
        hashes = []
        for scene in family(1000 + f, variants):
            img = render(scene)
            original = hash_image(img)
            hashes.append(original)
            for name, transform in TRANSFORMS.items():
                duplicates.append((original, hash_image(transform(img))))
                names.append(name)
        for i, j in itertools.combinations(range(len(hashes)), 2):
            distinct.append((hashes[i], hashes[j]))
            kinds.append(f"{VARIANTS[i % len(VARIANTS)]}~{VARIANTS[j % len(VARIANTS)]}")
    return EvalSet(duplicates, names, distinct, kinds)


def table(points: list[OperatingPoint]) -> str:
    """Recall / precision / false-positive rate per threshold pair, as Markdown."""
    lines = [
        "| phash_max | colour_max | recall | precision | FPR (distinct) |",
        "|---:|---:|---:|---:|---:|",
    ]
    for p in points:
        lines.append(
            f"| {p.phash_max} | {p.colour_max} | {p.recall:.3f} | {p.precision:.3f} "
            f"| {p.false_positive_rate:.3f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", type=int, default=12)
    args = parser.parse_args(argv)
    data = build(args.families)
    points = evaluate(data.duplicates, data.distinct, PHASH_GRID, COLOUR_GRID)
    print(
        f"{len(data.duplicates)} duplicate pairs, {len(data.distinct)} distinct-but-similar pairs"
    )
    print(table(points))
    chosen = evaluate(data.duplicates, data.distinct, [PHASH_MAX], [COLOUR_MAX])[0]
    print(f"\ndefaults: phash_max={PHASH_MAX} colour_max={COLOUR_MAX}: {chosen}")
    print("\nrecall per transform at the defaults:")
    for name in TRANSFORMS:
        pairs = [p for p, n in zip(data.duplicates, data.transform_of, strict=True) if n == name]
        print(f"  {name:<16} {evaluate(pairs, [], [PHASH_MAX], [COLOUR_MAX])[0].recall:.3f}")
    print("\ndistinct pairs merged at the defaults, template against each variant:")
    for name in VARIANTS[1:]:
        kind = f"template~{name}"
        pairs = [p for p, k in zip(data.distinct, data.variants_of, strict=True) if k == kind]
        point = evaluate([], pairs, [PHASH_MAX], [COLOUR_MAX])[0]
        print(f"  {name:<16} {point.false_positive_rate:.3f} of {len(pairs)}")


if __name__ == "__main__":
    main()
