"""Font resolution: brand fonts first, a covering system font per script, user errors for
missing brand fonts, a stable fingerprint. Uses the real Noto/DejaVu fonts."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from bildwerk.config.brand import BrandKit, Fonts, Palette
from bildwerk.errors import ConfigError, UserError
from bildwerk.fonts import FontChoice, FontSet, cjk_region

PALETTE = Palette(
    primary="#1d3557", secondary="#a8dadc", accent="#e63946", text="#1d1d1f", background="#f7f4ee"
)


@pytest.fixture(autouse=True, scope="module")
def _font_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Merged script faces go to a temporary cache, not the user's ~/.cache."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BILDWERK_FONT_CACHE", str(tmp_path_factory.mktemp("font-cache")))
        yield


@pytest.fixture(scope="module")
def fonts() -> FontSet:
    return FontSet()


def require(fonts: FontSet, *names: str) -> None:
    """Skip (with the package to install) when a font family is truly absent."""
    missing = [n for n in names if fonts.find(n) is None]
    if missing:
        pytest.skip(
            f"font files not installed: {', '.join(missing)} "
            "(apt-get install fonts-noto-core fonts-noto-cjk fonts-dejavu-core)"
        )


def brand(tmp_path: Path, **fonts: Path) -> BrandKit:
    return BrandKit(name="acme", palette=PALETTE, fonts=Fonts(**fonts), root=tmp_path)


@pytest.mark.parametrize(
    ("text", "locale", "expected"),
    [
        ("Run further", "en-US", "NotoSans-Bold.ttf"),
        ("Беги дальше", "ru-RU", "NotoSans-Bold.ttf"),
        ("Τρέξε πιο μακριά", "el-GR", "NotoSans-Bold.ttf"),
        ("اركض أبعد", "ar-AE", "NotoSansArabic-Bold.ttf"),
        ("خصم 20% على Nike؟", "ar-AE", "NotoSansArabic-Bold.ttf"),
        ("רוץ רחוק יותר.", "he-IL", "NotoSansHebrew-Bold.ttf"),
        ("もっと遠くへ走ろう。", "ja-JP", "NotoSansCJK-Bold.ttc"),
        ("跑得更远", "zh-CN", "NotoSansCJK-Bold.ttc"),
        ("跑得更遠", "zh-TW", "NotoSansCJK-Bold.ttc"),
    ],
)
def test_each_script_gets_a_covering_font(
    fonts: FontSet, text: str, locale: str, expected: str
) -> None:
    require(fonts, expected)
    choice = fonts.for_text(text, "headline", locale)
    assert choice.path is not None and choice.path.name == expected
    assert choice.missing == ""
    assert choice.covers(text)


def test_script_fonts_borrow_latin_digits_and_punctuation(fonts: FontSet) -> None:
    """Noto Sans Arabic has no '%' or '?': it is paired with Noto Sans, not replaced by
    DejaVu, and the pair renders mixed copy in one shaped run."""
    require(fonts, "NotoSansArabic-Bold.ttf", "NotoSans-Bold.ttf")
    choice = fonts.for_text("خصم 20% على Nike؟", "headline", "ar-AE")
    assert choice.companion is not None and choice.companion.name == "NotoSans-Bold.ttf"
    font = choice.load(40)
    assert font.getlength("Nike 20%") > 0


@pytest.mark.parametrize(
    ("locale", "region"),
    [
        ("ja-JP", "JP"),
        ("zh-CN", "SC"),
        ("zh-Hans", "SC"),
        ("zh-TW", "TC"),
        ("zh-Hant-HK", "HK"),
        ("ko-KR", "KR"),
    ],
)
def test_cjk_locale_picks_its_regional_face(fonts: FontSet, locale: str, region: str) -> None:
    require(fonts, "NotoSansCJK-Bold.ttc")
    assert cjk_region(locale) == region
    family, _ = fonts.for_text("東京", "headline", locale).load(20).getname()
    assert family is not None and f"CJK {region}" in family


def test_cjk_region_is_guessed_from_text_for_other_locales() -> None:
    assert cjk_region("en-US", "カタカナ") == "JP"
    assert cjk_region("en-US", "한국어") == "KR"
    assert cjk_region("en-US", "中文") == "SC"


def test_roles_pick_weights(fonts: FontSet) -> None:
    require(fonts, "NotoSans-Bold.ttf", "NotoSans-Regular.ttf")
    assert fonts.for_text("Hello", "headline").name == "NotoSans-Bold.ttf"
    assert fonts.for_text("Hello", "cta").name == "NotoSans-Bold.ttf"
    assert fonts.for_text("Hello", "body").name == "NotoSans-Regular.ttf"


def test_whitespace_and_joiners_need_no_glyph(fonts: FontSet) -> None:
    require(fonts, "NotoSans-Bold.ttf")
    assert fonts.for_text("Hi\u200d there\u00a0\n\t", "headline").name == "NotoSans-Bold.ttf"


def test_uncoverable_characters_are_reported_not_raised(fonts: FontSet) -> None:
    choice = fonts.for_text("Sale \U000f0001", "headline", "en")
    assert choice.missing == "\U000f0001"
    assert choice.load(24).getlength("Sale") > 0


def test_brand_font_comes_first_and_falls_back_per_script(tmp_path: Path) -> None:
    system = FontSet()
    require(system, "NotoSans-Bold.ttf", "NotoSansArabic-Bold.ttf")
    source = system.find("NotoSans-Bold.ttf")
    assert source is not None
    shutil.copy(source, tmp_path / "Brand-Headline.ttf")
    fonts = FontSet(brand(tmp_path, headline=Path("Brand-Headline.ttf")))
    assert fonts.for_text("Run", "headline").name == "Brand-Headline.ttf"
    assert fonts.for_text("Run", "cta").name == "Brand-Headline.ttf"
    assert fonts.for_text("Run", "body").name == "NotoSans-Regular.ttf"
    assert fonts.for_text("اركض", "headline", "ar").path != tmp_path / "Brand-Headline.ttf"


def test_missing_brand_font_is_a_user_error_naming_file_and_field(tmp_path: Path) -> None:
    brand_file = tmp_path / "brand.yaml"
    with pytest.raises(ConfigError) as info:
        FontSet.from_brand(brand(tmp_path, headline=Path("fonts/Nope-Bold.ttf")), brand_file)
    err = info.value
    assert isinstance(err, UserError)
    assert err.path == brand_file and err.field == "fonts.headline"
    assert "font file not found" in str(err) and "Nope-Bold.ttf" in str(err)
    assert err.hint


def test_brand_file_defaults_to_brand_yaml_beside_the_kit(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        FontSet(brand(tmp_path, body=Path("missing.otf")))
    assert info.value.path == tmp_path / "brand.yaml"
    assert info.value.field == "fonts.body"


def test_a_file_that_is_not_a_font_is_a_user_error(tmp_path: Path) -> None:
    (tmp_path / "fake.ttf").write_text("not a font", encoding="utf-8")
    with pytest.raises(ConfigError, match="not a usable font file"):
        FontSet(brand(tmp_path, headline=Path("fake.ttf")))


def test_extra_font_dirs_from_the_environment_come_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    system = FontSet()
    require(system, "DejaVuSans-Bold.ttf")
    source = system.find("DejaVuSans-Bold.ttf")
    assert source is not None
    shutil.copy(source, tmp_path / "NotoSans-Bold.ttf")
    monkeypatch.setenv("BILDWERK_FONT_PATH", str(tmp_path))
    choice = FontSet().for_text("Hello", "headline")
    assert choice.path == tmp_path / "NotoSans-Bold.ttf"


def test_fingerprint_is_stable_and_names_files_with_hashes(tmp_path: Path) -> None:
    a, b = FontSet(), FontSet()
    require(a, "NotoSans-Bold.ttf")
    assert a.fingerprint() == b.fingerprint()
    assert "NotoSans-Bold.ttf=" in a.fingerprint()
    digest = a.fingerprint().split("NotoSans-Bold.ttf=")[1].split(";")[0]
    assert len(digest) == 64 and int(digest, 16) >= 0
    source = a.find("NotoSans-Bold.ttf")
    assert source is not None
    shutil.copy(source, tmp_path / "Brand.ttf")
    branded = FontSet(brand(tmp_path, headline=Path("Brand.ttf")))
    assert branded.fingerprint() != a.fingerprint()
    assert "Brand.ttf=" + digest in branded.fingerprint()


def test_loaded_fonts_are_cached(fonts: FontSet) -> None:
    choice = fonts.for_text("Hello", "headline")
    assert choice.load(40) is choice.load(40)
    assert choice.load(40) is not choice.load(41)


def test_builtin_font_is_the_last_resort() -> None:
    empty = FontSet(dirs=[])
    choice = empty.for_text("Hello", "headline")
    assert choice == FontChoice(None)
    assert choice.name == "pillow-default"
    assert choice.load(30).getlength("Hello") > 0


def test_merged_script_faces_are_reproducible(fonts: FontSet) -> None:
    """Merged faces are cached on disk between processes, so merging must not depend on
    when it ran (fontTools stamps 'now' into the head table unless told otherwise)."""
    require(fonts, "NotoSansHebrew-Regular.ttf", "NotoSans-Regular.ttf")
    from bildwerk.fonts import _merge

    script, latin = fonts.find("NotoSansHebrew-Regular.ttf"), fonts.find("NotoSans-Regular.ttf")
    assert script is not None and latin is not None
    assert _merge(script, latin) == _merge(script, latin)
