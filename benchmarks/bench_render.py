"""Render stage cost versus the bare encoders.

For realistic masters, times ``render()`` (resize, budget search, encode) and, in the same
run, encoding exactly its final renditions once at the qualities it chose, from frames
resized beforehand. The ratio render/bare is the stage's overhead; target <= 1.15 with
fixed qualities (no profile). With ``--profile public`` render() searches each rendition's
quality to the profile's SSIM target (several encodes and SSIMs per rendition), so the
ratio is the cost of that search. Everything is single-threaded, so a busy machine adds
noise: use more repeats there.

    .venv/bin/python benchmarks/bench_render.py [--repeat 5] [--profile public]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from bildwerk.config.channels import PRESETS, Channel
from bildwerk.config.delivery import BUILTIN, DeliveryProfile
from bildwerk.imagefit import fit
from bildwerk.stages.render import RenderSettings, Rendition, encode, render

CASES = (("instagram_feed", 1), ("web_hero", 0))  # (preset, seed)
TARGET_RATIO = 1.15


def make_master(width: int, height: int, seed: int = 0, grain: float = 3.0) -> Image.Image:
    """A composed creative as the compose stage would hand it over: a lit studio backdrop
    with fine texture, a shaded product with a label, thin lines, outlines, headline,
    subline, a CTA button and sensor grain. Deterministic for a given seed and size.

    Flat synthetic images compress to nothing and would flatter every number here.
    """
    rng = np.random.default_rng(seed)
    img = Image.fromarray(_backdrop(rng, width, height), "RGB")
    s = min(width, height)
    _draw_product(img, int(width * 0.62), int(height * 0.18), int(s * 0.22), int(s * 0.62), s)
    _draw_decor(img, rng, s)
    _draw_copy(img, int(width * 0.06), int(height * 0.12), s)
    noisy = np.asarray(img, np.float32) + rng.normal(0, grain, (height, width, 3))
    return Image.fromarray(np.clip(noisy + 0.5, 0, 255).astype(np.uint8), "RGB")


def _octaves(
    rng: np.random.Generator, width: int, height: int, cells: tuple[int, ...]
) -> npt.NDArray[np.float32]:
    """Value noise summed over octaves (``cells`` across the width), normalised to 0..1."""
    acc = np.zeros((height, width), np.float32)
    for i, c in enumerate(cells):
        grid = rng.random((max(2, round(c * height / width)), c), dtype=np.float32)
        layer = Image.fromarray(grid, "F").resize((width, height), Image.Resampling.BICUBIC)
        acc += np.asarray(layer) / (1.6**i)
    normalised: npt.NDArray[np.float32] = acc / acc.max()
    return normalised


def _backdrop(rng: np.random.Generator, width: int, height: int) -> npt.NDArray[np.uint8]:
    """Vertical colour gradient, off-centre vignette, textured wall and a rougher floor."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    u, v = x / width, y / height
    top, bottom = np.array([236, 226, 214], np.float32), np.array([160, 120, 96], np.float32)
    base = top * (1 - v[..., None]) + bottom * v[..., None]
    base *= (1 - 0.35 * ((u - 0.6) ** 2 + (v - 0.45) ** 2))[..., None]
    coarse = _octaves(rng, width, height, (4, 9, 21, 47, 101, 223))
    fine = _octaves(rng, width, height, (width // 16, width // 6, width // 3))
    floor = v > 0.72
    base[floor] *= (0.7 + 0.3 * coarse[floor] + 0.35 * fine[floor])[..., None]
    base += 18 * (coarse[..., None] - 0.5) + 26 * (fine[..., None] - 0.5)
    pixels: npt.NDArray[np.uint8] = np.clip(base, 0, 255).astype(np.uint8)
    return pixels


def _draw_product(img: Image.Image, bx: int, by: int, bw: int, bh: int, s: int) -> None:
    """A bottle with a horizontally shaded body, cap, label text and a soft shadow."""
    shade = np.linspace(0.55, 1.15, bw, dtype=np.float32)
    body = np.clip(np.array([40, 110, 160], np.float32) * shade[None, :, None], 0, 255)
    mask = Image.new("L", (bw, bh), 0)
    ImageDraw.Draw(mask).rounded_rectangle((0, 0, bw - 1, bh - 1), radius=bw // 4, fill=255)
    img.paste(Image.fromarray(np.repeat(body, bh, axis=0).astype(np.uint8), "RGB"), (bx, by), mask)
    draw = ImageDraw.Draw(img)
    draw.rectangle((bx + bw // 3, by - s // 12, bx + 2 * bw // 3, by), fill=(30, 30, 34))
    draw.rectangle((bx + 8, by + bh // 3, bx + bw - 8, by + bh // 2), fill=(245, 240, 228))
    font = ImageFont.load_default(size=max(10, s // 40))
    draw.text(
        (bx + 16, by + bh // 3 + 10), "NORDIC\nspring water 0.5 l", fill=(20, 40, 60), font=font
    )
    shadow = Image.new("L", img.size, 0)
    ImageDraw.Draw(shadow).ellipse(
        (bx - bw // 4, by + bh - s // 40, bx + bw + bw // 4, by + bh + s // 30), fill=120
    )
    img.paste((40, 30, 25), (0, 0), shadow.filter(ImageFilter.GaussianBlur(s / 60)))


def _draw_decor(img: Image.Image, rng: np.random.Generator, s: int) -> None:
    """Thin outlined circles, a flat leaf shape and a bundle of hairlines."""
    width, height = img.size
    draw = ImageDraw.Draw(img)
    for _ in range(7):
        cx, cy = rng.random() * width, rng.random() * height * 0.7
        r = s * (0.02 + 0.06 * rng.random())
        colour = tuple(int(c) for c in rng.integers(60, 240, 3))
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), outline=colour, width=max(2, s // 300))
    draw.polygon(
        [(width * 0.08, height * 0.9), (width * 0.2, height * 0.6), (width * 0.32, height * 0.92)],
        fill=(70, 120, 60),
    )
    for i in range(40):
        x0 = width * 0.05 + i * s * 0.004
        draw.line((x0, height * 0.62, x0 + s * 0.05, height * 0.95), fill=(50, 90, 45))


def _draw_copy(img: Image.Image, tx: int, ty: int, s: int) -> None:
    """Headline, two-line subline and a CTA button, sized from the shorter side."""
    draw = ImageDraw.Draw(img)
    headline = ImageFont.load_default(size=max(12, s // 11))
    body = ImageFont.load_default(size=max(10, s // 28))
    draw.text((tx, ty), "Taste the\nfjord.", fill=(25, 35, 50), font=headline, spacing=s // 60)
    draw.text(
        (tx, ty + int(s * 0.27)),
        "Mineral water from 600 m below the ice.\nBottled at the source since 1911.",
        fill=(60, 60, 70),
        font=body,
    )
    cta = (tx, ty + int(s * 0.40), tx + int(s * 0.28), ty + int(s * 0.47))
    draw.rounded_rectangle(cta, radius=s // 50, fill=(220, 80, 40))
    draw.text((cta[0] + s // 30, cta[1] + s // 90), "Shop now", fill=(255, 255, 255), font=body)


@dataclass
class Case:
    """One preset's master, the renditions render() makes of it, and the frames those
    were encoded from (resized outside any timing, for the bare encodes)."""

    preset: str
    channel: Channel
    master: Image.Image
    renditions: list[Rendition]
    frames: dict[int, Image.Image]
    profile: DeliveryProfile | None = None
    render_s: list[float] = field(default_factory=list)
    bare_s: list[float] = field(default_factory=list)


def prepare(
    preset: str, seed: int, settings: RenderSettings, profile: DeliveryProfile | None = None
) -> Case:
    """Build the case; the first render() also warms the codecs and the ICC cache."""
    channel = PRESETS[preset]
    master = make_master(*channel.master_size, seed=seed)
    renditions = render(master, channel, settings=settings, profile=profile)
    sizes = {(r.width, r.height) for r in renditions}
    frames = {w: fit(master, w, h, mode=channel.fit) for w, h in sizes}
    for r in renditions:  # the bare path must reproduce render()'s bytes exactly
        again = encode(frames[r.width], r.format, r.quality, settings, subsample_chroma=True)
        if again != r.data:  # no watermark here, so JPEG is 4:2:0
            raise AssertionError(f"bare encode differs for {preset} {r.format} {r.width}")
    return Case(preset, channel, master, renditions, frames, profile)


def time_render(case: Case, settings: RenderSettings) -> None:
    started = time.perf_counter()
    render(case.master, case.channel, settings=settings, profile=case.profile)
    case.render_s.append(time.perf_counter() - started)


def time_bare(case: Case, settings: RenderSettings) -> None:
    """Encode each final rendition once at the quality render() chose: no resize, no
    search."""
    started = time.perf_counter()
    for r in case.renditions:
        encode(case.frames[r.width], r.format, r.quality, settings, subsample_chroma=True)
    case.bare_s.append(time.perf_counter() - started)


def run(repeat: int, profile: str | None = None) -> dict[str, float]:
    """Median milliseconds per preset and render/bare ratios, per preset and in total.

    Each repeat times render() and the bare encodes back to back (alternating which goes
    first), and a ratio is the median of those per-repeat pairs, so drifts in machine
    speed between repeats cancel out.
    """
    settings = RenderSettings()
    chosen = BUILTIN[profile] if profile else None
    cases = [prepare(preset, seed, settings, chosen) for preset, seed in CASES]
    for i in range(repeat):
        for case in cases:
            steps = (time_render, time_bare) if i % 2 == 0 else (time_bare, time_render)
            for step in steps:
                gc.collect()
                step(case, settings)
    results: dict[str, float] = {}
    for case in cases:
        results[f"render_{case.preset}_ms"] = statistics.median(case.render_s) * 1000
        results[f"bare_{case.preset}_ms"] = statistics.median(case.bare_s) * 1000
        results[f"ratio_{case.preset}"] = _paired_ratio([case.render_s], [case.bare_s])
        _print_case(case, results)
    results["ratio_total"] = _paired_ratio([c.render_s for c in cases], [c.bare_s for c in cases])
    print(f"total: render/bare = {results['ratio_total']:.3f} (target <= {TARGET_RATIO})")
    return results


def _paired_ratio(render_s: list[list[float]], bare_s: list[list[float]]) -> float:
    """Median over repeats of (sum of render times) / (sum of bare times)."""
    repeats = range(len(render_s[0]))
    ratios = [sum(r[i] for r in render_s) / sum(b[i] for b in bare_s) for i in repeats]
    return statistics.median(ratios)


def _print_case(case: Case, results: dict[str, float]) -> None:
    p = case.preset
    print(
        f"{p}: render {results[f'render_{p}_ms']:.0f} ms, "
        f"bare encode {results[f'bare_{p}_ms']:.0f} ms (medians), "
        f"ratio {results[f'ratio_{p}']:.3f}"
    )
    for r in case.renditions:
        budget = f"{r.budget:>7}" if r.budget is not None else "   none"
        flag = "" if r.within_budget else "  OVER BUDGET"
        ssim = f"  ssim {r.ssim:.4f}" if r.ssim is not None else ""
        print(
            f"  {r.format:<4} {r.width:>4}x{r.height:<4} q{r.quality:<3} "
            f"{len(r.data):>7} B / {budget} B{flag}{ssim}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per case (median)")
    parser.add_argument("--profile", choices=sorted(BUILTIN), help="delivery profile")
    args = parser.parse_args()
    run(max(1, args.repeat), args.profile)


if __name__ == "__main__":
    main()
