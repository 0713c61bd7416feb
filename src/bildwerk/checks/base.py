"""The QA check protocol and its result type.

Every check is a plugin with one method, ``run(image, context) -> CheckResult``; evidence
(boxes, colours, measurements) is plain JSON so the catalog, the manifest and the report
can store and draw it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from PIL import Image

from bildwerk.config.brand import BrandKit
from bildwerk.config.channels import Channel
from bildwerk.geometry import Box, Layout

# ``skip``: the check does not apply (no logo configured, no text to measure).
# ``unchecked``: it applies but could not run (missing extra, model not loadable, error):
# never a pass — a person looks, or the gate rejects when the brand requires the check.
Verdict = Literal["pass", "warn", "fail", "skip", "unchecked"]
Status = Literal["pass", "warn", "unchecked", "fail", "pending"]
_ORDER: dict[str, int] = {"skip": 0, "pass": 1, "warn": 2, "unchecked": 3, "fail": 4}


@dataclass(frozen=True)
class CheckResult:
    name: str
    verdict: Verdict
    score: float | None = None
    reason: str | None = None
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class TextSpec:
    """A text block the compose stage drew: what QA reads back and measures."""

    role: str  # "headline" | "subline" | "cta"
    text: str
    box: Box
    color: str  # '#rrggbb'
    background: str | None  # solid plate behind it (CTA), else None
    font_size: int
    script: str = "latin"  # "latin" | "cyrillic" | "greek" | "arabic" | "hebrew" | "cjk"
    plate: Box | None = None


@dataclass(frozen=True)
class CheckContext:
    """Everything a check may need besides the pixels. Coordinates are master pixels.

    ``scene`` is the generated scene before the brand overlay (None for imported images);
    ``params`` are this check's thresholds from the brand's QA policy for this channel.
    """

    channel: Channel
    brand: BrandKit
    layout: Layout | None = None
    locale: str | None = None
    direction: str = "ltr"
    texts: Sequence[TextSpec] = ()
    logo_box: Box | None = None
    logo: Image.Image | None = None  # the brand logo, RGBA
    product_box: Box | None = None
    scene: Image.Image | None = None
    prompt: str = ""
    negative_prompt: str = ""
    people: Literal["allowed", "forbidden"] = "allowed"
    model_release: bool = False
    ai_generated: bool = False
    guard: Sequence[Mapping[str, Any]] = ()
    params: Mapping[str, Any] = field(default_factory=dict)


@runtime_checkable
class Check(Protocol):
    """A QA check. Heavy models load lazily, once per process, and are reused."""

    name: str

    def run(self, image: Image.Image, context: CheckContext) -> CheckResult: ...


def overall(results: Sequence[CheckResult]) -> Status:
    """The worst verdict wins (a check that could not run is worse than a warning); no
    checks at all, or only checks that do not apply, mean nothing was verified."""
    if not results:
        return "pending"
    worst = max(results, key=lambda r: _ORDER[r.verdict]).verdict
    return "pending" if worst == "skip" else worst
