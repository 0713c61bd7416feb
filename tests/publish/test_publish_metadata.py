"""Metadata writers against independent readers: exiftool for the fields, avifdec / dwebp /
djpeg (where installed) and Pillow for the pixels, ElementTree for the XMP's XML."""

from __future__ import annotations

import importlib.util
import io
import json
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from bildwerk.config.channels import Channel
from bildwerk.errors import UserError
from bildwerk.publish.metadata import (
    ALGORITHMIC_MEDIA,
    COMPOSITE_SYNTHETIC,
    COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA,
    DO_NOT_TRAIN,
    TRAINED_ALGORITHMIC_MEDIA,
    AssetMetadata,
    build_xmp,
    digital_source_type,
    write_metadata,
)
from bildwerk.stages.render import render, srgb_profile

REPO = Path(__file__).resolve().parents[2]
EXIFTOOL = shutil.which("exiftool")
needs_exiftool = pytest.mark.skipif(EXIFTOOL is None, reason="exiftool is not installed")
FORMATS = ("jpeg", "webp", "avif")
PIL_FORMAT = {"jpeg": "JPEG", "webp": "WEBP", "avif": "AVIF", "png": "PNG"}
HOSTILE = "<b>&amp; \"quoted\" 'single' ]]> <?xpacket end='w'?> \x00\x1b end"
NON_LATIN = "خصم ٢٠٪ — 春の新作 — Ελληνικά — 🌊"


def _load_make_master() -> Callable[..., Image.Image]:
    """The benchmark's synthetic creative (text, product, grain), as test_render uses."""
    spec = importlib.util.spec_from_file_location(
        "bench_render", REPO / "benchmarks" / "bench_render.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    make: Callable[..., Image.Image] = module.make_master
    return make


def sample_meta(**changes: Any) -> AssetMetadata:
    fields: dict[str, Any] = {
        "title": "Taste the fjord",
        "description": "A blue bottle of mineral water on a pale stone podium",
        "creator": "ACME Studio",
        "credit_line": "ACME / bildwerk",
        "copyright_notice": "© 2026 ACME Corp.",
        "web_statement": "https://acme.example/licence?kind=web&v=2",
        "licensor_url": "https://acme.example/licensing",
        "digital_source_type": digital_source_type("diffusers", has_product_photo=True),
        "campaign_id": "spring-26",
        "asset_id": "cr_0123456789abcdef01234567",
        "licence_expiry": date(2027, 3, 31),
        "generation": {
            "prompt": "packshot of the bottle on a podium",
            "seed": 1234,
            "model_hash": "sha256:9f86d081884c7d65",
            "backend": "diffusers",
        },
    }
    fields.update(changes)
    return AssetMetadata(**fields)


@pytest.fixture(scope="module")
def renditions() -> dict[str, bytes]:
    """One rendition per format, made by render() from a synthetic master."""
    master = _load_make_master()(640, 800, seed=3)
    channel = Channel(name="meta_test", width=640, height=800, widths=(640,))
    return {r.format: r.data for r in render(master, channel)}


def exiftool(path: Path) -> dict[str, Any]:
    assert EXIFTOOL is not None
    run = subprocess.run(
        [EXIFTOOL, "-j", "-G1", "-a", str(path)], capture_output=True, text=True, check=True
    )
    tags: dict[str, Any] = json.loads(run.stdout)[0]
    return tags


def validate(path: Path) -> str:
    assert EXIFTOOL is not None
    run = subprocess.run(
        [EXIFTOOL, "-s3", "-validate", str(path)], capture_output=True, text=True, check=True
    )
    return run.stdout.strip()


def pixels(data: bytes) -> np.ndarray[Any, Any]:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGBA"))


def independent_decode(data: bytes, fmt: str, tmp_path: Path) -> bytes | None:
    """Pixels as decoded by the format's reference tool, or None if it is missing."""
    tool = {"avif": "avifdec", "webp": "dwebp", "jpeg": "djpeg"}[fmt]
    if shutil.which(tool) is None:
        return None
    tmp_path.mkdir(exist_ok=True)
    src, dst = tmp_path / f"in.{fmt}", tmp_path / ("out.png" if fmt == "avif" else "out.ppm")
    src.write_bytes(data)
    argv = {
        "avif": [tool, str(src), str(dst)],
        "webp": [tool, str(src), "-ppm", "-o", str(dst)],
        "jpeg": [tool, "-outfile", str(dst), str(src)],
    }[fmt]
    subprocess.run(argv, capture_output=True, check=True)
    return np.asarray(Image.open(dst).convert("RGB")).tobytes()


def test_digital_source_types() -> None:
    assert digital_source_type("diffusers", False) == TRAINED_ALGORITHMIC_MEDIA
    assert digital_source_type("openai", True) == COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA
    assert digital_source_type("studio", False) == ALGORITHMIC_MEDIA
    assert digital_source_type("studio", True) == COMPOSITE_SYNTHETIC
    # A backend we know nothing about is treated as generative AI, never as model-free.
    assert digital_source_type("someones-plugin", False) == TRAINED_ALGORITHMIC_MEDIA
    for uri in (ALGORITHMIC_MEDIA, COMPOSITE_SYNTHETIC, TRAINED_ALGORITHMIC_MEDIA):
        assert uri.startswith("http://cv.iptc.org/newscodes/digitalsourcetype/")


def test_metadata_needs_a_full_source_type_uri() -> None:
    with pytest.raises(ValueError, match="full IPTC URI"):
        sample_meta(digital_source_type="")
    with pytest.raises(ValueError, match="full IPTC URI"):
        sample_meta(digital_source_type="trainedAlgorithmicMedia")
    with pytest.raises(ValueError, match="bildwerk: property"):
        sample_meta(generation={"asset_id": "x"})


@needs_exiftool
@pytest.mark.parametrize("fmt", FORMATS)
def test_exiftool_reads_every_field(fmt: str, renditions: dict[str, bytes], tmp_path: Path) -> None:
    meta = sample_meta()
    out = write_metadata(renditions[fmt], fmt, meta)
    path = tmp_path / f"stamped.{fmt}"
    path.write_bytes(out)
    tags = exiftool(path)
    expected = {
        "XMP-dc:Title": meta.title,
        "XMP-dc:Description": meta.description,
        "XMP-dc:Creator": meta.creator,
        "XMP-dc:Rights": meta.copyright_notice,
        "XMP-photoshop:Credit": meta.credit_line,
        "XMP-xmpRights:WebStatement": meta.web_statement,
        "XMP-xmpRights:Marked": True,
        "XMP-iptcExt:DigitalSourceType": COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA,
        "XMP-plus:LicensorName": meta.creator,
        "XMP-plus:LicensorURL": meta.licensor_url,
        "XMP-plus:LicenseEndDate": "2027:03:31",
        "XMP-plus:DataMining": DO_NOT_TRAIN,
        "XMP-bildwerk:CampaignId": "spring-26",
        "XMP-bildwerk:AssetId": meta.asset_id,
        "XMP-bildwerk:Prompt": "packshot of the bottle on a podium",
        "XMP-bildwerk:Seed": 1234,
        "XMP-bildwerk:ModelHash": "sha256:9f86d081884c7d65",
        "XMP-bildwerk:Backend": "diffusers",
    }
    assert {k: tags.get(k) for k in expected} == expected
    assert not [k for k in tags if "AltText" in k or "CreatorTool" in k]  # not twice, lean
    if fmt == "jpeg":
        iim = {
            "IPTC:ObjectName": meta.title,
            "IPTC:By-line": meta.creator,
            "IPTC:Credit": meta.credit_line,
            "IPTC:CopyrightNotice": meta.copyright_notice,
            "IPTC:CodedCharacterSet": "UTF8",
        }
        assert {k: tags.get(k) for k in iim} == iim
        digest = subprocess.run(
            [EXIFTOOL or "", "-s3", "-CurrentIPTCDigest", "-IPTCDigest", str(path)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        assert len(digest) == 2 and digest[0] == digest[1]  # IIM marked in sync with XMP
    assert validate(path) == "OK"


@pytest.mark.parametrize("fmt", FORMATS)
def test_pixels_and_icc_profile_unchanged(
    fmt: str, renditions: dict[str, bytes], tmp_path: Path
) -> None:
    before = renditions[fmt]
    after = write_metadata(before, fmt, sample_meta())
    assert np.array_equal(pixels(before), pixels(after))
    assert Image.open(io.BytesIO(after)).info.get("icc_profile") == srgb_profile()
    reference = independent_decode(before, fmt, tmp_path / "a")
    if reference is not None:
        assert independent_decode(after, fmt, tmp_path / "b") == reference
    assert write_metadata(before, fmt, sample_meta()) == after  # deterministic


@needs_exiftool
@pytest.mark.parametrize("fmt", [*FORMATS, "png"])
def test_camera_exif_and_gps_are_stripped(fmt: str, tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = "SpyCam Inc", "Model X9"
    gps = exif.get_ifd(0x8825)
    gps.update({1: "N", 2: (52.0, 31.0, 12.0), 3: "E", 4: (13.0, 24.0, 0.0)})
    buf = io.BytesIO()
    Image.new("RGB", (320, 240), (90, 140, 200)).save(
        buf, PIL_FORMAT[fmt], exif=exif, xmp=b"<x:xmpmeta xmlns:x='adobe:ns:meta/'/>"
    )
    source, out_path = tmp_path / f"in.{fmt}", tmp_path / f"out.{fmt}"
    source.write_bytes(buf.getvalue())
    assert any("GPS" in key for key in exiftool(source))  # the input really carries GPS
    out = write_metadata(buf.getvalue(), fmt, sample_meta())
    out_path.write_bytes(out)
    tags = exiftool(out_path)
    assert not [key for key in tags if "GPS" in key or key.startswith(("IFD0", "ExifIFD"))]
    assert b"SpyCam" not in out and b"Model X9" not in out  # not even orphaned bytes
    assert np.array_equal(pixels(buf.getvalue()), pixels(out))
    assert tags["XMP-iptcExt:DigitalSourceType"] == COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA
    assert validate(out_path) == "OK"


@pytest.mark.parametrize("fmt", ["jpeg", "webp"])
def test_orientation_survives_the_strip(fmt: str) -> None:
    exif = Image.Exif()
    exif[0x0112], exif[0x010F] = 6, "SpyCam Inc"
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(buf, PIL_FORMAT[fmt], exif=exif)
    out = write_metadata(buf.getvalue(), fmt, sample_meta())
    assert Image.open(io.BytesIO(out)).getexif().get(0x0112) == 6
    assert b"SpyCam" not in out


@needs_exiftool
@pytest.mark.parametrize("backend", ["studio", "diffusers"])
@pytest.mark.parametrize("photo", [False, True])
def test_digital_source_type_is_never_dropped(
    backend: str, photo: bool, renditions: dict[str, bytes], tmp_path: Path
) -> None:
    """Even with every optional field empty, every format discloses the source type."""
    expected = digital_source_type(backend, photo)
    bare = AssetMetadata(
        title="", description="", creator="", credit_line="", copyright_notice="",
        web_statement="", licensor_url="", digital_source_type=expected, campaign_id="",
        asset_id="", do_not_train=False,
    )  # fmt: skip
    for fmt, data in renditions.items():
        path = tmp_path / f"{backend}-{photo}.{fmt}"
        path.write_bytes(write_metadata(data, fmt, bare))
        assert exiftool(path)["XMP-iptcExt:DigitalSourceType"] == expected, fmt


@needs_exiftool
@pytest.mark.parametrize("fmt", FORMATS)
def test_hostile_and_non_latin_text_round_trips(
    fmt: str, renditions: dict[str, bytes], tmp_path: Path
) -> None:
    meta = sample_meta(
        title=HOSTILE,
        description=NON_LATIN,
        creator="O'Brien & Søn <Studio>",
        generation={"prompt": HOSTILE + NON_LATIN, "negative_prompt": '"><script>'},
    )
    path = tmp_path / f"hostile.{fmt}"
    path.write_bytes(write_metadata(renditions[fmt], fmt, meta))
    tags = exiftool(path)
    cleaned = HOSTILE.replace("\x00", "\ufffd").replace("\x1b", "\ufffd")
    assert tags["XMP-dc:Title"] == cleaned
    assert tags["XMP-dc:Description"] == NON_LATIN
    assert tags["XMP-dc:Creator"] == "O'Brien & Søn <Studio>"
    assert tags["XMP-bildwerk:Prompt"] == cleaned + NON_LATIN
    assert tags["XMP-bildwerk:NegativePrompt"] == '"><script>'
    if fmt == "jpeg":
        assert "IPTC:Caption-Abstract" not in tags  # the alt text lives in XMP only
        assert tags["IPTC:By-line"] == "O'Brien & Søn <Studio>"
    assert validate(path) == "OK"


def test_xmp_packet_is_well_formed_rdf() -> None:
    packet = build_xmp(sample_meta(title=HOSTILE, description=NON_LATIN))
    assert packet.startswith(b"<?xpacket begin=") and packet.endswith(b'<?xpacket end="w"?>')
    root = ET.fromstring(packet)
    rdf = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}"
    dc = "{http://purl.org/dc/elements/1.1/}"
    description = root.find(f"{rdf}RDF/{rdf}Description")
    assert description is not None
    title = description.find(f"{dc}title/{rdf}Alt/{rdf}li")
    assert title is not None and title.text is not None and title.text.startswith("<b>&amp;")
    lang = title.get("{http://www.w3.org/XML/1998/namespace}lang")
    assert lang == "x-default"
    creators = description.findall(f"{dc}creator/{rdf}Seq/{rdf}li")
    assert [c.text for c in creators] == ["ACME Studio"]
    source = description.get("{http://iptc.org/std/Iptc4xmpExt/2008-02-29/}DigitalSourceType")
    assert source == COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA  # a simple value: an attribute
    # attribute values keep their line breaks and quotes through an XML parser
    multi = build_xmp(sample_meta(credit_line='a "b"\n\tc'))
    credit = ET.fromstring(multi).find(f"{rdf}RDF/{rdf}Description")
    assert credit is not None
    assert credit.get("{http://ns.adobe.com/photoshop/1.0/}Credit") == 'a "b"\n\tc'
    # only the namespaces in use are declared, and nothing pads the packet
    lean = build_xmp(sample_meta(generation={}))
    assert b"xmlns:bildwerk" in lean and b"\n" not in lean and b"  " not in lean
    assert b"xmlns:dcterms" not in lean
    assert b"DataMining" not in build_xmp(sample_meta(do_not_train=False))


@needs_exiftool
def test_iim_fields_are_cut_to_their_limits_on_character_boundaries(
    renditions: dict[str, bytes], tmp_path: Path
) -> None:
    title = "春" * 40  # 120 bytes of UTF-8; IIM allows 64 for the object name
    path = tmp_path / "long.jpeg"
    path.write_bytes(write_metadata(renditions["jpeg"], "jpeg", sample_meta(title=title)))
    tags = exiftool(path)
    assert tags["IPTC:ObjectName"] == "春" * 21  # 63 bytes: the 22nd character would split
    assert tags["XMP-dc:Title"] == title  # XMP keeps it whole


@pytest.mark.parametrize("fmt", FORMATS)
def test_writing_twice_replaces_instead_of_piling_up(
    fmt: str, renditions: dict[str, bytes]
) -> None:
    once = write_metadata(renditions[fmt], fmt, sample_meta(title="first!"))
    twice = write_metadata(once, fmt, sample_meta(title="second"))
    assert b"second" in twice and b"first!" not in twice
    assert twice.count(b"<x:xmpmeta") == 1
    assert len(twice) == len(once)


def test_metadata_too_large_for_a_jpeg_segment_is_a_user_error(
    renditions: dict[str, bytes],
) -> None:
    huge = sample_meta(generation={"prompt": "a very long prompt " * 4000})
    with pytest.raises(UserError, match="exceed a JPEG segment"):
        write_metadata(renditions["jpeg"], "jpeg", huge)
    assert b"very long prompt" in write_metadata(renditions["webp"], "webp", huge)


def test_broken_files_are_user_errors() -> None:
    with pytest.raises(UserError, match="cannot embed metadata in this jpeg file"):
        write_metadata(b"\xff\xd8\xff\xe0\x00", "jpeg", sample_meta())
    with pytest.raises(UserError, match="avif"):
        write_metadata(b"\x00\x00\x00\x10ftypavif\x00\x00\x00\x00", "avif", sample_meta())
    with pytest.raises(UserError):
        write_metadata(b"RIFF\x04\x00\x00\x00WEBP", "webp", sample_meta())
    with pytest.raises(ValueError, match="unsupported format"):
        write_metadata(b"GIF89a", "gif", sample_meta())
