"""Upscaling: Lanczos fallback, tiled inference with overlap blending, and real spandrel
loading of a tiny ESRGAN (RRDBNet) built in code."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from bildwerk import upscale as up
from bildwerk.errors import UserError


def _torch() -> Any:
    return pytest.importorskip("torch")


def _spandrel() -> Any:
    """spandrel through bildwerk's loader (which copes with a mismatched torchvision)."""
    _torch()
    return up._spandrel()


def _noise(w: int, h: int, mode: str = "RGB", seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    small = (rng.random((max(1, h // 4), max(1, w // 4), 3)) * 255).astype(np.uint8)
    return Image.fromarray(small).resize((w, h), Image.Resampling.BICUBIC).convert(mode)


def tiny_esrgan(scale: int = 4, nf: int = 8, blocks: int = 1, seed: int = 0) -> dict[str, Any]:
    """A Real-ESRGAN-style RRDBNet state dict (new key names): conv_first, body.N.rdbR.convC,
    conv_body, conv_upI, conv_hr, conv_last. spandrel fixes the growth channels at 32."""
    torch = _torch()
    gen = torch.Generator().manual_seed(seed)
    state: dict[str, Any] = {}

    def conv(name: str, cin: int, cout: int) -> None:
        std = 1.0 / math.sqrt(cin * 9)
        state[f"{name}.weight"] = torch.randn(cout, cin, 3, 3, generator=gen) * std
        state[f"{name}.bias"] = torch.zeros(cout)

    conv("conv_first", 3, nf)
    for b in range(blocks):
        for r in (1, 2, 3):
            for c in range(1, 6):
                conv(f"body.{b}.rdb{r}.conv{c}", nf + (c - 1) * 32, 32 if c < 5 else nf)
    conv("conv_body", nf, nf)
    for i in range(1, int(math.log2(scale)) + 1):
        conv(f"conv_up{i}", nf, nf)
    conv("conv_hr", nf, nf)
    conv("conv_last", nf, 3)
    state["conv_last.bias"] += 0.5  # centre the output so few pixels clamp
    return state


@pytest.fixture(scope="module")
def esrgan_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    _spandrel()
    from safetensors.torch import save_file

    path = tmp_path_factory.mktemp("up") / "tiny-4x.safetensors"
    save_file(tiny_esrgan(), str(path))
    return path


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    up.clear_cache()


# -- Lanczos fallback ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "scale", "expected"),
    [
        ((64, 48), 2, (128, 96)),
        ((64, 48), 1.5, (96, 72)),
        ((101, 37), 3.3, (333, 122)),
        ((64, 48), 0.5, (32, 24)),
        ((1, 1), 0.1, (1, 1)),
    ],
)
def test_lanczos_fallback_gives_exact_size(
    size: tuple[int, int], scale: float, expected: tuple[int, int]
) -> None:
    out = up.upscale(_noise(*size), scale)
    assert out.size == expected
    assert out.mode == "RGB"


def test_lanczos_fallback_is_pillow_lanczos() -> None:
    img = _noise(40, 30)
    expected = img.resize((80, 60), Image.Resampling.LANCZOS)
    assert np.array_equal(np.asarray(up.upscale(img, 2)), np.asarray(expected))


def test_fallback_keeps_alpha_and_converts_palette() -> None:
    rgba = _noise(20, 10, "RGBA")
    assert up.upscale(rgba, 2).mode == "RGBA"
    palette = _noise(20, 10).convert("P")
    palette.info["transparency"] = 0
    out = up.upscale(palette, 2)
    assert (out.mode, out.size) == ("RGBA", (40, 20))


@pytest.mark.parametrize("scale", [0, -2, float("nan"), float("inf")])
def test_bad_scale_is_a_user_error(scale: float) -> None:
    with pytest.raises(UserError, match="positive number"):
        up.upscale(_noise(8, 8), scale)


def test_oversized_target_is_a_user_error() -> None:
    with pytest.raises(UserError, match="over 16384 px"):
        up.upscale(_noise(1000, 10), 20)


@pytest.mark.parametrize(("tile", "overlap"), [(8, 0), (64, 40), (64, -1)])
def test_bad_tiling_is_a_user_error(tile: int, overlap: int) -> None:
    with pytest.raises(UserError, match="invalid tiling"):
        up.upscale(_noise(8, 8), 2, model=Path("unused.pth"), tile=tile, overlap=overlap)


# -- tiling -------------------------------------------------------------------------


def _local_sr(torch: Any, scale: int = 2) -> Any:
    """A random conv net with a 3-pixel receptive radius, then pixel shuffle."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.Conv2d(8, 8, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.Conv2d(8, 3 * scale * scale, 3, padding=1),
        torch.nn.PixelShuffle(scale),
    ).eval()
    return net


def test_tiles_blend_to_the_single_pass_result() -> None:
    torch = _torch()
    net = _local_sr(torch)
    x = torch.rand(1, 3, 70, 90, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        whole = net(x)
        # margin = overlap/4 = 4 px >= the net's receptive radius (3): exact up to float
        tiled = up.tiled_apply(net, x, 2, tile=32, overlap=16)
        seams = up.tiled_apply(net, x, 2, tile=32, overlap=0)
    assert tiled.shape == whole.shape == (1, 3, 140, 180)
    assert torch.allclose(tiled, whole, atol=1e-5)
    # without overlap the tile borders lack context: the comparison above is meaningful
    assert (seams - whole).abs().max() > 1e-2


def test_image_that_fits_one_tile_runs_once() -> None:
    torch = _torch()
    calls: list[tuple[int, ...]] = []

    def fn(t: Any) -> Any:
        calls.append(tuple(t.shape))
        return torch.nn.functional.interpolate(t, scale_factor=2)

    up.tiled_apply(fn, torch.zeros(1, 3, 40, 30), 2, tile=64, overlap=16)
    assert calls == [(1, 3, 40, 30)]
    calls.clear()
    up.tiled_apply(fn, torch.zeros(1, 3, 40, 100), 2, tile=64, overlap=16)
    assert calls == [(1, 3, 40, 64), (1, 3, 40, 64)]  # starts 0 and 36 cover 100 px


# -- spandrel -----------------------------------------------------------------------


def test_spandrel_loads_tiny_esrgan(esrgan_file: Path) -> None:
    info = up.describe_upscaler(esrgan_file)
    assert (info.architecture, info.scale, info.purpose) == ("esrgan", 4, "SR")
    assert info.tags == ("8nf", "1nb")


def test_model_output_is_scale_times_input(esrgan_file: Path) -> None:
    out = up.upscale(_noise(24, 16), 4, model=esrgan_file)
    assert (out.mode, out.size) == ("RGB", (96, 64))
    assert np.asarray(out).std() > 5  # a real picture, not a constant


def test_model_then_lanczos_reaches_any_target(esrgan_file: Path) -> None:
    assert up.upscale(_noise(24, 16), 2, model=esrgan_file).size == (48, 32)
    assert up.upscale(_noise(25, 17), 2.5, model=esrgan_file).size == (62, 42)


def test_tiled_model_matches_single_pass(esrgan_file: Path) -> None:
    img = _noise(88, 64, seed=3)
    whole = np.asarray(up.upscale(img, 4, model=esrgan_file, tile=512), dtype=np.int16)
    tiled = np.asarray(up.upscale(img, 4, model=esrgan_file, tile=48, overlap=24), dtype=np.int16)
    naive = np.asarray(up.upscale(img, 4, model=esrgan_file, tile=48, overlap=0), dtype=np.int16)
    assert np.abs(tiled - whole).max() <= 1  # rounding to 8 bits at most
    assert np.abs(naive - whole).max() > 10  # hard tile edges would show


def test_model_keeps_alpha(esrgan_file: Path) -> None:
    out = up.upscale(_noise(16, 12, "RGBA"), 4, model=esrgan_file)
    assert (out.mode, out.size) == ("RGBA", (64, 48))


def test_pth_files_load_too(tmp_path: Path) -> None:
    torch = _torch()
    _spandrel()
    path = tmp_path / "tiny-2x.pth"
    torch.save(tiny_esrgan(scale=2), path)
    assert up.describe_upscaler(path).scale == 2
    assert up.upscale(_noise(10, 8), 2, model=path).size == (20, 16)


def test_loaded_model_is_cached_per_file_version(esrgan_file: Path, tmp_path: Path) -> None:
    assert up.load_upscaler(esrgan_file) is up.load_upscaler(esrgan_file)
    copy = tmp_path / "copy.safetensors"
    copy.write_bytes(esrgan_file.read_bytes())
    first = up.load_upscaler(copy)
    st = copy.stat()
    os.utime(copy, ns=(st.st_atime_ns, st.st_mtime_ns + 10_000_000))
    assert up.load_upscaler(copy) is not first  # a rewritten file is loaded again


def test_unknown_weights_are_a_user_error(tmp_path: Path) -> None:
    _spandrel()
    from safetensors.numpy import save_file

    path = tmp_path / "mystery.safetensors"
    save_file({"encoder.layer.0.weight": np.zeros((4, 4), np.float32)}, str(path))
    with pytest.raises(UserError, match="not an upscaler architecture spandrel recognises"):
        up.upscale(_noise(8, 8), 2, model=path)


def test_unusable_files_are_user_errors(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not weights")
    with pytest.raises(UserError, match="not an upscaler file type"):
        up.upscale(_noise(8, 8), 2, model=text)
    with pytest.raises(UserError, match="no such upscaler file"):
        up.upscale(_noise(8, 8), 2, model=tmp_path / "missing.pth")


def test_diffusion_frame_scales_up_through_the_registered_upscaler(esrgan_file: Path) -> None:
    """A scene generated smaller than its channel goes through the upscaler model, not
    plain Lanczos, when one is configured."""
    from bildwerk.backends.diffusion.modes import Frame

    frame = Frame.plan(256, 256, (64, 64), 8)
    small = _noise(64, 64)
    plain = frame.from_gen(small)
    modelled = frame.from_gen(small, str(esrgan_file))
    assert plain.size == modelled.size == (256, 256)
    diff = np.abs(np.asarray(plain, dtype=np.int16) - np.asarray(modelled, dtype=np.int16))
    assert diff.max() > 10  # the model's output, not the Lanczos fallback
