"""Perceptual quality of an encode: SSIM on luma, in pure numpy.

The render stage picks each rendition's encoder quality so that the decoded file reaches
a delivery profile's SSIM target. The metric is the standard one (Wang, Bovik, Sheikh and
Simoncelli 2004): an 11-tap Gaussian window with sigma 1.5, K1 = 0.01, K2 = 0.03, dynamic
range 255, averaged over the window positions that lie fully inside the image ("valid"),
with no automatic downsampling, so a 1920 px rendition is judged at its own resolution.
Luma is BT.601 (what JPEG, WebP and our AVIF encodes use) computed in floating point.

It is pure numpy on purpose: the chosen quality decides output bytes, so the metric must
give the same number in every install (OpenCV is only an optional extra), and numpy's
element-wise arithmetic is exactly rounded, hence deterministic across machines.
"""

from __future__ import annotations

import io

import numpy as np
import numpy.typing as npt
from PIL import Image

Array = npt.NDArray[np.float32]

_SIGMA = 1.5
_RADIUS = 5  # 11 taps
_C1 = (0.01 * 255) ** 2
_C2 = (0.03 * 255) ** 2
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def _kernel() -> npt.NDArray[np.float32]:
    x = np.arange(-_RADIUS, _RADIUS + 1, dtype=np.float64)
    g = np.exp(-(x**2) / (2 * _SIGMA**2))
    kernel: npt.NDArray[np.float32] = (g / g.sum()).astype(np.float32)
    return kernel


_KERNEL = _kernel()


def luma(image: Image.Image) -> Array:
    """BT.601 luma of an RGB (or L) image as float32, unrounded."""
    if image.mode == "L":
        return np.asarray(image, np.float32)
    rgb = np.asarray(image.convert("RGB"), np.float32)
    y: Array = rgb @ _LUMA
    return y


def _blur(a: Array) -> Array:
    """Separable Gaussian over the valid region (the window fully inside the image).
    The kernel is symmetric, so mirrored taps share one multiplication."""
    taps = 2 * _RADIUS + 1
    h, w = a.shape
    rows = a[_RADIUS : h - _RADIUS] * _KERNEL[_RADIUS]
    for i in range(_RADIUS):
        rows += (a[i : h - taps + 1 + i] + a[taps - 1 - i : h - i]) * _KERNEL[i]
    out = rows[:, _RADIUS : w - _RADIUS] * _KERNEL[_RADIUS]
    for i in range(_RADIUS):
        out += (rows[:, i : w - taps + 1 + i] + rows[:, taps - 1 - i : w - i]) * _KERNEL[i]
    blurred: Array = out
    return blurred


class SsimReference:
    """The reference frame's luma statistics, computed once and compared against many
    candidate encodes of it."""

    def __init__(self, reference: Image.Image) -> None:
        x = luma(reference)
        if min(x.shape) <= 2 * _RADIUS:
            raise ValueError(
                f"SSIM needs at least {2 * _RADIUS + 1} px on each side, got {reference.size}"
            )
        self.size = reference.size
        self._x = x
        self._mu = _blur(x)
        self._var = _blur(x * x) - self._mu * self._mu

    def ssim(self, candidate: Image.Image) -> float:
        """Mean SSIM of ``candidate`` (same size) against the reference, 1.0 = identical."""
        if candidate.size != self.size:
            raise ValueError(f"candidate is {candidate.size}, reference {self.size}")
        y = luma(candidate)
        mu_y = _blur(y)
        mu_xy = self._mu * mu_y
        var_y = _blur(y * y) - mu_y * mu_y
        cov = _blur(self._x * y) - mu_xy
        num = (2 * mu_xy + _C1) * (2 * cov + _C2)
        den = (self._mu * self._mu + mu_y * mu_y + _C1) * (self._var + var_y + _C2)
        return float(np.mean(num / den, dtype=np.float64))

    def ssim_of(self, data: bytes) -> float:
        """SSIM of an encoded file, decoded with Pillow."""
        with Image.open(io.BytesIO(data)) as im:
            return self.ssim(im.convert("RGB"))


def ssim(reference: Image.Image, candidate: Image.Image) -> float:
    """Luma SSIM of ``candidate`` against ``reference`` (see the module docstring)."""
    return SsimReference(reference).ssim(candidate)
