"""Plan stage: deterministic keys, coverage of every slot value under a budget."""

from __future__ import annotations

from pathlib import Path

import pytest

from bildwerk.config.brand import BrandKit, Palette
from bildwerk.config.brief import load_brief, resolve_channels
from bildwerk.errors import ConfigError
from bildwerk.stages.plan import make_plan

BRAND = BrandKit(
    name="Acme",
    palette=Palette(
        primary="#112233",
        secondary="#445566",
        accent="#ff6600",
        text="#111111",
        background="#fafafa",
    ),
)

BRIEF = """\
campaign: plan-test
segments: [{{id: young}}, {{id: old, slots: {{colour: [red]}}}}]
locales:
  en-US: {{headline: Hi}}
  ar-AE: {{headline: مرحبا}}
channels: [instagram_feed, web_hero, og_image]
prompt:
  template: "{{thing}} in {{colour}} at {{place}}"
  slots:
    thing: [cup, bowl, vase]
    colour: [red, blue]
    place: [beach, city, forest]
seeds: {{base: 1, count: 2}}
budget: {{max_variants: {budget}, strategy: {strategy}, seed: 3}}
"""


def plan_for(tmp_path: Path, budget: int = 48, strategy: str = "fractional", name: str = "b.yaml"):  # type: ignore[no-untyped-def]
    path = tmp_path / name
    path.write_text(BRIEF.format(budget=budget, strategy=strategy), encoding="utf-8")
    brief, doc = load_brief(path)
    return make_plan(brief, BRAND, resolve_channels(brief, doc), doc=doc)


def test_same_brief_same_keys(tmp_path: Path) -> None:
    a = plan_for(tmp_path, name="a.yaml")
    b = plan_for(tmp_path, name="b.yaml")
    assert [j.key for j in a.jobs] == [j.key for j in b.jobs]
    assert len({j.key for j in a.jobs}) == len(a.jobs)


def test_full_matrix_counts(tmp_path: Path) -> None:
    plan = plan_for(tmp_path, budget=10_000)
    # young: 3*2*3 combos * 2 seeds = 36; old: 3*1*3*2 = 18; × 3 channels × 2 locales
    assert plan.full_matrix == (36 + 18) * 3 * 2
    assert len(plan.jobs) == plan.full_matrix and plan.strategy == "full"


def test_fractional_design_covers_every_value_and_respects_budget(tmp_path: Path) -> None:
    plan = plan_for(tmp_path, budget=24)
    assert plan.strategy == "fractional" and len(plan.jobs) <= 24
    seen = {(k, v) for j in plan.jobs for k, v in j.slots.items()}
    for thing in ("cup", "bowl", "vase"):
        assert ("thing", thing) in seen
    for place in ("beach", "city", "forest"):
        assert ("place", place) in seen
    assert ("colour", "blue") in seen
    # every scene appears in every locale, so localised creatives share visuals
    by_scene: dict[tuple[str, str, str], set[str]] = {}
    for j in plan.jobs:
        by_scene.setdefault((j.scene.key, j.segment, j.channel.name), set()).add(j.locale)
    assert all(locales == {"en-US", "ar-AE"} for locales in by_scene.values())
    # segment narrowing holds
    assert all(j.slots["colour"] == "red" for j in plan.jobs if j.segment == "old")
    # counts per cell are balanced
    counts = plan.counts("channel")
    assert max(counts.values()) - min(counts.values()) <= 4


def test_budget_too_small_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        plan_for(tmp_path, budget=4)
    assert info.value.field == "budget.max_variants" and info.value.line == 14


def test_key_changes_with_copy_and_seed(tmp_path: Path) -> None:
    base = {j.key for j in plan_for(tmp_path, budget=10_000).jobs}
    path = tmp_path / "c.yaml"
    path.write_text(
        BRIEF.format(budget=10_000, strategy="full").replace("headline: Hi", "headline: Hey")
    )
    brief, doc = load_brief(path)
    changed = {j.key for j in make_plan(brief, BRAND, resolve_channels(brief, doc)).jobs}
    assert len(base & changed) == len(base) // 2  # only the ar-AE half is unchanged
    other = BRAND.model_copy(
        update={"palette": BRAND.palette.model_copy(update={"accent": "#00ff00"})}
    )
    recoloured = {j.key for j in make_plan(brief, other, resolve_channels(brief, doc)).jobs}
    assert not recoloured & changed


def test_scene_shared_across_locales_but_not_channels(tmp_path: Path) -> None:
    plan = plan_for(tmp_path, budget=10_000)
    scenes = plan.scenes()
    assert len(scenes) == 36 * 3  # shared across locales and segments, not channels
    sizes = {(s.width, s.height) for s in scenes.values()}
    assert sizes == {(1080, 1350), (1920, 1080), (1200, 630)}


def test_full_strategy_over_budget_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="full matrix"):
        plan_for(tmp_path, budget=24, strategy="full")
