"""Brief and brand loading: valid files load, every mistake names file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from bildwerk.config.brand import load_brand
from bildwerk.config.brief import load_brief, resolve_channels
from bildwerk.errors import ConfigError

GOOD = """\
campaign: spring
locales:
  en-US: {headline: Hello, cta: Buy}
  he-IL: {headline: שלום}
channels: [instagram_feed, {name: leaderboard, width: 728, height: 90},
           {preset: web_hero, overrides: {byte_budget: {avif: 150000}}}]
prompt:
  template: "a {product} on {surface}"
  slots:
    product: [mug]
    surface: [wood, stone]
"""


def write(tmp_path: Path, text: str | bytes, name: str = "brief.yaml") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def error_for(tmp_path: Path, text: str | bytes) -> ConfigError:
    path = write(tmp_path, text)

    def load() -> None:
        brief, doc = load_brief(path)
        resolve_channels(brief, doc)

    with pytest.raises(ConfigError) as info:
        load()
    return info.value


def test_good_brief_loads_with_presets_custom_and_overrides(tmp_path: Path) -> None:
    brief, doc = load_brief(write(tmp_path, GOOD))
    channels = resolve_channels(brief, doc)
    assert [c.name for c in channels] == ["instagram_feed", "leaderboard", "web_hero"]
    assert (channels[0].width, channels[0].height) == (1080, 1350)
    assert channels[2].byte_budget["avif"] == 150_000 and channels[2].lcp
    assert brief.direction("he-IL") == "rtl" and brief.direction("en-US") == "ltr"
    assert len(brief.sha256) == 64
    assert brief.prompt.slot_names() == ["product", "surface"]


def test_template_hash_changes_with_template(tmp_path: Path) -> None:
    a, _ = load_brief(write(tmp_path, GOOD, "a.yaml"))
    b, _ = load_brief(write(tmp_path, GOOD.replace("a {product}", "one {product}"), "b.yaml"))
    assert a.prompt.sha256 != b.prompt.sha256


def test_malformed_yaml_names_line(tmp_path: Path) -> None:
    err = error_for(
        tmp_path,
        GOOD.replace("  en-US: {headline: Hello, cta: Buy}", "  en-US: {headline: Hello, cta: Buy"),
    )
    assert "malformed YAML" in str(err) and err.line is not None and err.line >= 3


def test_unknown_key_names_field_and_line(tmp_path: Path) -> None:
    err = error_for(tmp_path, GOOD + "colour_scheme: dark\n")
    assert err.field == "colour_scheme" and err.line == 12
    assert "unknown key" in str(err) and "brief.yaml:12" in str(err)


def test_wrong_type(tmp_path: Path) -> None:
    err = error_for(tmp_path, GOOD + "seeds: {base: many}\n")
    assert err.field is not None and err.field.startswith("seeds")
    assert err.line == 12


def test_slot_without_values(tmp_path: Path) -> None:
    err = error_for(
        tmp_path, GOOD.replace("a {product} on {surface}", "a {product} on {surface} in {season}")
    )
    assert "season" in str(err) and err.field == "prompt.template" and err.line == 8


def test_empty_slot_list(tmp_path: Path) -> None:
    err = error_for(tmp_path, GOOD.replace("surface: [wood, stone]", "surface: []"))
    assert "is empty" in str(err) and err.field == "prompt.slots.surface" and err.line == 11


def test_unused_slot(tmp_path: Path) -> None:
    err = error_for(tmp_path, GOOD + "    colour: [red]\n".replace("    ", "    ", 1))
    assert "colour" in str(err)


def test_unknown_channel_preset(tmp_path: Path) -> None:
    err = error_for(tmp_path, GOOD.replace("[instagram_feed,", "[tiktok_feed,"))
    assert "unknown channel preset 'tiktok_feed'" in str(err)
    assert err.field == "channels.0" and err.line == 5
    assert "instagram_story" in str(err)  # the hint lists the presets


def test_not_utf8(tmp_path: Path) -> None:
    err = error_for(
        tmp_path, GOOD.replace("Hello", "Caf\u00e9").encode("latin-1", errors="replace")
    )
    assert "not valid UTF-8" in str(err) and err.line == 3


def test_duplicate_key(tmp_path: Path) -> None:
    err = error_for(tmp_path, GOOD + "campaign: again\n")
    assert "appears twice" in str(err) and err.line == 12


def test_segment_narrowing_to_unknown_value(tmp_path: Path) -> None:
    err = error_for(tmp_path, GOOD + "segments:\n  - id: x\n    slots: {surface: [glass]}\n")
    assert err.field == "segments.0.slots.surface" and "glass" in str(err)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_brief(tmp_path / "nope.yaml")


def test_brand_palette_must_be_hex(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "name: X\npalette: {primary: '#112233', secondary: '#112233',"
        " accent: red, text: '#000000', background: '#ffffff'}\n",
        "brand.yaml",
    )
    with pytest.raises(ConfigError) as info:
        load_brand(path)
    assert info.value.field == "palette.accent" and "#RRGGBB" in str(info.value)
