"""Delivery profiles: what each channel's published files carry besides their pixels.

A profile decides the trade between bytes and provenance for one audience. Internal
previews keep the whole generation record so a reviewer can reproduce a creative; public
web files stay lean (rights and the digital source type only, Content Credentials in a
sidecar, the watermark only where a file leaves at full size); paid ads carry embedded
Content Credentials, because ad networks pass files on without their sidecars.

Channels name a profile (``delivery: public``); ``bildwerk.yaml`` may redefine the
built-ins or add profiles under ``delivery:``. The rendering half of a profile (quality
target, watermark) changes pixels and enters job keys; the stamping half (metadata,
C2PA) is read at publish time, so changing it re-stamps without re-rendering or
re-approving anything.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from bildwerk.config.channels import Format

C2PAMode = Literal["embedded", "remote", "off"]
IngredientMode = Literal["manifest", "hash"]
MetadataLevel = Literal["full", "rights", "minimal"]
"""What a file's XMP says: ``full`` everything (title, alt text, credit, licensor, ids,
IPTC IIM in JPEG; the generation record where kept), ``rights`` the rights and source
(creator, credit, copyright, licence URL, licensor URL, licence end, do-not-train, the
digital source type, the asset id), ``minimal`` the licence URL (the copyright notice
where there is none), the digital source type and the provenance link."""


class WatermarkProfile(BaseModel):
    """Where the invisible watermark goes: it costs bytes, so only on files that leave
    the building at a size worth tracing."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    enabled: bool = True
    min_width: int = Field(
        0, ge=0, le=8192, description="renditions narrower than this carry no mark"
    )
    strength: float | None = Field(
        None, gt=0, le=4, description="embedding strength; unset keeps the watermark default"
    )
    formats: tuple[Format, ...] = Field(
        ("avif", "jpeg", "png"),
        description="formats that carry the mark. WebP is left out by default: VP8's chroma "
        "coding erases too much of it for the reference decoder (docs/watermark.md)",
    )

    def applies(self, fmt: str, width: int) -> bool:
        """Whether a ``fmt`` rendition ``width`` px wide should carry the mark."""
        return self.enabled and fmt in self.formats and width >= self.min_width


class DeliveryProfile(BaseModel):
    """One audience's delivery policy. Unset fields keep the profile it is based on."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    description: str = ""
    ssim_target: float | None = Field(
        0.97,
        ge=0.8,
        le=1.0,
        description="perceptual quality each rendition is encoded to (SSIM on luma); the "
        "byte budget stays a ceiling. Unset: the fixed encoder defaults",
    )
    generation_record: bool = Field(
        False,
        description="embed the prompt, negative prompt, seed, model, job key and watermark "
        "payload in XMP; anyone who downloads the file can read them",
    )
    watermark: WatermarkProfile = WatermarkProfile()
    metadata: MetadataLevel = Field(
        "rights", description="what each file's XMP carries (full, rights or minimal)"
    )
    minimal_below: int = Field(
        0,
        ge=0,
        le=8192,
        description="renditions narrower than this carry only the minimal set: on a "
        "phone-sized file of 2-4 kB, a rights packet would add a third to its bytes; the "
        "credentials, the page's structured data and the wider files carry the rest",
    )
    icc: bool = Field(
        False,
        description="embed an sRGB ICC profile (~590 bytes). Untagged images are sRGB on "
        "the web, and AVIF signals sRGB in its nclx box anyway",
    )
    c2pa: C2PAMode = Field(
        "remote",
        description="Content Credentials embedded in each file, as a .c2pa sidecar next to "
        "it (referenced from XMP dcterms:provenance), or off",
    )
    ingredient: IngredientMode = Field(
        "hash",
        description="a rendition's manifest carries its master's whole manifest "
        "('manifest') or only a reference and hash of it ('hash')",
    )

    def rendering(self) -> dict[str, Any]:
        """The fields that change the encoded files, for job keys."""
        return self.model_dump(mode="json", include={"ssim_target", "watermark", "icc"})

    def metadata_for(self, width: int) -> MetadataLevel:
        """The metadata level of a rendition ``width`` px wide (0: a file of no set
        width, such as a master, which takes the profile's level)."""
        return "minimal" if 0 < width < self.minimal_below else self.metadata


BUILTIN: dict[str, DeliveryProfile] = {
    "internal": DeliveryProfile(
        description="review previews inside the team: the whole generation record, "
        "embedded credentials with the master's manifest, a mark on every file",
        ssim_target=0.98,
        generation_record=True,
        metadata="full",
        icc=True,
        # strength 1.5: decodable after AVIF and JPEG 4:2:0 too; bytes matter less here
        watermark=WatermarkProfile(enabled=True, min_width=0, strength=1.5),
        c2pa="embedded",
        ingredient="manifest",
    ),
    "public": DeliveryProfile(
        description="the open web: lean files (rights and source type; under 640 px only "
        "the licence URL, source type and provenance link), no ICC profile, credentials in "
        "a sidecar, the mark only on full-size JPEGs",
        ssim_target=0.97,
        generation_record=False,
        metadata="rights",
        minimal_below=640,
        # the JPEG is the file that travels (downloads, og:image re-encoded by social
        # networks); a mark costs it ~2-3 % (4:4:4 chroma), AVIF/WebP stay unmarked
        watermark=WatermarkProfile(enabled=True, min_width=1080, formats=("jpeg",)),
        c2pa="remote",
        ingredient="hash",
    ),
    "ads": DeliveryProfile(
        description="paid placements handed to ad networks: embedded credentials (sidecars "
        "get lost on the way), no generation record, a mark on every JPEG and PNG",
        ssim_target=0.97,
        generation_record=False,
        metadata="rights",
        # strength 1.5: ad files are small (300 px), where strength 1 can lose a bit
        watermark=WatermarkProfile(
            enabled=True, min_width=0, strength=1.5, formats=("jpeg", "png")
        ),
        c2pa="embedded",
        ingredient="hash",
    ),
}


def profiles(
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, DeliveryProfile]:
    """The built-in profiles with ``overrides`` (bildwerk.yaml's ``delivery:``) applied:
    a built-in name changes only the fields given, a new name starts from ``public``."""
    out = dict(BUILTIN)
    for name, fields in (overrides or {}).items():
        base = out.get(name, BUILTIN["public"])
        merged = {**base.model_dump(), **dict(fields)}
        if isinstance(fields.get("watermark"), Mapping):
            merged["watermark"] = {**base.watermark.model_dump(), **fields["watermark"]}
        out[name] = DeliveryProfile.model_validate(merged)
    return out
