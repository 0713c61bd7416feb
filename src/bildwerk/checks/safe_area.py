"""Safe area: nothing that must be seen sits under platform UI or in the brand margin.

Platform zones (a story's top bar and reply field) come from the channel's ``unsafe``
insets, scaled to master pixels by its density. The brand margin is the layout's safe box;
without a layout it is rebuilt the way the planner builds it. Text, CTA plates, the logo
and the product are all checked: a product under the reply field is as lost as a CTA.

Params (``qa.checks.safe_area.params``):

- ``tolerance_px`` (0): how far a box may reach past the safe box (anti-aliasing slack).
"""

from __future__ import annotations

from typing import Any

from PIL import Image

from bildwerk.checks.base import CheckContext, CheckResult
from bildwerk.geometry import Box

TOLERANCE_PX = 0


def unsafe_zones(context: CheckContext, width: int, height: int) -> dict[str, Box]:
    """Platform UI zones in master pixels, by edge; empty edges are left out."""
    d = context.channel.density
    u = context.channel.unsafe
    zones = {
        "top": Box(0, 0, width, u.top * d),
        "bottom": Box(0, height - u.bottom * d, width, height),
        "left": Box(0, 0, u.left * d, height),
        "right": Box(width - u.right * d, 0, width, height),
    }
    return {k: z for k, z in zones.items() if z.width > 0 and z.height > 0}


def safe_box(context: CheckContext, width: int, height: int) -> Box:
    """The layout's safe box, or the canvas minus platform zones and the brand margin."""
    if context.layout is not None:
        return context.layout.safe
    d = context.channel.density
    u = context.channel.unsafe
    m = round(min(width, height) * context.brand.safe_area.margin)
    return Box(u.left * d + m, u.top * d + m, width - u.right * d - m, height - u.bottom * d - m)


def placed_boxes(context: CheckContext) -> dict[str, Box]:
    """Everything placed on the creative that must stay visible, by name."""
    boxes: dict[str, Box] = {}
    for i, spec in enumerate(context.texts):
        name = spec.role if spec.role not in boxes else f"{spec.role}[{i}]"
        boxes[name] = spec.box
        if spec.plate is not None:
            boxes[f"{name}_plate"] = spec.plate
    if context.logo_box is not None:
        boxes["logo"] = context.logo_box
    if context.product_box is not None:
        boxes["product"] = context.product_box
    return boxes


class SafeAreaCheck:
    """Fails when a text block, plate, logo or product enters an unsafe zone or margin."""

    name = "safe_area"

    def run(self, image: Image.Image, context: CheckContext) -> CheckResult:
        boxes = placed_boxes(context)
        if not boxes:
            return CheckResult(self.name, "skip", reason="nothing placed to check")
        tol = int(context.params.get("tolerance_px", TOLERANCE_PX))
        zones = unsafe_zones(context, image.width, image.height)
        safe = safe_box(context, image.width, image.height)
        slack = Box(safe.x0 - tol, safe.y0 - tol, safe.x1 + tol, safe.y1 + tol)
        offending: list[dict[str, Any]] = []
        for name, box in boxes.items():
            hits = [z for z, zone in zones.items() if box.intersects(zone)]
            problems = [f"under the {z} platform zone" for z in hits]
            if not slack.contains(box):
                problems.append("outside the safe area")
            if problems:
                offending.append({"name": name, "box": list(box.as_tuple()), "problems": problems})
        evidence = {
            "safe": list(safe.as_tuple()),
            "zones": {k: list(z.as_tuple()) for k, z in zones.items()},
            "boxes": {k: list(b.as_tuple()) for k, b in boxes.items()},
            "offending": offending,
        }
        score = round(1.0 - len(offending) / len(boxes), 3)
        if offending:
            reason = "; ".join(f"{o['name']} {' and '.join(o['problems'])}" for o in offending)
            return CheckResult(self.name, "fail", score, reason, evidence)
        return CheckResult(self.name, "pass", score, None, evidence)
