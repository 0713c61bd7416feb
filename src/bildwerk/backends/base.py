"""The generation-backend protocol: one small interface every scene generator implements.

A backend turns :class:`SceneRequest` batches into :class:`Generated` scenes. It never
sees channels, copy or the catalog; the plan stage fills requests and the compose stage
consumes the results, so AI backends reuse the same overlay and renditions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from PIL import Image

from bildwerk.geometry import Box, Layout


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do; the planner checks requests against it."""

    text_to_image: bool = True
    product_placement: bool = False
    max_batch: int = 1
    needs_model: bool = False
    deterministic: bool = True


@dataclass(frozen=True)
class SceneRequest:
    """Everything that decides one scene. ``key`` is the content hash of these fields.

    ``palette`` maps role → '#rrggbb'. ``product`` is an RGBA cutout (already cleaned by
    input hygiene) or None. ``layout`` tells where the product should sit so the copy
    zone stays calm.
    """

    key: str
    prompt: str
    negative_prompt: str
    slots: Mapping[str, str]
    seed: int
    width: int
    height: int
    palette: Mapping[str, str]
    layout: Layout
    style: str = "studio"
    params: Mapping[str, Any] = field(default_factory=dict)
    product: Path | None = None
    product_sha256: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Everything needed to generate this scene again (``bildwerk reproduce``)."""
        layout = self.layout
        return {
            "key": self.key,
            "prompt": self.prompt,
            "negative_prompt": self.negative_prompt,
            "slots": dict(self.slots),
            "seed": self.seed,
            "width": self.width,
            "height": self.height,
            "palette": dict(self.palette),
            "layout": {
                "width": layout.width,
                "height": layout.height,
                "orientation": layout.orientation,
                **{
                    k: list(getattr(layout, k).as_tuple())
                    for k in ("safe", "logo", "copy", "product")
                },
            },
            "style": self.style,
            "params": dict(self.params),
            "product_sha256": self.product_sha256,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any], product: Path | None = None) -> SceneRequest:
        lay = data["layout"]
        layout = Layout(
            width=lay["width"],
            height=lay["height"],
            safe=Box(*lay["safe"]),
            logo=Box(*lay["logo"]),
            copy=Box(*lay["copy"]),
            product=Box(*lay["product"]),
            orientation=lay["orientation"],
        )
        return cls(
            key=data["key"],
            prompt=data["prompt"],
            negative_prompt=data["negative_prompt"],
            slots=dict(data["slots"]),
            seed=int(data["seed"]),
            width=int(data["width"]),
            height=int(data["height"]),
            palette=dict(data["palette"]),
            layout=layout,
            style=data["style"],
            params=dict(data["params"]),
            product=product,
            product_sha256=data.get("product_sha256"),
        )


@dataclass
class Generated:
    """A generated scene: RGB image of the requested size, where its subject is, and the
    parameters the backend actually used (recorded for reproduction)."""

    image: Image.Image
    focal: tuple[float, float] = (0.5, 0.5)
    product_box: Box | None = None
    params: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class GenerationBackend(Protocol):
    """A scene generator. ``name`` and ``version`` enter every job key."""

    name: str
    version: str
    capabilities: Capabilities

    def generate(self, batch: Sequence[SceneRequest]) -> list[Generated]:
        """Generate one scene per request, in order. Must be deterministic for a seed."""
        ...
