"""Tests for bildwerk.imageinput: every fixture is built in code inside tmp_path."""

from __future__ import annotations

import io
import os
import struct
import time
import warnings
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image, ImageCms, ImageFile, PngImagePlugin

from bildwerk.errors import InputImageError
from bildwerk.imageinput import CleanImage, load_image, load_image_bytes

# --- fixture builders ------------------------------------------------------------------------


def save(tmp_path: Path, image: Image.Image, name: str, **params: Any) -> Path:
    path = tmp_path / name
    image.save(path, **params)
    return path


def pixels(image: Image.Image) -> npt.NDArray[np.int16]:
    return np.asarray(image).astype(np.int16)


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def handmade_png(width: int, height: int, depth: int, colour_type: int, raw: bytes) -> bytes:
    """A PNG written byte by byte: lets tests claim any size or bit depth cheaply."""
    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(raw))
        + png_chunk(b"IEND", b"")
    )


def png_chunk_types(data: bytes) -> list[bytes]:
    types, pos = [], 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        types.append(data[pos + 4 : pos + 8])
        pos += 12 + length
    return types


# ICC v2 profiles built by hand, so colour management is tested with known answers.

D50 = (0.9642, 1.0, 0.8249)
SRGB_RED = (0.4361, 0.2225, 0.0139)
SRGB_GREEN = (0.3851, 0.7169, 0.0971)
SRGB_BLUE = (0.1431, 0.0606, 0.7141)


def s15(value: float) -> bytes:
    return struct.pack(">i", round(value * 65536))


def xyz_tag(xyz: tuple[float, float, float]) -> bytes:
    return b"XYZ \0\0\0\0" + b"".join(s15(v) for v in xyz)


def curve_tag(gamma: float) -> bytes:
    return b"curv\0\0\0\0" + struct.pack(">IH", 1, round(gamma * 256)) + b"\0\0"


def desc_tag(text: str) -> bytes:
    ascii_text = text.encode() + b"\0"
    return (
        b"desc\0\0\0\0"
        + struct.pack(">I", len(ascii_text))
        + ascii_text
        + struct.pack(">IIHB", 0, 0, 0, 0)
        + b"\0" * 67
    )


def icc_profile(cls: bytes, space: bytes, pcs: bytes, tags: dict[bytes, bytes]) -> bytes:
    table, body = b"", b""
    start = 128 + 4 + 12 * len(tags)
    for signature, data in tags.items():
        table += signature + struct.pack(">II", start + len(body), len(data))
        body += data + b"\0" * (-len(data) % 4)
    header = struct.pack(">I4sI4s4s4s", start + len(body), b"\0" * 4, 0x02100000, cls, space, pcs)
    header += b"\0" * 12 + b"acsp" + b"\0" * 28 + b"".join(s15(v) for v in D50)
    header += b"\0" * (128 - len(header))
    return header + struct.pack(">I", len(tags)) + table + body


def rgb_profile(name: str, red: Any, green: Any, blue: Any, gamma: float = 2.2) -> bytes:
    trc = curve_tag(gamma)
    tags = {b"desc": desc_tag(name), b"wtpt": xyz_tag(D50)}
    tags |= {b"rXYZ": xyz_tag(red), b"gXYZ": xyz_tag(green), b"bXYZ": xyz_tag(blue)}
    tags |= {b"rTRC": trc, b"gTRC": trc, b"bTRC": trc}
    return icc_profile(b"mntr", b"RGB ", b"XYZ ", tags)


def grey_profile(name: str, gamma: float) -> bytes:
    tags = {b"desc": desc_tag(name), b"wtpt": xyz_tag(D50), b"kTRC": curve_tag(gamma)}
    return icc_profile(b"mntr", b"GRAY", b"XYZ ", tags)


def cmyk_profile_ignoring_black() -> bytes:
    """CMYK → Lab lookup table where C, M, Y act as usual but K has no effect at all.

    A K-only patch coming out white proves the embedded profile was used, not Pillow's
    plain conversion (which makes it black).
    """
    rgb = Image.new("RGB", (8, 1))
    for x in range(8):
        cyan, magenta, yellow = (x >> 2) & 1, (x >> 1) & 1, x & 1  # CLUT order: C slowest
        rgb.putpixel((x, 0), (255 * (1 - cyan), 255 * (1 - magenta), 255 * (1 - yellow)))
    lab = ImageCms.profileToProfile(
        rgb, ImageCms.createProfile("sRGB"), ImageCms.createProfile("LAB"), outputMode="LAB"
    )
    assert lab is not None
    # getpixel, not numpy: Pillow's array view of LAB shifts a*/b* by 128.
    corner_labs = [bytes(lab.getpixel((x, 0))) for x in range(8)]  # type: ignore[arg-type]
    clut = b"".join(corner * 2 for corner in corner_labs)  # same for K=0 and K=1: K ignored
    ramp = bytes(range(256))
    identity = b"".join(s15(v) for v in (1, 0, 0, 0, 1, 0, 0, 0, 1))
    lut = b"mft1\0\0\0\0" + bytes([4, 3, 2, 0]) + identity + ramp * 4 + clut + ramp * 3
    tags = {b"desc": desc_tag("No-black test CMYK"), b"wtpt": xyz_tag(D50), b"A2B0": lut}
    return icc_profile(b"prtr", b"CMYK", b"Lab ", tags)


def upright_pattern() -> Image.Image:
    """60×30, red block top-left, green block top-right: every rotation/flip looks different."""
    image = Image.new("RGB", (60, 30), (255, 255, 255))
    image.paste((255, 0, 0), (0, 0, 15, 15))
    image.paste((0, 160, 0), (45, 0, 60, 15))
    return image


def near(colour: npt.NDArray[np.int16], expected: Any, tolerance: int) -> bool:
    return bool(np.abs(colour - np.asarray(expected)).max() <= tolerance)


def load_error(source: Path, **options: Any) -> InputImageError:
    with pytest.raises(InputImageError) as info:
        load_image(source, **options)
    return info.value


# --- files that cannot be read ---------------------------------------------------------------


def test_missing_file_names_path(tmp_path: Path) -> None:
    path = tmp_path / "nope.png"
    error = load_error(path)
    assert str(path) in error.message
    assert "not found" in error.message
    assert "path" in (error.hint or "")


def test_directory_is_refused(tmp_path: Path) -> None:
    error = load_error(tmp_path)
    assert str(tmp_path) in error.message
    assert "directory" in error.message


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads anything")
def test_unreadable_file(tmp_path: Path) -> None:
    path = save(tmp_path, Image.new("RGB", (4, 4)), "locked.png")
    path.chmod(0)
    try:
        error = load_error(path)
    finally:
        path.chmod(0o644)
    assert "permission denied" in error.message


def test_permission_error_becomes_input_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = save(tmp_path, Image.new("RGB", (4, 4)), "locked.png")

    real_open = os.open

    def deny(file: object, flags: int, *args: object) -> int:
        if str(file) == str(path):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, flags, *args)  # type: ignore[arg-type]

    monkeypatch.setattr("bildwerk.boundedfile.os.open", deny)
    error = load_error(path)
    assert str(path) in error.message
    assert "permission denied" in error.message
    assert "readable" in (error.hint or "")


# --- not images, broken images ---------------------------------------------------------------


def test_text_file_named_png(tmp_path: Path) -> None:
    path = tmp_path / "logo.png"
    path.write_text("hello, I am a text file\n")
    error = load_error(path)
    assert error.message == f"{path}: not an image (the content is text)"
    assert "PNG, JPEG" in (error.hint or "")


def test_empty_and_binary_garbage(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    assert "the file is empty" in load_error(empty).message
    garbage = tmp_path / "garbage.webp"
    garbage.write_bytes(bytes(range(256)) * 4)
    assert "not an image (content not recognised" in load_error(garbage).message


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_file(tmp_path: Path, fmt: str) -> None:
    noise = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noise).save(buffer, format=fmt)
    path = tmp_path / f"cut.{fmt.lower()}"
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    error = load_error(path)
    assert str(path) in error.message
    assert "truncated or corrupt" in error.message


def test_truncated_refused_even_if_pillow_told_to_allow(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (9, 9, 9)).save(buffer, format="JPEG")
    with pytest.raises(InputImageError, match="truncated or corrupt"):
        load_image_bytes(buffer.getvalue()[:-200], name="cut.jpg")
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # restored for whoever set it


# --- decompression bombs ---------------------------------------------------------------------


def test_bomb_refused_from_header_without_decoding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_decoding(self: ImageFile.ImageFile) -> None:
        raise AssertionError("pixels must not be decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    path = tmp_path / "bomb.png"
    path.write_bytes(handmade_png(30000, 30000, 8, 2, b"\0"))
    started = time.perf_counter()
    error = load_error(path)
    assert time.perf_counter() - started < 1.0
    assert str(path) in error.message
    assert "900.0 megapixels" in error.message
    assert "limit of 64 megapixels" in error.message
    assert "raise limits.max_megapixels in bildwerk.yaml" in (error.hint or "")


def test_own_header_check_names_dimensions(tmp_path: Path) -> None:
    path = tmp_path / "big.png"
    path.write_bytes(handmade_png(2000, 1500, 8, 2, b"\0"))
    error = load_error(path, max_megapixels=2.5)
    assert "2000×1500 pixels (3.0 megapixels)" in error.message
    assert "limit of 2.5 megapixels" in error.message


def test_pillow_bomb_warning_becomes_same_error() -> None:
    data = handmade_png(10000, 10000, 8, 0, b"\0")  # 100 MP: Pillow warns, does not raise
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(InputImageError, match=r"100\.0 megapixels.*limit of 64"):
            load_image_bytes(data, name="warn.png")


def test_raised_limit_reaches_pillow_and_is_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10_000)  # Pillow alone would refuse
    buffer = io.BytesIO()
    Image.new("RGB", (300, 300), (1, 2, 3)).save(buffer, format="PNG")
    clean = load_image_bytes(buffer.getvalue(), name="ok.png", max_megapixels=1)
    assert clean.image.size == (300, 300)
    assert Image.MAX_IMAGE_PIXELS == 10_000


def test_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_megapixels"):
        load_image_bytes(b"", name="x.png", max_megapixels=0)


# --- frames ----------------------------------------------------------------------------------

FRAME_COLOURS = [(200, 30, 30), (30, 200, 30), (30, 30, 200)]


def animated(fmt: str) -> bytes:
    frames = [Image.new("RGB", (16, 16), colour) for colour in FRAME_COLOURS]
    if fmt == "GIF":
        frames = [frame.convert("P", palette=Image.Palette.ADAPTIVE) for frame in frames]
    buffer = io.BytesIO()
    frames[0].save(buffer, format=fmt, save_all=True, append_images=frames[1:], duration=100)
    return buffer.getvalue()


@pytest.mark.parametrize("fmt", ["GIF", "PNG", "WEBP", "TIFF"])
def test_animated_refused_unless_first_frame(fmt: str) -> None:
    data = animated(fmt)
    with pytest.raises(InputImageError) as info:
        load_image_bytes(data, name=f"anim.{fmt.lower()}")
    assert "3 frames" in info.value.message
    assert "first_frame=True" in (info.value.hint or "")
    assert "--first-frame" in (info.value.hint or "")

    clean = load_image_bytes(data, name="anim", first_frame=True)
    assert clean.image.mode == "RGB"
    assert near(pixels(clean.image)[8, 8], FRAME_COLOURS[0], 12)
    assert any("used the first frame" in note for note in clean.notes)


def test_mpo_uses_primary_image_without_option() -> None:
    frames = [Image.new("RGB", (16, 16), colour) for colour in FRAME_COLOURS[:2]]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="MPO", save_all=True, append_images=frames[1:])
    clean = load_image_bytes(buffer.getvalue(), name="phone.jpg")
    assert clean.source_format == "MPO"
    assert near(pixels(clean.image)[8, 8], FRAME_COLOURS[0], 12)


# --- orientation -----------------------------------------------------------------------------

# EXIF orientation → how the camera stored an upright scene (the inverse of the display fix).
STORED_AS = {
    3: Image.Transpose.ROTATE_180,
    6: Image.Transpose.ROTATE_90,
    8: Image.Transpose.ROTATE_270,
}


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_exif_orientation_applied(tmp_path: Path, orientation: int) -> None:
    upright = upright_pattern()
    stored = upright.transpose(STORED_AS[orientation])
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = save(tmp_path, stored, "photo.jpg", exif=exif.tobytes(), quality=95)

    clean = load_image(path)
    assert clean.image.size == (60, 30) == (clean.width, clean.height)
    assert np.abs(pixels(clean.image) - pixels(upright)).mean() < 4
    assert f"applied EXIF orientation {orientation}" in clean.notes
    assert 0x0112 not in clean.image.getexif()
    assert b"eXIf" not in png_chunk_types(clean.png_bytes())


# --- colour ----------------------------------------------------------------------------------

CMYK_PATCHES = [(255, 0, 0, 0), (0, 255, 0, 0), (0, 0, 0, 255), (0, 0, 0, 0)]


def cmyk_jpeg(icc: bytes | None = None) -> bytes:
    image = Image.new("CMYK", (64, 16))
    for index, ink in enumerate(CMYK_PATCHES):
        image.paste(ink, (index * 16, 0, index * 16 + 16, 16))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=95, **({"icc_profile": icc} if icc else {}))
    return buffer.getvalue()


def patch_colours(clean: CleanImage) -> list[npt.NDArray[np.int16]]:
    return [pixels(clean.image)[8, index * 16 + 8] for index in range(len(CMYK_PATCHES))]


def test_cmyk_jpeg_without_profile_is_plausible() -> None:
    data = cmyk_jpeg()
    assert b"Adobe" in data  # Adobe APP14 marker: inverted CMYK, undone by Pillow on load
    clean = load_image_bytes(data, name="print.jpg")
    assert clean.source_mode == "CMYK"
    assert clean.image.mode == "RGB"
    cyan, magenta, black, white = patch_colours(clean)
    assert near(cyan, (0, 255, 255), 40)
    assert near(magenta, (255, 0, 255), 40)
    assert near(black, (0, 0, 0), 40)
    assert near(white, (255, 255, 255), 40)
    assert any("CMYK → RGB by plain conversion" in note for note in clean.notes)


def test_cmyk_jpeg_uses_embedded_profile() -> None:
    clean = load_image_bytes(cmyk_jpeg(cmyk_profile_ignoring_black()), name="print.jpg")
    cyan, magenta, black_ink, _white = patch_colours(clean)
    assert near(cyan, (0, 255, 255), 60)
    assert near(magenta, (255, 0, 255), 60)
    assert near(black_ink, (255, 255, 255), 40)  # the profile ignores K: proof it was used
    assert any(note.startswith("CMYK → sRGB via embedded ICC") for note in clean.notes)


def test_embedded_srgb_profile_passes_through(tmp_path: Path) -> None:
    noise = np.random.default_rng(2).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    path = save(tmp_path, Image.fromarray(noise), "srgb.png", icc_profile=srgb)
    clean = load_image(path)
    assert np.array_equal(np.asarray(clean.image), noise)
    assert not any("ICC" in note for note in clean.notes)


def test_embedded_rgb_profile_is_honoured_and_alpha_kept(tmp_path: Path) -> None:
    swapped = rgb_profile("Swapped primaries", SRGB_GREEN, SRGB_RED, SRGB_BLUE)
    source = Image.new("RGBA", (4, 1))
    for x, alpha in enumerate((0, 1, 128, 254)):
        source.putpixel((x, 0), (200, 0, 0, alpha))
    clean = load_image(save(tmp_path, source, "swapped.png", icc_profile=swapped))
    assert clean.image.mode == "RGBA"
    assert near(pixels(clean.image)[0, 2, :3], (0, 200, 0), 30)  # its "red" is sRGB green
    assert pixels(clean.image)[0, :, 3].tolist() == [0, 1, 128, 254]
    assert "RGBA → sRGB via embedded ICC profile 'Swapped primaries'" in clean.notes


def test_adobe_rgb_like_profile(tmp_path: Path) -> None:
    adobe = rgb_profile(
        "Adobe-RGB-like",
        (0.6097, 0.3111, 0.0195),
        (0.2053, 0.6257, 0.0609),
        (0.1492, 0.0632, 0.7446),
    )
    source = Image.new("RGB", (2, 1))
    source.putpixel((0, 0), (128, 128, 128))
    source.putpixel((1, 0), (40, 160, 40))
    clean = load_image(save(tmp_path, source, "adobe.png", icc_profile=adobe))
    grey, green = pixels(clean.image)[0]
    assert near(grey, (129, 129, 129), 3)  # neutral stays neutral
    assert green[1] > green[0] + 100  # still clearly green, now sRGB-encoded
    assert not np.array_equal(green, [40, 160, 40])


def test_grey_profile_on_greyscale(tmp_path: Path) -> None:
    linear = grey_profile("Linear grey", 1.0)
    path = save(tmp_path, Image.new("L", (2, 2), 128), "linear.png", icc_profile=linear)
    clean = load_image(path)
    value = pixels(clean.image)[0, 0]
    assert clean.image.mode == "RGB"
    assert near(value, (188, 188, 188), 4)  # 50 % linear light is ~188 in sRGB


def test_broken_profile_is_ignored_with_note(tmp_path: Path) -> None:
    path = save(tmp_path, Image.new("RGB", (2, 2), (10, 20, 30)), "x.png", icc_profile=b"junk")
    clean = load_image(path)
    assert pixels(clean.image)[0, 0].tolist() == [10, 20, 30]
    assert "ignored unreadable embedded ICC profile" in clean.notes


# --- bit depths and modes --------------------------------------------------------------------


def test_sixteen_bit_grey_png(tmp_path: Path) -> None:
    values = np.array([[0, 32768, 32896, 65535]], dtype=np.uint16)
    image = Image.new("I;16", (4, 1))
    for x, value in enumerate(values[0]):
        image.putpixel((x, 0), int(value))
    clean = load_image(save(tmp_path, image, "deep.png"))
    assert clean.source_mode == "I;16"
    assert pixels(clean.image)[0, :, 0].tolist() == [0, 128, 128, 255]
    assert clean.image.mode == "RGB"


def test_sixteen_bit_rgb_png_written_by_hand() -> None:
    row = b"\0" + struct.pack(">6H", 65535, 32896, 0, 0, 65535, 32896)
    clean = load_image_bytes(handmade_png(2, 1, 16, 2, row), name="deep-rgb.png")
    assert pixels(clean.image)[0].tolist() == [[255, 128, 0], [0, 255, 128]]


def with_chunk_before_idat(png: bytes, kind: bytes, data: bytes) -> bytes:
    at = png.index(b"IDAT") - 4
    return png[:at] + png_chunk(kind, data) + png[at:]


def test_sixteen_bit_alpha_and_colour_keys() -> None:
    rgba = b"\0" + struct.pack(">8H", 65535, 0, 0, 32896, 0, 65535, 0, 65535)
    clean = load_image_bytes(handmade_png(2, 1, 16, 6, rgba), name="rgba16.png")
    assert pixels(clean.image)[0].tolist() == [[255, 0, 0, 128], [0, 255, 0, 255]]

    grey = handmade_png(2, 1, 16, 0, b"\0" + struct.pack(">2H", 1000, 65535))
    clean = load_image_bytes(with_chunk_before_idat(grey, b"tRNS", b"\x03\xe8"), name="g.png")
    assert clean.image.mode == "RGBA"
    assert pixels(clean.image)[0].tolist() == [[4, 4, 4, 0], [255, 255, 255, 255]]


def test_lab_tiff(tmp_path: Path) -> None:
    clean = load_image(save(tmp_path, Image.new("LAB", (2, 2), (255, 128, 128)), "lab.tif"))
    assert clean.source_mode == "LAB"
    assert near(pixels(clean.image)[0, 0], (255, 255, 255), 2)


@pytest.mark.parametrize(
    ("mode", "values", "expected"),
    [
        ("I", [0, 32896, 65535], [0, 128, 255]),
        ("F", [0.0, 0.5, 1.0], [0, 128, 255]),
        ("F", [0.0, 128.0, 300.0], [0, 128, 255]),
    ],
)
def test_integer_and_float_tiff(
    tmp_path: Path, mode: str, values: list[float], expected: list[int]
) -> None:
    image = Image.new(mode, (3, 1))
    for x, value in enumerate(values):
        image.putpixel((x, 0), value)
    clean = load_image(save(tmp_path, image, "deep.tif"))
    assert clean.source_mode == mode
    assert pixels(clean.image)[0, :, 0].tolist() == expected


def test_palette_without_transparency(tmp_path: Path) -> None:
    image = Image.new("P", (2, 1))
    image.putpalette([255, 0, 0, 0, 0, 255])
    image.putpixel((1, 0), 1)
    clean = load_image(save(tmp_path, image, "pal.png"))
    assert clean.image.mode == "RGB"
    assert pixels(clean.image)[0].tolist() == [[255, 0, 0], [0, 0, 255]]


def test_palette_with_trns_alpha(tmp_path: Path) -> None:
    image = Image.new("P", (3, 1))
    image.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255])
    for x in range(3):
        image.putpixel((x, 0), x)
    path = save(tmp_path, image, "pal.png", transparency=bytes([0, 128, 255]))
    clean = load_image(path)
    assert clean.image.mode == "RGBA"
    assert pixels(clean.image)[0, :, 3].tolist() == [0, 128, 255]
    assert pixels(clean.image)[0, 1, :3].tolist() == [0, 255, 0]


def test_gif_transparent_index() -> None:
    image = Image.new("P", (2, 1))
    image.putpalette([255, 255, 255, 0, 0, 0])
    image.putpixel((1, 0), 1)
    buffer = io.BytesIO()
    image.save(buffer, format="GIF", transparency=0)
    clean = load_image_bytes(buffer.getvalue(), name="logo.gif")
    assert clean.image.mode == "RGBA"
    assert pixels(clean.image)[0, :, 3].tolist() == [0, 255]


@pytest.mark.parametrize(
    ("mode", "colour", "expected_mode", "expected"),
    [
        ("L", 77, "RGB", [77, 77, 77]),
        ("LA", (77, 90), "RGBA", [77, 77, 77, 90]),
        ("1", 1, "RGB", [255, 255, 255]),
    ],
)
def test_grey_modes(
    tmp_path: Path, mode: str, colour: Any, expected_mode: str, expected: list[int]
) -> None:
    clean = load_image(save(tmp_path, Image.new(mode, (2, 2), colour), f"{mode}.png"))
    assert clean.source_mode == mode
    assert clean.image.mode == expected_mode
    assert pixels(clean.image)[1, 1].tolist() == expected


def test_grey_colour_key_becomes_alpha(tmp_path: Path) -> None:
    image = Image.new("L", (2, 1), 10)
    image.putpixel((1, 0), 200)
    clean = load_image(save(tmp_path, image, "key.png", transparency=10))
    assert clean.image.mode == "RGBA"
    assert pixels(clean.image)[0, :, 3].tolist() == [0, 255]


# --- transparency ----------------------------------------------------------------------------


def test_rgba_cutout_keeps_exact_alpha(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    data = rng.integers(0, 256, (32, 32, 4), dtype=np.uint8)
    data[0, 0, 3] = 0
    clean = load_image(save(tmp_path, Image.fromarray(data, mode="RGBA"), "cutout.png"))
    assert clean.image.mode == "RGBA"
    assert np.array_equal(np.asarray(clean.image), data)
    assert clean.notes == ()


def test_opaque_rgba_becomes_rgb(tmp_path: Path) -> None:
    clean = load_image(save(tmp_path, Image.new("RGBA", (4, 4), (1, 2, 3, 255)), "opaque.png"))
    assert clean.image.mode == "RGB"
    assert "dropped fully opaque alpha channel" in clean.notes


# --- output ----------------------------------------------------------------------------------


def test_png_bytes_deterministic_and_metadata_free(tmp_path: Path) -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("Software", "some editor")
    info.add(b"tIME", b"\x07\xe8\x01\x02\x03\x04\x05")
    noise = np.random.default_rng(4).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    path = save(tmp_path, Image.fromarray(noise), "meta.png", pnginfo=info, dpi=(300, 300))

    first, second = load_image(path), load_image(path)
    assert first.png_bytes() == second.png_bytes() == first.png_bytes()
    assert png_chunk_types(first.png_bytes()) == [b"IHDR", b"sRGB", b"IDAT", b"IEND"]
    assert first.image.info == {}
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(first.png_bytes()))), noise)


def test_metadata_fields(tmp_path: Path) -> None:
    clean = load_image(save(tmp_path, Image.new("P", (5, 3)), "p.gif"))
    assert (clean.source_format, clean.source_mode) == ("GIF", "P")
    assert (clean.width, clean.height) == (5, 3)


def test_errors_are_one_line_and_chain_free(tmp_path: Path) -> None:
    path = tmp_path / "x.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    error = load_error(path)
    assert "\n" not in error.message
    assert error.message.startswith(str(path))
    assert error.__cause__ is None
    assert error.__suppress_context__


def test_bytes_api_uses_name() -> None:
    with pytest.raises(InputImageError, match=r"^brand-kit/logo\.png: not an image"):
        load_image_bytes(b"<svg/>", name="brand-kit/logo.png")
