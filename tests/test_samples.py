"""Tests for bildwerk.samples: the product cutouts and logo that ``bildwerk init`` ships."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bildwerk.samples import write_sample_logo, write_sample_products


@pytest.fixture(scope="module")
def products(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_sample_products(tmp_path_factory.mktemp("products"))


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_writes_at_least_three_named_pngs(products: dict[str, Path]) -> None:
    assert len(products) >= 3
    for slug, path in products.items():
        assert path.name == f"{slug}.png"
        with Image.open(path) as im:
            assert im.format == "PNG"
            assert im.mode == "RGBA"
            assert 800 <= im.height <= 1000


def test_cutouts_have_real_transparency(products: dict[str, Path]) -> None:
    for path in products.values():
        with Image.open(path) as im:
            alpha = np.asarray(im.getchannel("A"))
        h, w = alpha.shape
        for y, x in ((0, 0), (0, w - 1), (h - 1, 0), (h - 1, w - 1)):
            assert alpha[y, x] == 0, f"{path.name} corner ({x},{y}) is not transparent"
        assert alpha[h // 2, w // 2] == 255
        assert alpha[h // 2 : h // 2 + 3, :].max() == 255
        # a cutout, not a rectangle: a good share of the canvas is background
        assert 0.02 < float((alpha == 0).mean()) < 0.6
        # anti-aliased silhouette: some partially transparent edge pixels
        assert ((alpha > 0) & (alpha < 255)).sum() > 100


def test_cutouts_are_shaded_not_flat(products: dict[str, Path]) -> None:
    for path in products.values():
        with Image.open(path) as im:
            arr = np.asarray(im, dtype=np.float32)
        opaque = arr[..., 3] == 255
        luma = arr[..., :3].mean(axis=2)[opaque]
        assert luma.std() > 20, f"{path.name} looks flat"
        # some highlights and some shadows: a lit 3-D object
        assert np.percentile(luma, 98) - np.percentile(luma, 2) > 100


def test_products_are_deterministic(products: dict[str, Path], tmp_path: Path) -> None:
    again = write_sample_products(tmp_path)
    assert again.keys() == products.keys()
    for slug in products:
        assert _digest(again[slug]) == _digest(products[slug])


def test_logo_is_transparent_wordmark(tmp_path: Path) -> None:
    path = write_sample_logo(tmp_path / "logo.png", "Nordlicht", "#1f3a5f", "#e07a5f")
    with Image.open(path) as im:
        assert im.mode == "RGBA"
        arr = np.asarray(im)
    alpha = arr[..., 3]
    h, w = alpha.shape
    assert w > 2 * h  # a wordmark is wide
    assert alpha[0, 0] == alpha[-1, -1] == alpha[0, -1] == alpha[-1, 0] == 0
    solid = arr[alpha == 255][:, :3]
    colours = {tuple(int(c) for c in px) for px in solid}
    assert (0x1F, 0x3A, 0x5F) in colours  # primary
    assert (0xE0, 0x7A, 0x5F) in colours  # accent


def test_logo_is_deterministic_and_fits_the_name(tmp_path: Path) -> None:
    a = write_sample_logo(tmp_path / "a.png", "Acme", "#222222", "#ff6600")
    b = write_sample_logo(tmp_path / "b.png", "Acme", "#222222", "#ff6600")
    long = write_sample_logo(
        tmp_path / "c" / "long.png", "Acme Outdoor Company", "#222222", "#ff6600"
    )
    assert _digest(a) == _digest(b)
    with Image.open(a) as short_im, Image.open(long) as long_im:
        assert long_im.width > short_im.width * 2
        assert long_im.height == short_im.height
