"""Model registry: kind and architecture detection on files and folders built in code,
content hashes, the catalog functions, LoRA compatibility and the offline Hub path."""

from __future__ import annotations

import importlib
import json
import os
import shutil
import struct
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select

from bildwerk import modelreg as mr
from bildwerk.catalog.db import Database
from bildwerk.catalog.models import Event, ModelEntry
from bildwerk.errors import NotFoundError, UserError

Shapes = dict[str, tuple[int, ...]]


def write_safetensors(path: Path, shapes: Shapes, metadata: dict[str, str] | None = None) -> Path:
    """A real safetensors file with the given tensor names and shapes (random fp16)."""
    from safetensors.numpy import save_file

    rng = np.random.default_rng(len(shapes))
    tensors = {k: rng.standard_normal(s).astype(np.float16) for k, s in shapes.items()}
    save_file(tensors, str(path), metadata=metadata)
    return path


UNET = "model.diffusion_model."
SD15: Shapes = {
    UNET + "input_blocks.0.0.weight": (320, 4, 3, 3),
    UNET + "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": (320, 768),
    UNET + "input_blocks.1.1.transformer_blocks.0.attn2.to_v.weight": (320, 768),
    "first_stage_model.encoder.conv_in.weight": (128, 3, 3, 3),
    "cond_stage_model.transformer.text_model.final_layer_norm.weight": (768,),
}
SD2: Shapes = {
    UNET + "input_blocks.0.0.weight": (320, 4, 3, 3),
    UNET + "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": (320, 1024),
    "first_stage_model.encoder.conv_in.weight": (128, 3, 3, 3),
    "cond_stage_model.model.ln_final.weight": (1024,),
}
SDXL: Shapes = {
    UNET + "input_blocks.0.0.weight": (320, 4, 3, 3),
    UNET + "input_blocks.4.1.transformer_blocks.0.attn2.to_k.weight": (640, 2048),
    UNET + "label_emb.0.0.weight": (1280, 2816),
    "conditioner.embedders.0.transformer.text_model.final_layer_norm.weight": (768,),
    "conditioner.embedders.1.model.ln_final.weight": (1280,),
    "first_stage_model.encoder.conv_in.weight": (128, 3, 3, 3),
}
KOHYA = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k"
TE_Q = "text_model_encoder_layers_0_self_attn_q_proj"
LORA_SD15: Shapes = {
    KOHYA + ".lora_down.weight": (4, 768),
    KOHYA + ".lora_up.weight": (320, 4),
    KOHYA + ".alpha": (),
    "lora_te_" + TE_Q + ".lora_down.weight": (4, 768),
    "lora_te_" + TE_Q + ".lora_up.weight": (768, 4),
}
LORA_SDXL: Shapes = {
    "lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k.lora_down.weight": (8, 2048),
    "lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k.lora_up.weight": (640, 8),
    "lora_te1_" + TE_Q + ".lora_down.weight": (8, 768),
    "lora_te2_" + TE_Q + ".lora_down.weight": (8, 1280),
}
PEFT = "unet.down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k"
LORA_SDXL_PEFT: Shapes = {PEFT + ".lora_A.weight": (4, 2048), PEFT + ".lora_B.weight": (640, 4)}


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path}/c.db")
    yield database
    database.close()


# -- single files -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("shapes", "name", "arch"),
    [
        (SD15, "v1-5.safetensors", "sd15"),
        (SD2, "v2-1.safetensors", "sd2"),
        (SDXL, "xl-base.safetensors", "sdxl"),
        (SD2, "sd_turbo.safetensors", "sd-turbo"),
        (SDXL, "sdxl_turbo_1.0.safetensors", "sdxl-turbo"),
        (SD15, "dreamy_turbo.safetensors", "sd15"),  # no SD1.5 turbo: the name does not count
    ],
)
def test_single_file_checkpoints(tmp_path: Path, shapes: Shapes, name: str, arch: str) -> None:
    info = mr.inspect_model(write_safetensors(tmp_path / name, shapes))
    assert (info.kind, info.format, info.architecture) == ("checkpoint", "single_file", arch)
    assert info.size_bytes == (tmp_path / name).stat().st_size
    assert info.meta["inpainting"] is False


def test_inpainting_checkpoint_is_marked(tmp_path: Path) -> None:
    shapes = {**SD15, UNET + "input_blocks.0.0.weight": (320, 9, 3, 3)}
    info = mr.inspect_model(write_safetensors(tmp_path / "inpaint.safetensors", shapes))
    assert (info.architecture, info.meta["inpainting"]) == ("sd15", True)


@pytest.mark.parametrize(
    ("shapes", "metadata", "arch"),
    [
        (LORA_SD15, None, "sd15"),
        (LORA_SDXL, None, "sdxl"),
        (LORA_SDXL_PEFT, None, "sdxl"),
        ({"lora_te_" + TE_Q + ".lora_down.weight": (4, 1024)}, None, "sd2"),
        ({"lora_te2_" + TE_Q + ".lora_down.weight": (4, 1280)}, None, "sdxl"),
        (
            {"lora_unet_x.lora_down.weight": (4, 64)},
            {"ss_base_model_version": "sdxl_base_v1-0"},
            "sdxl",
        ),
        (
            {"transformer.single_transformer_blocks.0.attn.to_q.lora_A.weight": (4, 3072)},
            None,
            "flux",
        ),
    ],
)
def test_lora_detection(
    tmp_path: Path, shapes: Shapes, metadata: dict[str, str] | None, arch: str
) -> None:
    info = mr.inspect_model(write_safetensors(tmp_path / "l.safetensors", shapes, metadata))
    assert (info.kind, info.architecture) == ("lora", arch)


def test_lora_rank_is_recorded(tmp_path: Path) -> None:
    info = mr.inspect_model(write_safetensors(tmp_path / "l.safetensors", LORA_SDXL))
    assert info.meta["rank"] == 8


def test_undecidable_lora_needs_an_architecture(tmp_path: Path) -> None:
    path = write_safetensors(
        tmp_path / "odd.safetensors", {"lora_unet_x.lora_down.weight": (4, 64)}
    )
    with pytest.raises(UserError, match="cannot tell which base model") as err:
        mr.inspect_model(path)
    assert "--arch" in str(err.value)
    assert mr.inspect_model(path, architecture="SD1.5").architecture == "sd15"
    with pytest.raises(UserError, match="unknown architecture 'sd9'"):
        mr.inspect_model(path, architecture="sd9")


def test_architecture_override_keeps_what_was_detected(tmp_path: Path) -> None:
    info = mr.inspect_model(
        write_safetensors(tmp_path / "c.safetensors", SDXL), architecture="sdxl-turbo"
    )
    assert info.architecture == "sdxl-turbo"
    assert info.meta["detected_architecture"] == "sdxl"


@pytest.mark.parametrize(
    ("shapes", "arch", "vectors"),
    [
        ({"emb_params": (2, 768)}, "sd15", 2),
        ({"emb_params": (4, 1024)}, "sd2", 4),
        ({"clip_l": (3, 768), "clip_g": (3, 1280)}, "sdxl", 3),
        ({"<cat-toy>": (768,)}, "sd15", 1),  # diffusers' learned_embeds
    ],
)
def test_textual_inversion(tmp_path: Path, shapes: Shapes, arch: str, vectors: int) -> None:
    info = mr.inspect_model(write_safetensors(tmp_path / "ti.safetensors", shapes))
    assert (info.kind, info.architecture, info.meta["vectors"]) == ("embedding", arch, vectors)


def test_textual_inversion_pt_file(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    path = tmp_path / "style.pt"
    torch.save(
        {
            "string_to_token": {"*": torch.tensor(265)},
            "string_to_param": {"*": torch.zeros(3, 1024)},
            "name": "style",
            "step": 500,
        },
        path,
    )
    info = mr.inspect_model(path)
    assert (info.kind, info.architecture, info.meta["vectors"]) == ("embedding", "sd2", 3)


def test_single_file_controlnet_and_clip(tmp_path: Path) -> None:
    control = {
        "control_model.input_hint_block.0.weight": (16, 3, 3, 3),
        "control_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": (320, 768),
    }
    info = mr.inspect_model(write_safetensors(tmp_path / "canny.safetensors", control))
    assert (info.kind, info.architecture) == ("controlnet", "sd15")
    clip = {"text_model.final_layer_norm.weight": (768,), "text_model.x.weight": (4, 768)}
    info = mr.inspect_model(write_safetensors(tmp_path / "clip_l.safetensors", clip))
    assert (info.kind, info.architecture) == ("clip", "clip-l")


def test_explicit_kind_is_trusted_for_files(tmp_path: Path) -> None:
    path = write_safetensors(tmp_path / "ti.safetensors", {"emb_params": (1, 768)})
    with pytest.raises(UserError, match="cannot tell"):
        mr.inspect_model(path, kind="checkpoint")
    with pytest.raises(UserError, match="unknown model kind 'vae'"):
        mr.inspect_model(path, kind="vae")


def test_upscaler_is_detected_without_spandrel(tmp_path: Path) -> None:
    """ESRGAN/Real-ESRGAN weights are bildwerk's own: no spandrel (nor torchvision)."""
    pytest.importorskip("torch")
    from safetensors.torch import save_file

    from tests.test_upscale import old_esrgan_names, tiny_compact, tiny_esrgan

    path = tmp_path / "tiny-4x.safetensors"
    save_file(tiny_esrgan(), str(path))
    info = mr.inspect_model(path)
    assert (info.kind, info.architecture, info.meta["scale"]) == ("upscaler", "esrgan", 4)
    assert info.meta["tags"] == ["8nf", "1nb"]
    path = tmp_path / "old-2x.pth"
    import torch

    torch.save({"params_ema": old_esrgan_names(tiny_esrgan(scale=2))}, path)
    assert mr.inspect_model(path).meta["scale"] == 2
    path = tmp_path / "compact.safetensors"
    save_file(tiny_compact(), str(path))
    info = mr.inspect_model(path)
    assert (info.kind, info.architecture, info.meta["scale"]) == ("upscaler", "compact", 4)


def test_unknown_weights_are_a_user_error(tmp_path: Path) -> None:
    path = write_safetensors(tmp_path / "mystery.safetensors", {"encoder.layer.0.weight": (4, 4)})
    with pytest.raises(UserError, match=r"mystery\.safetensors: not a"):
        mr.inspect_model(path)


# -- corrupt files ------------------------------------------------------------------


def test_truncated_safetensors(tmp_path: Path) -> None:
    path = write_safetensors(tmp_path / "cut.safetensors", SD15)
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(UserError, match=r"cut\.safetensors: truncated") as err:
        mr.inspect_model(path)
    assert "download it again" in str(err.value)


def test_header_cut_short(tmp_path: Path) -> None:
    path = write_safetensors(tmp_path / "cut.safetensors", SD15)
    path.write_bytes(path.read_bytes()[:50])
    with pytest.raises(UserError, match="truncated"):
        mr.inspect_model(path)


def test_bad_header_json(tmp_path: Path) -> None:
    path = tmp_path / "bad.safetensors"
    header = b'{"a": {"dtype": "F16", '  # not valid JSON
    path.write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 64)
    with pytest.raises(UserError, match=r"bad\.safetensors: damaged safetensors header"):
        mr.inspect_model(path)


@pytest.mark.parametrize("name", ["model.safetensors", "model.ckpt", "model.bin", "notes.txt"])
def test_text_files_are_user_errors(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_text("this is not a model, just some text\n" * 3)
    with pytest.raises(UserError, match=name.replace(".", r"\.")):
        mr.inspect_model(path)


def test_missing_path_and_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no such file or folder"):
        mr.inspect_model(tmp_path / "nope.safetensors")
    with pytest.raises(UserError, match="not a model folder"):
        mr.inspect_model(tmp_path)


def test_damaged_model_index(tmp_path: Path) -> None:
    (tmp_path / "model_index.json").write_text("{ not json")
    with pytest.raises(UserError, match=r"model_index\.json: cannot read"):
        mr.inspect_model(tmp_path)


# -- hashes -------------------------------------------------------------------------


def test_single_file_sha_is_the_file_sha(tmp_path: Path) -> None:
    import hashlib

    path = write_safetensors(tmp_path / "a.safetensors", LORA_SD15)
    info = mr.inspect_model(path)
    assert info.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    copy = tmp_path / "other" / "b.safetensors"
    copy.parent.mkdir()
    shutil.copyfile(path, copy)
    assert mr.inspect_model(copy).sha256 == info.sha256
    data = bytearray(copy.read_bytes())
    data[-1] ^= 1
    copy.write_bytes(bytes(data))
    assert mr.inspect_model(copy).sha256 != info.sha256


# -- diffusers folders --------------------------------------------------------------


def _diffusers() -> Any:
    """diffusers, or skip. A torchvision built for another torch (CUDA wheel beside CPU
    torch) breaks transformers' import; hide it as the diffusers backend does."""
    pytest.importorskip("torch")
    if "torchvision" not in sys.modules:  # before transformers, which probes it on import
        try:
            importlib.import_module("torchvision")
        except ImportError:
            pass
        except Exception:
            for name in [m for m in sys.modules if m.split(".")[0] == "torchvision"]:
                del sys.modules[name]
            sys.modules["torchvision"] = None  # type: ignore[assignment]
    pytest.importorskip("transformers")
    pytest.importorskip("diffusers")
    try:
        import diffusers

        diffusers.UNet2DConditionModel  # noqa: B018  (resolves the lazy import chain)
    except Exception as exc:
        pytest.skip(f"diffusers cannot be imported here: {type(exc).__name__}: {exc}")
    return diffusers


def _tiny_unet(diffusers: Any, cross: int, sample_size: int = 32) -> Any:
    return diffusers.UNet2DConditionModel(
        block_out_channels=(32, 64),
        layers_per_block=1,
        sample_size=sample_size,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=cross,
        attention_head_dim=8,
    )


def make_pipeline_folder(
    root: Path,
    *,
    pipeline: str = "StableDiffusionPipeline",
    cross: int = 768,
    text_hidden: int | None = None,
    scheduler: str = "PNDMScheduler",
    sample_size: int = 32,
    refiner: bool = False,
) -> Path:
    """A diffusers folder as save_pretrained writes it: tiny UNet weights, real component
    configs, model_index.json naming the pipeline and its parts."""
    diffusers = _diffusers()
    import transformers

    root.mkdir(parents=True)
    _tiny_unet(diffusers, cross, sample_size).save_pretrained(root / "unet")
    sched = getattr(diffusers, scheduler)(
        **({"timestep_spacing": "trailing"} if "Euler" in scheduler else {})
    )
    sched.save_pretrained(root / "scheduler")
    text = [None, None] if refiner else ["transformers", "CLIPTextModel"]
    if not refiner:
        transformers.CLIPTextConfig(hidden_size=text_hidden or cross).save_pretrained(
            root / "text_encoder"
        )
    index = {
        "_class_name": pipeline,
        "_diffusers_version": diffusers.__version__,
        "scheduler": ["diffusers", scheduler],
        "text_encoder": text,
        "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"],
    }
    (root / "model_index.json").write_text(json.dumps(index, indent=2))
    return root


@pytest.mark.parametrize(
    ("kwargs", "arch"),
    [
        ({"cross": 768}, "sd15"),
        ({"cross": 1024}, "sd2"),
        ({"pipeline": "StableDiffusionXLPipeline", "cross": 2048}, "sdxl"),
        (
            {"pipeline": "StableDiffusionXLImg2ImgPipeline", "cross": 1280, "refiner": True},
            "sdxl-refiner",
        ),
        (
            {
                "pipeline": "StableDiffusionXLPipeline",
                "cross": 2048,
                "scheduler": "EulerAncestralDiscreteScheduler",
                "sample_size": 64,
            },
            "sdxl-turbo",
        ),
        (
            {"cross": 1024, "scheduler": "EulerAncestralDiscreteScheduler", "sample_size": 64},
            "sd-turbo",
        ),
        # Euler Ancestral alone is no turbo: a 96-sample (768 px) SD2 model stays sd2
        ({"cross": 1024, "scheduler": "EulerAncestralDiscreteScheduler", "sample_size": 96}, "sd2"),
    ],
)
def test_diffusers_pipeline_folders(tmp_path: Path, kwargs: dict[str, Any], arch: str) -> None:
    info = mr.inspect_model(make_pipeline_folder(tmp_path / "m", **kwargs))
    assert (info.kind, info.format, info.architecture) == ("checkpoint", "diffusers", arch)
    assert info.meta["pipeline"] == kwargs.get("pipeline", "StableDiffusionPipeline")


def test_sd_generation_falls_back_to_text_encoder(tmp_path: Path) -> None:
    root = make_pipeline_folder(tmp_path / "m", cross=64, text_hidden=1024)
    assert mr.inspect_model(root).architecture == "sd2"


def test_turbo_by_folder_name(tmp_path: Path) -> None:
    root = make_pipeline_folder(tmp_path / "sd-turbo", cross=1024)
    assert mr.inspect_model(root).architecture == "sd-turbo"


@pytest.mark.parametrize(
    ("cls", "arch"), [("FluxPipeline", "flux"), ("StableDiffusion3Pipeline", "sd3")]
)
def test_newer_pipelines_by_class(tmp_path: Path, cls: str, arch: str) -> None:
    (tmp_path / "model_index.json").write_text(json.dumps({"_class_name": cls}))
    assert mr.inspect_model(tmp_path).architecture == arch


def test_tiny_pipeline_needs_an_explicit_architecture(tmp_path: Path) -> None:
    root = make_pipeline_folder(tmp_path / "tiny", cross=32)
    with pytest.raises(UserError, match="--arch"):
        mr.inspect_model(root)
    assert mr.inspect_model(root, architecture="sd15").architecture == "sd15"


def test_controlnet_and_clip_folders(tmp_path: Path) -> None:
    diffusers = _diffusers()
    import transformers

    diffusers.ControlNetModel(
        block_out_channels=(32, 64),
        layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        cross_attention_dim=768,
        conditioning_embedding_out_channels=(16, 32),
        attention_head_dim=8,
    ).save_pretrained(tmp_path / "cn")
    info = mr.inspect_model(tmp_path / "cn")
    assert (info.kind, info.architecture) == ("controlnet", "sd15")
    with pytest.raises(UserError, match="holds a controlnet, not a lora"):
        mr.inspect_model(tmp_path / "cn", kind="lora")

    small = {"hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 1}
    config = transformers.CLIPConfig(
        text_config={**small, "num_attention_heads": 4, "vocab_size": 99},
        vision_config={**small, "num_attention_heads": 4, "image_size": 32, "patch_size": 8},
        projection_dim=16,
    )
    transformers.CLIPModel(config).save_pretrained(tmp_path / "clip")
    info = mr.inspect_model(tmp_path / "clip")
    assert (info.kind, info.architecture, info.meta["class"]) == ("clip", "clip", "CLIPModel")


def test_folder_sha_is_stable_and_covers_every_weight(tmp_path: Path) -> None:
    root = make_pipeline_folder(tmp_path / "a" / "model", cross=768)
    info = mr.inspect_model(root)
    assert info.meta["files"] == 5  # unet weights + 4 configs (index, unet, scheduler, te)

    copy = tmp_path / "elsewhere" / "renamed"
    shutil.copytree(root, copy)
    (copy / "README.md").write_text("docs do not change outputs")
    (copy / ".cache" / "huggingface").mkdir(parents=True)
    (copy / ".cache" / "huggingface" / "x.json").write_text("{}")
    assert mr.inspect_model(copy).sha256 == info.sha256

    weights = copy / "unet" / "diffusion_pytorch_model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    assert mr.inspect_model(copy).sha256 != info.sha256


def test_fp16_only_folder_reports_variant(tmp_path: Path) -> None:
    root = make_pipeline_folder(tmp_path / "m", cross=768)
    unet = root / "unet"
    (unet / "diffusion_pytorch_model.safetensors").rename(
        unet / "diffusion_pytorch_model.fp16.safetensors"
    )
    assert mr.inspect_model(root).meta["variant"] == "fp16"


# -- catalog ------------------------------------------------------------------------


def test_add_list_get_remove(db: Database, tmp_path: Path) -> None:
    ckpt = write_safetensors(tmp_path / "base.safetensors", SD15)
    lora = write_safetensors(tmp_path / "style.safetensors", LORA_SD15)
    with db.session() as s:
        entry = mr.add_model(
            s, ckpt, name="base", license="openrail", source="local", allowed_uses=["ads"]
        )
        assert (entry.kind, entry.architecture, entry.format) == (
            "checkpoint",
            "sd15",
            "single_file",
        )
        mr.add_model(s, lora, name="style")
    with db.session() as s:
        assert [m.name for m in mr.list_models(s)] == ["base", "style"]
        assert [m.name for m in mr.list_models(s, kind="lora")] == ["style"]
        got = mr.get_model(s, "base")
        assert (got.license, got.source, got.allowed_uses) == ("openrail", "local", ["ads"])
        assert got.path == str(ckpt.resolve())
        assert got.sha256 == mr.inspect_model(ckpt).sha256
        with pytest.raises(UserError, match="unknown model kind"):
            mr.list_models(s, kind="vae")
    with db.session() as s:
        mr.remove_model(s, "style")
    with db.session() as s:
        assert [m.name for m in mr.list_models(s)] == ["base"]
        events = [(e.type, e.subject) for e in s.scalars(select(Event).order_by(Event.id))]
        assert events == [
            ("model.added", "base"),
            ("model.added", "style"),
            ("model.removed", "style"),
        ]


def test_readding_same_weights_is_a_no_op(db: Database, tmp_path: Path) -> None:
    ckpt = write_safetensors(tmp_path / "base.safetensors", SD15)
    with db.session() as s:
        first = mr.add_model(s, ckpt, name="base")
    with db.session() as s:
        again = mr.add_model(s, ckpt, name="base", license="changed")
        assert again.license == ""  # nothing was rewritten
        assert again.created_at.replace(tzinfo=None) == first.created_at.replace(tzinfo=None)
        assert len(list(s.scalars(select(Event).where(Event.type == "model.added")))) == 1


def test_same_name_other_weights_needs_replace(db: Database, tmp_path: Path) -> None:
    old = write_safetensors(tmp_path / "v1.safetensors", SD15)
    new = write_safetensors(tmp_path / "v2.safetensors", SD2)
    with db.session() as s:
        before = mr.add_model(s, old, name="base").sha256
    with db.session() as s, pytest.raises(UserError, match="already registered") as err:
        mr.add_model(s, new, name="base")
    assert "--replace" in str(err.value) and "new --name" in str(err.value)
    with db.session() as s:
        entry = mr.add_model(s, new, name="base", replace=True)
        assert (entry.architecture, entry.sha256 != before) == ("sd2", True)
    with db.session() as s:
        assert s.get(ModelEntry, "base").architecture == "sd2"  # type: ignore[union-attr]
        last = s.scalars(select(Event).order_by(Event.id.desc())).first()
        assert last is not None and last.payload["replaced_sha256"] == before


def test_get_unknown_model_lists_known_names(db: Database, tmp_path: Path) -> None:
    with db.session() as s, pytest.raises(NotFoundError, match="no model named 'x'") as err:
        mr.get_model(s, "x")
    assert "models add" in str(err.value)
    with db.session() as s:
        mr.add_model(s, write_safetensors(tmp_path / "a.safetensors", SD15), name="alpha")
        mr.add_model(s, write_safetensors(tmp_path / "b.safetensors", SDXL), name="beta")
    with db.session() as s, pytest.raises(NotFoundError) as err:
        mr.get_model(s, "gamma")
    assert "known models: alpha, beta" in str(err.value)


@pytest.mark.parametrize("name", ["", " base", "a b", "-x", "x" * 129])
def test_invalid_names(db: Database, tmp_path: Path, name: str) -> None:
    with db.session() as s, pytest.raises(UserError, match="invalid model name"):
        mr.add_model(s, tmp_path, name=name)


# -- LoRA compatibility -------------------------------------------------------------


def _entry(name: str, kind: str, arch: str) -> ModelEntry:
    return ModelEntry(name=name, kind=kind, architecture=arch)


@pytest.mark.parametrize(
    ("model", "lora", "ok"),
    [
        ("sd15", "sd15", True),
        ("sdxl", "sdxl", True),
        ("sdxl-turbo", "sdxl", True),
        ("sd-turbo", "sd2", True),
        ("sd15", "sdxl", False),
        ("sdxl", "sd15", False),
        ("sd-turbo", "sd15", False),
        ("sdxl-turbo", "sd2", False),
    ],
)
def test_lora_compatibility(model: str, lora: str, ok: bool) -> None:
    m, lo = _entry("m", "checkpoint", model), _entry("l", "lora", lora)
    if ok:
        mr.check_lora_compatible(m, lo)
    else:
        with pytest.raises(UserError, match=f"lora 'l' is for {lora}, but model 'm' is {model}"):
            mr.check_lora_compatible(m, lo)


def test_lora_check_rejects_wrong_kinds() -> None:
    ckpt = _entry("m", "checkpoint", "sd15")
    mr.check_lora_compatible(ckpt, _entry("ti", "embedding", "sd15"))
    with pytest.raises(UserError, match="not a LoRA"):
        mr.check_lora_compatible(ckpt, _entry("c", "controlnet", "sd15"))
    with pytest.raises(UserError, match="not a checkpoint"):
        mr.check_lora_compatible(_entry("u", "upscaler", "esrgan"), _entry("l", "lora", "sd15"))


def test_catalog_entries_check_compatibility(db: Database, tmp_path: Path) -> None:
    with db.session() as s:
        base = mr.add_model(s, write_safetensors(tmp_path / "xl.safetensors", SDXL), name="xl")
        lora = mr.add_model(s, write_safetensors(tmp_path / "l.safetensors", LORA_SD15), name="l15")
        with pytest.raises(UserError, match="use a lora trained for sdxl, or a sd15 model"):
            mr.check_lora_compatible(base, lora)


# -- pulling ------------------------------------------------------------------------


def test_pull_file_selection_prefers_safetensors_and_fp16() -> None:
    files = [
        ".gitattributes",
        "README.md",
        "model_index.json",
        "sd_xl_base_1.0.safetensors",  # root single file duplicates the components
        "scheduler/scheduler_config.json",
        "text_encoder/config.json",
        "text_encoder/model.safetensors",
        "text_encoder/model.fp16.safetensors",
        "text_encoder/pytorch_model.bin",
        "tokenizer/merges.txt",
        "tokenizer/vocab.json",
        "unet/config.json",
        "unet/diffusion_pytorch_model.bin",
        "unet/diffusion_pytorch_model.fp16.bin",
        "vae/config.json",
        "vae/diffusion_pytorch_model.safetensors",
        "vae_1_0/diffusion_pytorch_model.fp16.safetensors",
        "unet/diffusion_pytorch_model.onnx",
    ]
    assert mr.select_pull_files(files) == [
        "model_index.json",
        "scheduler/scheduler_config.json",
        "text_encoder/config.json",
        "text_encoder/model.fp16.safetensors",
        "tokenizer/merges.txt",
        "tokenizer/vocab.json",
        "unet/config.json",
        "unet/diffusion_pytorch_model.fp16.bin",
        "vae/config.json",
        "vae/diffusion_pytorch_model.safetensors",
        "vae_1_0/diffusion_pytorch_model.fp16.safetensors",
    ]
    # a single-file repo keeps its root weights
    assert mr.select_pull_files(["RealESRGAN_x4.pth", "README.md"]) == ["RealESRGAN_x4.pth"]


def test_pull_offline_fails_fast(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.monotonic()
    with pytest.raises(UserError, match="cannot reach the Hugging Face Hub") as err:
        mr.pull_model("stabilityai/sd-turbo", tmp_path / "dl")
    assert time.monotonic() - start < 2
    assert "models add PATH" in str(err.value)
    assert not (tmp_path / "dl").exists()


@pytest.mark.timeout(60)
def test_pull_unreachable_endpoint_fails_in_bounded_time(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    pytest.importorskip("huggingface_hub")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens on port 9
    start = time.monotonic()
    with pytest.raises(UserError, match="cannot reach the Hugging Face Hub") as err:
        mr.pull_model("stabilityai/sd-turbo", tmp_path / "dl", timeout=3)
    assert time.monotonic() - start < 20
    assert "bildwerk models add PATH" in str(err.value)
    assert not (tmp_path / "dl").exists()


HUB_SHA = "0123456789abcdef0123456789abcdef01234567"
HUB_FILES = {
    "model_index.json": b'{"_class_name": "StableDiffusionPipeline"}',
    "README.md": b"# tiny",
    "v1-5-pruned.safetensors": b"single file" * 50,
    "unet/config.json": b'{"cross_attention_dim": 768}',
    "unet/diffusion_pytorch_model.safetensors": b"full" * 20,
    "unet/diffusion_pytorch_model.fp16.safetensors": b"half" * 10,
    "unet/diffusion_pytorch_model.bin": b"pickle",
}


@pytest.fixture
def fake_hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """A loopback stand-in for the Hub's model API (repo info, tree, resolve); yields the
    request log."""
    import hashlib
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from urllib.parse import unquote, urlparse

    seen: list[str] = []
    repo = "acme/tiny-sd"

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _reply(self, code: int, body: bytes, headers: dict[str, str]) -> None:
            self.send_response(code)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def do_GET(self) -> None:
            path = unquote(urlparse(self.path).path)
            seen.append(f"{self.command} {path}")
            as_json = {"Content-Type": "application/json"}
            if path in (f"/api/models/{repo}", f"/api/models/{repo}/revision/main"):
                siblings = [{"rfilename": f} for f in HUB_FILES]
                body = json.dumps({"id": repo, "sha": HUB_SHA, "siblings": siblings})
                return self._reply(200, body.encode(), as_json)
            if path == f"/api/models/{repo}/tree/{HUB_SHA}":
                tree = [
                    {"type": "file", "path": f, "size": len(b), "oid": hashlib.sha1(b).hexdigest()}
                    for f, b in HUB_FILES.items()
                ]
                return self._reply(200, json.dumps(tree).encode(), as_json)
            name = path.removeprefix(f"/{repo}/resolve/{HUB_SHA}/")
            if name in HUB_FILES:
                etag = hashlib.sha1(HUB_FILES[name]).hexdigest()
                headers = {"X-Repo-Commit": HUB_SHA, "ETag": f'"{etag}"'}
                return self._reply(200, HUB_FILES[name], headers)
            error = {"X-Error-Code": "RepoNotFound", **as_json}
            return self._reply(404, b'{"error": "Repository not found"}', error)

        do_HEAD = do_GET

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_address[1]}")
    try:
        yield seen
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.timeout(60)
def test_pull_downloads_configs_and_preferred_weights(fake_hub: list[str], tmp_path: Path) -> None:
    pytest.importorskip("huggingface_hub")
    dest = mr.pull_model("acme/tiny-sd", tmp_path / "dl", timeout=5)
    got = sorted(p.relative_to(dest).as_posix() for p in mr.folder_files(dest))
    assert got == [
        "model_index.json",
        "unet/config.json",
        "unet/diffusion_pytorch_model.fp16.safetensors",
    ]
    assert (dest / "unet" / "diffusion_pytorch_model.fp16.safetensors").read_bytes() == b"half" * 10
    assert not any("v1-5-pruned" in line or ".bin" in line for line in fake_hub)
    info = mr.inspect_model(dest)  # the hub's bookkeeping in .cache/ is not hashed
    assert (info.architecture, info.meta["variant"], info.meta["files"]) == ("sd15", "fp16", 3)


@pytest.mark.timeout(60)
def test_pull_unknown_repo(fake_hub: list[str], tmp_path: Path) -> None:
    pytest.importorskip("huggingface_hub")
    with pytest.raises(UserError, match="no model 'acme/missing' on the Hub"):
        mr.pull_model("acme/missing", tmp_path / "dl", timeout=5)


def test_heavy_libraries_are_not_imported_by_the_modules() -> None:
    code = (
        "import sys, bildwerk.modelreg, bildwerk.upscale; "
        "print(','.join(m for m in ('torch','spandrel','huggingface_hub','diffusers') "
        "if m in sys.modules))"
    )
    import subprocess

    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=os.environ
    )
    assert out.stdout.strip() == ""
