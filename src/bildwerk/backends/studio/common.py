"""Types, resolution factors and small helpers every part of the studio renderer shares."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]
RGB = tuple[float, float, float]

LOW_SCALE = 8  # downscale factor for smooth fields
SHADOW_SCALE = 4  # downscale factor for shadow maps
KEY_LIGHT = (-0.5, 0.55, 0.67)  # key light from the upper left, towards the camera


def int3(c: RGB) -> tuple[int, int, int]:
    return round(c[0]), round(c[1]), round(c[2])
