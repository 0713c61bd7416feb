"""Colour maths in one place: sRGB ↔ linear ↔ XYZ ↔ CIELAB, OKLab, WCAG contrast and
CIEDE2000 (used by the QA checks, compose and the studio backend).

Everything is vectorised over leading axes (the last axis holds the three channels), so a
whole image converts in one call. sRGB values are 0..255 floats or uint8; uint8 input takes
a 256-entry lookup table instead of a power per pixel, which is what keeps the pixel checks
inside their time budget. The white point is D65 throughout (sRGB's own), so no chromatic
adaptation is needed.
"""

from __future__ import annotations

from typing import Any, TypeVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]
_F = TypeVar("_F", bound=np.floating[Any])

# IEC 61966-2-1 primaries, D65; rows give X, Y, Z.
_RGB_TO_XYZ = np.array(
    [
        [0.4124564, 0.3575761, 0.1804375],
        [0.2126729, 0.7151522, 0.0721750],
        [0.0193339, 0.1191920, 0.9503041],
    ]
)
_XYZ_TO_RGB = np.linalg.inv(_RGB_TO_XYZ)
D65 = np.array([0.95047, 1.0, 1.08883])
# WCAG 2.x relative luminance weights (the Y row of sRGB → XYZ, rounded as WCAG prints it).
_WCAG = np.array([0.2126, 0.7152, 0.0722])
_EPS = 216 / 24389  # CIE ε: where L* switches from the cube root to its linear segment
_KAPPA = 24389 / 27


# The sRGB transfer function (IEC 61966-2-1) on 0..1 values. The array forms keep the
# input's float dtype (a float32 caller gets float32 maths); the scalar forms use Python
# floats. Each is the one definition its callers share, so results stay bit-identical.


def srgb_decode(c: NDArray[_F]) -> NDArray[_F]:
    """sRGB-encoded 0..1 → linear-light 0..1, elementwise, in ``c``'s float dtype."""
    out: NDArray[_F] = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return out


def srgb_encode(c: NDArray[_F]) -> NDArray[_F]:
    """Linear-light 0..1 → sRGB-encoded 0..1, elementwise, in ``c``'s float dtype."""
    out: NDArray[_F] = np.where(c <= 0.0031308, 12.92 * c, 1.055 * np.power(c, 1 / 2.4) - 0.055)
    return out


def srgb_decode_value(c: float) -> float:
    """:func:`srgb_decode` for one Python float."""
    return float(((c + 0.055) / 1.055) ** 2.4 if c > 0.04045 else c / 12.92)


def srgb_encode_value(c: float) -> float:
    """:func:`srgb_encode` for one Python float, clipped to 0..1 first."""
    c = min(max(c, 0.0), 1.0)
    return float(1.055 * c ** (1 / 2.4) - 0.055 if c > 0.0031308 else 12.92 * c)


_decode = srgb_decode
_LUT = _decode(np.arange(256, dtype=np.float64) / 255.0)


def srgb_to_linear(rgb: ArrayLike) -> FloatArray:
    """sRGB 0..255 (uint8 or float) → linear-light 0..1."""
    arr = np.asarray(rgb)
    if arr.dtype == np.uint8:
        out: FloatArray = _LUT[arr]
        return out
    return _decode(np.asarray(arr, dtype=np.float64) / 255.0)


def linear_to_srgb(lin: ArrayLike) -> FloatArray:
    """Linear-light 0..1 → sRGB 0..255 floats (clipped to the gamut, not rounded)."""
    c = np.clip(np.asarray(lin, dtype=np.float64), 0.0, 1.0)
    out: FloatArray = 255.0 * srgb_encode(c)
    return out


def linear_to_xyz(lin: ArrayLike) -> FloatArray:
    out: FloatArray = np.asarray(lin, dtype=np.float64) @ _RGB_TO_XYZ.T
    return out


def xyz_to_linear(xyz: ArrayLike) -> FloatArray:
    out: FloatArray = np.asarray(xyz, dtype=np.float64) @ _XYZ_TO_RGB.T
    return out


def xyz_to_lab(xyz: ArrayLike, white: ArrayLike = D65) -> FloatArray:
    """CIE XYZ (Y of white = 1) → CIELAB."""
    t = np.asarray(xyz, dtype=np.float64) / np.asarray(white, dtype=np.float64)
    f = np.where(t > _EPS, np.cbrt(t), (_KAPPA * t + 16) / 116)
    lab = np.empty_like(f)
    lab[..., 0] = 116 * f[..., 1] - 16
    lab[..., 1] = 500 * (f[..., 0] - f[..., 1])
    lab[..., 2] = 200 * (f[..., 1] - f[..., 2])
    return lab


def lab_to_xyz(lab: ArrayLike, white: ArrayLike = D65) -> FloatArray:
    lab = np.asarray(lab, dtype=np.float64)
    fy = (lab[..., 0] + 16) / 116
    f = np.stack([fy + lab[..., 1] / 500, fy, fy - lab[..., 2] / 200], axis=-1)
    t = np.where(f**3 > _EPS, f**3, (116 * f - 16) / _KAPPA)
    # Y uses L* directly below the knee (the CIE definition), not the f-inverse.
    t[..., 1] = np.where(lab[..., 0] > _KAPPA * _EPS, fy**3, lab[..., 0] / _KAPPA)
    out: FloatArray = t * np.asarray(white, dtype=np.float64)
    return out


def srgb_to_lab(rgb: ArrayLike) -> FloatArray:
    """sRGB 0..255 → CIELAB (D65)."""
    return xyz_to_lab(linear_to_xyz(srgb_to_linear(rgb)))


def lab_to_srgb(lab: ArrayLike) -> FloatArray:
    """CIELAB (D65) → sRGB 0..255 floats, clipped to the gamut."""
    return linear_to_srgb(xyz_to_linear(lab_to_xyz(lab)))


def hex_to_srgb(value: str) -> FloatArray:
    """'#rrggbb' → sRGB 0..255 floats."""
    v = value.lstrip("#")
    return np.array([int(v[i : i + 2], 16) for i in (0, 2, 4)], dtype=np.float64)


def srgb_to_hex(rgb: ArrayLike) -> str:
    """sRGB 0..255 (one colour) → '#rrggbb', rounded and clipped."""
    r, g, b = (round(float(c)) for c in np.clip(np.asarray(rgb, dtype=np.float64), 0, 255))
    return f"#{r:02x}{g:02x}{b:02x}"


def relative_luminance(rgb: ArrayLike) -> FloatArray:
    """WCAG 2.x relative luminance (0 = black, 1 = white) of sRGB 0..255 pixels."""
    out: FloatArray = srgb_to_linear(rgb) @ _WCAG
    return out


def contrast_ratio(lum_a: ArrayLike, lum_b: ArrayLike) -> FloatArray:
    """WCAG contrast ratio (1..21) between relative luminances, in either order."""
    a, b = np.asarray(lum_a, dtype=np.float64), np.asarray(lum_b, dtype=np.float64)
    out: FloatArray = (np.maximum(a, b) + 0.05) / (np.minimum(a, b) + 0.05)
    return out


def chroma(lab: ArrayLike) -> FloatArray:
    """CIELAB chroma C*ab: distance from the neutral axis."""
    lab = np.asarray(lab, dtype=np.float64)
    out: FloatArray = np.hypot(lab[..., 1], lab[..., 2])
    return out


def ciede2000(
    lab1: ArrayLike, lab2: ArrayLike, k_l: float = 1.0, k_c: float = 1.0, k_h: float = 1.0
) -> FloatArray:
    """CIEDE2000 colour difference (Sharma, Wu & Dalal 2005), broadcasting over leading axes.

    ``k_l`` > 1 discounts lightness differences (2 is the textile convention); the QA
    checks use it so tints and shades of a brand colour stay close to it.
    """
    a = np.asarray(lab1, dtype=np.float64)
    b = np.asarray(lab2, dtype=np.float64)
    l1, a1, b1 = a[..., 0], a[..., 1], a[..., 2]
    l2, a2, b2 = b[..., 0], b[..., 1], b[..., 2]
    c_bar7 = ((np.hypot(a1, b1) + np.hypot(a2, b2)) / 2) ** 7
    g = 0.5 * (1 - np.sqrt(c_bar7 / (c_bar7 + 25.0**7)))
    a1p, a2p = (1 + g) * a1, (1 + g) * a2
    c1p, c2p = np.hypot(a1p, b1), np.hypot(a2p, b2)
    h1p = np.degrees(np.arctan2(b1, a1p)) % 360
    h2p = np.degrees(np.arctan2(b2, a2p)) % 360
    neutral = (c1p * c2p) == 0

    dh = h2p - h1p
    dh = np.where(dh > 180, dh - 360, np.where(dh < -180, dh + 360, dh))
    dh = np.where(neutral, 0.0, dh)
    d_l = l2 - l1
    d_c = c2p - c1p
    d_h = 2 * np.sqrt(c1p * c2p) * np.sin(np.radians(dh) / 2)

    l_bar = (l1 + l2) / 2
    c_bar = (c1p + c2p) / 2
    h_sum = h1p + h2p
    h_bar = np.where(
        np.abs(h1p - h2p) <= 180, h_sum / 2, np.where(h_sum < 360, h_sum + 360, h_sum - 360) / 2
    )
    h_bar = np.where(neutral, h_sum, h_bar)

    t = (
        1
        - 0.17 * np.cos(np.radians(h_bar - 30))
        + 0.24 * np.cos(np.radians(2 * h_bar))
        + 0.32 * np.cos(np.radians(3 * h_bar + 6))
        - 0.20 * np.cos(np.radians(4 * h_bar - 63))
    )
    d_theta = 30 * np.exp(-(((h_bar - 275) / 25) ** 2))
    c_bar7p = c_bar**7
    r_c = 2 * np.sqrt(c_bar7p / (c_bar7p + 25.0**7))
    s_l = 1 + 0.015 * (l_bar - 50) ** 2 / np.sqrt(20 + (l_bar - 50) ** 2)
    s_c = 1 + 0.045 * c_bar
    s_h = 1 + 0.015 * c_bar * t
    r_t = -np.sin(np.radians(2 * d_theta)) * r_c

    tl, tc, th = d_l / (k_l * s_l), d_c / (k_c * s_c), d_h / (k_h * s_h)
    out: FloatArray = np.sqrt(np.maximum(tl**2 + tc**2 + th**2 + r_t * tc * th, 0.0))
    return out


# --- OKLab (Björn Ottosson, 2020), on one colour as Python floats ---------------------------


def srgb_to_oklab(rgb: tuple[float, float, float]) -> tuple[float, float, float]:
    """sRGB 0..1 → OKLab (L, a, b)."""
    r, g, b = (srgb_decode_value(c) for c in rgb)
    lc = (0.4122214708 * r + 0.5363325363 * g + 0.0514459929 * b) ** (1 / 3)
    mc = (0.2119034982 * r + 0.6806995451 * g + 0.1073969566 * b) ** (1 / 3)
    sc = (0.0883024619 * r + 0.2817188376 * g + 0.6299787005 * b) ** (1 / 3)
    return (
        0.2104542553 * lc + 0.7936177850 * mc - 0.0040720468 * sc,
        1.9779984951 * lc - 2.4285922050 * mc + 0.4505937099 * sc,
        0.0259040371 * lc + 0.7827717662 * mc - 0.8086757660 * sc,
    )


def oklab_to_srgb(lab: tuple[float, float, float]) -> tuple[float, float, float]:
    """OKLab (L, a, b) → sRGB 0..1, each channel clipped to the gamut."""
    ll, a, b = lab
    lc = (ll + 0.3963377774 * a + 0.2158037573 * b) ** 3
    mc = (ll - 0.1055613458 * a - 0.0638541728 * b) ** 3
    sc = (ll - 0.0894841775 * a - 1.2914855480 * b) ** 3
    return (
        srgb_encode_value(4.0767416621 * lc - 3.3077115913 * mc + 0.2309699292 * sc),
        srgb_encode_value(-1.2684380046 * lc + 2.6097574011 * mc - 0.3413193965 * sc),
        srgb_encode_value(-0.0041960863 * lc - 0.7034186147 * mc + 1.7076147010 * sc),
    )
