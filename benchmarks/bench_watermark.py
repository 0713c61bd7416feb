"""What the invisible watermark costs in bytes, and whether it survives, per format and width.

For each width, studio scenes (the studio backend: smooth backdrops, the hard case for
bytes) and synthetic creatives (``bench_render.make_master`` in the variants of
:func:`creative`: hue-rotated, flat brand panel, low-key, high-key) are encoded unmarked,
marked by this tree's ``watermark.embed`` and marked by the baseline embedding, the
``watermark.py`` of commit ``BASELINE_REV`` (per-block error diffusion, read with
``git show``, so the baseline stays fixed after this tree is merged). Every encode uses
the same settings for all three, so "bytes added" is the mark's cost alone:

* AVIF q60, aom speed 6, 4:2:0 · WebP q80 and q90, method 4 ·
  JPEG q82 progressive + optimised Huffman, 4:4:4 and 4:2:0.

Reported per format and width: the median bytes added (marked/unmarked - 1) and the share
of images whose whole 32-bit payload the reference decoder
(``imwatermark.WatermarkDecoder('bits', 32).decode(bgr, 'dwtDct')``) and ours recover.

    .venv/bin/python benchmarks/bench_watermark.py [--n 3] [--widths 480,1080,1920]
        [--strength 1.0] [--json]
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFont

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_render import make_master
from bildwerk import watermark as wm

REPO = Path(__file__).resolve().parents[1]
BASELINE_REV = "203dbe0"  # the last commit with the error-diffused embedding
SIZES = {480: (480, 600), 1080: (1080, 1350), 1920: (1920, 1080)}
PALETTES = (
    {"primary": "#1f3a5f", "secondary": "#9bb7d4", "accent": "#e07a5f", "text": "#1b1b1b"}
    | {"background": "#f4f1ec"},
    {"primary": "#0a5f38", "secondary": "#f2c14e", "accent": "#d7263d", "text": "#ffffff"}
    | {"background": "#1b1b1b"},
)
Embed = Callable[[Image.Image, list[int]], Image.Image]


def _save(fmt: str, **options: Any) -> Callable[[Image.Image], bytes]:
    def encode(image: Image.Image) -> bytes:
        buf = io.BytesIO()
        image.save(buf, fmt, **options)
        return buf.getvalue()

    return encode


ENCODERS: dict[str, Callable[[Image.Image], bytes]] = {
    "AVIF q60": _save("AVIF", quality=60, speed=6, subsampling="4:2:0"),
    "WebP q80": _save("WEBP", quality=80, method=4),
    "WebP q90": _save("WEBP", quality=90, method=4),
    "JPEG q82 4:4:4": _save("JPEG", quality=82, progressive=True, optimize=True, subsampling=0),
    "JPEG q82 4:2:0": _save("JPEG", quality=82, progressive=True, optimize=True, subsampling=2),
}


def creative(index: int, size: tuple[int, int] = (1080, 1350)) -> Image.Image:
    """Varied synthetic creatives: as drawn, hue-rotated, a flat saturated brand panel,
    low-key and high-key, with less grain on every other one (smooth areas are the hard
    case)."""
    width, height = size
    base = make_master(width, height, seed=index, grain=3.0 if index % 2 else 1.0)
    kind = index % 5
    if kind == 1:
        r, g, b = base.split()
        return Image.merge("RGB", (g, b, r))
    if kind == 2:
        brand = [(255, 212, 0), (0, 71, 255), (228, 0, 43), (0, 166, 81)][index // 5 % 4]
        draw = ImageDraw.Draw(base)
        draw.rectangle((0, 0, width, int(height * 0.4)), fill=brand)
        font = ImageFont.load_default(size=height // 14)
        draw.text((width // 12, height // 8), "SALE -30 %", fill=(255, 255, 255), font=font)
        return base
    if kind == 3:
        return ImageEnhance.Brightness(base).enhance(0.35)
    if kind == 4:
        return Image.blend(base, Image.new("RGB", base.size, (255, 255, 255)), 0.55)
    return base


def studio_scenes(seeds: Sequence[int], size: tuple[int, int]) -> list[Image.Image]:
    """Studio-backend scenes (the sample serum on a podium, light and dark palettes)."""
    from bildwerk.backends.base import SceneRequest
    from bildwerk.backends.studio import StudioBackend
    from bildwerk.config.channels import PRESETS
    from bildwerk.geometry import plan_layout
    from bildwerk.samples import draw_serum

    width, height = size
    with tempfile.TemporaryDirectory() as tmp:
        product = Path(tmp) / "serum.png"
        draw_serum().save(product)
        backend = StudioBackend()
        requests = [
            SceneRequest(
                key=f"wm-{seed}",
                prompt="",
                negative_prompt="",
                slots={},
                seed=seed,
                width=width,
                height=height,
                palette=PALETTES[seed % 2],
                layout=plan_layout(width, height, PRESETS["instagram_feed"].unsafe, 0.06),
                product=product,
            )
            for seed in seeds
        ]
        return [scene.image.convert("RGB") for scene in backend.generate(requests)]


def baseline_module(rev: str = BASELINE_REV) -> ModuleType:
    """``bildwerk/watermark.py`` as of ``rev``, imported under its own name."""
    source = subprocess.run(
        ["git", "-C", str(REPO), "show", f"{rev}:src/bildwerk/watermark.py"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    path = Path(tempfile.mkdtemp()) / "watermark_baseline.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("watermark_baseline", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def reference_decode(image: Image.Image, n_bits: int) -> list[int] | None:
    """The invisible-watermark package's dwtDct decoder; None where it isn't installed."""
    try:
        from imwatermark import WatermarkDecoder  # type: ignore[import-untyped]
    except ImportError:
        return None
    bgr = np.ascontiguousarray(np.asarray(image.convert("RGB"))[:, :, ::-1])
    return [int(b) for b in WatermarkDecoder("bits", n_bits).decode(bgr, "dwtDct")]


def run(
    n: int = 3,
    widths: Sequence[int] = (480, 1080, 1920),
    strength: float | None = None,
    rev: str = BASELINE_REV,
) -> dict[str, Any]:
    """Per width and format, for "baseline" and "new": bytes added per image, and per
    image whether the reference decoder and ours recover the whole payload."""
    old = baseline_module(rev)
    embeds: dict[str, Embed] = {
        "baseline": lambda image, bits: old.embed(image, bits),
        "new": lambda image, bits: wm.embed(image, bits, strength=strength),
    }
    rng = np.random.default_rng(2026)
    rows: dict[str, Any] = {}
    for width in widths:
        size = SIZES.get(width, (width, width * 5 // 4))
        images = studio_scenes(range(n), size) + [creative(i, size) for i in range(n)]
        for image in images:
            bits = wm.payload_for(f"cr_{rng.integers(0, 2**63):016x}")
            marked = {name: embed(image, bits) for name, embed in embeds.items()}
            for fmt, encode in ENCODERS.items():
                plain = len(encode(image))
                for name, frame in marked.items():
                    data = encode(frame)
                    decoded = Image.open(io.BytesIO(data)).convert("RGB")
                    row = rows.setdefault(
                        f"{width}|{fmt}|{name}", {"added": [], "ref": [], "ours": []}
                    )
                    row["added"].append(len(data) / plain - 1)
                    reference = reference_decode(decoded, len(bits))
                    row["ref"].append(None if reference is None else reference == bits)
                    row["ours"].append(wm.decode(decoded, len(bits)) == bits)
    return {"images_per_width": 2 * n, "strength": strength or wm.DEFAULT_STRENGTH, "rows": rows}


def _rate(values: list[bool | None]) -> str:
    if any(v is None for v in values):
        return "n/a"
    return f"{sum(bool(v) for v in values)}/{len(values)}"


def table(result: dict[str, Any]) -> str:
    """Markdown: per width and format, bytes added and recovery, baseline against new."""
    lines = [
        f"{result['images_per_width']} images per width (half studio scenes, half synthetic "
        f"creatives), strength {result['strength']:g}, baseline {BASELINE_REV}",
        "",
        "| width | format | bytes added, baseline | bytes added, new | new/baseline "
        "| recovered (reference), baseline | recovered (reference), new | recovered (ours), new |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    keys = list(dict.fromkeys(k.rsplit("|", 1)[0] for k in result["rows"]))
    for key in keys:
        old, new = result["rows"][f"{key}|baseline"], result["rows"][f"{key}|new"]
        width, fmt = key.split("|")
        a_old, a_new = statistics.median(old["added"]), statistics.median(new["added"])
        ratio = f"{a_new / a_old:.2f}" if a_old > 0 else "n/a"
        lines.append(
            f"| {width} | {fmt} | {a_old:+.1%} | {a_new:+.1%} | {ratio} "
            f"| {_rate(old['ref'])} | {_rate(new['ref'])} | {_rate(new['ours'])} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=3, help="studio scenes and creatives per width")
    parser.add_argument("--widths", default="480,1080,1920")
    parser.add_argument("--strength", type=float, default=None)
    parser.add_argument("--rev", default=BASELINE_REV, help="commit holding the baseline")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    widths = [int(w) for w in args.widths.split(",")]
    result = run(args.n, widths, args.strength, args.rev)
    print(json.dumps(result, indent=2) if args.json else table(result))


if __name__ == "__main__":
    main()
