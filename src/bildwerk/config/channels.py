"""Channel presets: output sizes, platform UI zones, responsive widths and byte budgets."""

from __future__ import annotations

from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from bildwerk.config.ladder import LANDING_GRID_SIZES, ladder, needs

Format = Literal["avif", "webp", "jpeg", "png"]

#: Most pixels in one master (width × density by height × density): 8192 × 8192, the
#: largest slot at density 1. Composing, QA and rendering hold several copies of the
#: master, so a 24576 × 24576 master (8192 × 8192 at density 3) would need gigabytes per
#: job; it is refused when the channel is read instead.
MAX_MASTER_PIXELS = 8192 * 8192


class Insets(BaseModel):
    """Pixels at each edge that platform UI covers (text and logo must stay out)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    top: int = Field(0, ge=0)
    right: int = Field(0, ge=0)
    bottom: int = Field(0, ge=0)
    left: int = Field(0, ge=0)


class Channel(BaseModel):
    """One output slot: an exact pixel size plus how it is delivered."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    width: int = Field(ge=64, le=8192)
    height: int = Field(ge=64, le=8192)
    unsafe: Insets = Insets()
    lcp: bool = False
    hero: bool = False
    widths: tuple[int, ...] | None = Field(
        None,
        description="responsive widths; unset: derived from the slots the pages show the "
        "channel in (its `sizes` and the landing grid) on common devices",
    )
    formats: tuple[Format, ...] = ("avif", "webp", "jpeg")
    byte_budget: dict[Format, int] = Field(default_factory=dict)
    fit: Literal["crop", "fit"] = "crop"
    sizes: str = "100vw"
    density: int = Field(1, ge=1, le=3)
    preview: bool = Field(
        False, description="internal review only: a visible PREVIEW mark, never published"
    )
    delivery: str = Field(
        "public",
        pattern=r"^[a-z0-9][a-z0-9_-]*$",
        description="delivery profile (bildwerk.config.delivery): metadata, credentials, "
        "watermark and quality target of this channel's files",
    )

    @field_validator("density")
    @classmethod
    def _master_area(cls, density: int, info: ValidationInfo) -> int:
        width, height = info.data.get("width"), info.data.get("height")
        if isinstance(width, int) and isinstance(height, int):
            pixels = width * height * density * density
            if pixels > MAX_MASTER_PIXELS:
                raise ValueError(
                    f"master of {width * density}×{height * density} px (width × height ×"
                    f" density², {pixels / 1e6:.1f} MP) is over the limit of"
                    f" {MAX_MASTER_PIXELS / 1e6:.1f} MP (8192×8192); lower the density or"
                    " the size"
                )
        return density

    @model_validator(mode="after")
    def _check(self) -> Channel:
        if self.widths is not None and (not self.widths or any(w < 16 for w in self.widths)):
            raise ValueError("widths must be a non-empty list of at least 16 px each")
        if any(b < 1024 for b in self.byte_budget.values()):
            raise ValueError("byte budgets must be at least 1024 bytes")
        return self

    @staticmethod
    def describe_error(exc: ValueError) -> tuple[str, str]:
        """The first problem of a failed ``Channel`` validation as (message, field suffix
        such as ``.density``), instead of pydantic's "1 validation error for Channel"."""
        if not isinstance(exc, ValidationError) or not exc.errors():
            return str(exc).splitlines()[0], ""
        err = exc.errors()[0]
        message = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
        loc = "".join(f".{part}" for part in err.get("loc", ()))
        return message, loc

    @property
    def aspect(self) -> float:
        return self.width / self.height

    @property
    def master_size(self) -> tuple[int, int]:
        """Pixel size of the master: the slot size times the display density (2 for ads
        shown on high-DPI screens)."""
        return self.width * self.density, self.height * self.density

    def slot_sizes(self) -> tuple[str, ...]:
        """The ``sizes`` strings of every slot the pages show this channel in: its own
        (hero, CMS, webhook) and the landing page's grid cell."""
        return (self.sizes, LANDING_GRID_SIZES)

    def min_marked_width(self) -> int:
        """The narrowest rendition of this aspect that carries the 32-bit invisible
        watermark: narrower files would be published unmarked, which a brand requiring
        the mark refuses, so derived ladders start here."""
        from bildwerk.watermark import capacity  # numpy; only when a ladder is derived

        w = 16
        while w < self.master_size[0] and capacity(w, round(w / self.aspect)) < 32:
            w += 1
        return w

    def rendition_widths(self) -> list[int]:
        """Responsive widths for this channel, never wider than the master: the given
        ``widths``, else a ladder where every slot on every common device gets a file
        less than 10 % wider than it needs (:mod:`bildwerk.config.ladder`), from the
        narrowest width that still carries the watermark up."""
        master_w = self.master_size[0]
        if self.widths is None:
            return ladder(
                needs(self.slot_sizes()),
                master_w,
                min_width=self.min_marked_width(),
                required=(self.width,),  # the slot's own size at DPR 1 (ad specs)
            )
        return sorted({w for w in self.widths if w < master_w} | {master_w})


PRESETS: dict[str, Channel] = {
    c.name: c
    for c in (
        Channel(
            name="instagram_feed",
            width=1080,
            height=1350,
            byte_budget={"avif": 180_000, "webp": 250_000, "jpeg": 350_000},
            sizes="(max-width: 600px) 100vw, 600px",
        ),
        Channel(
            name="instagram_story",
            width=1080,
            height=1920,
            unsafe=Insets(top=250, bottom=340),
            byte_budget={"avif": 220_000, "webp": 300_000, "jpeg": 450_000},
            sizes="(max-width: 600px) 100vw, 420px",
        ),
        Channel(
            name="web_hero",
            width=1920,
            height=1080,
            lcp=True,
            hero=True,
            byte_budget={"avif": 200_000, "webp": 280_000, "jpeg": 400_000},
            sizes="100vw",
        ),
        Channel(
            name="display_mrec",
            width=300,
            height=250,
            density=2,
            byte_budget={"avif": 40_000, "webp": 50_000, "jpeg": 60_000},
            sizes="300px",
            delivery="ads",
        ),
        Channel(
            name="og_image",
            width=1200,
            height=630,
            byte_budget={"avif": 150_000, "webp": 200_000, "jpeg": 280_000},
            sizes="1200px",
        ),
        Channel(
            name="review_preview",
            width=1080,
            height=1080,
            widths=(480, 1080),
            formats=("jpeg",),
            sizes="(max-width: 600px) 100vw, 600px",
            preview=True,
            delivery="internal",
        ),
    )
}
