"""Model registry: what a weights file or folder is, which base model it belongs to, and
a content hash that names it.

Detection reads configs and safetensors headers only, never whole checkpoints, so
inspecting a 7 GB SDXL file costs milliseconds plus the hash. The sha256 covers every
weight and config file, so new weights mean new job keys. Architectures are bildwerk's
own short names (sd15, sd2, sdxl, …) so the CLI, LoRA checks and job keys share one
vocabulary.

Modules: :mod:`.vocab` (kinds, architectures, suffixes), :mod:`.weights` (headers,
shapes, digests), :mod:`.detect` (what a file or folder is), :mod:`.catalog` (registered
models), :mod:`.hub` (pulling from the Hugging Face Hub).
"""

from __future__ import annotations

from bildwerk.modelreg.catalog import (
    add_model,
    check_lora_compatible,
    get_model,
    list_models,
    remove_model,
)
from bildwerk.modelreg.detect import ModelInfo, base_architecture, inspect_model
from bildwerk.modelreg.hub import pull_model, select_pull_files
from bildwerk.modelreg.vocab import (
    CONFIG_SUFFIXES,
    DIFFUSION_ARCHITECTURES,
    KINDS,
    WEIGHT_SUFFIXES,
)
from bildwerk.modelreg.weights import (
    folder_digest,
    folder_files,
    read_safetensors_header,
    read_shapes,
)

__all__ = [
    "CONFIG_SUFFIXES",
    "DIFFUSION_ARCHITECTURES",
    "KINDS",
    "WEIGHT_SUFFIXES",
    "ModelInfo",
    "add_model",
    "base_architecture",
    "check_lora_compatible",
    "folder_digest",
    "folder_files",
    "get_model",
    "inspect_model",
    "list_models",
    "pull_model",
    "read_safetensors_header",
    "read_shapes",
    "remove_model",
    "select_pull_files",
]
