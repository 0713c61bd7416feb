"""The typed hand-offs of the line, as the catalog stores them.

Each record is frozen and versioned, with one ``to_json``/``from_json`` pair: stages hand
them to each other, the catalog keeps their JSON (``jobs.spec``, ``jobs.qa``,
``assets.meta``), and every reader — ``bildwerk qa``, ``reproduce``, the publisher, the
manifest — rebuilds stage inputs from them, never from string-keyed dicts. A record
written by a newer bildwerk is refused with a clear error instead of being half-read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from bildwerk.backends.base import SceneRequest
from bildwerk.checks.base import CheckResult
from bildwerk.config.brief import Copy
from bildwerk.config.channels import Channel
from bildwerk.errors import WorkspaceError

Box4 = tuple[int, int, int, int]
Direction = Literal["ltr", "rtl"]


def _version(data: Mapping[str, Any], kind: str, current: int) -> int:
    """Records before versioning count as version 1; newer ones are refused."""
    v = int(data.get("v", 1))
    if v > current:
        raise WorkspaceError(
            f"a {kind} record in the catalog has version {v}; this bildwerk reads up to {current}",
            hint="upgrade bildwerk to the version that wrote this catalog",
        )
    return v


def _box(value: Any) -> Box4 | None:
    if not value:
        return None
    x0, y0, x1, y1 = (int(v) for v in value)
    return (x0, y0, x1, y1)


# --- job spec ------------------------------------------------------------------------


@dataclass(frozen=True)
class JobSpec:
    """One planned creative: what decides it and the dimensions people filter on.

    ``people``/``model_release`` come from the brief and steer QA, so ``bildwerk qa``
    re-runs with the same policy the run had.
    """

    VERSION = 1

    id: str
    job_key: str
    scene_key: str
    seed: int
    slots: Mapping[str, str]
    prompt: str
    negative_prompt: str
    segment: str
    locale: str
    direction: Direction
    channel: Channel
    backend: str
    model: str | None
    params: Mapping[str, Any]
    copy: Copy
    guard: Mapping[str, Any] = field(default_factory=dict)
    people: Literal["allowed", "forbidden"] = "allowed"
    model_release: bool = False

    @property
    def channel_name(self) -> str:
        return self.channel.name

    @property
    def hero(self) -> bool:
        return bool(self.channel.hero or self.channel.lcp)

    @property
    def guard_check(self) -> CheckResult | None:
        """The prompt guard's verdict as a QA check (empty guard: none recorded)."""
        g = self.guard
        if not g:
            return None
        return CheckResult(
            str(g["name"]), g["verdict"], g.get("score"), g.get("reason"), g.get("evidence") or {}
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "v": self.VERSION,
            "id": self.id,
            "job_key": self.job_key,
            "scene_key": self.scene_key,
            "seed": self.seed,
            "slots": dict(self.slots),
            "prompt": self.prompt,
            "negative_prompt": self.negative_prompt,
            "segment": self.segment,
            "locale": self.locale,
            "direction": self.direction,
            "channel": self.channel.name,
            "channel_spec": self.channel.model_dump(mode="json"),
            "backend": self.backend,
            "model": self.model,
            "params": dict(self.params),
            "copy": self.copy.model_dump(),
            "guard": dict(self.guard),
            "people": self.people,
            "model_release": self.model_release,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> JobSpec:
        _version(data, "job spec", cls.VERSION)
        return cls(
            id=str(data["id"]),
            job_key=str(data["job_key"]),
            scene_key=str(data["scene_key"]),
            seed=int(data["seed"]),
            slots={str(k): str(v) for k, v in dict(data.get("slots") or {}).items()},
            prompt=str(data.get("prompt", "")),
            negative_prompt=str(data.get("negative_prompt", "")),
            segment=str(data.get("segment") or ""),
            locale=str(data.get("locale") or ""),
            direction="rtl" if data.get("direction") == "rtl" else "ltr",
            channel=Channel.model_validate(data["channel_spec"]),
            backend=str(data.get("backend") or "studio"),
            model=data.get("model"),
            params=dict(data.get("params") or {}),
            copy=Copy(**dict(data.get("copy") or {})),
            guard=dict(data.get("guard") or {}),
            people="forbidden" if data.get("people") == "forbidden" else "allowed",
            model_release=bool(data.get("model_release", False)),
        )


# --- scene ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SceneRecord:
    """A generated scene: the request that makes it again, and where its subject is."""

    VERSION = 1

    scene_key: str
    request: SceneRequest
    backend: str
    focal: tuple[float, float] = (0.5, 0.5)
    product_box: Box4 | None = None
    params: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "v": self.VERSION,
            "scene_key": self.scene_key,
            "focal": list(self.focal),
            "product_box": list(self.product_box) if self.product_box else None,
            "params": dict(self.params),
            "request": self.request.to_json(),
            "prompt": self.request.prompt,
            "seed": self.request.seed,
            "backend": self.backend,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SceneRecord:
        _version(data, "scene", cls.VERSION)
        if "request" not in data:
            raise WorkspaceError(
                "a scene was stored without its generation request",
                hint="re-run the brief with this version of bildwerk",
            )
        fx, fy = (float(v) for v in data.get("focal") or (0.5, 0.5))
        return cls(
            scene_key=str(data.get("scene_key") or data["request"]["key"]),
            request=SceneRequest.from_json(data["request"]),
            backend=str(data.get("backend") or "studio"),
            focal=(fx, fy),
            product_box=_box(data.get("product_box")),
            params=dict(data.get("params") or {}),
        )


# --- composed creative -----------------------------------------------------------------


@dataclass(frozen=True)
class TextBlock:
    """A text block the compose stage drew, in master pixels."""

    role: str
    text: str
    box: Box4
    color: str
    background: str | None
    font_size: int
    lines: int = 1
    plate: Box4 | None = None
    font: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "text": self.text,
            "box": list(self.box),
            "color": self.color,
            "background": self.background,
            "font_size": self.font_size,
            "lines": self.lines,
            "plate": list(self.plate) if self.plate else None,
            "font": self.font,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TextBlock:
        box = _box(data["box"])
        assert box is not None
        return cls(
            role=str(data["role"]),
            text=str(data["text"]),
            box=box,
            color=str(data["color"]),
            background=data.get("background"),
            font_size=int(data["font_size"]),
            lines=int(data.get("lines") or 1),
            plate=_box(data.get("plate")),
            font=data.get("font"),
        )


@dataclass(frozen=True)
class ComposedCreative:
    """What the brand overlay put where, and which brand kit did it."""

    VERSION = 1

    job_key: str
    channel: str
    segment: str
    locale: str
    texts: tuple[TextBlock, ...] = ()
    logo_box: Box4 | None = None
    brand_path: str = ""
    brand_sha256: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "v": self.VERSION,
            "job_key": self.job_key,
            "texts": [t.to_json() for t in self.texts],
            "logo_box": list(self.logo_box) if self.logo_box else None,
            "channel": self.channel,
            "brand_path": self.brand_path,
            "brand_sha256": self.brand_sha256,
            "segment": self.segment,
            "locale": self.locale,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ComposedCreative:
        _version(data, "composed creative", cls.VERSION)
        return cls(
            job_key=str(data["job_key"]),
            channel=str(data.get("channel") or ""),
            segment=str(data.get("segment") or ""),
            locale=str(data.get("locale") or ""),
            texts=tuple(TextBlock.from_json(t) for t in data.get("texts") or ()),
            logo_box=_box(data.get("logo_box")),
            brand_path=str(data.get("brand_path") or ""),
            brand_sha256=str(data.get("brand_sha256") or ""),
        )


# --- QA ------------------------------------------------------------------------------

Stage = Literal["compose", "qa", "render", "guard", "gate"]
STAGES: tuple[Stage, ...] = ("compose", "qa", "render", "guard", "gate")
# Which stage wrote a check, for records written before checks carried their stage.
_LEGACY_STAGE: dict[str, Stage] = {
    "text_fit": "compose",
    "byte_budget": "render",
    "prompt_guard": "guard",
    "duplicate": "gate",
}


def check_from_json(data: Mapping[str, Any]) -> CheckResult:
    return CheckResult(
        str(data["name"]),
        data["verdict"],
        data.get("score"),
        data.get("reason"),
        dict(data.get("evidence") or {}),
    )


@dataclass(frozen=True)
class GateDecision:
    state: str
    rank: int | None
    reasons: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"state": self.state, "rank": self.rank, "reasons": list(self.reasons)}


@dataclass(frozen=True)
class QARecord:
    """Every check on one creative, grouped by the stage that ran it, with the overall
    status, composite score and the gate's decision. ``bildwerk qa`` replaces only the
    ``qa`` group and gates again; compose, render and guard results are kept."""

    VERSION = 1

    status: str
    score: float | None = None
    compose: tuple[CheckResult, ...] = ()
    qa: tuple[CheckResult, ...] = ()
    render: tuple[CheckResult, ...] = ()
    guard: tuple[CheckResult, ...] = ()
    gate: tuple[CheckResult, ...] = ()
    decision: GateDecision | None = None

    @property
    def checks(self) -> tuple[CheckResult, ...]:
        return (*self.compose, *self.qa, *self.render, *self.guard, *self.gate)

    def by_stage(self) -> list[tuple[Stage, CheckResult]]:
        return [(stage, c) for stage in STAGES for c in getattr(self, stage)]

    def to_json(self) -> dict[str, Any]:
        return {
            "v": self.VERSION,
            "status": self.status,
            "score": self.score,
            "checks": [{**c.to_json(), "stage": stage} for stage, c in self.by_stage()],
            "decision": self.decision.to_json() if self.decision else None,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> QARecord:
        _version(data, "QA", cls.VERSION)
        groups: dict[str, list[CheckResult]] = {s: [] for s in STAGES}
        for c in data.get("checks") or ():
            stage = c.get("stage") or _LEGACY_STAGE.get(c["name"], "qa")
            groups[stage].append(check_from_json(c))
        d = data.get("decision")
        return cls(
            status=str(data.get("status") or "pending"),
            score=data.get("score"),
            decision=GateDecision(d["state"], d.get("rank"), tuple(d.get("reasons") or ()))
            if d
            else None,
            **{s: tuple(v) for s, v in groups.items()},
        )


# --- renditions ------------------------------------------------------------------------


@dataclass(frozen=True)
class RenditionRecord:
    """One encoded file of a creative, stored by digest."""

    format: str
    width: int
    height: int
    sha256: str
    bytes: int
    quality: int
    budget: int | None
    within_budget: bool
    watermark: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "width": self.width,
            "height": self.height,
            "sha256": self.sha256,
            "bytes": self.bytes,
            "quality": self.quality,
            "budget": self.budget,
            "within_budget": self.within_budget,
            "watermark": self.watermark,
        }


# --- publications ----------------------------------------------------------------------


@dataclass(frozen=True)
class PublicationRecord:
    """What a published rendition row keeps for the pages and webhooks built from it: the
    image's page fields and the rendition's format and size (``publications.meta``)."""

    VERSION = 1

    image: Mapping[str, Any]
    format: str
    width: int
    height: int

    def to_json(self) -> dict[str, Any]:
        return {
            "v": self.VERSION,
            "image": dict(self.image),
            "format": self.format,
            "width": self.width,
            "height": self.height,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PublicationRecord:
        _version(data, "publication", cls.VERSION)
        return cls(
            dict(data["image"]), str(data["format"]), int(data["width"]), int(data["height"])
        )


# --- imported inputs -----------------------------------------------------------------


@dataclass(frozen=True)
class InputRecord:
    """An imported image (product cutout, logo, reference) after input hygiene."""

    VERSION = 1

    notes: tuple[str, ...] = ()
    source_format: str | None = None
    source_mode: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"v": self.VERSION, "notes": list(self.notes)}
        if self.source_format is not None:
            out["source_format"] = self.source_format
        if self.source_mode is not None:
            out["source_mode"] = self.source_mode
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> InputRecord:
        _version(data, "input", cls.VERSION)
        return cls(
            tuple(str(n) for n in data.get("notes") or ()),
            data.get("source_format"),
            data.get("source_mode"),
        )
