"""ControlNet conditioning images.

Canny edges are computed here with OpenCV from the composed canvas (so the edges sit
exactly where the product or source will be pasted) or from a given image; depth, pose
and segmentation maps come from the user, because estimating them needs further models.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from bildwerk.backends.diffusion.spec import ControlSpec
from bildwerk.errors import MissingExtraError, UserError
from bildwerk.imagefit import fit
from bildwerk.imageinput import load_image

CANNY_LOW, CANNY_HIGH = 100, 200  # the thresholds the canny ControlNets were trained with


def _cv2() -> Any:
    try:
        import cv2
    except ImportError as exc:
        raise MissingExtraError("opencv-python-headless", "qa", "Canny ControlNet maps") from exc
    return cv2


def canny(image: Image.Image, low: int = CANNY_LOW, high: int = CANNY_HIGH) -> Image.Image:
    """White edges on black, three channels, as canny ControlNets expect."""
    cv2 = _cv2()
    grey = np.asarray(image.convert("L"))
    edges = cv2.Canny(grey, low, high)
    return Image.fromarray(np.ascontiguousarray(np.repeat(edges[..., None], 3, axis=2)), "RGB")


def flatten(image: Image.Image, background: tuple[int, int, int] = (128, 128, 128)) -> Image.Image:
    """RGB version of ``image``; transparency composited on ``background``."""
    if image.mode in ("RGBA", "LA"):
        base = Image.new("RGB", image.size, background)
        base.paste(image.convert("RGB"), (0, 0), image.getchannel("A"))
        return base
    return image.convert("RGB")


def control_image(
    spec: ControlSpec, canvas: Image.Image | None, width: int, height: int
) -> Image.Image:
    """The conditioning image at the request size. ``canvas`` is the composed scene
    start (product or source placed), used for canny when the spec names no image."""
    if spec.image is not None:
        source = flatten(load_image(Path(spec.image)).image)
        source = fit(source, width, height, mode="crop")
    elif spec.kind == "canny" and canvas is not None:
        source = canvas
    else:
        raise UserError(
            f"ControlNet '{spec.name}' ({spec.kind}) needs a control image",
            hint=(
                "set generation.controlnet.image to a "
                + ("source image" if spec.kind == "canny" else f"{spec.kind} map")
            ),
        )
    return canny(source) if spec.kind == "canny" else source.convert("RGB")
