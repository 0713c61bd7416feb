"""Issue 10 (items 7 and 10): a brief is refused when it is read, not half-way through a
publish — locale keys are BCP 47 tags, copy has no control or bidi characters, and
channel errors name the field and the bound."""

from __future__ import annotations

from pathlib import Path

import pytest

from bildwerk.config.brief import load_brief, resolve_channels
from bildwerk.errors import ConfigError

BRIEF = """\
campaign: spring
locales:
  {locale}: {{headline: {headline}, cta: Buy}}
channels: [{channels}]
prompt:
  template: "a mug"
"""


def load(tmp_path: Path, **kw: str) -> None:
    values = {"locale": "en-US", "headline": "Hello", "channels": "instagram_feed", **kw}
    path = tmp_path / "brief.yaml"
    path.write_text(BRIEF.format(**values), encoding="utf-8")
    brief, doc = load_brief(path)
    resolve_channels(brief, doc)


@pytest.mark.parametrize("locale", ['"../../etc"', '""', "en_US", '"de DE"', "e"])
def test_locale_must_be_a_bcp47_tag(tmp_path: Path, locale: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, locale=locale)
    err = info.value
    assert err.line == 3 and err.field is not None and err.field.startswith("locales.")
    assert "BCP 47" in str(err) and "[key]" not in str(err)


@pytest.mark.parametrize("locale", ["en", "de-DE", "zh-Hant-TW", "es-419", "sr-Latn-RS"])
def test_wellformed_locales_load(tmp_path: Path, locale: str) -> None:
    load(tmp_path, locale=locale)


@pytest.mark.parametrize(
    ("headline", "shown"),
    [
        ('"\\u202e\\u202e\\u202e\\u202e\\u202e gnp.exe"', "U+202E"),
        ('"a \\u2067b\\u2069"', "U+2067"),
        ('"a\\u202ab"', "U+202A"),
        ('"nul\\0here"', "U+0000"),
        ('"bell\\a"', "U+0007"),
    ],
)
def test_copy_with_control_or_bidi_characters_is_refused(
    tmp_path: Path, headline: str, shown: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, headline=headline)
    assert info.value.field == "locales.en-US.headline" and info.value.line == 3
    assert shown in str(info.value)


def test_segment_copy_override_is_checked_too(tmp_path: Path) -> None:
    path = tmp_path / "brief.yaml"
    path.write_text(
        BRIEF.format(locale="en", headline="Hi", channels="instagram_feed")
        + 'segments:\n  - id: a\n    copy:\n      en: {cta: "x\\u202ey"}\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as info:
        load_brief(path)
    assert info.value.field == "segments.0.copy.en.cta" and info.value.line == 10


def test_plain_rtl_copy_and_newlines_load(tmp_path: Path) -> None:
    load(tmp_path, locale="he-IL", headline='"שלום\\nעולם"')


def test_channel_size_error_names_field_and_bound(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, channels="{name: big, width: 9000, height: 100}")
    text = str(info.value)
    assert info.value.field == "channels.0.width" and info.value.line == 4
    assert "8192" in text and "9000" in text and "validation error" not in text


def test_channel_override_error_names_override_and_bound(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, channels="{preset: web_hero, overrides: {density: 5}}")
    assert info.value.field == "channels.0.overrides.density"
    assert "less than or equal to 3" in str(info.value) and "validation error" not in str(
        info.value
    )


def test_campaign_name_is_checked_like_copy(tmp_path: Path) -> None:
    path = tmp_path / "brief.yaml"
    path.write_text(
        BRIEF.format(locale="en", headline="Hi", channels="instagram_feed")
        + 'name: "Sale\\u202egnp.exe"\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as info:
        load_brief(path)
    assert info.value.field == "name" and "U+202E" in str(info.value)
