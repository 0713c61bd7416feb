"""Tiny random diffusion models, built in code, for tests and plugin authors.

Tests must never reach a model hub, yet they should load models through the same
``from_pretrained`` / ``load_lora_weights`` / ``load_textual_inversion`` paths that real
checkpoints take. These builders write real diffusers-layout folders and files with tiny
configs (a few channels, two blocks, a CLIP tokenizer from a byte-level vocab written
here), seeded so every build is byte-for-byte the same. A 64×64 generation with two steps
takes a fraction of a second on a CPU. The weights are random: images are noise-like, but
deterministic, seed-dependent, and changed by LoRAs, embeddings and ControlNets.

torch, diffusers and transformers are imported inside the builders (the ``diffusion``
extra), so importing this module stays cheap.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from bildwerk.backends.diffusion.libs import Libs, libs

Base = Literal["sd15", "sdxl"]

TEXT_DIM = 32  # hidden size of the tiny CLIP text encoders (both of them for SDXL)
BLOCKS = (32, 64)  # UNet and VAE channels; GroupNorm's 32 groups need multiples of 32
SAMPLE = 32  # UNet sample size in latents; the tiny VAE downsamples by 2 -> 64 px images
_MERGE_WORDS = ("the", "product", "photo", "studio", "on", "a", "of", "and", "light")


# --------------------------------------------------------------------------- tokenizer


def _byte_chars() -> list[str]:
    """The byte-level BPE alphabet: 256 printable stand-ins for the 256 byte values."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1)]
    keep += list(range(ord("®"), ord("ÿ") + 1))
    chars, extra = [], 0
    for b in range(256):
        if b in keep:
            chars.append(chr(b))
        else:
            chars.append(chr(256 + extra))
            extra += 1
    return chars


def _vocab() -> tuple[dict[str, int], list[str]]:
    """A small CLIP vocabulary: every byte alone and word-final, a few merges for common
    prompt words, then the start/end tokens (last, as in CLIP)."""
    tokens: list[str] = []
    for c in _byte_chars():
        tokens += [c, c + "</w>"]
    merges: list[str] = []
    for word in _MERGE_WORDS:
        if len(word) < 2:
            continue
        left = word[0]
        for i, ch in enumerate(word[1:], start=1):
            right = ch + ("</w>" if i == len(word) - 1 else "")
            pair = f"{left} {right}"
            if pair not in merges:
                merges.append(pair)
            left = left + right
            if left not in tokens:
                tokens.append(left)
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    return {t: i for i, t in enumerate(tokens)}, merges


def write_vocab(folder: Path) -> Path:
    """Write ``vocab.json`` and ``merges.txt`` for the tiny CLIP tokenizer."""
    folder.mkdir(parents=True, exist_ok=True)
    vocab, merges = _vocab()
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    text = "#version: 0.2\n" + "\n".join(merges) + "\n"
    (folder / "merges.txt").write_text(text, encoding="utf-8")
    return folder


def _tokenizer(lib: Libs, folder: Path) -> Any:
    write_vocab(folder)
    return lib.transformers.CLIPTokenizer.from_pretrained(str(folder), model_max_length=77)


# --------------------------------------------------------------------------- modules


@contextmanager
def _seeded(lib: Libs, seed: int) -> Iterator[None]:
    """Seed module initialisation without disturbing the caller's global RNG."""
    with lib.torch.random.fork_rng(devices=[]):
        lib.torch.manual_seed(seed)
        yield


def _text_encoder(lib: Libs, projection: bool) -> Any:
    vocab, _ = _vocab()
    config = lib.transformers.CLIPTextConfig(
        vocab_size=len(vocab),
        hidden_size=TEXT_DIM,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=77,
        projection_dim=TEXT_DIM,
        hidden_act="gelu",
        bos_token_id=vocab["<|startoftext|>"],
        eos_token_id=vocab["<|endoftext|>"],
        pad_token_id=vocab["<|endoftext|>"],
    )
    cls = "CLIPTextModelWithProjection" if projection else "CLIPTextModel"
    return getattr(lib.transformers, cls)(config).eval()


def unet_config(base: Base, in_channels: int = 4) -> dict[str, Any]:
    """Config of the tiny UNet for ``base`` (also used to derive LoRA keys)."""
    config: dict[str, Any] = {
        "block_out_channels": BLOCKS,
        "layers_per_block": 1,
        "sample_size": SAMPLE,
        "in_channels": in_channels,
        "out_channels": 4,
        "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D"),
        "up_block_types": ("CrossAttnUpBlock2D", "UpBlock2D"),
        "cross_attention_dim": TEXT_DIM,
        "attention_head_dim": 8,
    }
    if base == "sdxl":  # two text encoders side by side, plus size/crop conditioning
        config.update(
            cross_attention_dim=2 * TEXT_DIM,
            attention_head_dim=(2, 4),
            use_linear_projection=True,
            addition_embed_type="text_time",
            addition_time_embed_dim=8,
            projection_class_embeddings_input_dim=6 * 8 + TEXT_DIM,
        )
    return config


def _unet(lib: Libs, base: Base, in_channels: int = 4) -> Any:
    return lib.diffusers.UNet2DConditionModel(**unet_config(base, in_channels)).eval()


def _vae(lib: Libs) -> Any:
    return lib.diffusers.AutoencoderKL(
        block_out_channels=BLOCKS,
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
        latent_channels=4,
        sample_size=2 * SAMPLE,
    ).eval()


def _scheduler(lib: Libs) -> Any:
    return lib.diffusers.EulerDiscreteScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        steps_offset=1,
        timestep_spacing="leading",
    )


def _sd15_pipeline(lib: Libs, path: Path, in_channels: int, seed: int) -> Any:
    with _seeded(lib, seed):
        unet = _unet(lib, "sd15", in_channels)
        vae = _vae(lib)
        text_encoder = _text_encoder(lib, projection=False)
    cls = "StableDiffusionInpaintPipeline" if in_channels == 9 else "StableDiffusionPipeline"
    return getattr(lib.diffusers, cls)(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=_tokenizer(lib, path / "tokenizer"),
        unet=unet,
        scheduler=_scheduler(lib),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def _save(pipe: Any, path: Path) -> Path:
    pipe.save_pretrained(str(path), safe_serialization=True)
    return path


# --------------------------------------------------------------------------- builders


def tiny_sd15(path: Path, seed: int = 0) -> Path:
    """A Stable Diffusion 1.x-shaped pipeline folder (StableDiffusionPipeline)."""
    lib = libs()
    return _save(_sd15_pipeline(lib, Path(path), 4, seed), Path(path))


def tiny_inpaint(path: Path, seed: int = 0) -> Path:
    """An SD 1.x inpainting pipeline folder: UNet with 9 input channels (latents, mask,
    masked-image latents), as the real inpainting checkpoints have."""
    lib = libs()
    return _save(_sd15_pipeline(lib, Path(path), 9, seed), Path(path))


def tiny_sdxl(path: Path, seed: int = 0) -> Path:
    """An SDXL-shaped pipeline folder: two text encoders (the second with a projection
    for the pooled embedding) and a UNet with SDXL's size/crop conditioning."""
    lib = libs()
    path = Path(path)
    with _seeded(lib, seed):
        unet = _unet(lib, "sdxl")
        vae = _vae(lib)
        text_encoder = _text_encoder(lib, projection=False)
        text_encoder_2 = _text_encoder(lib, projection=True)
    pipe = lib.diffusers.StableDiffusionXLPipeline(
        vae=vae,
        text_encoder=text_encoder,
        text_encoder_2=text_encoder_2,
        tokenizer=_tokenizer(lib, path / "tokenizer"),
        tokenizer_2=_tokenizer(lib, path / "tokenizer_2"),
        unet=unet,
        scheduler=_scheduler(lib),
    )
    return _save(pipe, path)


def tiny_controlnet(path: Path, base: Base = "sd15", seed: int = 1) -> Path:
    """A ControlNet folder matching the tiny UNet of ``base``. Its zero convolutions get
    small random weights so the control image visibly steers the result."""
    lib = libs()
    torch = lib.torch
    path = Path(path)
    with _seeded(lib, seed):
        unet = _unet(lib, base)
        net = lib.diffusers.ControlNetModel.from_unet(
            unet, conditioning_embedding_out_channels=(16, 32)
        )
        with torch.no_grad():
            for name, param in net.named_parameters():
                if name.startswith(("controlnet_down_blocks", "controlnet_mid_block")):
                    param.normal_(0.0, 0.05)
    net.save_pretrained(str(path), safe_serialization=True)
    return path


def _file(path: Path, default_name: str) -> Path:
    path = Path(path)
    if path.suffix != ".safetensors":
        path.mkdir(parents=True, exist_ok=True)
        path = path / default_name
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
    return path


def tiny_lora(path: Path, base: Base = "sd15", rank: int = 4, seed: int = 2) -> Path:
    """A LoRA ``.safetensors`` for the tiny ``base`` model, in the diffusers/peft key
    format ``load_lora_weights`` reads (``unet.<module>.lora_A.weight``/``lora_B``): the
    attention projections of the UNet and of the text encoder(s). ``path`` is the file or a
    folder to write ``tiny-lora-<base>.safetensors`` into."""
    lib = libs()
    torch = lib.torch
    from safetensors.torch import save_file

    out = _file(path, f"tiny-lora-{base}.safetensors")
    with _seeded(lib, 0):
        modules: dict[str, Any] = {
            "unet": _unet(lib, base),
            "text_encoder": _text_encoder(lib, projection=False),
        }
        if base == "sdxl":
            modules["text_encoder_2"] = _text_encoder(lib, projection=True)
    targets = ("to_q", "to_k", "to_v", "to_out.0", "q_proj", "k_proj", "v_proj", "out_proj")
    gen = torch.Generator().manual_seed(seed)
    tensors: dict[str, Any] = {}
    for prefix, module in modules.items():
        for name, sub in module.named_modules():
            if not name.endswith(targets) or not isinstance(sub, torch.nn.Linear):
                continue
            a = torch.randn(rank, sub.in_features, generator=gen) * 0.2
            b = torch.randn(sub.out_features, rank, generator=gen) * 0.2
            tensors[f"{prefix}.{name}.lora_A.weight"] = a.contiguous()
            tensors[f"{prefix}.{name}.lora_B.weight"] = b.contiguous()
    save_file(tensors, str(out), metadata={"format": "pt"})
    return out


def tiny_textual_inversion(
    path: Path, token: str, base: Base = "sd15", vectors: int = 1, seed: int = 3
) -> Path:
    """A textual-inversion embedding for the tiny text encoder(s): the diffusers layout
    ``{token: tensor}`` for SD 1.x, ``{"clip_l", "clip_g"}`` for SDXL (as SDXL embeddings
    are published). ``path`` is the file or a folder for ``<token>.safetensors``."""
    lib = libs()
    torch = lib.torch
    from safetensors.torch import save_file

    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in token).strip("_") or "emb"
    out = _file(path, f"{safe}.safetensors")
    gen = torch.Generator().manual_seed(seed)

    def emb() -> Any:
        return (torch.randn(vectors, TEXT_DIM, generator=gen) * 0.5).contiguous()

    tensors = {"clip_l": emb(), "clip_g": emb()} if base == "sdxl" else {token: emb()}
    save_file(tensors, str(out))
    return out
