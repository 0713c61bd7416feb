"""Delivered and payload bytes of the public profile against the reference encoders at
equal luma SSIM.

For the demo's hero (web_hero, 1920x1080) and a feed creative (instagram_feed, 1080x1350),
made as ``make demo`` makes them (scaffold brief and brand kit, studio backend, compose),
at 480 px and the largest width: ``render()`` with the ``public`` delivery profile, then
each reference encoder searched over its quality scale on the very frame render()
encoded (watermark included where the profile applies it) and interpolated to the SSIM
render() reached:

* ``cwebp -m 4 -q Q`` (Debian webp), ``cjpeg -quality Q -optimize -progressive``
  (libjpeg-turbo, 4:2:0 unless our frame is marked, then ``-sample 1x1`` as ours),
  ``avifenc -s 6 -j 1 -y 420 -a end-usage=q -a cq-level=Q -a tune=ssim`` (libavif-bin).
* Payload = coded image data (:func:`bildwerk.stages.encode.payload_size`): AVIF av01 items,
  WebP VP8/VP8L/ALPH chunks, JPEG without APPn/COM segments; the same for both sides.
* Delivered = the rendition as publishing stamps it under the public profile
  (``bildwerk.publish.stamp.stamp`` with its width: the ``rights`` XMP, or under 640 px
  the ``minimal`` one, each with the ``dcterms:provenance`` link; no ICC profile;
  Content Credentials in a ``.c2pa`` sidecar, not counted, as browsers never fetch it),
  signed with a dev chain against the signed master. The sidecar is named as ``make
  demo`` publishes it (relative to the file); a target with ``base_url`` names it by
  absolute URL, which adds ~0.3 kB to AVIFs (docs/delivery.md).
* Timing: render() of each creative with ``--repeat`` runs, medians, against render()
  with no profile (the fixed qualities of before, the baseline) in the same run.

Ratios are bildwerk / reference at the same SSIM (log-bytes interpolated between the two
reference qualities around it): payload against the reference's payload, delivered
against the reference's whole file (what an image CDN would send: the encoder's output,
its container included). Targets: payload <= 1.10, delivered <= 1.25.

    .venv/bin/python benchmarks/bench_delivery.py [--repeat 3] [--json]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import math
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_stamp import asset_metadata
from bildwerk import watermark as wm
from bildwerk.backends.studio import StudioBackend
from bildwerk.config.channels import Channel
from bildwerk.config.delivery import BUILTIN
from bildwerk.fonts import FontSet
from bildwerk.imagefit import fit
from bildwerk.inputs import read_inputs
from bildwerk.publish.keys import dev_init
from bildwerk.publish.stamp import load_identity, stamp
from bildwerk.publishers.base import origin_key
from bildwerk.runner import plan_inputs
from bildwerk.scaffold import init_workspace
from bildwerk.stages.compose import compose
from bildwerk.stages.generate import png_bytes
from bildwerk.stages.quality import SsimReference
from bildwerk.stages.render import (
    DEFAULT_SETTINGS,
    PAYLOAD_BITS,
    Rendition,
    encode,
    payload_size,
    render,
)

CASES = (("hero", "web_hero"), ("feed", "instagram_feed"))
WIDTHS = ("480", "max")
ASSET_ID = "cr_3f9a0c1e5b7d"
PAYLOAD_TARGET, DELIVERED_TARGET = 1.10, 1.25

# --- reference encoders (shared with tests/stages/test_encoder_parity.py) ----------------

QUALITY_RANGE = {"avif": (0, 63), "webp": (0, 100), "jpeg": (1, 100)}
# avifenc's cq-level runs the other way: 0 is best.
HIGHER_IS_BETTER = {"avif": False, "webp": True, "jpeg": True}


def reference_encode(frame: Image.Image, fmt: str, q: int, *, full_chroma: bool = False) -> bytes:
    """``frame`` through the format's reference command-line encoder at quality ``q``."""
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "in.png", Path(tmp) / "out"
        if fmt == "avif":
            frame.save(src)
            args = ["avifenc", "-s", "6", "-j", "1", "-y", "420", "--min", "0", "--max", "63"]
            args += ["-a", "end-usage=q", "-a", f"cq-level={q}", "-a", "tune=ssim"]
            args += [str(src), str(out)]
        elif fmt == "webp":
            frame.save(src)
            args = ["cwebp", "-quiet", "-m", "4", "-q", str(q), str(src), "-o", str(out)]
        elif fmt == "jpeg":
            src = src.with_suffix(".ppm")
            frame.save(src)
            sample = "1x1" if full_chroma else "2x2"
            args = ["cjpeg", "-quality", str(q), "-optimize", "-progressive", "-sample", sample]
            args += ["-outfile", str(out), str(src)]
        else:
            raise ValueError(f"no reference encoder for {fmt!r}")
        subprocess.run(args, check=True, capture_output=True, timeout=300)
        return out.read_bytes()


@dataclass(frozen=True)
class Point:
    quality: int
    ssim: float
    payload: int
    file: int  # the whole file the encoder wrote: what an image CDN would send


class Sizes(NamedTuple):
    """Reference bytes at one SSIM: coded data and the whole file."""

    payload: float
    file: float


def reference_at(
    frame: Image.Image,
    fmt: str,
    ssim: float,
    *,
    start: int | None = None,
    full_chroma: bool = False,
    reference: SsimReference | None = None,
    points: dict[int, Point] | None = None,
) -> Sizes:
    """Reference payload and file bytes at luma SSIM ``ssim``: the two neighbouring
    qualities whose SSIMs bracket ``ssim`` (found by stepping out from ``start`` with
    doubling steps, then bisecting), log-bytes interpolated linearly in SSIM between them.
    ``points`` caches the reference's encodes of this frame across calls."""
    ref = reference or SsimReference(frame)
    cache = {} if points is None else points
    lo, hi = QUALITY_RANGE[fmt]
    up = 1 if HIGHER_IS_BETTER[fmt] else -1  # direction of better quality
    best, worst = (hi, lo) if up == 1 else (lo, hi)

    def at(q: int) -> Point:
        if q not in cache:
            data = reference_encode(frame, fmt, q, full_chroma=full_chroma)
            cache[q] = Point(q, ref.ssim_of(data), payload_size(data, fmt), len(data))
        return cache[q]

    def clamp(q: int) -> int:
        return max(lo, min(hi, q))

    q = clamp(start if start is not None else (lo + hi) // 2)
    step = 1
    if at(q).ssim >= ssim:  # walk towards worse quality until a miss (or the end)
        hit = q
        while hit != worst and at(clamp(hit - up * step)).ssim >= ssim:
            hit, step = clamp(hit - up * step), step * 2
        if hit == worst:
            return Sizes(float(at(worst).payload), float(at(worst).file))
        miss = clamp(hit - up * step)
    else:  # walk towards better quality until a hit
        miss = q
        while at(clamp(miss + up * step)).ssim < ssim:
            if miss == best:
                raise ValueError(f"{fmt}: the reference never reaches SSIM {ssim:.4f}")
            miss, step = clamp(miss + up * step), step * 2
        hit = clamp(miss + up * step)
    while abs(hit - miss) > 1:
        mid = (hit + miss) // 2
        if at(mid).ssim >= ssim:
            hit = mid
        else:
            miss = mid
    a, b = at(miss), at(hit)
    t = (ssim - a.ssim) / (b.ssim - a.ssim) if b.ssim > a.ssim else 1.0

    def between(x: int, y: int) -> float:
        return math.exp(math.log(x) + t * (math.log(y) - math.log(x)))

    return Sizes(between(a.payload, b.payload), between(a.file, b.file))


def reference_start(fmt: str, quality: int) -> int:
    """The reference quality nearest ours: the same scale for cwebp and cjpeg (same
    libraries), libavif's quality-to-quantizer mapping for avifenc's cq-level."""
    return round((100 - quality) * 63 / 100) if fmt == "avif" else quality


# --- the benchmark -----------------------------------------------------------------------


def demo_masters(tmp: Path) -> dict[str, tuple[Channel, Image.Image]]:
    """The demo's first en-US web_hero and instagram_feed creatives, made as ``make demo``
    makes them: the ``bildwerk init`` scaffold's brief and brand kit, its plan, the studio
    backend's scene and the compose stage's brand overlay (logo, headline, subline, CTA)."""
    root = init_workspace(tmp / "demo")
    brief = next((root / "campaigns").glob("*.yaml"))
    inputs = read_inputs(brief, default_brand=root / "brand" / "brand.yaml", max_megapixels=40.0)
    plan = plan_inputs(inputs, lambda clean: clean.source)
    logo = None
    if inputs.logo is not None:
        with Image.open(io.BytesIO(inputs.logo.png)) as im:
            logo = im.convert("RGBA")
    fonts = FontSet.from_brand(inputs.brand, brand_path=inputs.brand_path)
    out: dict[str, tuple[Channel, Image.Image]] = {}
    for name, preset in CASES:
        job = next(j for j in plan.jobs if j.channel.name == preset and j.locale == "en-US")
        (scene,) = StudioBackend().generate([job.scene])
        made = compose(
            scene.image.convert("RGB"),
            job.scene.layout,
            job.copy,
            brand=inputs.brand,
            locale=job.locale,
            direction="rtl" if job.direction == "rtl" else "ltr",
            logo=logo,
            fonts=fonts,
            density=job.channel.density,
        )
        out[name] = (job.channel, made.image.convert("RGB"))
    return out


def _frame(master: Image.Image, channel: Channel, r: Rendition, icc: bool) -> Image.Image:
    """The frame render() encoded for ``r`` (resized, marked as the profile says),
    checked by re-encoding it to render()'s very bytes."""
    frame = fit(master, r.width, r.height, mode=channel.fit)
    if r.watermark is not None:
        frame = wm.embed(frame, wm.payload_for(ASSET_ID, PAYLOAD_BITS))
    again = encode(
        frame, r.format, r.quality, DEFAULT_SETTINGS, subsample_chroma=not r.watermark, icc=icc
    )
    if again != r.data:
        raise AssertionError(f"{channel.name} {r.format} {r.width}: frame differs from render()'s")
    return frame


def measure(repeat: int) -> dict[str, Any]:
    profile = BUILTIN["public"]
    rows: list[dict[str, Any]] = []
    timing: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        dev_init(Path(tmp), org="Acme Beauty")
        identity = load_identity(Path(tmp), None)
        for name, (preset, master) in demo_masters(Path(tmp)).items():
            # the widths the acceptance names (480 px and the master's), not the ladder's
            channel = preset.model_copy(update={"widths": (480,)})
            meta = asset_metadata(channel, ASSET_ID)  # the profile drops its generation
            signed_master = stamp(
                png_bytes(master), "png", meta, identity=identity, author=meta.creator
            ).data
            new_s, old_s = [], []
            renditions: list[Rendition] = []
            for i in range(repeat):
                for which in ("new", "old") if i % 2 == 0 else ("old", "new"):
                    started = time.perf_counter()
                    if which == "new":
                        renditions = render(master, channel, watermark=ASSET_ID, profile=profile)
                        new_s.append(time.perf_counter() - started)
                    else:
                        render(master, channel, watermark=ASSET_ID)
                        old_s.append(time.perf_counter() - started)
            timing[name] = {
                "profile_s": statistics.median(new_s),
                "fixed_s": statistics.median(old_s),
            }
            for r in renditions:
                frame = _frame(master, channel, r, profile.icc)
                ours = payload_size(r.data, r.format)
                assert r.ssim is not None
                full = r.format == "jpeg" and r.watermark is not None
                start = reference_start(r.format, r.quality)
                theirs, theirs_file = reference_at(
                    frame, r.format, r.ssim, start=start, full_chroma=full
                )
                # the sidecar's name as `make demo` publishes it (a folder target without
                # base_url: relative to the file, which names itself by content)
                sha = hashlib.sha256(r.data).hexdigest()
                url = origin_key(f"summer-sale-{name}", channel.name, r.width, sha, r.format)
                delivered = len(
                    stamp(
                        r.data,
                        r.format,
                        meta,
                        identity=identity,
                        author=meta.creator,
                        master=signed_master,
                        master_title=f"{name} (master)",
                        profile=profile,
                        sidecar_url=url + ".c2pa",
                        width=r.width,
                    ).data
                )
                rows.append(
                    {
                        "case": name,
                        "format": r.format,
                        "width": r.width,
                        "marked": r.watermark is not None,
                        "metadata": profile.metadata_for(r.width),
                        "quality": r.quality,
                        "ssim": r.ssim,
                        "payload": ours,
                        "file": len(r.data),
                        "delivered": delivered,
                        "reference_payload": theirs,
                        "reference_file": theirs_file,
                        "payload_ratio": ours / theirs,
                        "delivered_ratio": delivered / theirs_file,
                    }
                )
    return {"rows": rows, "timing": timing, "repeat": repeat}


def print_report(report: dict[str, Any]) -> None:
    print("public profile vs reference encoders at equal luma SSIM (payload = coded data)")
    head = f"{'case':<5}{'fmt':<5}{'width':>6} {'mark':<5}{'q':>4}{'ssim':>8}"
    print(
        head + f" {'xmp':<8}{'payload':>8}{'ref':>7}{'pay/ref':>8}"
        f"{'deliv.':>8}{'ref file':>9}{'del/ref':>8}"
    )
    for r in report["rows"]:
        print(
            f"{r['case']:<5}{r['format']:<5}{r['width']:>6} {'yes' if r['marked'] else 'no':<5}"
            f"{r['quality']:>4}{r['ssim']:>8.4f} {r['metadata']:<8}{r['payload']:>8}"
            f"{r['reference_payload']:>7.0f}{r['payload_ratio']:>8.3f}{r['delivered']:>8}"
            f"{r['reference_file']:>9.0f}{r['delivered_ratio']:>8.3f}"
        )
    for name, t in report["timing"].items():
        print(
            f"render {name}: public profile {t['profile_s']:.1f} s vs fixed qualities "
            f"{t['fixed_s']:.1f} s (medians of {report['repeat']}), "
            f"x{t['profile_s'] / t['fixed_s']:.2f}"
        )
    worst_p = max(r["payload_ratio"] for r in report["rows"])
    worst_d = max(r["delivered_ratio"] for r in report["rows"])
    print(
        f"worst payload ratio {worst_p:.3f} (target <= {PAYLOAD_TARGET}), "
        f"worst delivered ratio {worst_d:.3f} (target <= {DELIVERED_TARGET})"
    )


def summary(report: dict[str, Any]) -> dict[str, float]:
    rows: Sequence[dict[str, Any]] = report["rows"]
    out = {
        "delivery_payload_ratio_median": statistics.median(r["payload_ratio"] for r in rows),
        "delivery_payload_ratio_max": max(r["payload_ratio"] for r in rows),
        "delivery_delivered_ratio_max": max(r["delivered_ratio"] for r in rows),
    }
    for name, t in report["timing"].items():
        out[f"delivery_render_{name}_s"] = t["profile_s"]
        out[f"delivery_render_{name}_fixed_s"] = t["fixed_s"]
    return out


def run(repeat: int = 3) -> dict[str, float]:
    report = measure(repeat)
    print_report(report)
    return summary(report)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=3, help="timed renders per creative")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    report = measure(max(1, args.repeat))
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_report(report)


if __name__ == "__main__":
    main()
