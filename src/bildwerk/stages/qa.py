"""QA stage: every registered check on every creative, in the worker processes.

Checks are plugins (``bildwerk.checks`` entry points); each brand sets thresholds and
which checks run per channel. A check whose optional dependency is missing is recorded
as ``skip`` with the install hint, never silently dropped.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from PIL import Image

from bildwerk.checks.base import CheckContext, CheckResult, TextSpec
from bildwerk.checks.registry import check_names, get_check
from bildwerk.config.brand import BrandKit
from bildwerk.config.channels import Channel
from bildwerk.errors import MissingExtraError
from bildwerk.geometry import Box, Layout
from bildwerk.scripts import script_of
from bildwerk.stages.work import load_rgba


@dataclass(frozen=True)
class QATask:
    job_key: str
    master_path: Path
    scene_path: Path | None
    channel: Channel
    brand: BrandKit
    layout: Layout | None
    locale: str | None
    direction: str
    texts: tuple[dict[str, Any], ...]
    logo_box: tuple[int, int, int, int] | None
    logo_path: Path | None
    product_box: tuple[int, int, int, int] | None
    prompt: str = ""
    negative_prompt: str = ""
    people: Literal["allowed", "forbidden"] = "allowed"
    model_release: bool = False
    ai_generated: bool = False
    guard: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class QAOutput:
    job_key: str
    checks: list[CheckResult]
    phash: int | None
    colour: int | None
    ms: dict[str, float] = field(default_factory=dict)


def text_specs(texts: tuple[dict[str, Any], ...]) -> tuple[TextSpec, ...]:
    """Compose's recorded text runs as the checks' TextSpec."""
    return tuple(
        TextSpec(
            role=t["role"],
            text=t["text"],
            box=Box(*t["box"]),
            color=t["color"],
            background=t.get("background"),
            font_size=int(t["font_size"]),
            script=script_of(t["text"]),
            plate=Box(*t["plate"]) if t.get("plate") else None,
        )
        for t in texts
    )


def run_checks(image: Image.Image, task: QATask) -> tuple[list[CheckResult], dict[str, float]]:
    scene = None
    if task.scene_path is not None:
        with Image.open(task.scene_path) as im:
            scene = im.convert("RGB")
    results: list[CheckResult] = []
    timings: dict[str, float] = {}
    for name in check_names():
        policy = task.brand.qa.for_check(name, task.channel.name)
        if not policy.enabled:
            continue
        context = CheckContext(
            channel=task.channel,
            brand=task.brand,
            layout=task.layout,
            locale=task.locale,
            direction=task.direction,
            texts=text_specs(task.texts),
            logo_box=Box(*task.logo_box) if task.logo_box else None,
            logo=load_rgba(task.logo_path),
            product_box=Box(*task.product_box) if task.product_box else None,
            scene=scene,
            prompt=task.prompt,
            negative_prompt=task.negative_prompt,
            people=task.people,
            model_release=task.model_release,
            ai_generated=task.ai_generated,
            guard=task.guard,
            params=policy.params,
        )
        started = time.perf_counter()
        try:
            result = get_check(name).run(image, context)
        except (MissingExtraError, ImportError) as exc:
            result = CheckResult(name, "skip", None, f"not run: {exc}".splitlines()[0])
        timings[name] = (time.perf_counter() - started) * 1000
        results.append(result)
    return results, timings


def qa_creative(task: QATask) -> QAOutput:
    from bildwerk.dedup import hash_image

    with Image.open(task.master_path) as im:
        image = im.convert("RGB")
    results, timings = run_checks(image, task)
    try:
        hashes = hash_image(image)
    except MissingExtraError as exc:
        results.append(CheckResult("duplicate", "skip", None, str(exc).splitlines()[0]))
        return QAOutput(task.job_key, results, None, None, timings)
    return QAOutput(task.job_key, results, hashes.phash, hashes.colour, timings)
