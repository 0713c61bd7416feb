"""QA policy: which checks run, their thresholds, and which verdicts block. Set in the
brand kit (``qa:``) with per-channel overrides; a brief may forbid people."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class CheckPolicy(BaseModel):
    """Per-check settings. ``params`` are the check's own thresholds (documented in
    docs/qa.md); ``enabled: false`` skips the check."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    enabled: bool = True
    params: dict[str, Any] = Field(default_factory=dict)
    weight: float = Field(1.0, ge=0.0, description="weight in the composite ranking score")


class QAPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    checks: dict[str, CheckPolicy] = Field(default_factory=dict)
    channels: dict[str, dict[str, CheckPolicy]] = Field(
        default_factory=dict, description="channel name → check name → overrides"
    )
    block: tuple[Literal["fail", "warn"], ...] = ("fail",)
    required: tuple[str, ...] = Field(
        ("nsfw", "people", "legibility", "contrast", "logo", "duplicate"),
        description="checks that must run: a creative one of them could not check is "
        "rejected (other unchecked creatives go to a person)",
    )
    top_k: int = Field(3, ge=1, description="creatives per (channel, segment, locale) to review")

    def for_check(self, name: str, channel: str) -> CheckPolicy:
        base = self.checks.get(name, CheckPolicy())
        over = self.channels.get(channel, {}).get(name)
        if over is None:
            return base
        return CheckPolicy(
            enabled=over.enabled,
            params={**base.params, **over.params},
            weight=over.weight if "weight" in over.model_fields_set else base.weight,
        )
