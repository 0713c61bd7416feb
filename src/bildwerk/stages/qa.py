"""QA stage: every registered check on every creative, in the worker processes.

Checks are plugins (``bildwerk.checks`` entry points); each brand sets thresholds and
which checks run per channel. A check that could not run — its optional dependency is
missing, its model does not load, it raised — is recorded as ``unchecked`` with the
reason (and the install hint), never as a pass: the gate sends the creative to a person,
or rejects it when the brand marks the check required.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Literal

from PIL import Image

from bildwerk.blobs.base import BlobStore, BlobStoreSpec
from bildwerk.checks.base import CheckContext, CheckResult, TextSpec
from bildwerk.checks.registry import check_names, get_check
from bildwerk.config.brand import BrandKit
from bildwerk.config.channels import Channel
from bildwerk.errors import MissingExtraError
from bildwerk.geometry import Box, Layout
from bildwerk.records import ComposedCreative, JobSpec, SceneRecord, TextBlock
from bildwerk.scripts import script_of
from bildwerk.stages.work import load_rgba


@dataclass(frozen=True)
class QATask:
    job_key: str
    master_sha256: str
    scene_sha256: str | None
    channel: Channel
    brand: BrandKit
    layout: Layout | None
    locale: str | None
    direction: str
    texts: tuple[TextBlock, ...]
    logo_box: tuple[int, int, int, int] | None
    logo_sha256: str | None
    product_box: tuple[int, int, int, int] | None
    prompt: str = ""
    negative_prompt: str = ""
    people: Literal["allowed", "forbidden"] = "allowed"
    model_release: bool = False
    ai_generated: bool = False
    guard: tuple[dict[str, Any], ...] = ()
    store: BlobStoreSpec | None = None

    def blobs(self) -> BlobStore:
        if self.store is None:
            raise ValueError("a QA task needs a blob store spec")
        return self.store.opened()


@dataclass(frozen=True)
class QAOutput:
    job_key: str
    checks: list[CheckResult]
    phash: int | None
    colour: int | None
    ms: dict[str, float] = field(default_factory=dict)


def qa_task(
    spec: JobSpec,
    composed: ComposedCreative,
    scene: SceneRecord,
    *,
    brand: BrandKit,
    master_sha256: str,
    scene_sha256: str | None,
    logo_sha256: str | None,
    store: BlobStoreSpec,
) -> QATask:
    """The QA input of one creative, built only from its records: the run and
    ``bildwerk qa`` build it the same way, so a re-run checks under the same policy."""
    return QATask(
        job_key=spec.job_key,
        master_sha256=master_sha256,
        scene_sha256=scene_sha256,
        channel=spec.channel,
        brand=brand,
        layout=scene.request.layout,
        locale=spec.locale,
        direction=spec.direction,
        texts=composed.texts,
        logo_box=composed.logo_box,
        logo_sha256=logo_sha256,
        product_box=scene.product_box,
        prompt=spec.prompt,
        negative_prompt=spec.negative_prompt,
        people=spec.people,
        model_release=spec.model_release,
        ai_generated=spec.backend != "studio",
        guard=(dict(spec.guard),) if spec.guard else (),
        store=store,
    )


def text_specs(texts: tuple[TextBlock, ...]) -> tuple[TextSpec, ...]:
    """Compose's recorded text runs as the checks' TextSpec."""
    return tuple(
        TextSpec(
            role=t.role,
            text=t.text,
            box=Box(*t.box),
            color=t.color,
            background=t.background,
            font_size=t.font_size,
            script=script_of(t.text),
            plate=Box(*t.plate) if t.plate else None,
        )
        for t in texts
    )


def unchecked(name: str, exc: BaseException) -> CheckResult:
    """A check that could not run: the reason names the cause and, for a missing extra,
    the install command; a bug keeps the end of its traceback as evidence."""
    if isinstance(exc, MissingExtraError):
        return CheckResult(name, "unchecked", None, f"not run: {exc}".replace("\n", " "))
    if isinstance(exc, ImportError):
        reason = f"not run: {exc}; install the QA models with: pip install 'bildwerk[qa]'"
        return CheckResult(name, "unchecked", None, reason)
    tb = traceback.format_exception(type(exc), exc, exc.__traceback__)
    return CheckResult(
        name,
        "unchecked",
        None,
        f"not run: the check raised {type(exc).__name__}: {exc}",
        {"traceback": "".join(tb[-3:])[-2000:]},
    )


def run_checks(image: Image.Image, task: QATask) -> tuple[list[CheckResult], dict[str, float]]:
    blobs = task.blobs()
    scene = None
    if task.scene_sha256 is not None:
        with Image.open(blobs.local_path(task.scene_sha256)) as im:
            scene = im.convert("RGB")
    logo = load_rgba(blobs.local_path(task.logo_sha256)) if task.logo_sha256 else None
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
            logo=logo,
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
        except Exception as exc:  # fail closed: recorded as unchecked, never a pass
            result = unchecked(name, exc)
        timings[name] = (time.perf_counter() - started) * 1000
        results.append(result)
    return results, timings


def qa_creative(task: QATask) -> QAOutput:
    from bildwerk.dedup import hash_image

    with Image.open(task.blobs().local_path(task.master_sha256)) as im:
        image = im.convert("RGB")
    results, timings = run_checks(image, task)
    try:
        hashes = hash_image(image)
    except Exception as exc:  # the gate records the duplicate check as unchecked
        results.append(unchecked("duplicate", exc))
        return QAOutput(task.job_key, results, None, None, timings)
    return QAOutput(task.job_key, results, hashes.phash, hashes.colour, timings)
