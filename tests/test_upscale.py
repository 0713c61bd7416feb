"""Upscaling: Lanczos fallback, tiled inference with overlap blending, and bildwerk's own
ESRGAN/Real-ESRGAN loader on tiny networks built here, in every key layout it reads.

The tiny state dicts are random weights with the published architectures' names and
shapes; ``reference_forward`` recomputes each network from the raw tensors with torch's
functional ops, so the loader's modules and key mapping are checked against the
architecture as published, not against themselves. Where spandrel imports, its loader is
a second, independent reference."""

from __future__ import annotations

import importlib.util
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from bildwerk import upscale as up
from bildwerk.errors import MissingExtraError, UserError
from bildwerk.upscalers.detect import COMPACT, ESRGAN, Architecture, detect, expected_shapes


def _torch() -> Any:
    return pytest.importorskip("torch")


def _noise(w: int, h: int, mode: str = "RGB", seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    small = (rng.random((max(1, h // 4), max(1, w // 4), 3)) * 255).astype(np.uint8)
    return Image.fromarray(small).resize((w, h), Image.Resampling.BICUBIC).convert(mode)


def _random_state(shapes: dict[str, tuple[int, ...]], seed: int) -> dict[str, Any]:
    torch = _torch()
    gen = torch.Generator().manual_seed(seed)
    state: dict[str, Any] = {}
    for name, shape in shapes.items():
        if len(shape) == 4:  # conv weight, scaled so activations stay in range
            std = 1.0 / math.sqrt(shape[1] * 9)
            state[name] = torch.randn(*shape, generator=gen) * std
        elif name.endswith(".bias"):
            state[name] = torch.randn(*shape, generator=gen) * 0.01
        else:  # PReLU slopes
            state[name] = torch.rand(*shape, generator=gen) * 0.3
    return state


def tiny_esrgan(
    scale: int = 4, nf: int = 8, blocks: int = 1, seed: int = 0, growth: int = 32
) -> dict[str, Any]:
    """A Real-ESRGAN-style RRDBNet state dict (BasicSR names): conv_first, body.N.rdbR.convC,
    conv_body, conv_upI (one per 2x), conv_hr, conv_last. No input unshuffle."""
    arch = Architecture(
        ESRGAN, scale, 3, 3, nf, blocks, growth=growth, upsamples=int(math.log2(scale))
    )
    state = _random_state(expected_shapes(arch), seed)
    state["conv_last.bias"] += 0.5  # centre the output so few pixels clamp
    return state


def tiny_realesrgan_x2(nf: int = 8, seed: int = 1) -> dict[str, Any]:
    """Real-ESRGAN's x2 layout: the input pixel-unshuffled 2x (12 channels), two 2x ups."""
    arch = Architecture(ESRGAN, 2, 3, 3, nf, 1, growth=32, upsamples=2, unshuffle=2)
    state = _random_state(expected_shapes(arch), seed)
    state["conv_last.bias"] += 0.5
    return state


def tiny_compact(scale: int = 4, nf: int = 8, convs: int = 3, seed: int = 2) -> dict[str, Any]:
    """SRVGGNetCompact: body.0 conv, body.1 PReLU, …, the last conv with 3*scale² outputs."""
    return _random_state(expected_shapes(Architecture(COMPACT, scale, 3, 3, nf, convs)), seed)


def old_esrgan_names(state: dict[str, Any]) -> dict[str, Any]:
    """The same RRDBNet in the original ESRGAN code's flattened ``model.N`` names."""
    ups = sorted(k for k in state if k.startswith("conv_up") and k.endswith(".weight"))
    n = len(ups)
    blocks = 1 + max(int(k.split(".")[1]) for k in state if k.startswith("body."))
    top = {"conv_first": "model.0", "conv_hr": f"model.{3 * n + 2}"}
    top |= {"conv_last": f"model.{3 * n + 4}", "conv_body": f"model.1.sub.{blocks}"}
    top |= {f"conv_up{i}": f"model.{3 * i}" for i in range(1, n + 1)}
    out = {}
    for key, value in state.items():
        name, _, kind = key.rpartition(".")
        if name.startswith("body."):
            _, b, rdb, conv = name.split(".")
            out[f"model.1.sub.{b}.RDB{rdb[3:]}.{conv}.0.{kind}"] = value
        else:
            out[f"{top[name]}.{kind}"] = value
    return out


def esrgan_repo_names(state: dict[str, Any]) -> dict[str, Any]:
    """The same RRDBNet in the ESRGAN repository's later names (RRDB_trunk, upconvN)."""
    names = {"conv_body": "trunk_conv", "conv_hr": "HRconv"}
    out = {}
    for key, value in state.items():
        name, _, kind = key.rpartition(".")
        if name.startswith("body."):
            _, b, rdb, conv = name.split(".")
            out[f"RRDB_trunk.{b}.RDB{rdb[3:]}.{conv}.{kind}"] = value
        elif name.startswith("conv_up"):
            out[f"upconv{name[7:]}.{kind}"] = value
        else:
            out[f"{names.get(name, name)}.{kind}"] = value
    return out


def reference_forward(state: dict[str, Any], x: Any) -> Any:
    """The published networks, computed from BasicSR/Real-ESRGAN-named tensors."""
    torch = _torch()
    f = torch.nn.functional

    def conv(name: str, t: Any) -> Any:
        return f.conv2d(t, state[f"{name}.weight"], state[f"{name}.bias"], padding=1)

    if "conv_first.weight" not in state:  # SRVGGNetCompact
        last = max(int(k.split(".")[1]) for k in state)
        scale = math.isqrt(state[f"body.{last}.weight"].shape[0] // x.shape[1])
        out = x
        for i in range(0, last, 2):
            out = f.prelu(conv(f"body.{i}", out), state[f"body.{i + 1}.weight"])
        out = f.pixel_shuffle(conv(f"body.{last}", out), scale)
        return out + f.interpolate(x, scale_factor=scale, mode="nearest")

    def lrelu(t: Any) -> Any:
        return f.leaky_relu(t, 0.2)

    unshuffle = math.isqrt(state["conv_first.weight"].shape[1] // x.shape[1])
    feat = conv("conv_first", f.pixel_unshuffle(x, unshuffle) if unshuffle > 1 else x)
    trunk = feat
    blocks = 1 + max(int(k.split(".")[1]) for k in state if k.startswith("body."))
    for b in range(blocks):
        block_in = trunk
        for r in (1, 2, 3):
            p = f"body.{b}.rdb{r}"
            x1 = lrelu(conv(f"{p}.conv1", trunk))
            x2 = lrelu(conv(f"{p}.conv2", torch.cat((trunk, x1), 1)))
            x3 = lrelu(conv(f"{p}.conv3", torch.cat((trunk, x1, x2), 1)))
            x4 = lrelu(conv(f"{p}.conv4", torch.cat((trunk, x1, x2, x3), 1)))
            x5 = conv(f"{p}.conv5", torch.cat((trunk, x1, x2, x3, x4), 1))
            trunk = x5 * 0.2 + trunk
        trunk = trunk * 0.2 + block_in
    feat = feat + conv("conv_body", trunk)
    i = 1
    while f"conv_up{i}.weight" in state:
        feat = lrelu(conv(f"conv_up{i}", f.interpolate(feat, scale_factor=2, mode="nearest")))
        i += 1
    return conv("conv_last", lrelu(conv("conv_hr", feat)))


def _save(state: dict[str, Any], path: Path) -> Path:
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    else:
        _torch().save(state, path)
    return path


@pytest.fixture(scope="module")
def esrgan_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    _torch()
    return _save(tiny_esrgan(), tmp_path_factory.mktemp("up") / "tiny-4x.safetensors")


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


# -- detection (names and shapes only, no torch) --------------------------------------

ARCHS = [
    Architecture(ESRGAN, 4, 3, 3, 64, 23, growth=32, upsamples=2),  # ESRGAN x4 / x4plus
    Architecture(ESRGAN, 4, 3, 3, 64, 6, growth=32, upsamples=2),  # x4plus_anime_6B
    Architecture(ESRGAN, 2, 3, 3, 64, 23, growth=32, upsamples=2, unshuffle=2),  # x2plus
    Architecture(ESRGAN, 1, 3, 3, 64, 23, growth=32, upsamples=2, unshuffle=4),
    Architecture(ESRGAN, 8, 3, 3, 64, 23, growth=32, upsamples=3),
    Architecture(ESRGAN, 1, 1, 1, 32, 2, growth=16, upsamples=0),
    Architecture(COMPACT, 4, 3, 3, 64, 32),  # realesr-general-x4v3
    Architecture(COMPACT, 4, 3, 3, 64, 16),  # realesr-animevideov3
    Architecture(COMPACT, 2, 3, 3, 64, 16),
]


@pytest.mark.parametrize("arch", ARCHS, ids=lambda a: f"{a.name}-x{a.scale}-{a.blocks}")
def test_detection_reads_every_setting_back_from_the_shapes(arch: Architecture) -> None:
    assert detect(expected_shapes(arch)) == arch


def test_detection_reads_the_older_esrgan_layouts() -> None:
    torch = _torch()
    for scale in (1, 2, 4, 8):
        state = {k: torch.empty(v) for k, v in _esrgan_shapes(scale).items()}
        old = detect({k: tuple(v.shape) for k, v in old_esrgan_names(state).items()})
        repo = detect({k: tuple(v.shape) for k, v in esrgan_repo_names(state).items()})
        assert old is not None and repo is not None
        assert (old.scale, old.layout, repo.scale, repo.layout) == (
            scale,
            "esrgan-old",
            scale,
            "esrgan-repo",
        )
        assert (old.features, old.blocks, old.growth) == (16, 2, 8)


def _esrgan_shapes(scale: int) -> dict[str, tuple[int, ...]]:
    arch = Architecture(ESRGAN, scale, 3, 3, 16, 2, growth=8, upsamples=int(math.log2(scale)))
    return expected_shapes(arch)


def test_a_file_that_differs_anywhere_is_not_recognised() -> None:
    shapes = _esrgan_shapes(4)
    assert detect(shapes) is not None
    assert detect({**shapes, "body.0.rdb1.conv1x1.weight": (8, 16, 1, 1)}) is None  # ESRGAN+
    assert detect({**shapes, "conv_hr.weight": (16, 16, 1, 1)}) is None
    assert detect({k: v for k, v in shapes.items() if k != "body.1.rdb3.conv5.bias"}) is None
    assert detect({**shapes, "conv_up3.weight": (16, 16, 3, 3)}) is None  # no bias
    compact = expected_shapes(Architecture(COMPACT, 4, 3, 3, 16, 2))
    assert detect({**compact, "body.3.weight": (1,)}) is None  # single-slope PReLU
    assert detect({"encoder.layer.0.weight": (4, 4)}) is None
    assert detect({}) is None


def test_data_parallel_prefix_is_ignored() -> None:
    shapes = _esrgan_shapes(2)
    assert detect({f"module.{k}": v for k, v in shapes.items()}) == detect(shapes)


# -- loading and running ----------------------------------------------------------------


def _layouts() -> list[tuple[str, Any]]:
    return [
        ("basicsr-x4", lambda: tiny_esrgan(nf=8, blocks=2)),
        ("basicsr-x2-unshuffle", tiny_realesrgan_x2),
        ("old-x4", lambda: old_esrgan_names(tiny_esrgan(nf=8))),
        ("old-x2", lambda: old_esrgan_names(tiny_esrgan(scale=2, nf=8))),
        ("repo-x4", lambda: esrgan_repo_names(tiny_esrgan(nf=8))),
        ("compact-x4", tiny_compact),
        ("compact-x2", lambda: tiny_compact(scale=2)),
    ]


def _basicsr_names(state: dict[str, Any]) -> dict[str, Any]:
    from bildwerk.upscalers.detect import module_keys

    names = module_keys(state)
    return {names[k]: v for k, v in state.items()}


@pytest.mark.parametrize(("name", "make"), _layouts(), ids=[n for n, _ in _layouts()])
@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_loader_computes_the_published_network(
    tmp_path: Path, name: str, make: Any, suffix: str
) -> None:
    torch = _torch()
    state = make()
    path = _save(state, tmp_path / f"{name}{suffix}")
    model = up.load_upscaler(path)
    x = torch.rand(1, 3, 12, 10, generator=torch.Generator().manual_seed(5))
    with torch.inference_mode():
        got = model(x)
        want = reference_forward(_basicsr_names(state), x)
    assert got.shape == (1, 3, 12 * model.scale, 10 * model.scale)
    assert torch.allclose(got, want, atol=1e-5)
    assert model.architecture == ("compact" if "compact" in name else "esrgan")


def test_training_checkpoints_are_unwrapped(tmp_path: Path) -> None:
    """Real-ESRGAN's .pth files keep the weights under params_ema (preferred) and
    params; DataParallel adds module. to every name."""
    torch = _torch()
    ema = tiny_compact(seed=3)
    raw = tiny_compact(seed=4)
    path = tmp_path / "trained.pth"
    torch.save({"params": raw, "params_ema": {f"module.{k}": v for k, v in ema.items()}}, path)
    x = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        assert torch.allclose(up.load_upscaler(path)(x), reference_forward(ema, x), atol=1e-5)


def test_half_precision_files_load_as_float32(tmp_path: Path) -> None:
    torch = _torch()
    path = _save({k: v.half() for k, v in tiny_compact().items()}, tmp_path / "fp16.safetensors")
    model = up.load_upscaler(path)
    assert next(model.model.parameters()).dtype == torch.float32


def test_loader_matches_spandrel_where_it_imports(tmp_path: Path) -> None:
    """spandrel is an independent implementation; only where it imports (its extra)."""
    torch = _torch()
    if importlib.util.find_spec("spandrel") is None:
        pytest.skip("spandrel is not installed (bildwerk[spandrel])")
    try:
        import spandrel  # type: ignore[import-untyped]
    except Exception as exc:
        pytest.skip(f"spandrel cannot be imported here: {type(exc).__name__}: {exc}")
    for name, make in _layouts():
        path = _save(make(), tmp_path / f"{name}.safetensors")
        theirs = spandrel.ModelLoader(device="cpu").load_from_file(path).eval()
        x = torch.rand(1, 3, 12, 12, generator=torch.Generator().manual_seed(7))
        with torch.inference_mode():  # spandrel's descriptor clamps to the image range
            ours = up.load_upscaler(path)(x).clamp(0, 1)
            assert torch.allclose(ours, theirs(x), atol=1e-4), name


def test_describes_tiny_esrgan(esrgan_file: Path) -> None:
    info = up.describe_upscaler(esrgan_file)
    assert (info.architecture, info.scale, info.purpose) == ("esrgan", 4, "SR")
    assert info.tags == ("8nf", "1nb")
    assert (info.input_channels, info.output_channels) == (3, 3)


def test_model_output_is_scale_times_input_and_deterministic(esrgan_file: Path) -> None:
    out = up.upscale(_noise(24, 16), 4, model=esrgan_file)
    assert (out.mode, out.size) == ("RGB", (96, 64))
    assert np.asarray(out).std() > 5  # a real picture, not a constant
    up.clear_cache()
    again = up.upscale(_noise(24, 16), 4, model=esrgan_file)
    assert np.array_equal(np.asarray(out), np.asarray(again))


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


def test_tiled_compact_model_has_no_seams(tmp_path: Path) -> None:
    """Four 3x3 convs: a 4-pixel receptive radius, within the overlap's margin (16/4)."""
    path = _save(tiny_compact(convs=2), tmp_path / "compact.safetensors")
    img = _noise(70, 44, seed=4)
    whole = np.asarray(up.upscale(img, 4, model=path, tile=512), dtype=np.int16)
    tiled = np.asarray(up.upscale(img, 4, model=path, tile=32, overlap=16), dtype=np.int16)
    naive = np.asarray(up.upscale(img, 4, model=path, tile=32, overlap=0), dtype=np.int16)
    assert np.abs(tiled - whole).max() <= 1
    assert np.abs(naive - whole).max() > 10


def test_model_keeps_alpha(esrgan_file: Path) -> None:
    out = up.upscale(_noise(16, 12, "RGBA"), 4, model=esrgan_file)
    assert (out.mode, out.size) == ("RGBA", (64, 48))


def test_pth_files_load_too(tmp_path: Path) -> None:
    path = _save(tiny_esrgan(scale=2), tmp_path / "tiny-2x.pth")
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


# -- errors -----------------------------------------------------------------------------


def test_unknown_weights_are_a_user_error_naming_the_file(tmp_path: Path) -> None:
    _torch()
    from safetensors.numpy import save_file

    path = tmp_path / "mystery.safetensors"
    save_file({"encoder.layer.0.weight": np.zeros((4, 4), np.float32)}, str(path))
    with pytest.raises(UserError, match=r"mystery\.safetensors") as err:
        up.upscale(_noise(8, 8), 2, model=path)
    if importlib.util.find_spec("spandrel") is None:  # the diffusion extra alone
        assert isinstance(err.value, MissingExtraError)
        assert "ESRGAN" in err.value.message
        assert "pip install 'bildwerk[spandrel]'" in str(err.value.hint)


def test_damaged_files_are_user_errors_naming_the_file(esrgan_file: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(esrgan_file.read_bytes()[:-64])
    with pytest.raises(UserError, match=r"cut\.safetensors: cannot read this upscaler file"):
        up.load_upscaler(cut)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a pickle at all")
    with pytest.raises(UserError, match=r"junk\.pth: cannot read this upscaler file"):
        up.load_upscaler(junk)
    _torch().save([1, 2, 3], tmp_path / "list.pth")
    with pytest.raises(UserError, match=r"list\.pth: holds a list"):
        up.load_upscaler(tmp_path / "list.pth")


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
