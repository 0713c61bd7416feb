"""Plan stage: expand a brief into jobs with content-hash keys.

The same brief, brand and inputs always give the same jobs with the same keys, so a
re-run finds finished jobs in the catalog and skips them. When the full variant matrix
exceeds the budget, a seeded fractional design picks scene combinations per
(segment, channel) that still cover every slot value; every picked scene is rendered in
every locale so localised creatives stay visually identical.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NoReturn

from bildwerk.backends.base import SceneRequest
from bildwerk.config.brand import BrandKit
from bildwerk.config.brief import Brief, Copy, Segment
from bildwerk.config.channels import Channel
from bildwerk.config.yamlfile import YamlDoc
from bildwerk.errors import ConfigError
from bildwerk.geometry import plan_layout
from bildwerk.guard import GuardPolicy, check_prompt, enforce_negative
from bildwerk.hashing import content_key
from bildwerk.records import JobSpec
from bildwerk.stages.design import sampled_rows

PIPELINE_VERSION = "1"

#: Most jobs one plan may hold: a brief without a budget, or with a larger one, whose
#: matrix is bigger is refused before anything is enumerated.
MAX_PLAN_JOBS = 100_000

# ((slot, value), ...), seed, repeat: how many times this seed value came before in the
# brief's seed list. A repeated seed is kept as its own variant (and then caught by the
# duplicate check) rather than silently merged.
Combo = tuple[tuple[tuple[str, str], ...], int, int]


@dataclass(frozen=True)
class InputFile:
    """A cleaned input image (product cutout or logo) identified by content."""

    path: Path
    sha256: str


@dataclass(frozen=True)
class Job:
    """One creative to produce: a scene, composed for one channel, segment and locale."""

    key: str
    id: str
    position: int
    segment: str
    locale: str
    direction: str
    channel: Channel
    copy: Copy
    scene: SceneRequest
    backend: str
    model: str | None
    guard: dict[str, Any] = field(default_factory=dict)
    people: Literal["allowed", "forbidden"] = "allowed"
    model_release: bool = False

    @property
    def refused(self) -> bool:
        return self.guard.get("verdict") == "fail"

    @property
    def slots(self) -> dict[str, str]:
        return dict(self.scene.slots)

    def spec(self) -> JobSpec:
        """The typed record the catalog and the manifest keep for this job."""
        return JobSpec(
            id=self.id,
            job_key=self.key,
            scene_key=self.scene.key,
            seed=self.scene.seed,
            slots=self.slots,
            prompt=self.scene.prompt,
            negative_prompt=self.scene.negative_prompt,
            segment=self.segment,
            locale=self.locale,
            direction="rtl" if self.direction == "rtl" else "ltr",
            channel=self.channel,
            backend=self.backend,
            model=self.model,
            params={
                "style": self.scene.style,
                **dict(self.scene.params),
                "width": self.scene.width,
                "height": self.scene.height,
            },
            copy=self.copy,
            guard=self.guard,
            people=self.people,
            model_release=self.model_release,
        )


@dataclass
class Plan:
    jobs: list[Job]
    full_matrix: int
    strategy: str
    channels: list[Channel]
    warnings: list[str] = field(default_factory=list)

    def scenes(self) -> dict[str, SceneRequest]:
        """Distinct scenes by key, in first-use order."""
        out: dict[str, SceneRequest] = {}
        for job in self.jobs:
            out.setdefault(job.scene.key, job.scene)
        return out

    def counts(self, by: str) -> dict[str, int]:
        out: dict[str, int] = {}
        for job in self.jobs:
            value = job.channel.name if by == "channel" else str(getattr(job, by))
            out[value] = out.get(value, 0) + 1
        return out


def _pools(brief: Brief, segment: Segment) -> list[tuple[str, ...]]:
    return [segment.slots.get(n, brief.prompt.slots[n]) for n in brief.prompt.slot_names()]


def _seeds(brief: Brief) -> tuple[list[int], list[int]]:
    """Seed values and, for each, how many times it came before in the list."""
    seeds = brief.seed_values()
    return seeds, [seeds[:i].count(seed) for i, seed in enumerate(seeds)]


def _all_combos(brief: Brief, segment: Segment) -> list[Combo]:
    """Every combination of one segment, in matrix order (only used within the budget)."""
    names = brief.prompt.slot_names()
    seeds, repeats = _seeds(brief)
    return [
        (tuple(zip(names, values, strict=True)), seed, repeat)
        for values in itertools.product(*_pools(brief, segment))
        for seed, repeat in zip(seeds, repeats, strict=True)
    ]


def _sampled_combos(brief: Brief, segment: Segment, n: int, rng: random.Random) -> list[Combo]:
    """``n`` distinct combinations of one segment from a seeded fractional design whose
    leading rows cover every slot value (see :mod:`bildwerk.stages.design`)."""
    names = brief.prompt.slot_names()
    pools = _pools(brief, segment)
    seeds, repeats = _seeds(brief)
    sizes = [len(pool) for pool in pools] + [len(seeds)]
    out: list[Combo] = []
    for row in sampled_rows(sizes, n, rng, covered=len(pools)):
        values = tuple((name, pool[i]) for name, pool, i in zip(names, pools, row, strict=False))
        out.append((values, seeds[row[-1]], repeats[row[-1]]))
    return out


def _select(
    brief: Brief, channels: Sequence[Channel], doc: YamlDoc | None
) -> tuple[list[tuple[Segment, Channel, Combo]], int, str]:
    """Pick (segment, channel, combination) triples; the matrix is counted, not built, so
    time and memory grow with the budget, not with the matrix."""
    n_seeds = len(brief.seed_values())
    per_segment = {
        seg.id: math.prod(len(pool) for pool in _pools(brief, seg)) * n_seeds
        for seg in brief.segments
    }
    n_locales = len(brief.locales)
    full = sum(per_segment.values()) * len(channels) * n_locales
    budget = brief.budget.max_variants
    cells = [(seg, ch) for seg in brief.segments for ch in channels]
    if (budget is None or full <= budget) and full <= MAX_PLAN_JOBS:
        combos = {seg.id: _all_combos(brief, seg) for seg in brief.segments}
        return [(seg, ch, c) for seg, ch in cells for c in combos[seg.id]], full, "full"
    if budget is None or budget > MAX_PLAN_JOBS:
        _budget_error(
            brief,
            doc,
            f"the full matrix of {full} variants is over the limit of {MAX_PLAN_JOBS} "
            "variants per plan",
            f"set budget.max_variants to at most {MAX_PLAN_JOBS}, "
            "or reduce slots, channels or locales",
        )
    if brief.budget.strategy == "full":
        _budget_error(brief, doc, need=f"{full} for the full matrix, or use strategy: fractional")
    scenes_budget = budget // n_locales
    quota, extra = divmod(scenes_budget, len(cells))
    if quota == 0:
        _budget_error(
            brief, doc, need=f"{len(cells) * n_locales} (one per segment × channel × locale)"
        )
    rng = random.Random(f"bildwerk-plan:{brief.budget.seed}")
    bonus = set(rng.sample(range(len(cells)), extra))
    picks: list[tuple[Segment, Channel, Combo]] = []
    for seg in brief.segments:
        takes = [
            (i, ch, min(quota + (1 if i in bonus else 0), per_segment[seg.id]))
            for i, (s, ch) in enumerate(cells)
            if s.id == seg.id
        ]
        wanted = min(sum(take for _, _, take in takes), per_segment[seg.id])
        order = _sampled_combos(brief, seg, wanted, rng)
        offset = 0
        for _, ch, take in takes:
            picks.extend((seg, ch, order[(offset + k) % len(order)]) for k in range(take))
            offset += take
    needed = {(n, v) for seg in brief.segments for n, v in _pairs(brief, seg)}
    got = {pair for _, _, c in picks for pair in c[0]}
    if needed - got:
        missing = ", ".join(f"{n}={v}" for n, v in sorted(needed - got))
        _budget_error(brief, doc, need=f"more (not covered: {missing})")
    return picks, full, "fractional"


def _pairs(brief: Brief, segment: Segment) -> list[tuple[str, str]]:
    names = brief.prompt.slot_names()
    return [(n, v) for n, pool in zip(names, _pools(brief, segment), strict=True) for v in pool]


def _budget_error(
    brief: Brief,
    doc: YamlDoc | None,
    message: str | None = None,
    hint: str | None = None,
    *,
    need: str | None = None,
) -> NoReturn:
    path = doc.path if doc else brief.root / "brief.yaml"
    raise ConfigError(
        path,
        message or f"budget of {brief.budget.max_variants} variants is too small",
        line=doc.line_of(("budget", "max_variants")) if doc else None,
        field="budget.max_variants",
        hint=hint or f"raise it to at least {need}, or reduce slots, channels or locales",
    )


def make_plan(
    brief: Brief,
    brand: BrandKit,
    channels: Sequence[Channel],
    *,
    doc: YamlDoc | None = None,
    products: Mapping[Path, InputFile] | None = None,
    fingerprints: Mapping[str, Any] | None = None,
    backend: tuple[str, str] = ("studio", "1"),
    model: str | None = None,
    model_sha256: str | None = None,
    guard: GuardPolicy | None = None,
    generation: Mapping[str, Mapping[str, Any]] | None = None,
) -> Plan:
    """Expand the brief into jobs. ``fingerprints`` holds everything else that decides the
    output (logo and font hashes, render settings, encoder versions) and enters each key."""
    products = products or {}
    guard = guard or GuardPolicy()
    picks, full, strategy = _select(brief, channels, doc)
    defaults = [d for d in (brand.default_negative, *guard.default_negatives) if d]
    negative = (
        enforce_negative(brief.prompt.negative, defaults) if defaults else (brief.prompt.negative)
    )
    verdicts: dict[str, dict[str, Any]] = {}
    palette = brand.palette.model_dump(exclude={"extra"})
    jobs: list[Job] = []
    for seg, ch, (pairs, seed, repeat) in picks:
        slots = dict(pairs)
        prompt = brief.prompt.render(slots)
        if prompt not in verdicts:
            verdicts[prompt] = (
                check_prompt(prompt, negative, forbidden=brand.forbidden_terms, policy=guard)
                .to_check()
                .to_json()
            )
        product_path = brief.product_for(slots)
        product = products.get(product_path) if product_path else None
        width, height = ch.master_size
        layout = plan_layout(
            width,
            height,
            ch.unsafe.model_copy(
                update={k: v * ch.density for k, v in ch.unsafe.model_dump().items()}
            ),
            brand.safe_area.margin,
        )
        scene_fields = {
            "pipeline": PIPELINE_VERSION,
            "backend": backend,
            "model": model,
            "model_sha256": model_sha256,
            "prompt": prompt,
            "negative": negative,
            "slots": slots,
            "seed": seed,
            **({"repeat": repeat} if repeat else {}),
            "size": [width, height],
            "layout": [layout.product.as_tuple(), layout.copy.as_tuple(), layout.logo.as_tuple()],
            "palette": palette,
            "style": brief.style.model_dump(),
            "product": product.sha256 if product else None,
        }
        gen = dict(generation.get(ch.name, {})) if generation else {}
        if gen:
            scene_fields["generation"] = gen
        scene_key = content_key(scene_fields)
        scene = SceneRequest(
            key=scene_key,
            prompt=prompt,
            negative_prompt=negative,
            slots=slots,
            seed=seed,
            width=width,
            height=height,
            palette=palette,
            layout=layout,
            style=brief.style.profile,
            params={**brief.style.params, **({"generation": gen} if gen else {})},
            product=product.path if product else None,
            product_sha256=product.sha256 if product else None,
        )
        for locale in brief.locales:
            copy = brief.copy_for(seg, locale)
            direction = brief.direction(locale)
            key = content_key(
                {
                    # a creative belongs to one campaign (its rights, approvals and pages);
                    # the scene above is shared by content across campaigns
                    "campaign": brief.campaign,
                    "scene": scene_key,
                    "segment": seg.id,  # the targeting dimension: one variant per segment
                    "channel": ch.model_dump(mode="json"),
                    "locale": locale,
                    "direction": direction,
                    "copy": copy.model_dump(),
                    "brand": {
                        "palette": brand.palette.model_dump(),
                        "fonts": str(brand.fonts),
                        "logo": brand.logo.model_dump(mode="json") if brand.logo else None,
                        "safe_area": brand.safe_area.model_dump(),
                    },
                    "fingerprints": dict(fingerprints or {}),
                }
            )
            jobs.append(
                Job(
                    key=key,
                    id="cr_" + key[:24],
                    position=len(jobs),
                    segment=seg.id,
                    locale=locale,
                    direction=direction,
                    channel=ch,
                    copy=copy,
                    scene=scene,
                    backend=backend[0],
                    model=model,
                    guard=verdicts[prompt],
                    people=brief.people,
                    model_release=brief.model_release,
                )
            )
    seen: set[str] = set()
    unique: list[Job] = []
    for job in jobs:
        if job.key not in seen:
            seen.add(job.key)
            unique.append(job)
    return Plan(jobs=unique, full_matrix=full, strategy=strategy, channels=list(channels))
