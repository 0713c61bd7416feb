"""The pixel QA checks and prompt alignment, on creatives built in code.

Text is drawn with the installed Noto fonts, logos with the project's own sample wordmark,
and CLIP is a tiny random model built here, saved to a temp dir and loaded through the
check's real loader. Every assertion is about a measurement the check must make.
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from bildwerk.checks.base import Check, CheckContext, CheckResult, TextSpec
from bildwerk.checks.brand_colour import BrandColourCheck
from bildwerk.checks.contrast import ContrastCheck, background_pixels, is_large
from bildwerk.checks.logo import LogoCheck
from bildwerk.checks.safe_area import SafeAreaCheck
from bildwerk.checks.technical import TechnicalCheck, banding, noise_sigma
from bildwerk.colour import contrast_ratio, hex_to_srgb, relative_luminance
from bildwerk.config.brand import BrandKit, Logo, Palette
from bildwerk.config.channels import PRESETS, Channel, Insets
from bildwerk.geometry import Box, plan_layout
from bildwerk.samples import write_sample_logo

FONTS = Path("/usr/share/fonts/truetype/noto")
NAVY, ORANGE, CREAM = "#1d3557", "#e76f51", "#f7f1e3"
BRAND = BrandKit(
    name="acme",
    palette=Palette(
        primary=NAVY, secondary="#f4a261", accent=ORANGE, text="#1d1d1f", background=CREAM
    ),
    logo=Logo(file="logo.png", min_height=24, height=0.06),
)
FEED = PRESETS["instagram_feed"]
STORY = PRESETS["instagram_story"]


def ctx(channel: Channel = FEED, **kw: Any) -> CheckContext:
    return CheckContext(channel=channel, brand=kw.pop("brand", BRAND), **kw)


def font(size: int, bold: bool = False) -> ImageFont.FreeTypeFont:
    path = FONTS / ("NotoSans-Bold.ttf" if bold else "NotoSans-Regular.ttf")
    if not path.is_file():
        pytest.skip(f"{path.name} not installed: apt-get install fonts-noto-core")
    return ImageFont.truetype(str(path), size)


def draw_text(
    image: Image.Image, xy: tuple[int, int], text: str, colour: str, size: int, role: str
) -> TextSpec:
    """Draw like compose does (solid colour through an anti-aliased mask) and describe it."""
    f = font(size, bold=role != "subline")
    draw = ImageDraw.Draw(image)
    draw.text(xy, text, font=f, fill=colour, anchor="ls")
    box = Box(*(int(v) for v in draw.textbbox(xy, text, font=f, anchor="ls")))
    return TextSpec(role=role, text=text, box=box, color=colour, background=None, font_size=size)


def solid(w: int, h: int, colour: str) -> Image.Image:
    return Image.new("RGB", (w, h), colour)


def backdrop(
    w: int, h: int, top: str, bottom: str, grain: float = 1.5, seed: int = 0
) -> Image.Image:
    """A studio-like vertical gradient with fine grain (as the studio backend renders)."""
    t = np.linspace(0.0, 1.0, h)[:, None, None]
    a, b = hex_to_srgb(top), hex_to_srgb(bottom)
    arr = a + (b - a) * t + np.random.default_rng(seed).normal(0, grain, (h, w, 1))
    return Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), "RGB")


def as_json(result: CheckResult) -> dict[str, Any]:
    """Evidence must survive a JSON round trip (catalog, manifest, report)."""
    data = result.to_json()
    assert json.loads(json.dumps(data)) == data
    return data


@pytest.mark.parametrize(
    "check",
    [ContrastCheck(), BrandColourCheck(), LogoCheck(), SafeAreaCheck(), TechnicalCheck()],
)
def test_checks_follow_the_protocol(check: Check) -> None:
    assert isinstance(check, Check)
    assert check.name in {"contrast", "brand_colour", "logo", "safe_area", "technical"}


# --- contrast ------------------------------------------------------------------------------


def test_white_text_on_pale_background_fails() -> None:
    img = solid(600, 200, "#eeeae2")
    spec = draw_text(img, (20, 120), "Fresh drop", "#ffffff", 64, "headline")
    result = ContrastCheck().run(img, ctx(texts=[spec]))
    assert result.verdict == "fail"
    block = as_json(result)["evidence"]["blocks"][0]
    assert block["contrast"] < 1.3
    assert block["level"] == "below AA"
    assert "headline" in (result.reason or "")


def test_dark_text_on_light_background_passes_with_the_measured_ratio() -> None:
    img = solid(700, 160, CREAM)
    spec = draw_text(img, (20, 100), "New colours this week", "#1d1d1f", 40, "subline")
    result = ContrastCheck().run(img, ctx(texts=[spec]))
    assert result.verdict == "pass"
    block = result.evidence["blocks"][0]
    exact = float(
        contrast_ratio(
            relative_luminance(hex_to_srgb("#1d1d1f")), relative_luminance(hex_to_srgb(CREAM))
        )
    )
    # Glyphs and their anti-aliased fringe are excluded: the background reads as pure cream.
    assert block["contrast"] == pytest.approx(exact, abs=0.05)
    assert block["background"] == CREAM
    assert result.score == 1.0


def test_cta_is_measured_against_its_plate_not_the_scene() -> None:
    img = solid(500, 200, "#ffffff")
    plate = Box(20, 40, 300, 140)
    ImageDraw.Draw(img).rounded_rectangle(plate.as_tuple(), radius=50, fill=NAVY)
    label = draw_text(img, (60, 105), "Shop now", "#ffffff", 40, "cta")
    on_plate = TextSpec(
        "cta", "Shop now", label.box, "#ffffff", NAVY, 40, plate=plate
    )  # compose reports the plate colour as the background
    result = ContrastCheck().run(img, ctx(texts=[on_plate]))
    block = result.evidence["blocks"][0]
    assert block["source"] == "plate"
    assert block["background"] == NAVY
    assert result.verdict == "pass"
    assert block["contrast"] == pytest.approx(
        float(contrast_ratio(1.0, relative_luminance(hex_to_srgb(NAVY)))), abs=0.01
    )
    # A white label on a pale orange plate fails even though the scene around is white.
    pale = TextSpec("cta", "Shop now", label.box, "#ffffff", "#f4c6a0", 16, plate=plate)
    assert ContrastCheck().run(img, ctx(texts=[pale])).verdict == "fail"


def test_low_percentile_catches_text_running_into_a_dark_patch() -> None:
    """Mostly light behind black text, but a dark patch under the last word: the mean
    would pass, the 10th percentile does not."""
    img = solid(800, 160, "#ffffff")
    ImageDraw.Draw(img).rectangle((420, 0, 800, 160), fill="#262626")  # under "today"
    spec = draw_text(img, (20, 110), "Run further today", "#000000", 60, "headline")
    ratios = contrast_ratio(
        0.0,
        relative_luminance(
            background_pixels(np.asarray(img.crop(spec.box.as_tuple())), spec.color, spec.font_size)
        ),
    )
    assert float(np.mean(ratios)) > 4.5  # what a mean-based check would have accepted
    result = ContrastCheck().run(img, ctx(texts=[spec]))
    assert result.verdict == "fail"
    assert result.evidence["blocks"][0]["contrast"] < 3.0


def test_background_matching_the_text_colour_is_not_mistaken_for_glyphs() -> None:
    """A large patch of the text colour behind the text is background (where the text
    disappears), not ink: it must pull the contrast down."""
    img = solid(800, 160, "#ffffff")
    ImageDraw.Draw(img).rectangle((0, 0, 300, 160), fill="#000000")
    spec = draw_text(img, (20, 110), "Run further today", "#000000", 60, "headline")
    result = ContrastCheck().run(img, ctx(texts=[spec]))
    assert result.verdict == "fail"
    assert result.evidence["blocks"][0]["contrast"] < 1.5


def test_large_text_thresholds_use_css_pixels_and_weight() -> None:
    grey = "#8a8a8a"  # 3.45:1 on white: AA for large text only
    img = solid(900, 260, "#ffffff")
    small = draw_text(img, (20, 60), "Body copy in grey", grey, 18, "subline")
    big = draw_text(img, (20, 200), "Grey headline", grey, 40, "headline")
    result = ContrastCheck().run(img, ctx(texts=[small, big]))
    blocks = {b["role"]: b for b in result.evidence["blocks"]}
    assert blocks["subline"]["required"] == 4.5 and not blocks["subline"]["large"]
    assert blocks["headline"]["required"] == 3.0 and blocks["headline"]["large"]
    assert result.verdict == "fail"
    assert "subline" in (result.reason or "") and "headline" not in (result.reason or "")
    # 40 px at 2× density is 20 CSS px: large when bold (≥ 18.66), not when regular (< 24).
    assert is_large(big, density=2)
    assert not is_large(TextSpec("subline", "x", big.box, grey, None, 40), density=2)


def test_warn_below_aaa_is_opt_in() -> None:
    img = solid(700, 160, "#ffffff")
    spec = draw_text(img, (20, 100), "Mid grey text", "#666666", 18, "subline")  # 5.7:1
    assert ContrastCheck().run(img, ctx(texts=[spec])).verdict == "pass"
    strict = ContrastCheck().run(img, ctx(texts=[spec], params={"warn_below_aaa": True}))
    assert strict.verdict == "warn"
    assert strict.evidence["blocks"][0]["level"] == "AA"


def test_contrast_skips_without_text() -> None:
    result = ContrastCheck().run(solid(64, 64, "#ffffff"), ctx())
    assert result.verdict == "skip"


# --- brand colour --------------------------------------------------------------------------


def test_off_palette_backdrop_fails() -> None:
    img = backdrop(540, 675, "#2ecc40", "#1e9e30")  # saturated green: no brand colour near
    result = BrandColourCheck().run(img, ctx())
    assert result.verdict == "fail"
    ev = as_json(result)["evidence"]
    assert ev["off_palette_share"] > 0.9
    off = [c for c in ev["clusters"] if c["off_palette"]]
    assert sum(c["share"] for c in off) > 0.9
    assert min(c["delta_e"] for c in off) > 25


def test_palette_tinted_backdrop_passes() -> None:
    """Cream fading into a light navy tint, an accent sphere and a dark shadow: all
    tints/shades of the palette, none of them the exact swatches."""
    img = backdrop(540, 675, "#f5efe1", "#bcc3cf")
    draw = ImageDraw.Draw(img)
    draw.ellipse((60, 380, 200, 520), fill="#e9826a")  # accent, a little lighter
    draw.rectangle((0, 620, 540, 675), fill="#3a3a3c")  # near-neutral shadow band
    result = BrandColourCheck().run(img, ctx())
    assert result.verdict == "pass", result.reason
    ev = result.evidence
    assert ev["off_palette_share"] < 0.05
    roles = {c["nearest_role"].split()[0] for c in ev["clusters"]}
    assert roles & {"background", "primary"}


def test_pale_off_brand_tint_fails() -> None:
    """Pale backdrops converge towards white, yet a mint pastel is not a tint of a
    navy/orange/cream brand: the default tolerance must still see that."""
    img = backdrop(400, 500, "#e0f4ec", "#cde6da")
    result = BrandColourCheck().run(img, ctx())
    assert result.verdict == "fail"
    assert all(not c["neutral"] for c in result.evidence["clusters"])


def test_product_box_is_excluded_from_brand_colour() -> None:
    img = backdrop(540, 675, "#f5efe1", "#ebe3d2")
    product = Box(150, 200, 400, 600)  # 27 % of the frame in packaging green
    ImageDraw.Draw(img).rectangle((150, 200, 399, 599), fill="#2ecc40")
    without = BrandColourCheck().run(img, ctx())
    assert without.verdict in {"warn", "fail"}
    assert without.evidence["off_palette_share"] > 0.2
    excluded = BrandColourCheck().run(img, ctx(product_box=product))
    assert excluded.verdict == "pass"
    assert excluded.evidence["off_palette_share"] < 0.02
    assert excluded.evidence["excluded"] == [[150, 200, 400, 600]]


def test_brand_colour_thresholds_come_from_params_and_are_deterministic() -> None:
    img = backdrop(300, 300, "#f5efe1", "#ebe3d2")
    ImageDraw.Draw(img).rectangle((0, 0, 300, 45), fill="#2ecc40")  # 15 % green
    default = BrandColourCheck().run(img, ctx())
    assert default.verdict == "warn"
    assert BrandColourCheck().run(img, ctx()).evidence == default.evidence
    loose = BrandColourCheck().run(img, ctx(params={"warn_off_palette_share": 0.2}))
    assert loose.verdict == "pass"
    strict = BrandColourCheck().run(img, ctx(params={"max_off_palette_share": 0.1}))
    assert strict.verdict == "fail"


def test_kmeans_finds_weighted_clusters() -> None:
    from bildwerk.checks.brand_colour import kmeans

    rng = np.random.default_rng(0)
    centres = np.array([[20.0, 0.0, 0.0], [60.0, 40.0, 10.0], [90.0, -20.0, 50.0]])
    points = np.concatenate([c + rng.normal(0, 1.0, (50, 3)) for c in centres])
    weights = np.repeat([1.0, 2.0, 5.0], 50)
    found, shares = kmeans(points, weights, 3)
    order = np.argsort(found[:, 0])
    np.testing.assert_allclose(found[order], centres, atol=0.5)
    np.testing.assert_allclose(shares[order], [1 / 8, 2 / 8, 5 / 8])


def test_neutral_greys_are_allowed() -> None:
    img = backdrop(300, 300, "#fafafa", "#5a5a5a")
    assert BrandColourCheck().run(img, ctx()).verdict == "pass"


# --- logo ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def logo(tmp_path_factory: pytest.TempPathFactory) -> Image.Image:
    path = write_sample_logo(tmp_path_factory.mktemp("logo") / "logo.png", "acme", NAVY, ORANGE)
    with Image.open(path) as im:
        return im.convert("RGBA")


def paste_logo(img: Image.Image, logo: Image.Image, box: Box) -> None:
    """As compose pastes it: resized in premultiplied alpha."""
    sized = logo.convert("RGBa").resize((box.width, box.height), Image.Resampling.LANCZOS)
    sized = sized.convert("RGBA")
    img.paste(sized.convert("RGB"), (box.x0, box.y0), sized.getchannel("A"))


def logo_scene(
    logo: Image.Image, box: Box | None, size: tuple[int, int] = (1080, 1350)
) -> Image.Image:
    img = backdrop(*size, "#f5efe1", "#e8dfcd", seed=3)
    if box is not None:
        paste_logo(img, logo, box)
    return img


def logo_box(logo: Image.Image, x: int, y: int, height: int, squash: float = 1.0) -> Box:
    width = round(logo.width * height / logo.height)
    return Box(x, y, x + width, y + round(height * squash))


def test_logo_present_passes_with_a_high_match(logo: Image.Image) -> None:
    box = logo_box(logo, 65, 65, 61)
    layout = plan_layout(1080, 1350, Insets(), 0.06)
    result = LogoCheck().run(logo_scene(logo, box), ctx(logo=logo, logo_box=box, layout=layout))
    assert result.verdict == "pass", result.reason
    ev = as_json(result)["evidence"]
    assert ev["method"] == "features" and ev["inliers"] >= 20
    assert ev["match"] > 0.95 and ev["colour_de"] < 2
    assert abs(ev["aspect"] - 1) < 0.03
    found = Box(*ev["found"])
    assert max(abs(a - b) for a, b in zip(found.as_tuple(), box.as_tuple(), strict=True)) <= 1


def test_logo_found_without_a_box_hint(logo: Image.Image) -> None:
    box = logo_box(logo, 300, 180, 48)
    img = logo_scene(logo, box, size=(640, 480))
    result = LogoCheck().run(img, ctx(logo=logo))
    assert result.verdict == "pass", result.reason
    assert Box(*result.evidence["found"]).intersects(box)


def test_missing_logo_fails(logo: Image.Image) -> None:
    box = logo_box(logo, 65, 65, 61)
    result = LogoCheck().run(logo_scene(logo, None), ctx(logo=logo, logo_box=box))
    assert result.verdict == "fail"
    assert "not found" in (result.reason or "")


def test_too_small_logo_fails(logo: Image.Image) -> None:
    box = logo_box(logo, 65, 65, 18)  # brand minimum is 24 px
    result = LogoCheck().run(logo_scene(logo, box), ctx(logo=logo, logo_box=box))
    assert result.verdict == "fail"
    assert "below the 24px minimum" in (result.reason or "")
    assert result.evidence["match"] > 0.9  # found, just too small


def test_min_height_scales_with_density(logo: Image.Image) -> None:
    mrec = PRESETS["display_mrec"]  # 2× density: 24 px minimum becomes 48 master px
    box = logo_box(logo, 30, 35, 30)
    img = logo_scene(logo, box, size=mrec.master_size)
    result = LogoCheck().run(img, ctx(channel=mrec, logo=logo, logo_box=box))
    assert result.verdict == "fail"
    assert result.evidence["min_height"] == 48


def test_squashed_logo_fails_as_distorted(logo: Image.Image) -> None:
    box = logo_box(logo, 65, 65, 61, squash=0.6)
    result = LogoCheck().run(logo_scene(logo, box), ctx(logo=logo, logo_box=box))
    assert result.verdict == "fail"
    assert "distorted" in (result.reason or "")
    assert result.evidence["aspect"] == pytest.approx(1 / 0.6, rel=0.08)


@pytest.mark.parametrize("height", [26, 40, 100])
def test_undistorted_logos_of_any_size_are_not_called_distorted(
    logo: Image.Image, height: int
) -> None:
    box = logo_box(logo, 65, 65, height)
    result = LogoCheck().run(logo_scene(logo, box, (640, 400)), ctx(logo=logo, logo_box=box))
    assert result.verdict == "pass", result.reason
    assert abs(result.evidence["aspect"] - 1) <= result.evidence["distortion_tolerance"] / 2


def test_mild_squash_is_still_caught(logo: Image.Image) -> None:
    box = logo_box(logo, 65, 65, 100, squash=0.9)
    result = LogoCheck().run(logo_scene(logo, box, (640, 400)), ctx(logo=logo, logo_box=box))
    assert result.verdict == "fail"
    assert result.evidence["aspect"] == pytest.approx(1 / 0.9, abs=0.02)


def test_recoloured_logo_fails(logo: Image.Image) -> None:
    r, g, b, a = logo.split()
    swapped = Image.merge("RGBA", (b, g, r, a))  # navy becomes brown, orange becomes blue
    box = logo_box(logo, 65, 65, 61)
    result = LogoCheck().run(logo_scene(swapped, box), ctx(logo=logo, logo_box=box))
    assert result.verdict == "fail"
    assert "recoloured" in (result.reason or "") or "differs" in (result.reason or "")
    assert result.evidence["colour_de"] > 10


def test_text_in_the_clear_space_warns_or_fails_by_param(logo: Image.Image) -> None:
    box = logo_box(logo, 65, 65, 61)
    img = logo_scene(logo, box)
    close = draw_text(img, (65, 160), "Headline", "#1d1d1f", 40, "headline")  # ~10 px below
    context = ctx(logo=logo, logo_box=box, texts=[close])
    result = LogoCheck().run(img, context)
    assert result.verdict == "warn"
    assert result.evidence["clear_space"]["crowded_by"] == ["headline"]
    strict = ctx(logo=logo, logo_box=box, texts=[close], params={"clear_space_fails": True})
    assert LogoCheck().run(img, strict).verdict == "fail"


def test_logo_outside_its_zone_fails(logo: Image.Image) -> None:
    layout = plan_layout(1080, 1350, Insets(), 0.06)
    box = logo_box(logo, 700, 1100, 61)  # in the product zone
    result = LogoCheck().run(logo_scene(logo, box), ctx(logo=logo, logo_box=box, layout=layout))
    assert result.verdict == "fail"
    assert "outside its zone" in (result.reason or "")
    assert result.evidence["zone"]["box"] == list(layout.logo.as_tuple())


def test_no_logo_configured_skips() -> None:
    result = LogoCheck().run(solid(100, 100, "#ffffff"), ctx())
    assert result.verdict == "skip"
    assert result.reason == "no brand logo configured"


# --- safe area -----------------------------------------------------------------------------


def test_text_inside_the_story_top_zone_fails() -> None:
    layout = plan_layout(1080, 1920, STORY.unsafe, BRAND.safe_area.margin)
    head = TextSpec("headline", "Hi", Box(80, 120, 700, 220), "#000000", None, 80)
    result = SafeAreaCheck().run(solid(1080, 1920, CREAM), ctx(STORY, texts=[head], layout=layout))
    assert result.verdict == "fail"
    ev = as_json(result)["evidence"]
    assert ev["zones"]["top"] == [0, 0, 1080, 250]
    assert ev["zones"]["bottom"] == [0, 1580, 1080, 1920]
    (offender,) = ev["offending"]
    assert offender["name"] == "headline"
    assert "under the top platform zone" in offender["problems"]
    assert "outside the safe area" in offender["problems"]


def test_everything_inside_the_safe_area_passes() -> None:
    layout = plan_layout(1080, 1920, STORY.unsafe, BRAND.safe_area.margin)
    head = TextSpec("headline", "Hi", Box(80, 420, 700, 520), "#000000", None, 80)
    cta = TextSpec(
        "cta", "Go", Box(110, 560, 200, 590), "#fff", NAVY, 30, plate=Box(80, 540, 240, 610)
    )
    context = ctx(
        STORY,
        texts=[head, cta],
        layout=layout,
        logo_box=Box(70, 330, 200, 390),
        product_box=Box(400, 900, 700, 1400),
    )
    result = SafeAreaCheck().run(solid(1080, 1920, CREAM), context)
    assert result.verdict == "pass"
    assert set(result.evidence["boxes"]) == {"headline", "cta", "cta_plate", "logo", "product"}
    assert result.score == 1.0


def test_brand_margin_and_density_scaled_zones_without_a_layout() -> None:
    tall = Channel(name="tall", width=300, height=600, unsafe=Insets(bottom=50), density=2)
    product = Box(100, 1050, 400, 1150)  # 600×1200 master: bottom zone starts at 1100
    logo_in_margin = Box(10, 200, 100, 240)  # margin is 6 % of 600 = 36 px
    result = SafeAreaCheck().run(
        solid(600, 1200, CREAM), ctx(tall, product_box=product, logo_box=logo_in_margin)
    )
    assert result.verdict == "fail"
    ev = result.evidence
    assert ev["zones"] == {"bottom": [0, 1100, 600, 1200]}
    assert ev["safe"] == [36, 36, 564, 1064]
    problems = {o["name"]: o["problems"] for o in ev["offending"]}
    assert problems["logo"] == ["outside the safe area"]
    assert "under the bottom platform zone" in problems["product"]
    assert result.score == 0.0


def test_safe_area_skips_when_nothing_is_placed() -> None:
    assert SafeAreaCheck().run(solid(64, 64, CREAM), ctx()).verdict == "skip"


# --- technical -----------------------------------------------------------------------------


def detailed_scene(w: int = 1080, h: int = 1350) -> Image.Image:
    """A backdrop with grain and a crisp, textured 'product': sharp, clean, not banded."""
    img = backdrop(w, h, "#eae4d8", "#cfc6b6", grain=1.2, seed=5)
    rng = np.random.default_rng(7)
    draw = ImageDraw.Draw(img)
    for _ in range(40):
        x, y = int(rng.integers(300, 700)), int(rng.integers(500, 1100))
        colour = tuple(int(c) for c in rng.integers(20, 230, 3))
        draw.rectangle(
            (x, y, x + int(rng.integers(20, 160)), y + int(rng.integers(10, 80))), fill=colour
        )
    draw.text((340, 480), "SERUM 30 ml", font=font(48, bold=True), fill="#202020")
    return img


def tech(img: Image.Image, **kw: Any) -> CheckResult:
    return TechnicalCheck().run(img, ctx(**kw))


def test_sharp_clean_creative_passes_all_sub_measures() -> None:
    result = tech(detailed_scene())
    ev = as_json(result)["evidence"]
    assert result.verdict == "pass", result.reason
    assert set(ev) == {"resolution", "sharpness", "noise", "clipping", "banding", "naturalness"}
    assert ev["noise"]["value"] == pytest.approx(1.2, abs=0.4)
    assert ev["banding"]["value"] < 0.05


def test_blurred_image_fails_sharpness() -> None:
    img = detailed_scene().filter(ImageFilter.GaussianBlur(4))
    result = tech(img)
    assert result.evidence["sharpness"]["verdict"] == "fail"
    assert result.verdict == "fail"
    assert "sharpness" in (result.reason or "")


def test_sharpness_is_comparable_across_sizes() -> None:
    big, small = detailed_scene(), detailed_scene().resize((540, 675), Image.Resampling.LANCZOS)
    a = tech(big).evidence["sharpness"]["value"]
    b = tech(small, channel=Channel(name="half", width=540, height=675)).evidence["sharpness"][
        "value"
    ]
    assert 0.5 < a / b < 2.0


def test_noisy_image_flags_noise_with_a_calibrated_sigma() -> None:
    rng = np.random.default_rng(1)
    arr = np.asarray(detailed_scene(), dtype=np.float64) + rng.normal(0, 10, (1350, 1080, 1))
    result = tech(Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8)))
    noise = result.evidence["noise"]
    assert noise["verdict"] == "fail"
    assert noise["value"] == pytest.approx(10.0, rel=0.15)
    assert noise_sigma(np.full((64, 64), 128, dtype=np.uint8)) == 0.0


def _gradient(levels: int | None, dither: bool) -> Image.Image:
    """A slow vertical gradient, posterised to ``levels`` and/or dithered before rounding."""
    t = np.linspace(60.0, 190.0, 1350)[:, None] * np.ones((1, 1080))
    if levels:
        t = np.floor(t / (256 / levels)) * (256 / levels)
    if dither:
        t = t + np.random.default_rng(2).uniform(-1.0, 1.0, t.shape)
    grey = np.clip(np.rint(t), 0, 255).astype(np.uint8)
    return Image.fromarray(np.stack([grey] * 3, -1), "RGB")


def test_banded_gradient_flags_banding_and_dithered_does_not() -> None:
    banded = tech(_gradient(levels=48, dither=False)).evidence["banding"]
    assert banded["verdict"] == "fail"
    assert banded["value"] > 0.8 and banded["median_step"] >= 5
    plain = tech(_gradient(levels=None, dither=False)).evidence["banding"]
    assert plain["verdict"] == "warn"  # 1-level steps over long bands: visible, not posterised
    assert plain["median_step"] == 1
    dithered = tech(_gradient(levels=None, dither=True)).evidence["banding"]
    assert dithered["verdict"] == "pass"
    assert dithered["value"] < 0.1
    flat = banding(np.full((200, 200), 90, dtype=np.uint8))
    assert flat == (0.0, 0.0)  # a flat backdrop has no steps: not banding


def test_clipping_counts_blown_highlights_but_not_a_white_backdrop() -> None:
    img = detailed_scene()
    ImageDraw.Draw(img).ellipse((350, 300, 750, 800), fill="#ffffff")  # blown highlight
    blown = tech(img).evidence["clipping"]
    assert blown["verdict"] in {"warn", "fail"}
    assert blown["highlights"] > 0.05
    packshot = solid(1080, 1350, "#ffffff")
    ImageDraw.Draw(packshot).rectangle((400, 400, 700, 1000), fill="#3a6ea5")
    white = tech(packshot).evidence["clipping"]
    assert white["white_backdrop"] is True
    assert white["verdict"] == "pass"


def test_overlay_text_is_not_counted_as_clipping() -> None:
    img = backdrop(1080, 1350, "#20242c", "#30343c", seed=9)
    spec = draw_text(img, (60, 300), "WHITE HEADLINE", "#ffffff", 150, "headline")
    bare = tech(img).evidence["clipping"]["value"]
    masked = tech(img, texts=[spec]).evidence["clipping"]["value"]
    assert bare > 0.01 and masked == 0.0


def test_resolution_below_the_master_fails() -> None:
    result = tech(detailed_scene(800, 1000))
    assert result.evidence["resolution"]["verdict"] == "fail"
    assert result.evidence["resolution"]["required"] == [1080, 1350]
    assert result.verdict == "fail"


def _pink_noise(n: int = 512) -> Image.Image:
    """1/f noise: natural-image power spectrum, the stock stand-in for a photograph."""
    rng = np.random.default_rng(4)
    fy, fx = np.meshgrid(np.fft.fftfreq(n), np.fft.fftfreq(n), indexing="ij")
    amp = 1.0 / np.maximum(np.hypot(fx, fy), 1.0 / n)
    field = np.real(np.fft.ifft2(amp * np.exp(2j * np.pi * rng.random((n, n)))))
    grey = (field - field.mean()) / field.std() * 40 + 128
    return Image.fromarray(np.clip(np.rint(grey), 0, 255).astype(np.uint8)).convert("RGB")


def test_naturalness_drops_for_heavy_compression_but_never_fails_by_default() -> None:
    small = Channel(name="sq", width=512, height=512)
    clean = tech(_pink_noise(), channel=small).evidence["naturalness"]
    buf = io.BytesIO()
    _pink_noise().save(buf, "JPEG", quality=2)
    blocky = tech(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"), channel=small)
    nat = blocky.evidence["naturalness"]
    assert clean["value"] > 0.9
    assert nat["value"] < clean["value"] - 0.3
    assert nat["features"]["mscn_alpha"] < clean["features"]["mscn_alpha"]
    assert nat["verdict"] != "fail"


def test_technical_thresholds_come_from_params() -> None:
    img = detailed_scene().filter(ImageFilter.GaussianBlur(4))
    lenient = tech(img, params={"warn_sharpness": 1.0, "min_sharpness": 0.5})
    assert lenient.evidence["sharpness"]["verdict"] == "pass"


# --- clip score ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def clip_libs() -> Any:
    """transformers, imported the way the check imports it (torchvision repaired or
    hidden when its wheel does not match torch); skipped without the extra."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from bildwerk.checks.clip_score import import_clip

    import_clip()
    import transformers

    return transformers


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory: pytest.TempPathFactory, clip_libs: Any) -> Path:
    """A random CLIP with 2-layer, 32-wide towers, a BPE vocab written here, saved the way
    a registered model is: ``save_pretrained`` of the model and its processor."""
    import torch

    transformers = clip_libs
    root = tmp_path_factory.mktemp("clip")
    letters = "abcdefghijklmnopqrstuvwxyz"
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for c in letters:
        vocab[c] = len(vocab)
        vocab[c + "</w>"] = len(vocab)
    merges = ["o n</w>", "a n", "e r", "th e</w>"]
    for pair in (*merges[:3], "t h"):
        vocab["".join(pair.split())] = len(vocab)
    vocab["the</w>"] = len(vocab)
    merges = ["t h", *merges]
    tok_dir = root / "tok"
    tok_dir.mkdir()
    (tok_dir / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (tok_dir / "merges.txt").write_text(
        "#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8"
    )
    tokenizer = transformers.CLIPTokenizer.from_pretrained(str(tok_dir))
    text = transformers.CLIPTextConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=77,
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=1,
    )
    vision = transformers.CLIPVisionConfig(
        image_size=32,
        patch_size=8,
        hidden_size=32,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=4,
    )
    config = transformers.CLIPConfig(
        text_config=text.to_dict(), vision_config=vision.to_dict(), projection_dim=16
    )
    torch.manual_seed(0)
    model = transformers.CLIPModel(config).eval()
    processor = transformers.CLIPProcessor(
        image_processor=transformers.CLIPImageProcessor(
            size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
        ),
        tokenizer=tokenizer,
    )
    out = root / "tiny-clip"
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out


def _independent_clip_score(path: Path, image: Image.Image, prompt: str) -> float:
    """CLIPScore through the model's forward pass (normalised embeds), not the check's code."""
    import torch
    from transformers import CLIPModel, CLIPProcessor

    model = CLIPModel.from_pretrained(path, local_files_only=True)
    model.train(False)  # inference mode for dropout/norm layers
    processor = CLIPProcessor.from_pretrained(path, local_files_only=True)
    inputs = processor(text=[prompt], images=image, return_tensors="pt", padding=True)
    with torch.inference_mode():
        out = model(**inputs)
    cos = float((out.image_embeds[0] * out.text_embeds[0]).sum())
    return 2.5 * max(cos, 0.0)


def test_clip_score_matches_the_definition(tiny_clip: Path) -> None:
    from bildwerk.checks.clip_score import ClipScoreCheck, load_clip

    prompt = "the orange one on a tan podium"
    scene = backdrop(320, 400, "#e9d5b7", "#c9a57d")
    creative = scene.copy()
    ImageDraw.Draw(creative).rectangle((0, 0, 320, 80), fill="#000000")
    params = {"model_path": str(tiny_clip), "min_score": -1.0, "warn_score": -1.0}
    result = ClipScoreCheck().run(creative, ctx(scene=scene, prompt=prompt, params=params))
    ev = as_json(result)["evidence"]
    assert ev["measured_on"] == "scene"
    expected = _independent_clip_score(tiny_clip, scene, prompt)
    assert ev["clip_score"] == pytest.approx(expected, abs=1e-4)
    assert ev["clip_score"] == pytest.approx(2.5 * max(ev["cosine"], 0.0), abs=1e-4)
    assert result.score == pytest.approx(ev["clip_score"] / 2.5, abs=1e-4)
    assert result.verdict == "pass"
    # Deterministic, and the model is loaded once per path.
    again = ClipScoreCheck().run(creative, ctx(scene=scene, prompt=prompt, params=params))
    assert again.evidence == result.evidence
    assert load_clip(tiny_clip)[0] is load_clip(str(tiny_clip))[0]
    # Without a scene, the creative itself is scored.
    direct = ClipScoreCheck().run(creative, ctx(prompt=prompt, params=params))
    assert direct.evidence["measured_on"] == "creative"
    assert direct.evidence["clip_score"] == pytest.approx(
        _independent_clip_score(tiny_clip, creative, prompt), abs=1e-4
    )


def test_clip_score_encodes_a_scene_once_per_prompt(
    tiny_clip: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Creatives of one scene (channels × locales) share the scene's CLIP score."""
    from bildwerk.checks import clip_score as module

    scene = backdrop(96, 96, "#dfe7f1", "#9fb3cc", seed=11)
    params = {"model_path": str(tiny_clip), "min_score": -1, "warn_score": -1}
    first = module.ClipScoreCheck().run(scene, ctx(scene=scene, prompt="a blue one", params=params))

    def boom(*args: Any) -> float:
        raise AssertionError("the model ran again")

    monkeypatch.setattr(module, "clip_cosine", boom)
    creative = scene.copy()
    ImageDraw.Draw(creative).rectangle((0, 0, 96, 20), fill="#ffffff")  # another overlay
    again = module.ClipScoreCheck().run(
        creative, ctx(scene=scene, prompt="a blue one", params=params)
    )
    assert again.evidence == first.evidence
    with pytest.raises(AssertionError, match="ran again"):
        module.ClipScoreCheck().run(scene, ctx(scene=scene, prompt="a red one", params=params))


def test_clip_score_thresholds(tiny_clip: Path) -> None:
    from bildwerk.checks.clip_score import ClipScoreCheck

    scene = backdrop(64, 64, "#e9d5b7", "#c9a57d")
    base = {"model_path": str(tiny_clip)}
    measured = (
        ClipScoreCheck()
        .run(scene, ctx(prompt="a podium", params={**base, "min_score": -1, "warn_score": -1}))
        .evidence["clip_score"]
    )
    above = {**base, "min_score": measured + 0.01, "warn_score": measured + 0.02}
    failed = ClipScoreCheck().run(scene, ctx(prompt="a podium", params=above))
    assert failed.verdict == "fail" and "CLIPScore" in (failed.reason or "")
    between = {**base, "min_score": -1, "warn_score": measured + 0.01}
    assert ClipScoreCheck().run(scene, ctx(prompt="a podium", params=between)).verdict == "warn"


def test_clip_score_skips_without_a_model_or_a_prompt(tmp_path: Path) -> None:
    from bildwerk.checks.clip_score import ClipScoreCheck

    img = solid(32, 32, CREAM)
    none = ClipScoreCheck().run(img, ctx(prompt="a podium"))
    assert none.verdict == "skip" and none.reason == "no CLIP model registered"
    empty = ClipScoreCheck().run(img, ctx(params={"model_path": str(tmp_path)}))
    assert empty.verdict == "skip" and "no prompt" in (empty.reason or "")


def test_clip_score_is_unchecked_when_the_directory_holds_no_model(
    tmp_path: Path, clip_libs: Any
) -> None:
    from bildwerk.checks.clip_score import ClipScoreCheck

    params = {"model_path": str(tmp_path)}
    result = ClipScoreCheck().run(solid(32, 32, CREAM), ctx(prompt="a podium", params=params))
    assert result.verdict == "unchecked"  # configured but not runnable: never a pass
    assert "could not be loaded" in (result.reason or "")


def test_clip_score_is_unchecked_with_the_install_hint_when_transformers_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bildwerk.checks.clip_score import ClipScoreCheck

    monkeypatch.setitem(sys.modules, "transformers", None)  # import now raises ImportError
    params = {"model_path": str(tmp_path / "never-loaded")}
    result = ClipScoreCheck().run(solid(32, 32, CREAM), ctx(prompt="a podium", params=params))
    assert result.verdict == "unchecked"
    assert "pip install 'bildwerk[diffusion]'" in (result.reason or "")
