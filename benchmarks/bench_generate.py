"""Diffusers generation throughput: bildwerk's backend path against a plain pipeline call.

Builds full-size SD 1.5 and/or SDXL pipelines (UNet, VAE and CLIP text encoders at their
real configs) with random weights on the target device — speed does not depend on the
weight values, and no checkpoint download is needed. Then, in the same run, with the same
steps, size, guidance and weights, it times:

  baseline  the diffusers pipeline called with its defaults, one image per call
  bildwerk  ``DiffusersBackend.generate`` with all images at once: batched (by free
            memory, or --batch-size), CPU-seeded noise per image, VAE slicing, and on CUDA
            channels_last, deterministic kernels and optionally torch.compile

and reports images/s (median over repeats; warm-up, including compilation, excluded),
working memory (peak above what was resident before the call: CUDA allocations, or the
process RSS on the CPU) and the ratio. The two paths use separate, identical pipelines
and alternate repeat by repeat, so drifting machine load affects both alike.

    CPU: .venv/bin/python benchmarks/bench_generate.py --size 256 --steps 2 --images 2
    GPU: .venv/bin/python benchmarks/bench_generate.py --device cuda --arch sd15 sdxl \\
             --steps 20 --images 8 [--compile]        (sizes default to 512 and 1024)
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bildwerk.backends.base import SceneRequest
from bildwerk.backends.diffusers import DiffusersBackend
from bildwerk.backends.diffusion.libs import Libs, libs
from bildwerk.backends.diffusion.pipelines import PipelineCache, resolve_device, resolve_dtype
from bildwerk.backends.diffusion.spec import GenerationSpec
from bildwerk.config.channels import Insets
from bildwerk.geometry import plan_layout
from bildwerk.testing import write_vocab

PROMPT = "a bottle of amber serum on a travertine plinth, soft window light, product photo"
NEGATIVE = "blurry, text, watermark"

# the CLIP ViT-L text tower (SD 1.5, SDXL's first encoder) and OpenCLIP bigG (SDXL's second)
CLIP_L = {
    "hidden_size": 768,
    "intermediate_size": 3072,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "hidden_act": "quick_gelu",
}
CLIP_G = {
    "hidden_size": 1280,
    "intermediate_size": 5120,
    "num_hidden_layers": 32,
    "num_attention_heads": 20,
    "hidden_act": "gelu",
}
_VAE = {
    "block_out_channels": (128, 256, 512, 512),
    "down_block_types": ("DownEncoderBlock2D",) * 4,
    "up_block_types": ("UpDecoderBlock2D",) * 4,
    "layers_per_block": 2,
    "latent_channels": 4,
    "force_upcast": False,
}
CONFIGS: dict[str, dict[str, Any]] = {
    "sd15": {
        "unet": {
            "sample_size": 64,
            "block_out_channels": (320, 640, 1280, 1280),
            "down_block_types": ("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
            "up_block_types": ("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
            "layers_per_block": 2,
            "cross_attention_dim": 768,
            "attention_head_dim": 8,
        },
        "vae": {**_VAE, "sample_size": 512, "scaling_factor": 0.18215},
        "text": [CLIP_L],
        "size": 512,
    },
    "sdxl": {
        "unet": {
            "sample_size": 128,
            "block_out_channels": (320, 640, 1280),
            "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
            "up_block_types": ("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
            "layers_per_block": 2,
            "transformer_layers_per_block": (1, 2, 10),
            "attention_head_dim": (5, 10, 20),
            "cross_attention_dim": 2048,
            "use_linear_projection": True,
            "addition_embed_type": "text_time",
            "addition_time_embed_dim": 256,
            "projection_class_embeddings_input_dim": 2816,
        },
        "vae": {**_VAE, "sample_size": 1024, "scaling_factor": 0.13025},
        "text": [CLIP_L, CLIP_G],
        "size": 1024,
    },
}


def build_pipeline(lib: Libs, arch: str, device: str, dtype: Any, folder: Path) -> Any:
    """A full-size pipeline with random weights, built directly on ``device`` (fast
    initialisation on a GPU), then cast to ``dtype``."""
    torch, diffusers, transformers = lib.torch, lib.diffusers, lib.transformers
    cfg = CONFIGS[arch]
    tokenizer = transformers.CLIPTokenizer.from_pretrained(
        str(write_vocab(folder / "tokenizer")), model_max_length=77
    )
    eos = tokenizer.eos_token_id
    with torch.device(device):
        torch.manual_seed(0)
        unet = diffusers.UNet2DConditionModel(**cfg["unet"])
        vae = diffusers.AutoencoderKL(**cfg["vae"])
        encoders = []
        for i, text in enumerate(cfg["text"]):
            config = transformers.CLIPTextConfig(
                vocab_size=49408,
                max_position_embeddings=77,
                projection_dim=text["hidden_size"],
                bos_token_id=tokenizer.bos_token_id,
                eos_token_id=eos,
                pad_token_id=eos,
                **text,
            )
            cls = transformers.CLIPTextModelWithProjection if i else transformers.CLIPTextModel
            encoders.append(cls(config))
        if dtype != torch.float32:  # cast before the pipeline exists: no upcast warnings
            for module in (unet, vae, *encoders):
                module.to(dtype)
    scheduler = diffusers.EulerDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", steps_offset=1
    )
    if arch == "sdxl":
        pipe = diffusers.StableDiffusionXLPipeline(
            vae=vae,
            text_encoder=encoders[0],
            text_encoder_2=encoders[1],
            tokenizer=tokenizer,
            tokenizer_2=tokenizer,
            unet=unet,
            scheduler=scheduler,
        )
    else:
        pipe = diffusers.StableDiffusionPipeline(
            vae=vae,
            text_encoder=encoders[0],
            tokenizer=tokenizer,
            unet=unet,
            scheduler=scheduler,
            safety_checker=None,
            feature_extractor=None,
            requires_safety_checker=False,
        )
    pipe.set_progress_bar_config(disable=True)
    return pipe


# --------------------------------------------------------------------------- memory


def _resident(torch: Any, device: str) -> float:
    """Memory held now (GiB): CUDA allocations, or the process RSS; resets the peak."""
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        return float(torch.cuda.memory_allocated()) / 2**30
    with contextlib.suppress(OSError):  # Linux: "5" resets the peak RSS to the current RSS
        Path("/proc/self/clear_refs").write_text("5")
    return _status_gib("VmRSS:")


def _peak(torch: Any, device: str) -> float:
    """Peak memory (GiB) since the last :func:`_resident`."""
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        return float(torch.cuda.max_memory_allocated()) / 2**30
    return _status_gib("VmHWM:")


def _status_gib(field: str) -> float:
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1]) / 2**20
    return float("nan")


# --------------------------------------------------------------------------- timing


class _Path:
    """One way of making the images: times and working-memory peaks per repeat."""

    def __init__(self, fn: Any) -> None:
        self.fn = fn
        self.times: list[float] = []
        self.peaks: list[float] = []

    def once(self, torch: Any, device: str) -> None:
        before = _resident(torch, device)
        start = time.perf_counter()
        self.fn()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        self.times.append(time.perf_counter() - start)
        self.peaks.append(_peak(torch, device) - before)


def _requests(generation: dict[str, Any], images: int, size: int) -> list[SceneRequest]:
    layout = plan_layout(size, size, Insets(), 0.05)
    return [
        SceneRequest(
            key=f"bench-{i}",
            prompt=PROMPT,
            negative_prompt=NEGATIVE,
            slots={},
            seed=i,
            width=size,
            height=size,
            palette={},
            layout=layout,
            params={"generation": generation},
        )
        for i in range(images)
    ]


def bench_arch(
    lib: Libs,
    arch: str,
    *,
    device: str,
    dtype: str,
    size: int,
    steps: int,
    guidance: float,
    images: int,
    repeats: int,
    batch_size: int | None,
    compile: bool,
) -> dict[str, float]:
    torch = lib.torch
    generation: dict[str, Any] = {
        "model": {"name": f"random-{arch}", "path": "-", "sha256": f"random-{arch}",
                  "architecture": arch},
        "steps": steps, "guidance": guidance, "mode": "txt2img", "device": device,
        "dtype": dtype, "batch_size": batch_size, "compile": compile,
    }  # fmt: skip
    spec = GenerationSpec.from_params({"generation": generation})
    dev = resolve_device(torch, device)
    torch_dtype = resolve_dtype(torch, dtype, dev, arch)
    # two identical pipelines (same seed): bildwerk's path changes its UNet (channels_last,
    # compile), and separate copies let the two paths alternate, so drifting machine load
    # hits both alike
    with tempfile.TemporaryDirectory() as tmp:
        plain = build_pipeline(lib, arch, dev, torch_dtype, Path(tmp))
        ours = build_pipeline(lib, arch, dev, torch_dtype, Path(tmp))
    weights = sum(p.numel() * p.element_size() for p in plain.unet.parameters()) / 2**30
    cache = PipelineCache(lib)
    cache.adopt(spec, ours)
    backend = DiffusersBackend(cache)
    requests = _requests(generation, images, size)
    used: dict[str, Any] = {}

    def baseline() -> None:
        for i in range(images):
            plain(
                PROMPT,
                negative_prompt=NEGATIVE,
                num_inference_steps=steps,
                guidance_scale=guidance,
                width=size,
                height=size,
                generator=torch.Generator(dev).manual_seed(i),
            )

    def bildwerk() -> None:
        out = backend.generate(requests)
        used.update(out[0].params["batch"])

    paths = {"baseline": _Path(baseline), "bildwerk": _Path(bildwerk)}
    for path in paths.values():  # warm-up, compilation included, not timed
        path.fn()
    for _ in range(repeats):
        for path in paths.values():
            path.once(torch, dev)
    out = {f"{arch}_size": float(size), f"{arch}_unet_gib": weights}
    for name, path in paths.items():
        out[f"{arch}_{name}_img_s"] = images / statistics.median(path.times)
        out[f"{arch}_{name}_peak_gib"] = max(path.peaks)
    out[f"{arch}_ratio"] = out[f"{arch}_bildwerk_img_s"] / out[f"{arch}_baseline_img_s"]
    out[f"{arch}_batch"] = float(used.get("size", 0))
    return out


def run(**kw: Any) -> dict[str, float]:
    """Benchmark each architecture in ``arch`` (default: sd15); keyword arguments as on
    the command line (device, dtype, size, steps, guidance, images, repeats, batch_size,
    compile, threads). Returns the table as a flat dict."""
    lib = libs()
    if kw.get("threads"):
        lib.torch.set_num_threads(kw["threads"])
    device = resolve_device(lib.torch, kw.get("device", "auto"))
    gpu = device != "cpu"
    results: dict[str, float] = {}
    for arch in kw.get("arch") or ["sd15"]:
        size = kw.get("size") or (CONFIGS[arch]["size"] if gpu else 256)
        results.update(
            bench_arch(
                lib,
                arch,
                device=device,
                dtype=kw.get("dtype", "auto"),
                size=size,
                steps=kw.get("steps") or (20 if gpu else 2),
                guidance=kw.get("guidance", 7.0),
                images=kw.get("images") or (8 if gpu else 2),
                repeats=kw.get("repeats") or (3 if gpu else 2),
                batch_size=kw.get("batch_size"),
                compile=bool(kw.get("compile", False)),
            )
        )
        gc.collect()  # the finished model's pipelines are unreachable now
        if device.startswith("cuda"):
            lib.torch.cuda.empty_cache()
    _print(results, device, kw)
    return results


def _print(results: dict[str, float], device: str, kw: dict[str, Any]) -> None:
    torch = libs().torch
    name = torch.cuda.get_device_name() if device.startswith("cuda") else "cpu"
    print(f"device: {name}, torch {torch.__version__}, threads {torch.get_num_threads()}")
    print(f"  {'model':<6}{'size':>6}{'path':>10}{'img/s':>10}{'work GiB':>10}{'batch':>7}")
    for arch in kw.get("arch") or ["sd15"]:
        size = int(results[f"{arch}_size"])
        for path in ("baseline", "bildwerk"):
            batch = 1 if path == "baseline" else int(results[f"{arch}_batch"])
            print(
                f"  {arch:<6}{size:>6}{path:>10}{results[f'{arch}_{path}_img_s']:>10.3f}"
                f"{results[f'{arch}_{path}_peak_gib']:>10.2f}{batch:>7}"
            )
        print(
            f"  {arch}: bildwerk/baseline = {results[f'{arch}_ratio']:.2f}x images/s"
            f" (UNet weights {results[f'{arch}_unet_gib']:.2f} GiB; work = peak memory above"
            " what was resident before the call)"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", nargs="+", choices=sorted(CONFIGS), default=["sd15"])
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    parser.add_argument(
        "--dtype", default="auto", choices=["auto", "float32", "float16", "bfloat16"]
    )
    parser.add_argument("--size", type=int, help="square side (default 256 CPU; 512/1024 GPU)")
    parser.add_argument("--steps", type=int, help="default 2 on CPU, 20 on GPU")
    parser.add_argument("--guidance", type=float, default=7.0)
    parser.add_argument("--images", type=int, help="images per repeat (default 2 CPU, 8 GPU)")
    parser.add_argument("--repeats", type=int, help="timed repeats (default 2 CPU, 3 GPU)")
    parser.add_argument("--batch-size", type=int, help="bildwerk batch (default: by memory)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the UNet")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (CPU)")
    args = parser.parse_args(argv)
    run(**vars(args))


if __name__ == "__main__":
    main()
