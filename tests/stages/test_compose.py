"""The compose stage and text fitting, with real fonts and real shaping.

Scenes are plain numpy gradients, so these tests do not depend on a generation backend.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from PIL import Image, ImageChops, ImageDraw, features

from bildwerk.config.brand import BrandKit, Logo, Palette
from bildwerk.config.brief import Copy
from bildwerk.config.channels import Insets
from bildwerk.fonts import FontSet
from bildwerk.geometry import Box, Layout, plan_layout
from bildwerk.stages.compose import Composed, compose, logo_zone
from bildwerk.textlayout import NO_START, fit_text, segment

BRAND = BrandKit(
    name="acme",
    palette=Palette(
        primary="#1d3557",
        secondary="#a8dadc",
        accent="#e63946",
        text="#1d1d1f",
        background="#f7f4ee",
    ),
    logo=Logo(file="logo.png", min_height=24, height=0.06),
)
EN = Copy(
    headline="Run further than ever before",
    subline="The new Aero 3 cushions every stride.",
    cta="Shop now",
)
AR = Copy(
    headline="اركض أبعد من أي وقت مضى", subline="حذاء إيرو الجديد، خفيف وسريع.", cta="تسوّق الآن"
)
JA = Copy(
    headline="これまでより、もっと遠くへ走ろう。",
    subline="新しいAero 3が、すべての一歩を軽やかに支えます。",
    cta="今すぐ購入",
)


@pytest.fixture(autouse=True, scope="module")
def _font_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Merged script faces go to a temporary cache, not the user's ~/.cache."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BILDWERK_FONT_CACHE", str(tmp_path_factory.mktemp("font-cache")))
        yield


@pytest.fixture(scope="module")
def fonts() -> FontSet:
    found = FontSet(BRAND)
    missing = [n for n in ("NotoSans-Bold.ttf", "NotoSans-Regular.ttf") if not found.find(n)]
    if missing:
        pytest.skip(
            f"Noto Sans not installed ({', '.join(missing)}): apt-get install fonts-noto-core"
        )
    return found


def need(fonts: FontSet, name: str, package: str) -> None:
    if fonts.find(name) is None:
        pytest.skip(f"{name} not installed: apt-get install {package}")


def scene(w: int, h: int, dark: bool = False) -> Image.Image:
    """A light (or dark) diagonal gradient: a stand-in for a generated scene."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    t = (x / w + y / h) / 2
    base = np.stack([240 - 30 * t, 236 - 20 * t, 228 - 40 * t], -1)
    arr = 255 - base * 0.85 if dark else base
    return Image.fromarray(arr.clip(0, 255).astype(np.uint8), "RGB")


def logo() -> Image.Image:
    im = Image.new("RGBA", (400, 100), (0, 0, 0, 0))
    ImageDraw.Draw(im).rounded_rectangle((0, 0, 399, 99), radius=20, fill=(230, 57, 70, 255))
    return im


def run(
    layout: Layout,
    copy: Copy,
    fonts: FontSet,
    locale: str = "en-US",
    direction: str = "ltr",
    with_logo: bool = True,
    dark: bool = False,
) -> Composed:
    assert direction in ("ltr", "rtl")
    return compose(
        scene(layout.width, layout.height, dark),
        layout,
        copy,
        brand=BRAND,
        locale=locale,
        direction="rtl" if direction == "rtl" else "ltr",
        logo=logo() if with_logo else None,
        fonts=fonts,
    )


def check(result: Composed, name: str) -> str:
    return next(c.verdict for c in result.checks if c.name == name)


# --- text fitting --------------------------------------------------------------------------


def test_bigger_boxes_get_bigger_text(fonts: FontSet) -> None:
    font = fonts.for_text(EN.headline, "headline")
    sizes = [
        fit_text(EN.headline, w, h, font, min_size=10, max_size=300, max_lines=3).size
        for w, h in ((300, 120), (600, 240), (1200, 480))
    ]
    assert sizes[0] < sizes[1] < sizes[2]


def test_fit_respects_box_and_line_limit(fonts: FontSet) -> None:
    font = fonts.for_text(EN.headline, "headline")
    fit = fit_text(EN.headline, 500, 260, font, min_size=10, max_size=300, max_lines=2)
    assert fit.fits and not fit.truncated
    assert len(fit.lines) <= 2 and fit.width <= 500 and fit.height <= 260
    assert " ".join(fit.lines) == EN.headline


def test_text_that_cannot_fit_is_truncated_with_an_ellipsis(fonts: FontSet) -> None:
    text = "An extremely long headline that keeps going " * 6
    fit = fit_text(
        text, 300, 90, fonts.for_text(text, "headline"), min_size=20, max_size=80, max_lines=2
    )
    assert fit.truncated and fit.size == 20
    assert fit.lines[-1].endswith("…") and len(fit.lines) <= 2


def test_cjk_wraps_between_characters_with_kinsoku(fonts: FontSet) -> None:
    need(fonts, "NotoSansCJK-Bold.ttc", "fonts-noto-cjk")
    text = "今日は新しい一日です。明日もまた、一緒に頑張りましょう！"
    font = fonts.for_text(text, "headline", "ja-JP")
    fit = fit_text(text, 260, 1000, font, min_size=30, max_size=30, max_lines=10, language="ja")
    assert len(fit.lines) >= 3
    assert "".join(fit.lines) == text
    assert not any(line[0] in NO_START for line in fit.lines)
    assert not any(line[-1] in "「（" for line in fit.lines)


def test_segment_keeps_punctuation_with_its_neighbour() -> None:
    units = [u.text for u in segment("東京で「新しい」体験を。")]
    assert "「新" in units and "い」" in units and "を。" in units
    assert [u.text for u in segment("Hello  world , ok")] == ["Hello", "world ,", "ok"]


@pytest.mark.skipif(not features.check("raqm"), reason="Pillow built without raqm")
def test_arabic_is_shaped_not_drawn_letter_by_letter(fonts: FontSet) -> None:
    need(fonts, "NotoSansArabic-Bold.ttf", "fonts-noto-core")
    text = "اركض أبعد"
    font = fonts.for_text(text, "headline", "ar").load(60)
    shaped = font.getlength(text, direction="rtl", language="ar")
    isolated = sum(font.getlength(c, direction="rtl", language="ar") for c in text)
    assert abs(shaped - isolated) > 0.05 * isolated

    def draw(s: str) -> Image.Image:
        im = Image.new("L", (600, 120), 0)
        ImageDraw.Draw(im).text(
            (580, 90), s, font=font, fill=255, anchor="rs", direction="rtl", language="ar"
        )
        return im

    unjoined = "\u200c".join(text)  # ZWNJ between letters forces isolated forms
    assert ImageChops.difference(draw(text), draw(unjoined)).getbbox() is not None


# --- compose -------------------------------------------------------------------------------


def inside(outer: Box, inner: Box) -> bool:
    return outer.contains(inner)


def test_portrait_composition_is_inside_its_zones(fonts: FontSet) -> None:
    layout = plan_layout(1080, 1350, Insets(), 0.06)
    result = run(layout, EN, fonts)
    assert result.image.mode == "RGB" and result.image.size == (1080, 1350)
    roles = [t.role for t in result.texts]
    assert roles == ["headline", "subline", "cta"]
    for text in result.texts:
        assert inside(layout.copy, text.box), text
        assert inside(layout.safe, text.box), text
    head, sub, cta = result.texts
    assert head.font_size > sub.font_size and head.font_size > cta.font_size
    assert head.box.y1 <= sub.box.y0 and sub.box.y1 <= cta.box.y0
    assert cta.background == BRAND.palette.accent and cta.plate is not None
    assert inside(cta.plate, cta.box) and inside(layout.copy, cta.plate)
    assert head.color == BRAND.palette.text  # dark brand text reads on a light scene
    assert check(result, "text_fit") == "pass" and check(result, "safe_area") == "pass"


def test_text_is_left_aligned_for_ltr(fonts: FontSet) -> None:
    layout = plan_layout(1080, 1350, Insets(), 0.06)
    result = run(layout, EN, fonts)
    for text in result.texts:
        assert text.box.x0 - layout.copy.x0 < 0.05 * layout.copy.width


def test_rtl_text_hugs_the_right_edge(fonts: FontSet) -> None:
    need(fonts, "NotoSansArabic-Bold.ttf", "fonts-noto-core")
    layout = plan_layout(1920, 1080, Insets(), 0.06)
    result = run(layout, AR, fonts, locale="ar-AE", direction="rtl")
    assert [t.role for t in result.texts] == ["headline", "subline", "cta"]
    for text in result.texts:
        assert inside(layout.copy, text.box)
        assert text.font.startswith("NotoSansArabic")
    head, sub, cta = result.texts
    slack = 0.03 * layout.copy.width
    assert layout.copy.x1 - head.box.x1 < slack and layout.copy.x1 - sub.box.x1 < slack
    assert cta.plate is not None and cta.plate.x1 == layout.copy.x1
    assert head.box.x0 - layout.copy.x0 > slack  # right-aligned, not stretched
    # the drawn pixels themselves: the rightmost changed column is at the copy box's edge
    diff = ImageChops.difference(result.image, scene(1920, 1080)).convert("L")
    band = diff.crop((layout.copy.x0, head.box.y0, layout.copy.x1, head.box.y1))
    bbox = band.point(lambda v: 255 if v > 40 else 0).getbbox()
    assert bbox is not None and layout.copy.width - bbox[2] < slack


def test_rtl_logo_sits_above_the_right_aligned_text(fonts: FontSet) -> None:
    need(fonts, "NotoSansArabic-Bold.ttf", "fonts-noto-core")
    layout = plan_layout(1080, 1350, Insets(), 0.06)
    result = run(layout, AR, fonts, locale="ar-AE", direction="rtl")
    assert result.logo_box is not None
    zone = logo_zone(layout, "rtl")
    assert inside(zone, result.logo_box) and inside(layout.safe, result.logo_box)
    assert result.logo_box.x1 == layout.copy.x1


def test_cjk_story_wraps_without_spaces_in_the_safe_area(fonts: FontSet) -> None:
    need(fonts, "NotoSansCJK-Bold.ttc", "fonts-noto-cjk")
    layout = plan_layout(1080, 1920, Insets(top=250, bottom=340), 0.06)
    result = run(layout, JA, fonts, locale="ja-JP")
    head = result.texts[0]
    assert head.lines >= 2 and " " not in JA.headline
    assert head.font.startswith("NotoSansCJK")
    assert head.text.replace("\n", "") == JA.headline
    for text in result.texts:
        assert inside(layout.copy, text.box) and inside(layout.safe, text.box)
    assert check(result, "safe_area") == "pass"


def test_sizes_scale_with_the_canvas(fonts: FontSet) -> None:
    small = run(plan_layout(600, 500, Insets(), 0.06), EN, fonts)
    large = run(plan_layout(1920, 1080, Insets(), 0.06), EN, fonts)
    for a, b in zip(small.texts, large.texts, strict=True):
        assert a.font_size < b.font_size, (a, b)
    assert check(small, "text_fit") == "pass"


def test_long_headline_in_a_small_ad_warns_instead_of_failing(fonts: FontSet) -> None:
    layout = plan_layout(600, 500, Insets(), 0.06)  # a 300×250 ad at 2×
    copy = Copy(
        headline="Unbelievably comfortable running shoes!!", subline="Meet Aero 3.", cta="Shop now"
    )
    assert len(copy.headline) == 40
    result = run(layout, copy, fonts)
    fit = next(c for c in result.checks if c.name == "text_fit")
    assert fit.verdict == "warn" and fit.reason and "headline" in fit.reason
    assert fit.score is not None and fit.score < 1
    for text in result.texts:
        assert inside(layout.copy, text.box)


def test_absurd_headline_is_truncated_and_reported(fonts: FontSet) -> None:
    layout = plan_layout(600, 500, Insets(), 0.06)
    result = run(layout, Copy(headline="Endless words that never stop " * 12), fonts)
    head = result.texts[0]
    assert head.text.endswith("…")
    fit = next(c for c in result.checks if c.name == "text_fit")
    assert fit.verdict == "warn" and fit.reason and "truncated" in fit.reason
    assert inside(layout.copy, head.box) and check(result, "safe_area") == "pass"


def test_logo_fits_its_zone_keeping_its_aspect(fonts: FontSet) -> None:
    layout = plan_layout(1080, 1350, Insets(), 0.06)
    result = run(layout, EN, fonts)
    box = result.logo_box
    assert box is not None and inside(layout.logo, box)
    assert box.x0 == layout.logo.x0  # left-aligned for LTR
    assert abs(box.width / box.height - 4.0) < 0.1
    assert box.height >= 24
    pixel = result.image.getpixel((box.x0 + box.width // 2, box.y0 + box.height // 2))
    assert pixel == (230, 57, 70)


def test_no_logo_and_headline_only(fonts: FontSet) -> None:
    layout = plan_layout(1200, 630, Insets(), 0.06)
    result = run(layout, Copy(headline="Hello"), fonts, with_logo=False)
    assert result.logo_box is None
    assert [t.role for t in result.texts] == ["headline"]


def test_light_text_on_a_dark_scene(fonts: FontSet) -> None:
    layout = plan_layout(1080, 1080, Insets(), 0.06)
    result = run(layout, EN, fonts, dark=True)
    head = result.texts[0]
    assert head.color in (BRAND.palette.background, "#ffffff")
    colour = next(c for c in result.checks if c.name == "text_fit").evidence["colour"]
    assert colour["contrast_p10"] >= 4.5


def test_busy_scene_gets_a_scrim_and_readable_text(fonts: FontSet) -> None:
    w, h = 1080, 1350
    layout = plan_layout(w, h, Insets(), 0.06)
    y, x = np.mgrid[0:h, 0:w]
    checker = (((x // 90) + (y // 90)) % 2 * 230 + 12).astype(np.uint8)
    busy = Image.fromarray(np.stack([checker] * 3, -1), "RGB")
    result = compose(
        busy, layout, EN, brand=BRAND, locale="en-US", direction="ltr", logo=None, fonts=fonts
    )
    colour = next(c for c in result.checks if c.name == "text_fit").evidence["colour"]
    assert colour["scrim"] > 0 and colour["contrast_p10"] >= 4.5
    below = layout.product.y0 + layout.product.height // 2
    assert result.image.getpixel((45, below)) == busy.getpixel((45, below))  # product untouched


def test_compose_is_deterministic(fonts: FontSet) -> None:
    layout = plan_layout(1080, 1350, Insets(), 0.06)
    a, b = run(layout, EN, fonts), run(layout, EN, fonts)
    assert a.image.tobytes() == b.image.tobytes()
    assert a.texts == b.texts and a.checks == b.checks


def test_wide_banner_puts_the_cta_beside_the_text(fonts: FontSet) -> None:
    layout = plan_layout(728, 90, Insets(), 0.06)
    result = run(layout, Copy(headline="Run further", subline="Meet Aero 3", cta="Shop now"), fonts)
    head, cta = result.texts[0], result.texts[-1]
    assert cta.role == "cta" and cta.plate is not None
    assert cta.plate.x0 > head.box.x1
    for text in result.texts:
        assert inside(layout.copy, text.box)
    assert check(result, "safe_area") == "pass"


def test_blocks_without_room_are_dropped_and_reported(fonts: FontSet) -> None:
    layout = plan_layout(320, 50, Insets(), 0.06)
    result = run(layout, EN, fonts)
    assert [t.role for t in result.texts] == ["headline"]
    fit = next(c for c in result.checks if c.name == "text_fit")
    assert fit.verdict == "warn" and fit.evidence["dropped"] == ["subline", "cta"]


# --- glyph coverage (issue 10.7) ---------------------------------------------------------


def test_emoji_without_a_glyph_is_left_out_and_warned_not_drawn_as_tofu(fonts: FontSet) -> None:
    melting = "\U0001fae0"  # 🫠: not in any text font
    if not fonts.for_text(melting, "headline").missing:
        pytest.skip("an emoji font is installed: the emoji has a glyph here")
    layout = plan_layout(1080, 1350, Insets(), 0.06)
    with_emoji = run(layout, Copy(headline=f"Summer {melting}\u200d\ufe0f sale", cta="Shop"), fonts)
    plain = run(layout, Copy(headline="Summer sale", cta="Shop"), fonts)
    glyphs = next(c for c in with_emoji.checks if c.name == "text_glyphs")
    assert glyphs.verdict == "warn" and "U+1FAE0" in (glyphs.reason or "")
    assert glyphs.evidence["missing"] == {"headline": melting}
    assert check(with_emoji, "text_fit") == "pass"
    assert check(plain, "text_glyphs") == "pass"
    # the image is the one without the emoji: no tofu box where it would have been
    assert ImageChops.difference(with_emoji.image, plain.image).getbbox() is None


def test_without_missing_drops_the_character_and_its_joiners() -> None:
    from bildwerk.fonts import without_missing

    assert without_missing("a \U0001f468\u200d\U0001f469 b", "\U0001f468\U0001f469") == "a b"
    assert without_missing("x\u2764\ufe0f y\nz", "\u2764") == "x y\nz"
    assert without_missing("kept", "") == "kept"


# --- stacked combining marks (issue 10 item 7) ---------------------------------------------

ZALGO = "\u0301\u0300\u0302\u0303"


@pytest.mark.parametrize(
    ("copy", "expect"),
    [
        (Copy(headline="Sale", subline="Fresh", cta="Buy" + ZALGO * 3), "cta spills out"),
        (Copy(headline="Sale", subline="Fresh", cta="Buy" + ZALGO * 10), "subline overlaps cta"),
        (Copy(headline="Sale" + ZALGO * 200, subline="Fresh", cta="Buy"), "outside the safe"),
    ],
)
def test_stacked_combining_marks_that_leave_their_box_fail_the_layout_check(
    fonts: FontSet, copy: Copy, expect: str
) -> None:
    result = run(plan_layout(1080, 1350, Insets(), 0.06), copy, fonts)
    safe = next(c for c in result.checks if c.name == "safe_area")
    assert safe.verdict == "fail" and expect in (safe.reason or "")


@pytest.mark.parametrize(
    ("locale", "direction", "cta", "headline"),
    [
        ("vi-VN", "ltr", "Mua ngay bây giờ", "Chạy xa hơn bao giờ hết"),
        ("th-TH", "ltr", "ซื้อเลยตอนนี้", "วิ่งไกลกว่าที่เคย"),
        ("hi-IN", "ltr", "अभी ख़रीदें", "पहले से कहीं आगे दौड़ें"),
        ("ar-AE", "rtl", "اشترِ الآنَ", "اِجْرِ أَبْعَدَ مِنْ أَيِّ وَقْتٍ مَضَى"),
    ],
)
def test_scripts_that_stack_marks_by_design_pass_the_layout_check(
    fonts: FontSet, locale: str, direction: str, cta: str, headline: str
) -> None:
    for w, h in ((1080, 1350), (600, 500)):
        copy = Copy(headline=headline, subline=headline, cta=cta)
        result = run(plan_layout(w, h, Insets(), 0.06), copy, fonts, locale, direction)
        assert check(result, "safe_area") == "pass", (w, h, locale)
