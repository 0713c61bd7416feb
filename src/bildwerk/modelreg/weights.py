"""Reading weight files without loading them (safetensors headers, pickle shapes) and the
content digest of a model folder."""

from __future__ import annotations

import hashlib
import json
import os
import struct
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bildwerk.atomicio import sha256_file
from bildwerk.errors import MissingExtraError, UserError
from bildwerk.modelreg.vocab import CONFIG_SUFFIXES, REDOWNLOAD_HINT, WEIGHT_SUFFIXES, Shapes

_MAX_HEADER = 100 * 1024 * 1024


# -- hashing ----------------------------------------------------------------------------


def folder_files(root: Path) -> list[Path]:
    """Weight and config files under ``root``, sorted; hidden folders (the hub's .cache)
    and docs are left out because they do not change outputs."""
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            p = Path(dirpath, name)
            if not name.startswith(".") and p.suffix.lower() in WEIGHT_SUFFIXES + CONFIG_SUFFIXES:
                found.append(p)
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def folder_digest(root: Path) -> tuple[str, int, int]:
    """sha256 over sorted (relative path, file sha256): the same on every machine.

    Returns (digest, total bytes, file count)."""
    h = hashlib.sha256()
    size = 0
    files = folder_files(root)
    for p in files:
        h.update(f"{p.relative_to(root).as_posix()}\0{sha256_file(p)}\n".encode())
        size += p.stat().st_size
    return h.hexdigest(), size, len(files)


# -- reading weights without loading them ---------------------------------------------


def read_safetensors_header(path: Path) -> tuple[Shapes, dict[str, str]]:
    """Tensor shapes and ``__metadata__`` from the header alone; checks that the file
    is long enough for every tensor the header lists (catches truncated downloads)."""
    size = path.stat().st_size
    with path.open("rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            raise UserError(f"{path}: not a safetensors file (too short)", hint=REDOWNLOAD_HINT)
        (n,) = struct.unpack("<Q", head)
        if n > _MAX_HEADER or 8 + n > size:
            raise UserError(
                f"{path}: not a safetensors file, or truncated (header claims {n} bytes, "
                f"file has {size})",
                hint=REDOWNLOAD_HINT,
            )
        raw = fh.read(n)
    try:
        header = json.loads(raw.decode("utf-8"))
        if not isinstance(header, dict):
            raise ValueError("header is not a JSON object")
        meta = {str(k): str(v) for k, v in dict(header.pop("__metadata__", None) or {}).items()}
        shapes: Shapes = {}
        end = 0
        for key, entry in header.items():
            shapes[key] = tuple(int(d) for d in entry["shape"])
            end = max(end, int(entry["data_offsets"][1]))
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        raise UserError(
            f"{path}: damaged safetensors header ({exc})", hint=REDOWNLOAD_HINT
        ) from None
    if 8 + n + end > size:
        raise UserError(
            f"{path}: truncated safetensors file ({8 + n + end} bytes expected, {size} found)",
            hint=REDOWNLOAD_HINT,
        )
    return shapes, meta


def _read_pickle_shapes(path: Path) -> Shapes:
    """Shapes from a torch pickle, memory-mapped (zip format) and with weights_only, so
    nothing executes and nothing big is read."""
    try:
        import torch
    except ImportError as exc:
        raise MissingExtraError("torch", "diffusion", f"Reading {path}") from exc
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(path))
    except Exception as exc:  # pickles fail in many ways: all mean "cannot use this file"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise UserError(
            f"{path}: not a readable PyTorch weights file ({type(exc).__name__}: {first[:200]})",
            hint=f"{REDOWNLOAD_HINT}; or convert it to .safetensors",
        ) from None
    shapes: Shapes = {}
    _flatten(_unwrap(obj), "", shapes)
    return shapes


def _unwrap(obj: Any) -> Any:
    for key in ("state_dict", "params_ema", "params", "model_state_dict", "model", "net"):
        if isinstance(obj, Mapping) and isinstance(obj.get(key), Mapping):
            return obj[key]
    return obj


def _flatten(obj: Any, prefix: str, out: Shapes) -> None:
    if isinstance(obj, Mapping):
        for k, v in obj.items():
            _flatten(v, f"{prefix}{k}.", out)
    elif hasattr(obj, "shape"):
        out[prefix[:-1]] = tuple(int(d) for d in obj.shape)


def read_shapes(path: Path) -> tuple[Shapes, dict[str, str]]:
    """Tensor names and shapes of a single weights file, plus safetensors metadata."""
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        return read_safetensors_header(path)
    if suffix in WEIGHT_SUFFIXES:
        return _read_pickle_shapes(path), {}
    raise UserError(
        f"{path}: unsupported model file type '{suffix or path.name}'",
        hint="bildwerk reads .safetensors, .pt, .pth, .bin and .ckpt files and diffusers folders",
    )
