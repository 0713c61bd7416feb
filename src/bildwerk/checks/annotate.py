"""Draw QA evidence on a creative: the boxes behind every warning and failure, labelled
with the check name, so a reviewer sees where the problem is."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from bildwerk.checks.base import CheckResult

COLOURS = {"fail": (207, 34, 46), "warn": (191, 135, 0), "pass": (26, 127, 55)}


def evidence_boxes(value: Any) -> Iterator[tuple[int, int, int, int]]:
    """Every [x0, y0, x1, y1] list found anywhere in a check's evidence."""
    if isinstance(value, dict):
        for item in value.values():
            yield from evidence_boxes(item)
    elif isinstance(value, list | tuple):
        if len(value) == 4 and all(isinstance(v, int | float) for v in value):
            x0, y0, x1, y1 = (int(v) for v in value)
            if x1 > x0 and y1 > y0:
                yield x0, y0, x1, y1
        else:
            for item in value:
                yield from evidence_boxes(item)


def annotate(
    image: Image.Image, results: Sequence[CheckResult | dict[str, Any]], *, max_width: int = 640
) -> Image.Image:
    """A downscaled copy of ``image`` with the evidence of non-passing checks drawn on it."""
    scale = min(1.0, max_width / image.width)
    out = image.convert("RGB").resize(
        (max(1, round(image.width * scale)), max(1, round(image.height * scale))),
        Image.Resampling.LANCZOS,
    )
    draw = ImageDraw.Draw(out)
    size = max(10, round(out.width / 45))
    font = ImageFont.load_default(size=size)
    labels: dict[tuple[int, int], int] = {}  # label corner → labels already there
    for r in results:
        data = r.to_json() if isinstance(r, CheckResult) else r
        verdict = data.get("verdict")
        if verdict not in ("fail", "warn"):
            continue
        colour = COLOURS[verdict]
        for x0, y0, x1, y1 in evidence_boxes(data.get("evidence", {})):
            box = [round(x0 * scale), round(y0 * scale), round(x1 * scale), round(y1 * scale)]
            draw.rectangle(box, outline=colour, width=max(2, round(out.width / 320)))
            corner = (box[0], box[1])
            n = labels.get(corner, 0)
            labels[corner] = n + 1
            xy = (box[0] + 3, box[1] + 2 + n * (size + 2))
            draw.rectangle(draw.textbbox(xy, str(data.get("name")), font=font), fill="white")
            draw.text(xy, str(data.get("name")), fill=colour, font=font)
    return out
