"""Planning costs O(budget), not O(matrix); creatives belong to one campaign (issue 10,
items 1 and 5)."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bildwerk.config.brief import load_brief, resolve_channels
from bildwerk.stages.design import sampled_rows
from bildwerk.stages.plan import MAX_PLAN_JOBS, make_plan
from tests.stages.test_plan import BRAND

SRC = Path(__file__).resolve().parents[2] / "src"


def big_brief(slots: int = 7, values: int = 10, budget: str = "max_variants: 48") -> str:
    """A brief whose matrix is ``values ** slots`` combinations (10**7 by default)."""
    names = [chr(ord("a") + i) for i in range(slots)]
    lines = [
        "campaign: big",
        "locales:",
        "  en-US: {headline: Hi}",
        "  de-DE: {headline: Hallo}",
        "channels: [og_image, instagram_feed]",
        "prompt:",
        '  template: "' + " ".join("{" + n + "}" for n in names) + '"',
        "  slots:",
        *(f"    {n}: [{', '.join(f'{n}{v}' for v in range(values))}]" for n in names),
        f"budget: {{{budget}}}",
    ]
    return "\n".join(lines) + "\n"


def plan_in_subprocess(brief: Path, *, address_space_mb: int = 1024) -> dict[str, object]:
    """Plan ``brief`` in a fresh interpreter under RLIMIT_AS and a timeout, so a plan that
    enumerates the matrix fails fast instead of taking the machine down."""
    code = textwrap.dedent(
        f"""\
        import json, resource, time
        limit = {address_space_mb} * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        from pathlib import Path
        from bildwerk.config.brief import load_brief, resolve_channels
        from bildwerk.errors import ConfigError
        from bildwerk.stages.plan import make_plan
        from tests.stages.test_plan import BRAND
        start = time.perf_counter()
        try:
            brief, doc = load_brief(Path({str(brief)!r}))
            plan = make_plan(brief, BRAND, resolve_channels(brief, doc), doc=doc)
        except ConfigError as exc:
            out = {{"error": exc.message, "hint": exc.hint, "field": exc.field, "line": exc.line}}
        else:
            out = {{
                "full": plan.full_matrix,
                "strategy": plan.strategy,
                "keys": [j.key for j in plan.jobs],
                "pairs": sorted({{f"{{k}}={{v}}" for j in plan.jobs for k, v in j.slots.items()}}),
            }}
        out["seconds"] = time.perf_counter() - start
        print(json.dumps(out))
        """
    )
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{SRC.parent}"}
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
        cwd=SRC.parent,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result: dict[str, object] = json.loads(proc.stdout)
    return result


def test_ten_million_combinations_plan_fast_in_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text(big_brief(), encoding="utf-8")
    first = plan_in_subprocess(path)
    assert first["full"] == 10**7 * 2 * 2 and first["strategy"] == "fractional"
    keys = first["keys"]
    assert isinstance(keys, list) and 0 < len(keys) <= 48 and len(set(keys)) == len(keys)
    assert first["seconds"] < 2  # type: ignore[operator]
    # every slot value is covered
    assert len(first["pairs"]) == 7 * 10  # type: ignore[arg-type]
    # deterministic across processes: the same brief gives the same jobs and keys
    assert plan_in_subprocess(path)["keys"] == keys


def test_full_strategy_is_refused_before_enumerating(tmp_path: Path) -> None:
    path = tmp_path / "full.yaml"
    path.write_text(big_brief(budget="max_variants: 48, strategy: full"), encoding="utf-8")
    out = plan_in_subprocess(path)
    assert out["field"] == "budget.max_variants" and out["line"] == 16
    assert str(out["error"]).endswith("budget.max_variants: budget of 48 variants is too small")
    assert "40000000 for the full matrix" in str(out["hint"])
    assert out["seconds"] < 2  # type: ignore[operator]


@pytest.mark.parametrize("budget", ["max_variants: 10000000", "seed: 1"])
def test_matrix_over_the_plan_limit_needs_a_budget(tmp_path: Path, budget: str) -> None:
    path = tmp_path / "nobudget.yaml"
    path.write_text(big_brief(budget=budget), encoding="utf-8")
    out = plan_in_subprocess(path)
    assert out["field"] == "budget.max_variants"
    assert f"over the limit of {MAX_PLAN_JOBS} variants per plan" in str(out["error"])


def test_sampled_design_covers_every_value_for_many_seeds(tmp_path: Path) -> None:
    for seed in range(20):
        path = tmp_path / f"s{seed}.yaml"
        path.write_text(
            big_brief(slots=4, values=12, budget=f"max_variants: 52, seed: {seed}"),
            encoding="utf-8",
        )
        brief, doc = load_brief(path)
        plan = make_plan(brief, BRAND, resolve_channels(brief, doc), doc=doc)
        assert plan.strategy == "fractional" and len(plan.jobs) <= 52
        seen = {(k, v) for j in plan.jobs for k, v in j.slots.items()}
        assert len(seen) == 4 * 12, seed
        # every scene in every locale
        by_scene: dict[tuple[str, str], set[str]] = {}
        for j in plan.jobs:
            by_scene.setdefault((j.scene.key, j.channel.name), set()).add(j.locale)
        assert all(locales == {"en-US", "de-DE"} for locales in by_scene.values())


def test_sampled_rows_are_distinct_covering_and_exhaustive() -> None:
    rows = sampled_rows([3, 5, 2, 4], 5, random.Random(1), covered=3)
    assert len(set(rows)) == 5
    for dim, size in enumerate([3, 5, 2]):
        assert {r[dim] for r in rows} == set(range(size))
    every = sampled_rows([3, 5, 2, 4], 1000, random.Random(2), covered=3)
    assert len(every) == 120 and len(set(every)) == 120
    again = sampled_rows([3, 5, 2, 4], 60, random.Random(2), covered=3)
    assert again == sampled_rows([3, 5, 2, 4], 60, random.Random(2), covered=3)
    assert len(set(again)) == 60
    assert sampled_rows([10] * 30, 4, random.Random(3), covered=30)  # 10**30: never listed


SAME_CONTENT = """\
campaign: {campaign}
locales:
  en-US: {{headline: Hi}}
channels: [og_image, instagram_feed]
prompt:
  template: "a {{thing}}"
  slots:
    thing: [cup, vase]
"""


def test_two_campaigns_with_the_same_content_share_scenes_not_creatives(
    tmp_path: Path,
) -> None:
    plans = []
    for campaign in ("spring", "autumn"):
        path = tmp_path / f"{campaign}.yaml"
        path.write_text(SAME_CONTENT.format(campaign=campaign), encoding="utf-8")
        brief, doc = load_brief(path)
        plans.append(make_plan(brief, BRAND, resolve_channels(brief, doc), doc=doc))
    a, b = plans
    assert len(a.jobs) == len(b.jobs) == 4
    assert not {j.key for j in a.jobs} & {j.key for j in b.jobs}
    assert not {j.id for j in a.jobs} & {j.id for j in b.jobs}
    assert [j.scene.key for j in a.jobs] == [j.scene.key for j in b.jobs]


def test_second_campaign_makes_its_own_creatives_from_the_shared_scenes(
    workspace_dir: Path, small_brief: Path
) -> None:
    from bildwerk import Workspace
    from bildwerk.catalog.models import Asset, Job

    ws = Workspace(workspace_dir)
    first = ws.run(small_brief, workers=1)
    other = small_brief.with_name("other.yaml")
    other.write_text(
        small_brief.read_text(encoding="utf-8").replace("small-test", "other-test"),
        encoding="utf-8",
    )
    second = ws.run(other, workers=1)
    assert first.failed == second.failed == 0
    assert second.cached == 0 and second.planned == first.planned
    with ws.db.session() as s:
        jobs = {(j.campaign_id, j.key): j for j in s.query(Job)}
        by_campaign: dict[str, set[str]] = {}
        scenes: dict[str, set[str]] = {}
        for (campaign, _), job in jobs.items():
            by_campaign.setdefault(campaign, set()).add(job.creative_id)
            scenes.setdefault(campaign, set()).add(job.scene_id)
        assert len(by_campaign) == 2
        first_ids, second_ids = by_campaign.values()
        assert not first_ids & second_ids  # creatives are never shared
        first_scenes, second_scenes = scenes.values()
        assert first_scenes == second_scenes  # the scene assets are
        assert s.query(Asset).filter(Asset.kind == "scene").count() == len(first_scenes)
