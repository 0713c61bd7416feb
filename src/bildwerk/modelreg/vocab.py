"""The registry's vocabulary: model kinds, bildwerk's architecture names and the file
suffixes that count as weights or config."""

from __future__ import annotations

KINDS = ("checkpoint", "lora", "embedding", "controlnet", "upscaler", "clip")
DIFFUSION_ARCHITECTURES = (
    "sd15",
    "sd2",
    "sdxl",
    "sdxl-refiner",
    "sd-turbo",
    "sdxl-turbo",
    "sd3",
    "flux",
)
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt")
CONFIG_SUFFIXES = (".json", ".txt", ".model", ".yaml")
Shapes = dict[str, tuple[int, ...]]
REDOWNLOAD_HINT = "download it again (compare its sha256 with the publisher's) and re-add it"
