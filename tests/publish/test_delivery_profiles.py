"""Stamping per delivery profile, read back by tools nobody here wrote: exiftool for what
a file tells anyone who downloads it, the c2pa SDK's Reader for its credentials
(embedded, or a ``.c2pa`` sidecar resolved from the folder the file sits in)."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from bildwerk.config.channels import Channel
from bildwerk.config.delivery import BUILTIN, DeliveryProfile
from bildwerk.publish.inspect import verify_file
from bildwerk.publish.keys import dev_init
from bildwerk.publish.metadata import AssetMetadata, digital_source_type
from bildwerk.publish.stamp import SigningIdentity, load_identity, profile_fields, stamp
from bildwerk.stages.render import payload_size, render

c2pa = pytest.importorskip("c2pa")
EXIFTOOL = shutil.which("exiftool")
FORMATS = ("jpeg", "webp", "avif")
EXT = {"jpeg": "jpg", "webp": "webp", "avif": "avif"}
MIME = {"jpeg": "image/jpeg", "webp": "image/webp", "avif": "image/avif"}
SECRET = {"prompt": "SECRET-PROMPT-4711", "seed": 987654321, "job_key": "jobkey-0badc0ffee"}
# what a public file must never tell: the generation record, by value and by name
LEAKS = ("SECRET-PROMPT", "987654321", "jobkey-0badc0ffee", "Prompt", "Seed", "Job Key")
# the SDK's Reader never goes to the network here (tests talk to 127.0.0.1 only)
NO_FETCH = {"version": 1, "verify": {"remote_manifest_fetch": False, "ocsp_fetch": False}}
METADATA_LIMIT = 3 * 1024  # issue 11: metadata per public file, C2PA remote or lean


def meta() -> AssetMetadata:
    return AssetMetadata(
        title="Spring Drop — Fresh drop",
        description="A can of sparkling water on wet stone",
        creator="Acme Studio",
        credit_line="Acme",
        copyright_notice="© 2026 Acme",
        web_statement="https://acme.example.com/image-licence",
        licensor_url="https://acme.example.com/licensing",
        digital_source_type=digital_source_type("diffusers", has_product_photo=True),
        campaign_id="spring-drop",
        asset_id="cr_0123456789abcdef01234567",
        generation={
            **SECRET,
            "negative_prompt": "blurry",
            "backend": "diffusers",
            "model": "sdxl",
            "watermark": "1a2b3c4d",
        },
    )


@pytest.fixture(scope="module")
def identity(tmp_path_factory: pytest.TempPathFactory) -> SigningIdentity:
    root = tmp_path_factory.mktemp("ws")
    dev_init(root, org="Acme")
    return load_identity(root, None)


@pytest.fixture(scope="module")
def anchors(identity: SigningIdentity) -> Path:
    return Path(identity.source).with_name("dev-root.pem")


Renditions = dict[tuple[bool, int, str], bytes]  # (ICC profile, width, format) -> file
RIGHTS_WIDTH, MINIMAL_WIDTH = 800, 480  # either side of the public profile's minimal_below


@pytest.fixture(scope="module")
def renditions() -> Renditions:
    gradient = Image.linear_gradient("L").resize((800, 1000))
    master = Image.merge("RGB", (gradient, gradient.rotate(90), Image.new("L", (800, 1000), 90)))
    channel = Channel(name="profile_test", width=800, height=1000, widths=(480, 800))
    out: Renditions = {}
    for icc in (True, False):
        made = render(master, channel, profile=DeliveryProfile(ssim_target=None, icc=icc))
        out.update({(icc, r.width, r.format): r.data for r in made})
    return out


@pytest.fixture(scope="module")
def master(identity: SigningIdentity) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (480, 600), (40, 90, 160)).save(buf, format="PNG")
    return stamp(buf.getvalue(), "png", meta(), identity=identity, author="Acme").data


@dataclass(frozen=True)
class Kit:
    """What every test stamps with: the renditions, the signer, the signed master and
    the dev chain's root to trust."""

    renditions: Renditions
    identity: SigningIdentity
    master: bytes
    anchors: Path


@pytest.fixture(scope="module")
def kit(renditions: Renditions, identity: SigningIdentity, master: bytes, anchors: Path) -> Kit:
    return Kit(renditions, identity, master, anchors)


def publish_one(
    kit: Kit, folder: Path, fmt: str, profile: DeliveryProfile, width: int = RIGHTS_WIDTH
) -> Path:
    """Stamp one rendition as publishing does and lay it out as a folder target would:
    the file and, for a remote manifest, its sidecar next to it."""
    name = f"hero-web-{width}w-0123abcd.{EXT[fmt]}"
    url = f"https://cdn.acme.example/img/{name}.c2pa" if profile.c2pa == "remote" else ""
    signed = stamp(
        kit.renditions[(profile.icc, width, fmt)], fmt, meta(), identity=kit.identity,
        author="Acme", master=kit.master, master_title="hero (master)", profile=profile,
        sidecar_url=url, width=width,
    )  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(signed.data)
    assert (signed.sidecar is not None) == (profile.c2pa == "remote")
    if signed.sidecar is not None:
        path.with_name(name + ".c2pa").write_bytes(signed.sidecar)
    return path


def exiftool(path: Path) -> str:
    """Every tag exiftool finds, each with its group (``-a -G1``)."""
    assert EXIFTOOL is not None
    run = subprocess.run([EXIFTOOL, "-a", "-G1", str(path)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    return run.stdout


def read_c2pa(path: Path, anchors: Path) -> tuple[str, dict[str, Any]]:
    """The SDK's own Reader (not our wrapper), with the sidecar beside the file if any."""
    sidecar = path.with_name(path.name + ".c2pa")
    data = sidecar.read_bytes() if sidecar.is_file() else None
    settings = {**NO_FETCH, "trust": {"trust_anchors": anchors.read_text()}}
    fmt = "jpeg" if path.suffix == ".jpg" else path.suffix[1:]
    with (
        c2pa.Context.from_dict(settings) as context,
        c2pa.Reader(MIME[fmt], io.BytesIO(path.read_bytes()), data, context=context) as reader,
    ):
        return str(reader.get_validation_state()), json.loads(reader.json())


@pytest.mark.skipif(EXIFTOOL is None, reason="exiftool is not installed")
@pytest.mark.parametrize("fmt", FORMATS)
def test_public_files_carry_rights_but_no_generation_record(
    fmt: str, tmp_path: Path, kit: Kit
) -> None:
    public = exiftool(publish_one(kit, tmp_path / "pub", fmt, BUILTIN["public"]))
    for tag in ("Creator", "Rights", "Credit", "Web Statement", "Licensor URL", "Data Mining"):
        assert tag in public, (fmt, tag)
    assert "compositeWithTrainedAlgorithmicMedia" in public
    assert "https://cdn.acme.example/img/hero-web-800w-0123abcd" in public  # provenance
    for described in ("Title", "Description", "Campaign"):  # the page says what it shows
        assert described not in public, (fmt, described)
    for leak in LEAKS:
        assert leak not in public, (fmt, leak)
    internal = exiftool(publish_one(kit, tmp_path / "int", fmt, BUILTIN["internal"]))
    for kept in ("SECRET-PROMPT-4711", "987654321", "jobkey-0badc0ffee", "1a2b3c4d", "sdxl"):
        assert kept in internal, (fmt, kept)
    assert "compositeWithTrainedAlgorithmicMedia" in internal
    assert "Provenance" not in internal  # embedded: nothing points elsewhere


@pytest.mark.skipif(EXIFTOOL is None, reason="exiftool is not installed")
@pytest.mark.parametrize("fmt", FORMATS)
def test_small_public_files_carry_the_minimal_set_and_their_credentials_the_rest(
    fmt: str, tmp_path: Path, kit: Kit
) -> None:
    path = publish_one(kit, tmp_path / "pub", fmt, BUILTIN["public"], MINIMAL_WIDTH)
    public = exiftool(path)
    assert "Web Statement" in public and "https://acme.example.com/image-licence" in public
    assert "compositeWithTrainedAlgorithmicMedia" in public
    assert f"hero-web-{MINIMAL_WIDTH}w-0123abcd.{EXT[fmt]}.c2pa" in public  # provenance
    for dropped in ("Creator", "Credit", "Licensor", "Data Mining", "Title", "ICC", *LEAKS):
        assert dropped not in public, (fmt, dropped)
    state, store = read_c2pa(path, kit.anchors)
    assert state == "Trusted"
    active = store["manifests"][store["active_manifest"]]
    labels = {a["label"] for a in active["assertions"]}
    assert "cawg.training-mining" in labels, labels  # do-not-train, in the credentials
    assert active["title"] == meta().title


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_c2pa_reader_validates_embedded_and_remote_manifests(
    fmt: str, tmp_path: Path, kit: Kit
) -> None:
    seen: dict[str, dict[str, Any]] = {}
    for name in ("internal", "public", "ads"):
        path = publish_one(kit, tmp_path / name, fmt, BUILTIN[name])
        state, store = read_c2pa(path, kit.anchors)
        assert state == "Trusted", (fmt, name)
        seen[name] = store
        report = verify_file(path, trust_anchors=kit.anchors)
        assert report["c2pa"]["state"] == "Trusted", (fmt, name, report["c2pa"])
        assert report["c2pa"]["digital_source_type"].endswith(
            "compositeWithTrainedAlgorithmicMedia"
        )
    # internal carries the master's manifest; public and ads only reference it
    assert len(seen["internal"]["manifests"]) == 2
    for name in ("public", "ads"):
        assert len(seen[name]["manifests"]) == 1, name
        active = seen[name]["manifests"][seen[name]["active_manifest"]]
        parent = active["ingredients"][0]
        assert parent["relationship"] == "parentOf"
        assert parent["metadata"]["bildwerk.master_manifest"].startswith("urn:c2pa:")
        assert len(parent["metadata"]["bildwerk.master_sha256"]) == 64
    # the public file holds no manifest of its own: the SDK alone finds the sidecar's URL
    # (AVIF: in the XMP box of ISO BMFF) and, told not to fetch, says it must
    public = tmp_path / "public" / f"hero-web-{RIGHTS_WIDTH}w-0123abcd.{EXT[fmt]}"
    with (
        pytest.raises(c2pa.C2paError, match=f"must fetch.*{public.name}.c2pa"),
        c2pa.Context.from_dict(NO_FETCH) as context,
        c2pa.Reader(MIME[fmt], io.BytesIO(public.read_bytes()), context=context),
    ):
        pass


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_claimed_remote_manifest_that_cannot_be_read_is_not_trusted(
    fmt: str, tmp_path: Path, kit: Kit
) -> None:
    path = publish_one(kit, tmp_path / "pub", fmt, BUILTIN["public"])
    sidecar = path.with_name(path.name + ".c2pa")
    good = sidecar.read_bytes()
    sidecar.unlink()  # missing (and the URL's host is not reachable from tests)
    report = verify_file(path, trust_anchors=kit.anchors)["c2pa"]
    assert report["state"] == "Invalid" and "remote manifest" in report["reason"]
    sidecar.write_bytes(good[:-40])  # truncated
    assert verify_file(path, trust_anchors=kit.anchors)["c2pa"]["state"] != "Trusted"
    other = publish_one(kit, tmp_path / "other", fmt, BUILTIN["public"])
    sidecar.write_bytes(other.with_name(other.name + ".c2pa").read_bytes())
    assert verify_file(path, trust_anchors=kit.anchors)["c2pa"]["state"] == "Trusted"  # same bytes
    tampered = path.read_bytes().replace(b"Acme Studio", b"Acme Stud1o")
    path.write_bytes(tampered)
    sidecar.write_bytes(good)
    assert verify_file(path, trust_anchors=kit.anchors)["c2pa"]["state"] != "Trusted"


@pytest.mark.parametrize("fmt", FORMATS)
def test_c2pa_off_claims_nothing(fmt: str, tmp_path: Path, kit: Kit) -> None:
    off = DeliveryProfile(c2pa="off")
    path = publish_one(kit, tmp_path / "off", fmt, off)
    assert not list(path.parent.glob("*.c2pa"))
    data = path.read_bytes()
    assert b"provenance" not in data and b"c2pa" not in data and b"jumb" not in data
    report = verify_file(path)
    assert report["c2pa"]["state"] == "absent"
    assert report["xmp"]["digital_source_type"].endswith("compositeWithTrainedAlgorithmicMedia")


@pytest.mark.parametrize("width", [MINIMAL_WIDTH, RIGHTS_WIDTH])
@pytest.mark.parametrize("fmt", FORMATS)
def test_public_metadata_stays_within_three_kilobytes(
    fmt: str, width: int, tmp_path: Path, kit: Kit
) -> None:
    """Bytes a public file carries besides its coded image (file size minus payload:
    XMP, container structure, any ICC profile), against the internal profile's."""
    path = publish_one(kit, tmp_path / "pub", fmt, BUILTIN["public"], width)
    added = path.stat().st_size - payload_size(path.read_bytes(), fmt)
    full = publish_one(kit, tmp_path / "full", fmt, BUILTIN["internal"], width)
    full_added = full.stat().st_size - payload_size(full.read_bytes(), fmt)
    # the minimal set: ~0.6 kB of XMP and ~0.3 kB of container; AVIF adds the C2PA
    # readers' XMP box naming the sidecar (~0.3 kB)
    assert added <= (1280 if width == MINIMAL_WIDTH else METADATA_LIMIT), (fmt, width, added)
    assert added * 5 < full_added, (fmt, added, full_added)


def test_profile_stamping_fields_change_the_stamp_key() -> None:
    keys = {profile_fields(p) for p in BUILTIN.values()}
    assert len(keys) == 3
    changed = BUILTIN["public"].model_copy(update={"ssim_target": 0.9})
    assert profile_fields(changed) == profile_fields(BUILTIN["public"])  # rendering half
