"""Render stage against the real encoders: sizes, formats, budgets, colour, determinism.

Outputs are read back with Pillow and, where installed, with independent tools (avifdec,
dwebp, djpeg from libavif-bin, webp, libjpeg-turbo-progs; exiftool), which
``scripts/system-deps.sh --test`` installs.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import os
import shutil
import struct
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageCms, ImageDraw, JpegImagePlugin

import bildwerk.stages.render as render_module
from bildwerk.config.channels import PRESETS, Channel
from bildwerk.config.delivery import BUILTIN
from bildwerk.imagefit import crop_box, fit
from bildwerk.stages.render import (
    DEFAULT_SETTINGS,
    RenderSettings,
    Rendition,
    encoder_versions,
    render,
    srgb_profile,
)

REPO = Path(__file__).resolve().parents[2]
PIL_FORMAT = {"avif": "AVIF", "webp": "WEBP", "jpeg": "JPEG", "png": "PNG"}


def _load_make_master() -> Callable[..., Image.Image]:
    """The benchmark's synthetic creative, so tests and benchmark judge the same image."""
    spec = importlib.util.spec_from_file_location(
        "bench_render", REPO / "benchmarks" / "bench_render.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while executing
    spec.loader.exec_module(module)
    make: Callable[..., Image.Image] = module.make_master
    return make


make_master = _load_make_master()


def small_channel(name: str, budget: int | None = None, **extra: Any) -> Channel:
    """A 640x360 channel with two widths: cheap to encode, same code paths as presets."""
    budgets = {} if budget is None else {"avif": budget, "webp": budget, "jpeg": budget}
    fields: dict[str, Any] = {
        "name": name,
        "width": 640,
        "height": 360,
        "widths": (320, 640),
        "byte_budget": budgets,
    } | extra
    return Channel(**fields)


@pytest.fixture(scope="module")
def small_master() -> Image.Image:
    return make_master(640, 360, seed=3)


@pytest.fixture(scope="module")
def hero() -> list[Rendition]:
    """web_hero renditions of a detailed 1920x1080 creative with the preset's budgets."""
    return render(make_master(1920, 1080), PRESETS["web_hero"])


@pytest.fixture(scope="module")
def hero_files(hero: list[Rendition], tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("hero")
    paths = []
    for r in hero:
        path = folder / f"{r.width}.{r.format}"
        path.write_bytes(r.data)
        paths.append(path)
    return paths


def count_encodes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int, int]]:
    """Record (format, width, quality) of every encoder call render() makes."""
    calls: list[tuple[str, int, int]] = []
    real = render_module.encode

    def counting(
        frame: Image.Image, fmt: str, quality: int, settings: RenderSettings, **kw: Any
    ) -> bytes:
        calls.append((fmt, frame.width, quality))
        return real(frame, fmt, quality, settings, **kw)

    monkeypatch.setattr(render_module, "encode", counting)
    return calls


# --- web_hero: the realistic case --------------------------------------------------------


def test_hero_covers_every_width_and_format_in_order(hero: list[Rendition]) -> None:
    widths = PRESETS["web_hero"].rendition_widths()  # the layout-derived ladder
    assert widths[-1] == 1920
    assert [(r.format, r.width) for r in hero] == [
        (fmt, w) for fmt in ("avif", "webp", "jpeg") for w in widths
    ]
    assert all(r.height == round(r.width * 1080 / 1920) for r in hero)


def test_hero_decodes_with_pillow_at_declared_size(hero: list[Rendition]) -> None:
    for r in hero:
        with Image.open(io.BytesIO(r.data)) as im:
            assert im.format == PIL_FORMAT[r.format]
            assert im.size == (r.width, r.height)
            assert im.mode == "RGB"
            im.load()


def test_hero_fits_budgets_at_default_quality(hero: list[Rendition]) -> None:
    budgets = {str(fmt): n for fmt, n in PRESETS["web_hero"].byte_budget.items()}
    for r in hero:
        assert r.budget == budgets[r.format]
        assert r.within_budget and len(r.data) <= budgets[r.format]
        assert r.quality == DEFAULT_SETTINGS.quality(r.format)
    largest_avif = next(r for r in hero if r.format == "avif" and r.width == 1920)
    assert len(largest_avif.data) <= 200_000


def test_hero_is_detailed_enough_to_mean_something(hero: list[Rendition]) -> None:
    """Guards the benchmark image: a flat image would make the budget checks vacuous."""
    largest = {r.format: len(r.data) for r in hero if r.width == 1920}
    assert largest["avif"] > 50_000 and largest["jpeg"] > 150_000


def test_srgb_profile_embedded_and_nothing_else(hero: list[Rendition]) -> None:
    for r in hero:
        with Image.open(io.BytesIO(r.data)) as im:
            icc = im.info.get("icc_profile")
            assert icc == srgb_profile(), f"{r.format} {r.width}"
            profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            assert ImageCms.getProfileDescription(profile).strip() == "sRGB built-in"
            assert not im.getexif()
            assert "xmp" not in im.info and "comment" not in im.info


def _nclx(avif: bytes) -> tuple[int, int, int, bool]:
    at = avif.index(b"colrnclx") + 8
    primaries, transfer, matrix, flags = struct.unpack_from(">HHHB", avif, at)
    return primaries, transfer, matrix, bool(flags & 0x80)


def test_avif_signals_srgb_in_container_and_bitstream(hero: list[Rendition]) -> None:
    for r in hero:
        if r.format == "avif":
            assert b"colrprof" in r.data  # ICC profile
            assert _nclx(r.data) == (1, 13, 6, True)  # BT.709, sRGB, BT.601 matrix, full
    # libavif's own sRGB signalling (no ICC) must give the very same AV1 payload.
    frame = make_master(256, 144, seed=5)
    ours = render_module.encode(frame, "avif", 60, DEFAULT_SETTINGS)
    plain = io.BytesIO()
    frame.save(
        plain,
        "AVIF",
        quality=60,
        speed=DEFAULT_SETTINGS.avif_speed_for(frame.width * frame.height),
        max_threads=1,
        autotiling=False,
        advanced={"tune": "ssim"},
    )
    assert _nclx(plain.getvalue())[:2] == (1, 13)
    assert _mdat(ours) == _mdat(plain.getvalue())


def _mdat(data: bytes) -> bytes:
    at = data.index(b"mdat") - 4
    (size,) = struct.unpack_from(">I", data, at)
    return data[at + 8 : at + size]


def test_unmarked_jpeg_is_progressive_with_subsampled_chroma(hero: list[Rendition]) -> None:
    """Without the watermark nothing needs full chroma: 4:2:0, as every reference encoder."""
    for r in hero:
        if r.format == "jpeg":
            assert r.watermark is None
            with Image.open(io.BytesIO(r.data)) as im:
                assert isinstance(im, JpegImagePlugin.JpegImageFile)
                assert im.info.get("progressive") or im.info.get("progression")
                assert JpegImagePlugin.get_sampling(im) == 2  # 4:2:0


# --- independent decoders ----------------------------------------------------------------


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} not installed (scripts/system-deps.sh --test)")
    return path


def _run(*args: str) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True, timeout=60).stdout


def test_exiftool_reads_format_size_and_profile(
    hero: list[Rendition], hero_files: list[Path]
) -> None:
    tool = _tool("exiftool")
    infos = json.loads(_run(tool, "-json", "-G0", "-n", *map(str, hero_files)))
    expected_type = {"avif": "AVIF", "webp": "Extended WEBP", "jpeg": "JPEG"}
    for r, info in zip(hero, infos, strict=True):
        assert info["File:FileType"] == expected_type[r.format]
        assert _suffix(info, ":ImageWidth") == r.width
        assert _suffix(info, ":ImageHeight") == r.height
        assert info["ICC_Profile:ProfileDescription"] == "sRGB built-in"
        assert not {k for k in info if k.split(":")[0] in ("EXIF", "XMP", "MakerNotes")}
        if r.format == "avif":
            assert info["QuickTime:ColorPrimaries"] == 1
            assert info["QuickTime:TransferCharacteristics"] == 13


def _suffix(info: dict[str, Any], suffix: str) -> Any:
    return next(v for k, v in info.items() if k.endswith(suffix))


def _decoded_size(fmt: str, path: Path, out: Path) -> tuple[int, int]:
    """Decode with the format's reference tool and read the size of what it wrote."""
    if fmt == "avif":
        _run(_tool("avifdec"), str(path), str(out.with_suffix(".png")))
        decoded = out.with_suffix(".png")
    elif fmt == "webp":
        _run(_tool("dwebp"), str(path), "-ppm", "-o", str(out.with_suffix(".ppm")))
        decoded = out.with_suffix(".ppm")
    else:
        out.with_suffix(".ppm").write_bytes(
            subprocess.run(
                [_tool("djpeg"), str(path)], check=True, capture_output=True, timeout=60
            ).stdout
        )
        decoded = out.with_suffix(".ppm")
    with Image.open(decoded) as im:
        return im.size


@pytest.mark.parametrize("fmt", ["avif", "webp", "jpeg"])
def test_reference_decoders_decode_every_rendition(
    fmt: str, hero: list[Rendition], hero_files: list[Path], tmp_path: Path
) -> None:
    for r, path in zip(hero, hero_files, strict=True):
        if r.format == fmt:
            assert _decoded_size(fmt, path, tmp_path / path.stem) == (r.width, r.height)


def test_avifdec_reports_srgb_and_icc(hero: list[Rendition], hero_files: list[Path]) -> None:
    path = next(p for r, p in zip(hero, hero_files, strict=True) if r.format == "avif")
    info = _run(_tool("avifdec"), "--info", str(path))
    assert "Color Primaries: 1" in info and "Transfer Char. : 13" in info
    assert "ICC Profile    : Present" in info and "Exif Metadata  : Absent" in info


# --- budgets -----------------------------------------------------------------------------


def test_fitting_renditions_are_encoded_once(
    small_master: Image.Image, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = count_encodes(monkeypatch)
    out = render(small_master, small_channel("roomy", budget=500_000))
    assert len(calls) == len(out) == 6


def test_tight_budget_lowers_quality_and_holds(
    small_master: Image.Image, monkeypatch: pytest.MonkeyPatch
) -> None:
    unstamped = RenderSettings(stamp_reserve=0)  # the search alone
    free = {(r.format, r.width): len(r.data) for r in render(small_master, small_channel("free"))}
    budgets = {fmt: int(free[(fmt, 640)] * 0.6) for fmt in ("avif", "webp", "jpeg")}
    calls = count_encodes(monkeypatch)
    out = render(small_master, small_channel("tight", byte_budget=budgets), settings=unstamped)
    for r in out:
        assert r.within_budget and len(r.data) <= budgets[r.format]
        if r.width == 640:
            assert r.quality < DEFAULT_SETTINGS.quality(r.format)
            assert len(r.data) > 0.8 * budgets[r.format]
    per_rendition = {(f, w): sum(1 for c in calls if c[:2] == (f, w)) for f, w, _ in calls}
    assert max(per_rendition.values()) <= DEFAULT_SETTINGS.max_encodes
    assert all(per_rendition[(fmt, 320)] == 1 for fmt in budgets)  # started from 640's result
    assert len(calls) <= 2 * len(out)


def test_budget_keeps_room_for_the_publishing_stamp(small_master: Image.Image) -> None:
    free = {(r.format, r.width): len(r.data) for r in render(small_master, small_channel("free"))}
    reserve = DEFAULT_SETTINGS.stamp_reserve
    budgets = {fmt: int(free[(fmt, 640)] * 0.6) + reserve for fmt in ("avif", "webp", "jpeg")}
    for r in render(small_master, small_channel("tight", byte_budget=budgets)):
        assert r.budget == budgets[r.format]
        assert r.within_budget and len(r.data) + reserve <= budgets[r.format]


def test_impossible_budget_is_reported_not_raised(
    small_master: Image.Image, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = count_encodes(monkeypatch)
    out = render(small_master, small_channel("tiny", budget=1024))
    assert len(out) == 6
    for r in out:
        assert not r.within_budget and r.budget == 1024
        assert r.quality == DEFAULT_SETTINGS.min_quality
        Image.open(io.BytesIO(r.data)).load()
    assert len(calls) <= 2 * len(out)  # start, then straight to the floor


def test_quality_search_respects_min_quality(small_master: Image.Image) -> None:
    settings = RenderSettings(min_quality=50)
    out = render(small_master, small_channel("tiny", budget=1024), settings=settings)
    assert {r.quality for r in out} == {50}


# --- sizes and crops ---------------------------------------------------------------------


def test_no_upscaling_for_density_two_display_ad() -> None:
    channel = PRESETS["display_mrec"]
    out = render(make_master(*channel.master_size, seed=2), channel)
    widths = channel.rendition_widths()
    assert (widths[0], widths[-1]) == (300, 600)  # the ad slot's exact size up to the master
    assert sorted({(r.width, r.height) for r in out}) == [(w, round(w / 1.2)) for w in widths]
    assert all(r.within_budget for r in out)


def test_master_smaller_than_channel_never_upscaled(small_master: Image.Image) -> None:
    out = render(small_master.resize((400, 225)), small_channel("big"))
    assert {r.width for r in out} == {320}
    with pytest.raises(ValueError, match="smaller than every rendition"):
        render(small_master.resize((200, 112)), small_channel("big"))


def _red_dot(size: tuple[int, int], at: tuple[float, float]) -> Image.Image:
    im = Image.new("RGB", size, (40, 60, 90))
    x, y, r = at[0] * size[0], at[1] * size[1], size[1] * 0.04
    ImageDraw.Draw(im).ellipse((x - r, y - r, x + r, y + r), fill=(255, 0, 0))
    return im


def _has_red(im: Image.Image) -> bool:
    """At least a small patch of saturated red (lossy codecs blur its edge)."""
    px = np.asarray(im.convert("RGB")).astype(int)
    red = (px[..., 0] > 180) & (px[..., 1] < 70) & (px[..., 2] < 70)
    return int(red.sum()) >= 50


def test_focal_crop_keeps_the_focal_region() -> None:
    master = _red_dot((960, 540), (0.8, 0.5))
    kept = fit(master, 400, 500, mode="crop", focal=(0.8, 0.5))
    centred = fit(master, 400, 500, mode="crop")
    assert kept.size == centred.size == (400, 500)
    assert _has_red(kept) and not _has_red(centred)


def test_focal_crop_through_render_in_every_format() -> None:
    channel = Channel(
        name="portrait",
        width=400,
        height=500,
        widths=(400,),
        formats=("avif", "webp", "jpeg", "png"),
    )
    for r in render(_red_dot((960, 540), (0.8, 0.5)), channel, focal=(0.8, 0.5)):
        with Image.open(io.BytesIO(r.data)) as im:
            assert im.size == (400, 500) and _has_red(im), r.format


def test_crop_box_is_clamped_inside_the_image() -> None:
    assert crop_box(960, 540, 400, 500, (1.0, 0.5)) == pytest.approx((528.0, 0.0, 960.0, 540.0))
    assert crop_box(960, 540, 400, 500, (0.0, 0.0)) == pytest.approx((0.0, 0.0, 432.0, 540.0))


def test_same_aspect_is_a_plain_resize(small_master: Image.Image) -> None:
    """430 px wide at 16:9 is 241.9 px, rounded to 242: no crop for a fraction of a pixel."""
    out = fit(small_master, 430, 242, mode="crop", focal=(0.0, 0.0))
    assert out.tobytes() == small_master.resize((430, 242), Image.Resampling.LANCZOS).tobytes()


def test_fit_mode_letterboxes_on_background() -> None:
    out = fit(
        Image.new("RGB", (960, 540), (0, 0, 0)), 400, 500, mode="fit", background=(255, 0, 255)
    )
    assert out.size == (400, 500)
    assert out.getpixel((200, 5)) == (255, 0, 255) and out.getpixel((200, 250)) == (0, 0, 0)


def test_metadata_of_the_master_is_stripped(small_master: Image.Image) -> None:
    master = small_master.copy()
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"
    master.info.update(exif=exif.tobytes(), comment=b"internal note", xmp=b"<x:xmpmeta/>")
    for r in render(master, small_channel("meta", formats=("avif", "webp", "jpeg", "png"))):
        assert b"SecretCam" not in r.data and b"internal note" not in r.data
        assert b"xmpmeta" not in r.data


# --- determinism and cache keys ----------------------------------------------------------

_CHILD = """
import hashlib, importlib.util, sys
spec = importlib.util.spec_from_file_location("b", sys.argv[1])
mod = importlib.util.module_from_spec(spec); sys.modules["b"] = mod
spec.loader.exec_module(mod)
from bildwerk.config.channels import Channel
from bildwerk.config.delivery import BUILTIN
from bildwerk.stages.render import render
channel = Channel(name="det", width=640, height=360, widths=(320, 640),
                  byte_budget={"avif": 12000, "webp": 15000, "jpeg": 25000})
master = mod.make_master(640, 360, seed=3)
for profile in (None, BUILTIN["internal"]):
    for r in render(master, channel, focal=(0.3, 0.6), watermark="cr_3f9a", profile=profile):
        print(r.format, r.width, r.quality, hashlib.sha256(r.data).hexdigest())
"""


def _digests(renditions: list[Rendition]) -> list[str]:
    return [
        f"{r.format} {r.width} {r.quality} {hashlib.sha256(r.data).hexdigest()}" for r in renditions
    ]


def test_bytes_identical_across_processes(small_master: Image.Image) -> None:
    """Two fresh interpreters running at once (each building its own ICC profile, with
    its own hash seed) and this one must agree byte for byte, budget search included."""
    bench = str(REPO / "benchmarks" / "bench_render.py")
    children = [
        subprocess.Popen(
            [sys.executable, "-c", _CHILD, bench],
            stdout=subprocess.PIPE,
            text=True,
            env=os.environ | {"PYTHONHASHSEED": str(seed)},
        )
        for seed in (1, 2)
    ]
    outputs = [child.communicate(timeout=120)[0].splitlines() for child in children]
    assert all(child.returncode == 0 for child in children)
    channel = small_channel("det", byte_budget={"avif": 12000, "webp": 15000, "jpeg": 25000})
    fixed = render(small_master, channel, focal=(0.3, 0.6), watermark="cr_3f9a")
    targeted = render(
        small_master, channel, focal=(0.3, 0.6), watermark="cr_3f9a", profile=BUILTIN["internal"]
    )
    assert outputs[0] == outputs[1] == _digests(fixed) + _digests(targeted)
    searched = [r for r in fixed if r.quality < DEFAULT_SETTINGS.quality(r.format)]
    assert searched, "the budgets should force a search"
    assert all(r.ssim is not None for r in targeted)


def test_settings_fingerprint_is_stable_and_sensitive() -> None:
    assert RenderSettings().fingerprint() == DEFAULT_SETTINGS.fingerprint()
    assert RenderSettings(avif_speed=8).fingerprint() != DEFAULT_SETTINGS.fingerprint()
    assert DEFAULT_SETTINGS.fingerprint().startswith("render-v")
    child = subprocess.run(
        [
            sys.executable,
            "-c",
            "from bildwerk.stages.render import RenderSettings as S;print(S().fingerprint())",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert child.stdout.strip() == DEFAULT_SETTINGS.fingerprint()


def test_encoder_versions_name_the_libraries() -> None:
    versions = encoder_versions()
    assert {"pillow", "libavif", "aom", "libwebp", "libjpeg_turbo"} <= versions.keys()
    assert all(isinstance(v, str) and v for v in versions.values())


def test_srgb_profile_is_pinned() -> None:
    """LittleCMS stamps the current time into the header; render pins it."""
    raw = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    assert srgb_profile()[:24] == raw[:24] and srgb_profile()[36:] == raw[36:]
    assert struct.unpack_from(">6H", srgb_profile(), 24) == (2024, 1, 1, 0, 0, 0)


def test_invalid_settings_are_rejected() -> None:
    with pytest.raises(ValueError, match="min_quality"):
        RenderSettings(jpeg_quality=20, min_quality=30)


def test_preview_channel_carries_a_visible_mark() -> None:
    channel = PRESETS["review_preview"]
    master = make_master(*channel.master_size, seed=4)
    plain = channel.model_copy(update={"preview": False})
    marked = render(master, channel)[-1]
    clean = render(master, plain)[-1]
    a, b = (
        np.asarray(Image.open(io.BytesIO(r.data)).convert("L"), np.float32) for r in (marked, clean)
    )
    changed = np.abs(a - b) > 24  # well beyond JPEG noise: the lettering
    assert 0.02 < changed.mean() < 0.5
