"""Colour maths against published reference values (Sharma's CIEDE2000 pairs, sRGB/Lab
anchors, WCAG contrast examples)."""

from __future__ import annotations

import numpy as np
import pytest

from bildwerk.colour import (
    chroma,
    ciede2000,
    contrast_ratio,
    hex_to_srgb,
    lab_to_srgb,
    linear_to_srgb,
    relative_luminance,
    srgb_to_hex,
    srgb_to_lab,
    srgb_to_linear,
)

# Sharma, Wu & Dalal (2005), "The CIEDE2000 color-difference formula", Table 1:
# L1 a1 b1 | L2 a2 b2 | ΔE00, rounded to 4 decimals by the authors.
SHARMA = np.array(
    [
        [50.0000, 2.6772, -79.7751, 50.0000, 0.0000, -82.7485, 2.0425],
        [50.0000, 3.1571, -77.2803, 50.0000, 0.0000, -82.7485, 2.8615],
        [50.0000, 2.8361, -74.0200, 50.0000, 0.0000, -82.7485, 3.4412],
        [50.0000, -1.3802, -84.2814, 50.0000, 0.0000, -82.7485, 1.0000],
        [50.0000, -1.1848, -84.8006, 50.0000, 0.0000, -82.7485, 1.0000],
        [50.0000, -0.9009, -85.5211, 50.0000, 0.0000, -82.7485, 1.0000],
        [50.0000, 0.0000, 0.0000, 50.0000, -1.0000, 2.0000, 2.3669],
        [50.0000, -1.0000, 2.0000, 50.0000, 0.0000, 0.0000, 2.3669],
        [50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0009, 7.1792],
        [50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0010, 7.1792],
        [50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0011, 7.2195],
        [50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0012, 7.2195],
        [50.0000, -0.0010, 2.4900, 50.0000, 0.0009, -2.4900, 4.8045],
        [50.0000, -0.0010, 2.4900, 50.0000, 0.0010, -2.4900, 4.8045],
        [50.0000, -0.0010, 2.4900, 50.0000, 0.0011, -2.4900, 4.7461],
        [50.0000, 2.5000, 0.0000, 50.0000, 0.0000, -2.5000, 4.3065],
        [50.0000, 2.5000, 0.0000, 73.0000, 25.0000, -18.0000, 27.1492],
        [50.0000, 2.5000, 0.0000, 61.0000, -5.0000, 29.0000, 22.8977],
        [50.0000, 2.5000, 0.0000, 56.0000, -27.0000, -3.0000, 31.9030],
        [50.0000, 2.5000, 0.0000, 58.0000, 24.0000, 15.0000, 19.4535],
        [50.0000, 2.5000, 0.0000, 50.0000, 3.1736, 0.5854, 1.0000],
        [50.0000, 2.5000, 0.0000, 50.0000, 3.2972, 0.0000, 1.0000],
        [50.0000, 2.5000, 0.0000, 50.0000, 1.8634, 0.5757, 1.0000],
        [50.0000, 2.5000, 0.0000, 50.0000, 3.2592, 0.3350, 1.0000],
        [60.2574, -34.0099, 36.2677, 60.4626, -34.1751, 39.4387, 1.2644],
        [63.0109, -31.0961, -5.8663, 62.8187, -29.7946, -4.0864, 1.2630],
        [61.2901, 3.7196, -5.3901, 61.4292, 2.2480, -4.9620, 1.8731],
        [35.0831, -44.1164, 3.7933, 35.0232, -40.0716, 1.5901, 1.8645],
        [22.7233, 20.0904, -46.6940, 23.0331, 14.9730, -42.5619, 2.0373],
        [36.4612, 47.8580, 18.3852, 36.2715, 50.5065, 21.2231, 1.4146],
        [90.8027, -2.0831, 1.4410, 91.1528, -1.6435, 0.0447, 1.4441],
        [90.9257, -0.5406, -0.9208, 88.6381, -0.8985, -0.7239, 1.5381],
        [6.7747, -0.2908, -2.4247, 5.8714, -0.0985, -2.2286, 0.6377],
        [2.0776, 0.0795, -1.1350, 0.9033, -0.0636, -0.5514, 0.9082],
    ]
)


def test_ciede2000_matches_sharma_pairs_vectorised() -> None:
    got = ciede2000(SHARMA[:, 0:3], SHARMA[:, 3:6])
    assert got.shape == (34,)
    np.testing.assert_allclose(np.round(got, 4), SHARMA[:, 6], atol=1e-4, rtol=0)


@pytest.mark.parametrize("row", range(len(SHARMA)))
def test_ciede2000_is_symmetric_and_scalar_safe(row: int) -> None:
    lab1, lab2, expected = SHARMA[row, 0:3], SHARMA[row, 3:6], SHARMA[row, 6]
    assert float(ciede2000(lab2, lab1)) == pytest.approx(expected, abs=1e-4)


def test_ciede2000_broadcasts_one_against_many_and_weights_lightness() -> None:
    ref = np.array([50.0, 10.0, -10.0])
    grid = np.array([[[50.0, 10.0, -10.0], [70.0, 10.0, -10.0]]])
    d = ciede2000(grid, ref)
    assert d.shape == (1, 2)
    assert d[0, 0] == 0.0
    # kL = 2 halves a pure lightness difference.
    assert float(ciede2000(grid[0, 1], ref, k_l=2.0)) == pytest.approx(d[0, 1] / 2)


@pytest.mark.parametrize(
    ("rgb", "lab"),
    [
        ((255, 255, 255), (100.0, 0.0, 0.0)),
        ((0, 0, 0), (0.0, 0.0, 0.0)),
        ((255, 0, 0), (53.2408, 80.0925, 67.2032)),
        ((0, 255, 0), (87.7347, -86.1827, 83.1793)),
        ((0, 0, 255), (32.2970, 79.1875, -107.8602)),
        ((128, 128, 128), (53.5850, 0.0, 0.0)),
    ],
)
def test_srgb_to_lab_reference_values(rgb: tuple[int, int, int], lab: tuple[float, ...]) -> None:
    as_u8 = srgb_to_lab(np.array(rgb, dtype=np.uint8))
    as_float = srgb_to_lab(np.array(rgb, dtype=np.float64))
    np.testing.assert_allclose(as_u8, lab, atol=2e-3)
    np.testing.assert_allclose(as_u8, as_float, atol=1e-9)


def test_lab_round_trip_over_the_cube() -> None:
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, size=(64, 64, 3)).astype(np.float64)
    np.testing.assert_allclose(lab_to_srgb(srgb_to_lab(rgb)), rgb, atol=1e-6)
    lin = srgb_to_linear(rgb)
    np.testing.assert_allclose(linear_to_srgb(lin), rgb, atol=1e-9)


def test_dark_colours_take_the_linear_segments() -> None:
    # Values below both knees (sRGB 0.04045, CIE ε) must survive the round trip too.
    rgb = np.array([[1.0, 2.0, 3.0], [10.0, 0.0, 5.0]])
    np.testing.assert_allclose(lab_to_srgb(srgb_to_lab(rgb)), rgb, atol=1e-6)


def test_wcag_luminance_and_contrast_examples() -> None:
    white, black = relative_luminance([255, 255, 255]), relative_luminance([0, 0, 0])
    assert float(white) == pytest.approx(1.0)
    assert float(black) == 0.0
    assert float(contrast_ratio(white, black)) == pytest.approx(21.0)
    assert float(contrast_ratio(black, white)) == pytest.approx(21.0)
    # #767676 is the classic lightest grey that passes AA (4.54:1) on white; #777777 fails.
    grey_ok = relative_luminance(hex_to_srgb("#767676"))
    grey_bad = relative_luminance(hex_to_srgb("#777777"))
    assert float(contrast_ratio(grey_ok, white)) == pytest.approx(4.54, abs=0.01)
    assert float(contrast_ratio(grey_bad, white)) < 4.5


def test_hex_helpers_and_chroma() -> None:
    assert srgb_to_hex(hex_to_srgb("#1d3557")) == "#1d3557"
    assert srgb_to_hex([300.0, -4.0, 127.6]) == "#ff0080"
    assert float(chroma(srgb_to_lab([200, 200, 200]))) < 1e-3
    assert float(chroma(srgb_to_lab([255, 0, 0]))) > 100


def test_transfer_function_forms_agree_and_keep_dtype() -> None:
    from bildwerk.colour import srgb_decode, srgb_decode_value, srgb_encode, srgb_encode_value

    c32 = np.linspace(0, 1, 1001, dtype=np.float32)
    assert srgb_decode(c32).dtype == np.float32 and srgb_encode(c32).dtype == np.float32
    c = np.linspace(0, 1, 1001)
    assert np.allclose(srgb_encode(srgb_decode(c)), c, atol=1e-12)
    assert [srgb_decode_value(float(v)) for v in c] == pytest.approx(list(srgb_decode(c)))
    assert [srgb_encode_value(float(v)) for v in c] == pytest.approx(list(srgb_encode(c)))
    assert srgb_encode_value(1.5) == pytest.approx(1.0) and srgb_encode_value(-0.2) == 0.0


def test_oklab_round_trip_and_reference_white() -> None:
    from bildwerk.colour import oklab_to_srgb, srgb_to_oklab

    white = srgb_to_oklab((1.0, 1.0, 1.0))
    assert white == pytest.approx((1.0, 0.0, 0.0), abs=1e-4)
    for rgb in [(0.2, 0.4, 0.6), (0.9, 0.1, 0.05), (0.0, 0.0, 0.0)]:
        assert oklab_to_srgb(srgb_to_oklab(rgb)) == pytest.approx(rgb, abs=1e-6)
