"""Tests for the diffusers backend with tiny random models built in code.

The models are written to disk by ``bildwerk.testing`` and loaded through the real
diffusers/transformers/peft loaders, so these tests exercise the same code paths a real
checkpoint takes; only the sizes are tiny (64 px images, 2 steps).
"""

from __future__ import annotations

import importlib.util
import io
import json
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from bildwerk.backends.base import GenerationBackend, SceneRequest
from bildwerk.backends.diffusion.spec import GenerationSpec
from bildwerk.config.channels import Insets
from bildwerk.errors import MissingExtraError, UserError
from bildwerk.geometry import plan_layout
from bildwerk.samples import draw_serum

if not all(importlib.util.find_spec(m) for m in ("torch", "diffusers", "transformers", "peft")):
    pytest.skip("needs the diffusion extra", allow_module_level=True)

from bildwerk import testing
from bildwerk.backends.diffusers import DiffusersBackend
from bildwerk.backends.diffusion.libs import libs
from bildwerk.backends.diffusion.pipelines import PipelineCache

# A batch of 4 must match the same 4 images made one by one within this many levels (of
# 255). Measured on a 2-core x86 CPU, fp32: max |diff| = 1 (batched matmuls round
# differently); the noise itself is identical because each image has its own generator.
BATCH_TOLERANCE = 2
PALETTE = {"background": "#e8e2d8", "primary": "#1f3a5f", "accent": "#e07a5f"}


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny-models")
    cutout = root / "serum.png"
    draw_serum().save(cutout)
    return {
        "sd15": testing.tiny_sd15(root / "sd15"),
        "sdxl": testing.tiny_sdxl(root / "sdxl"),
        "inpaint": testing.tiny_inpaint(root / "inpaint"),
        "controlnet": testing.tiny_controlnet(root / "controlnet"),
        "lora": testing.tiny_lora(root / "loras"),
        "lora_sdxl": testing.tiny_lora(root / "loras", base="sdxl"),
        "embedding": testing.tiny_textual_inversion(root / "emb", "<bw-style>"),
        "product": cutout,
    }


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """One intra-op thread: on a shared 2-core runner, torch's spinning OpenMP threads
    slow down tenfold when other processes hold the cores. Results do not depend on it."""
    torch = libs().torch
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def backend() -> DiffusersBackend:
    return DiffusersBackend(PipelineCache(libs(), max_models=4))


def model(models: Mapping[str, Path], name: str = "sd15") -> dict[str, Any]:
    arch = "sdxl" if name == "sdxl" else "sd15"
    return {"name": f"tiny-{name}", "path": str(models[name]), "sha256": f"sha-{name}",
            "architecture": arch, "format": "diffusers"}  # fmt: skip


def gen(models: Mapping[str, Path], name: str = "sd15", **over: Any) -> dict[str, Any]:
    return {"model": model(models, name), "steps": 2, "guidance": 5.0, **over}


def request(
    generation: Mapping[str, Any],
    *,
    seed: int = 1,
    width: int = 64,
    height: int = 64,
    product: Path | None = None,
    prompt: str = "a product photo on a podium",
) -> SceneRequest:
    return SceneRequest(
        key=f"k{seed}",
        prompt=prompt,
        negative_prompt="blurry",
        slots={},
        seed=seed,
        width=width,
        height=height,
        palette=PALETTE,
        layout=plan_layout(width, height, Insets(), 0.05),
        params={"generation": dict(generation)},
        product=product,
    )


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.int16)


def png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


# --------------------------------------------------------------------------- basics


def test_protocol_and_capabilities(backend: DiffusersBackend) -> None:
    assert isinstance(backend, GenerationBackend)
    assert backend.name == "diffusers"
    assert backend.version.startswith("1+diffusers-")
    caps = backend.capabilities
    assert caps.max_batch > 1 and caps.needs_model and caps.product_placement


def test_import_is_light() -> None:
    code = (
        "import sys, bildwerk.backends.diffusers, bildwerk.testing\n"
        "heavy = [m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules]\n"
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_builders_are_deterministic(models: dict[str, Path], tmp_path: Path) -> None:
    again = testing.tiny_sd15(tmp_path / "again")
    for part in ("unet/diffusion_pytorch_model.safetensors", "text_encoder/model.safetensors"):
        assert (again / part).read_bytes() == (models["sd15"] / part).read_bytes()
    assert testing.tiny_lora(tmp_path).read_bytes() == models["lora"].read_bytes()


def test_same_seed_same_bytes(backend: DiffusersBackend, models: dict[str, Path]) -> None:
    g = gen(models)
    first = backend.generate([request(g, seed=7)])[0]
    again = backend.generate([request(g, seed=7)])[0]
    other = backend.generate([request(g, seed=8)])[0]
    assert first.image.size == (64, 64)
    assert png(first.image) == png(again.image)
    assert png(first.image) != png(other.image)
    json.dumps(first.params)  # recorded parameters are plain JSON
    p = first.params
    assert p["seed"] == 7 and p["noise"] == "cpu" and p["steps"] == 2 and p["guidance"] == 5.0
    assert p["scheduler"]["class"] == "EulerDiscreteScheduler" and p["scheduler"]["config"]
    assert p["mode"] == "txt2img" and p["dtype"] == "float32" and p["device"] == "cpu"
    assert p["attention"] == "AttnProcessor2_0"  # torch's scaled_dot_product_attention
    assert set(p["versions"]) >= {"torch", "diffusers", "transformers", "peft"}


def test_model_is_loaded_once(backend: DiffusersBackend, models: dict[str, Path]) -> None:
    backend.generate([request(gen(models), seed=1)])
    loads = backend.cache.loads
    backend.generate([request(gen(models, scheduler="ddim"), seed=2)])
    assert backend.cache.loads == loads


def test_batch_equals_singles(backend: DiffusersBackend, models: dict[str, Path]) -> None:
    g = gen(models, batch_size=4)
    batch = backend.generate([request(g, seed=s) for s in range(10, 14)])
    singles = [backend.generate([request(g, seed=s)])[0] for s in range(10, 14)]
    assert [b.params["batch"]["size"] for b in batch] == [4, 4, 4, 4]
    assert [s.params["batch"]["size"] for s in singles] == [1, 1, 1, 1]
    worst = max(
        int(np.abs(pixels(b.image) - pixels(s.image)).max())
        for b, s in zip(batch, singles, strict=True)
    )
    assert worst <= BATCH_TOLERANCE


def test_requests_with_other_sizes_are_split_out(
    backend: DiffusersBackend, models: dict[str, Path]
) -> None:
    g = gen(models)
    out = backend.generate([request(g, seed=1), request(g, seed=2, width=60, height=44)])
    assert [o.image.size for o in out] == [(64, 64), (60, 44)]
    assert out[1].params["size"] == [64, 48]  # rounded up to a multiple of 8, then cropped


def test_size_setting_is_resized_to_the_exact_request(
    backend: DiffusersBackend, models: dict[str, Path]
) -> None:
    out = backend.generate([request(gen(models, size=[64, 64]), width=100, height=50)])[0]
    assert out.image.size == (100, 50)
    assert out.params["size"] == [64, 64] and out.params["output_size"] == [100, 50]


# --------------------------------------------------------------------------- modes


def test_outpaint_keeps_source_pixels(
    backend: DiffusersBackend, models: dict[str, Path], tmp_path: Path
) -> None:
    rng = np.random.default_rng(0)
    source = Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8), "RGB")
    source.save(tmp_path / "source.png")
    g = gen(
        models, mode="outpaint", reference={"image": str(tmp_path / "source.png"), "strength": 1}
    )
    out = backend.generate([request(g, width=64, height=112)])[0]
    box = out.product_box
    assert box is not None and (box.width, box.height) == (64, 64)
    assert out.params["source_scale"] == 1.0 and out.params["mode"] == "outpaint"
    result = pixels(out.image)
    assert np.array_equal(result[box.y0 : box.y1, box.x0 : box.x1], pixels(source))
    outside = np.ones(result.shape[:2], bool)
    outside[box.y0 : box.y1, box.x0 : box.x1] = False
    assert result[outside].std() > 5  # the rest was generated, not left flat


def test_product_pixels_unchanged(backend: DiffusersBackend, models: dict[str, Path]) -> None:
    from bildwerk.backends.studio import load_cutout

    g = gen(models)  # mode auto + a product -> product placement
    out = backend.generate([request(g, width=96, height=64, product=models["product"])])[0]
    assert out.params["mode"] == "product" and out.params["task"] == "inpaint"
    box = out.product_box
    assert box is not None
    placed = load_cutout(models["product"]).image.resize(
        (box.width, box.height), Image.Resampling.LANCZOS
    )
    alpha = np.asarray(placed.getchannel("A"))
    opaque = alpha == 255
    assert opaque.sum() > 100
    region = pixels(out.image)[box.y0 : box.y1, box.x0 : box.x1]
    assert np.array_equal(region[opaque], pixels(placed)[opaque])
    # and the generated scene sits right next to it
    left = pixels(out.image)[:, : max(1, box.x0 - 2)]
    assert left.std() > 5


def test_inpaint_regenerates_only_the_transparent_part(
    backend: DiffusersBackend, models: dict[str, Path], tmp_path: Path
) -> None:
    rng = np.random.default_rng(1)
    source = Image.fromarray(rng.integers(0, 256, (64, 64, 4), dtype=np.uint8), "RGBA")
    source.putalpha(255)
    hole = Image.new("L", (24, 24), 0)
    alpha = source.getchannel("A")
    alpha.paste(hole, (20, 20))
    source.putalpha(alpha)
    source.save(tmp_path / "holey.png")
    g = gen(models, mode="inpaint", reference={"image": str(tmp_path / "holey.png")})
    out = backend.generate([request(g)])[0]
    kept = np.asarray(alpha) == 255
    result, original = pixels(out.image), pixels(source)
    assert np.array_equal(result[kept], original[kept])
    assert not np.array_equal(result[~kept], original[~kept])


def test_sdxl_product_with_lora_and_embedding(
    backend: DiffusersBackend, models: dict[str, Path], tmp_path: Path
) -> None:
    emb = testing.tiny_textual_inversion(tmp_path, "<bw-xl>", base="sdxl")
    extras = {
        "loras": [lora(models, "lora_sdxl", weight=0.8)],
        "embeddings": [{"name": "xl", "path": str(emb), "token": "<bw-xl>"}],
    }
    plain = backend.generate([request(gen(models, "sdxl"), width=96, product=models["product"])])
    styled = backend.generate(
        [request(gen(models, "sdxl", **extras), width=96, product=models["product"],
                 prompt="a product photo <bw-xl>")]
    )  # fmt: skip
    assert styled[0].params["pipeline"] == "StableDiffusionXLInpaintPipeline"
    assert png(plain[0].image) != png(styled[0].image)
    box = styled[0].product_box
    assert box is not None and box == plain[0].product_box


def test_inpainting_checkpoint_runs_every_mode(
    backend: DiffusersBackend, models: dict[str, Path]
) -> None:
    g = gen(models, "inpaint")
    txt = backend.generate([request(g)])[0]
    prod = backend.generate([request(g, width=96, height=64, product=models["product"])])[0]
    assert txt.params["pipeline"] == "StableDiffusionInpaintPipeline"
    assert txt.params["mode"] == "txt2img" and txt.params["task"] == "inpaint"
    assert prod.params["mode"] == "product" and prod.image.size == (96, 64)


def test_sdxl_txt2img(backend: DiffusersBackend, models: dict[str, Path]) -> None:
    out = backend.generate([request(gen(models, "sdxl"), width=64, height=48)])[0]
    assert out.image.size == (64, 48)
    assert out.params["pipeline"] == "StableDiffusionXLPipeline"
    assert pixels(out.image).std() > 1


def test_img2img_runs(backend: DiffusersBackend, models: dict[str, Path], tmp_path: Path) -> None:
    Image.new("RGB", (80, 80), (200, 120, 40)).save(tmp_path / "ref.png")
    g = gen(models, reference={"image": str(tmp_path / "ref.png"), "strength": 0.5})
    out = backend.generate([request(g)])[0]
    assert out.params["pipeline"] == "StableDiffusionImg2ImgPipeline"
    assert out.params["mode"] == "img2img" and out.params["strength"] == 0.5


def test_controlnet_canny_from_the_product(
    backend: DiffusersBackend, models: dict[str, Path]
) -> None:
    control = {"name": "tiny-canny", "path": str(models["controlnet"]), "sha256": "sha-cn",
               "kind": "canny", "image": None, "scale": 1.0}  # fmt: skip
    plain = backend.generate([request(gen(models), width=96, product=models["product"])])[0]
    steered = backend.generate(
        [request(gen(models, controlnet=control), width=96, product=models["product"])]
    )[0]
    assert steered.params["pipeline"] == "StableDiffusionControlNetInpaintPipeline"
    assert steered.params["controlnet"]["kind"] == "canny"
    assert png(plain.image) != png(steered.image)


def test_controlnet_for_another_architecture(
    backend: DiffusersBackend, models: dict[str, Path]
) -> None:
    control = {"name": "tiny-canny", "path": str(models["controlnet"]), "kind": "canny"}
    with pytest.raises(UserError, match=r"ControlNet 'tiny-canny' does not fit model 'tiny-sdxl'"):
        backend.generate(
            [request(gen(models, "sdxl", controlnet=control), product=models["product"])]
        )


def test_controlnet_depth_needs_a_map(backend: DiffusersBackend, models: dict[str, Path]) -> None:
    control = {"name": "d", "path": str(models["controlnet"]), "kind": "depth", "image": None}
    with pytest.raises(UserError, match="needs a control image"):
        backend.generate([request(gen(models, controlnet=control))])


# --------------------------------------------------------------------------- add-ons


def lora(models: Mapping[str, Path], key: str = "lora", **over: Any) -> dict[str, Any]:
    arch = "sdxl" if key.endswith("sdxl") else "sd15"
    return {"name": key, "path": str(models[key]), "sha256": f"sha-{key}", "weight": 1.0,
            "architecture": arch, **over}  # fmt: skip


def test_lora_changes_output_and_switches_off(
    backend: DiffusersBackend, models: dict[str, Path]
) -> None:
    base = backend.generate([request(gen(models), seed=3)])[0]
    styled = backend.generate([request(gen(models, loras=[lora(models)]), seed=3)])[0]
    half = backend.generate([request(gen(models, loras=[lora(models, weight=0.5)]), seed=3)])[0]
    again = backend.generate([request(gen(models), seed=3)])[0]
    assert np.abs(pixels(base.image) - pixels(styled.image)).max() > 10
    assert png(half.image) not in (png(base.image), png(styled.image))
    assert png(again.image) == png(base.image)  # adapters are off when not asked for
    assert styled.params["loras"] == [
        {"name": "lora", "sha256": "sha-lora", "weight": 1.0, "architecture": "sd15"}
    ]


def test_lora_for_another_architecture(backend: DiffusersBackend, models: dict[str, Path]) -> None:
    g = gen(models, loras=[lora(models, "lora_sdxl")])
    with pytest.raises(UserError, match=r"is for sdxl.*tiny-sd15.*sd15"):
        backend.generate([request(g)])
    # undeclared: told apart by its second text encoder's keys
    g = gen(models, loras=[lora(models, "lora_sdxl", architecture=None)])
    with pytest.raises(UserError, match=r"LoRA 'lora_sdxl' is for sdxl"):
        backend.generate([request(g)])


def test_lora_that_does_not_fit(
    backend: DiffusersBackend, models: dict[str, Path], tmp_path: Path
) -> None:
    from safetensors.torch import load_file, save_file

    unet_only = {k: v for k, v in load_file(models["lora_sdxl"]).items() if k.startswith("unet.")}
    save_file(unet_only, tmp_path / "mystery.safetensors")
    entry = {"name": "mystery", "path": str(tmp_path / "mystery.safetensors"), "weight": 1.0}
    with pytest.raises(UserError, match=r"LoRA 'mystery' does not fit model 'tiny-sd15'"):
        backend.generate([request(gen(models, loras=[entry]))])
    # the failed load left nothing behind: the plain model still gives its usual image
    first = backend.generate([request(gen(models), seed=3)])[0]
    assert first.params["loras"] == []


def test_textual_inversion(backend: DiffusersBackend, models: dict[str, Path]) -> None:
    emb = {"name": "style", "path": str(models["embedding"]), "sha256": "e", "token": "<bw-style>"}
    g = gen(models, embeddings=[emb])
    plain = backend.generate([request(g, prompt="a photo")])[0]
    styled = backend.generate([request(g, prompt="a photo <bw-style>")])[0]
    assert png(plain.image) != png(styled.image)
    assert styled.params["embeddings"] == [{"name": "style", "sha256": "e", "token": "<bw-style>"}]


def test_scheduler_by_name(backend: DiffusersBackend, models: dict[str, Path]) -> None:
    outs = {
        name: backend.generate([request(gen(models, scheduler=name), seed=5)])[0]
        for name in ("euler_a", "dpmpp_2m_karras", "ddim")
    }
    assert outs["euler_a"].params["scheduler"]["class"] == "EulerAncestralDiscreteScheduler"
    karras = outs["dpmpp_2m_karras"].params["scheduler"]
    assert (
        karras["class"] == "DPMSolverMultistepScheduler" and karras["config"]["use_karras_sigmas"]
    )
    assert outs["ddim"].params["scheduler"]["name"] == "ddim"
    assert png(outs["ddim"].image) != png(outs["euler_a"].image)
    with pytest.raises(UserError, match="unknown scheduler 'warp9'") as err:
        backend.generate([request(gen(models, scheduler="warp9"))])
    assert "dpmpp_2m_karras" in str(err.value) and "unipc" in str(err.value)


# --------------------------------------------------------------------------- failures


def test_corrupt_checkpoint_names_the_file(
    backend: DiffusersBackend, models: dict[str, Path], tmp_path: Path
) -> None:
    import shutil

    broken = Path(shutil.copytree(models["sd15"], tmp_path / "broken"))
    weights = broken / "unet" / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:3000])
    g = gen(models)
    g["model"] = {**g["model"], "path": str(broken), "sha256": "sha-broken"}
    with pytest.raises(UserError, match=r"cannot load model 'tiny-sd15' from .*unet.diffusion"):
        backend.generate([request(g)])
    single = tmp_path / "model.safetensors"
    single.write_bytes(b"\x00" * 64)
    g["model"] = {**g["model"], "path": str(single), "format": "single_file", "sha256": "s"}
    with pytest.raises(UserError, match=r"model\.safetensors"):
        backend.generate([request(g)])


def test_out_of_memory_retries_in_halves(
    backend: DiffusersBackend, models: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    torch = libs().torch
    calls: list[int] = []
    real = backend._call_pipeline

    def tight(pipe: Any, kwargs: dict[str, Any]) -> Any:
        calls.append(len(kwargs["prompt"]))
        if len(kwargs["prompt"]) > 1:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(pipe, kwargs)

    g = gen(models, batch_size=4)
    expected = [backend.generate([request(g, seed=s)])[0] for s in range(20, 24)]
    monkeypatch.setattr(backend, "_call_pipeline", tight)
    out = backend.generate([request(g, seed=s) for s in range(20, 24)])
    assert calls == [4, 2, 1, 1, 2, 1, 1]
    assert [o.params["batch"]["oom_splits"] for o in out] == [2, 2, 2, 2]
    assert all(o.params["batch"]["size"] == 1 and o.params["batch"]["requested"] == 4 for o in out)
    assert [png(o.image) for o in out] == [png(e.image) for e in expected]


def test_out_of_memory_on_one_image_is_a_user_error(
    backend: DiffusersBackend, models: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    torch = libs().torch

    def none_left(pipe: Any, kwargs: dict[str, Any]) -> Any:
        raise torch.OutOfMemoryError("CUDA out of memory (simulated)")

    monkeypatch.setattr(backend, "_call_pipeline", none_left)
    with pytest.raises(UserError, match="out of memory generating one 64×64 image"):
        backend.generate([request(gen(models))])


def test_missing_extra(backend: DiffusersBackend, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "diffusers", None)  # as if it were not installed
    with pytest.raises(MissingExtraError, match=r"bildwerk\[diffusion\]"):
        DiffusersBackend()
    with pytest.raises(MissingExtraError, match="diffusers"):
        backend.generate([])


# --------------------------------------------------------------------------- settings


def test_spec_parser_names_bad_fields(models: dict[str, Path]) -> None:
    spec = GenerationSpec.from_params({"generation": gen(models, size=[640, 384])})
    assert spec.size == (640, 384) and spec.resolved_steps == 2 and spec.mode == "auto"
    assert GenerationSpec.from_params({"generation": {"model": model(models)}}).resolved_steps == 30
    bad: list[tuple[dict[str, Any], str]] = [
        ({}, "no generation settings"),
        ({"generation": {"model": None}}, "needs a model"),
        ({"generation": gen(models, mode="dream")}, "generation.mode"),
        ({"generation": gen(models, steps=0)}, "generation.steps"),
        ({"generation": gen(models, loras=[{"name": "x"}])}, "generation.loras.0.path"),
        ({"generation": gen(models, controlnet={"name": "c", "path": "p", "kind": "x"})},
         "generation.controlnet.kind"),
        ({"generation": gen(models, device="tpu")}, "generation.device"),
    ]  # fmt: skip
    for params, message in bad:
        with pytest.raises(UserError, match=message):
            GenerationSpec.from_params(params)


def test_product_mode_needs_a_product(backend: DiffusersBackend, models: dict[str, Path]) -> None:
    with pytest.raises(UserError, match="no product image"):
        backend.generate([request(gen(models, mode="product"))])
