"""Delivery profiles: built-ins per preset, changes from bildwerk.yaml, and errors that
name the profile field or the channel that names an unknown profile."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from bildwerk.config.brief import load_brief, resolve_channels
from bildwerk.config.channels import PRESETS
from bildwerk.config.delivery import BUILTIN, profiles
from bildwerk.config.settings import Settings
from bildwerk.errors import ConfigError
from bildwerk.inputs import _delivery


def test_presets_name_builtin_profiles_and_public_is_lean() -> None:
    assert {c.delivery for c in PRESETS.values()} <= set(BUILTIN)
    assert PRESETS["review_preview"].delivery == "internal"
    assert PRESETS["display_mrec"].delivery == "ads"
    assert PRESETS["web_hero"].delivery == "public"
    public = BUILTIN["public"]
    assert not public.generation_record and public.c2pa == "remote"
    assert public.ingredient == "hash" and public.watermark.min_width > 0
    assert BUILTIN["internal"].generation_record and BUILTIN["internal"].c2pa == "embedded"


def test_workspace_changes_only_the_fields_given_and_new_profiles_start_from_public() -> None:
    got = Settings(
        delivery={"public": {"c2pa": "off", "watermark": {"min_width": 1920}}, "print": {}}
    ).delivery_profiles()
    assert got["public"].c2pa == "off" and got["public"].watermark.min_width == 1920
    assert got["public"].watermark.enabled and got["public"].ssim_target == 0.97
    assert got["print"] == BUILTIN["public"]
    assert got["internal"] == BUILTIN["internal"]
    assert profiles() == BUILTIN


@pytest.mark.parametrize(
    ("delivery", "named"),
    [
        ({"public": {"c2pa": "sidecar"}}, "public.c2pa"),
        ({"web2": {"watermark": {"min_width": -1}}}, "web2.watermark.min_width"),
        ({"public": {"ssim_target": 2}}, "public.ssim_target"),
        ({"Bad Name": {}}, "'Bad Name'"),
    ],
)
def test_a_wrong_profile_field_is_named(delivery: dict[str, object], named: str) -> None:
    with pytest.raises(ValidationError) as info:
        Settings.model_validate({"delivery": delivery})
    assert named in str(info.value)


def test_a_channel_naming_an_unknown_profile_is_refused_at_its_line(tmp_path: Path) -> None:
    path = tmp_path / "brief.yaml"
    path.write_text(
        "campaign: spring\nlocales:\n  en-US: {headline: Hi, cta: Buy}\n"
        "channels:\n  - instagram_feed\n  - {preset: web_hero, overrides: {delivery: webb}}\n"
        "prompt:\n  template: a mug\n",
        encoding="utf-8",
    )
    brief, doc = load_brief(path)
    channels = resolve_channels(brief, doc)
    with pytest.raises(ConfigError) as info:
        _delivery(channels, dict(BUILTIN), doc)
    assert info.value.field == "channels.1.delivery" and info.value.line == 6
    assert "webb" in str(info.value) and "public" in (info.value.hint or "")
    assert _delivery(channels[:1], dict(BUILTIN), doc) == {"instagram_feed": BUILTIN["public"]}
