"""Loading an upscaler file: bildwerk's own ESRGAN/Real-ESRGAN networks, else spandrel.

The ``diffusion`` extra installs no torchvision: PyPI's torchvision is a CUDA build that
cannot be imported beside a CPU torch, and once installed it breaks ``import diffusers``
in every script. spandrel (which needs torchvision) is therefore optional, in the
``spandrel`` extra, imported only for a file bildwerk's own loader does not recognise.
"""

from __future__ import annotations

import importlib.util
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bildwerk.errors import MissingExtraError, UserError
from bildwerk.upscalers.detect import COMPACT, Architecture, Shapes, detect, module_keys

if TYPE_CHECKING:
    import torch

MODEL_SUFFIXES = (".safetensors", ".pth", ".pt", ".ckpt")
PURPOSE = "Upscaling with a model"
SPANDREL_EXTRA = "spandrel"
OWN = "ESRGAN/Real-ESRGAN (RRDBNet) and Real-ESRGAN compact (SRVGGNetCompact)"
_WRAPPERS = ("params_ema", "params", "state_dict", "model_state_dict", "model", "net")


@dataclass(frozen=True, eq=False)
class Upscaler:
    """A loaded upscaler in eval mode: call it on a (1, C, H, W) float tensor in 0..1 on
    the model's device and dtype; it returns (1, C, H*scale, W*scale)."""

    path: Path
    architecture: str  # lower case: "esrgan", "compact", or spandrel's id ("swinir", …)
    scale: int
    purpose: str  # "SR", or "Restoration" for 1x
    input_channels: int
    output_channels: int
    tags: tuple[str, ...]
    model: Any  # the torch.nn.Module (for its device and dtype)
    forward: Callable[[torch.Tensor], torch.Tensor]
    half: bool = True  # whether fp16 on CUDA keeps its results

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward(x)


def need_torch() -> None:
    try:
        import torch  # noqa: F401
    except ImportError as exc:
        raise MissingExtraError("torch", "diffusion", PURPOSE) from exc


def recognises(shapes: Shapes) -> bool:
    """Whether ``shapes`` (tensor name -> shape) are an upscaler bildwerk can load: its
    own architectures without torch; others through spandrel when that is installed
    (its detectors run on empty "meta" tensors, so nothing big is read)."""
    if detect(shapes) is not None:
        return True
    if importlib.util.find_spec("spandrel") is None:
        return False
    import torch

    spandrel = _spandrel()
    state = {k: torch.empty(shape, device="meta") for k, shape in shapes.items()}
    state = spandrel.canonicalize_state_dict(state)
    for support in spandrel.MAIN_REGISTRY.architectures("detection"):
        try:
            if support.detect(state):
                return True
        except Exception:  # a detector that reads values cannot judge meta tensors
            continue
    return False


def load(path: Path) -> Upscaler:
    """The upscaler in ``path`` on the best device (fp32 on CPU, fp16 on CUDA)."""
    if path.suffix.lower() not in MODEL_SUFFIXES:
        raise UserError(
            f"{path}: not an upscaler file type ({path.suffix or 'no extension'})",
            hint=f"use {OWN} weights: " + ", ".join(MODEL_SUFFIXES),
        )
    need_torch()
    import torch

    arch, read = _identify(path)
    model = _load_spandrel(path) if arch is None else _build(path, arch, read())
    if model.input_channels not in (1, 3):
        raise UserError(
            f"{path}: expects {model.input_channels}-channel images (need 1 or 3)",
            hint="use an RGB or greyscale upscaler",
        )
    if torch.cuda.is_available():
        model.model.to(torch.device("cuda"))
        if model.half:
            model.model.half()
    model.model.eval()
    return model


# -- reading ----------------------------------------------------------------------------


def _identify(path: Path) -> tuple[Architecture | None, Callable[[], dict[str, Any]]]:
    """The architecture by the file's names and shapes, and how to read its tensors;
    a safetensors file is identified from its header alone."""
    try:
        if path.suffix.lower() == ".safetensors":
            try:
                from safetensors import safe_open
            except ImportError as exc:
                raise MissingExtraError("safetensors", "diffusion", PURPOSE) from exc
            with safe_open(str(path), framework="pt") as f:
                shapes = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118
            return detect(shapes), lambda: _read_safetensors(path)
        state = _read_pickle(path)
    except UserError:
        raise
    except Exception as exc:  # damaged files fail in many ways: all mean "unusable"
        raise _unreadable(path, exc) from None
    return detect({k: tuple(v.shape) for k, v in state.items()}), lambda: state


def _read_safetensors(path: Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    try:
        return dict(load_file(str(path), device="cpu"))
    except Exception as exc:
        raise _unreadable(path, exc) from None


def _read_pickle(path: Path) -> dict[str, Any]:
    """Tensors of a torch pickle, loaded with ``weights_only`` so no code runs; unwraps
    training checkpoints (Real-ESRGAN keeps the EMA weights under ``params_ema``)."""
    import torch

    obj = torch.load(path, map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(path))
    for key in _WRAPPERS:
        if isinstance(obj, Mapping) and isinstance(obj.get(key), Mapping):
            obj = obj[key]
            break
    if not isinstance(obj, Mapping):
        raise UserError(
            f"{path}: holds a {type(obj).__name__}, not a dictionary of weights",
            hint="save the model's state_dict(), or use a .safetensors file",
        )
    return {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}


def _unreadable(path: Path, exc: Exception) -> UserError:
    first = (str(exc).strip().splitlines() or [""])[0][:200]
    return UserError(
        f"{path}: cannot read this upscaler file ({type(exc).__name__}: {first})",
        hint="download it again, or convert it to .safetensors",
    )


# -- own networks -----------------------------------------------------------------------


def _build(path: Path, arch: Architecture, state: dict[str, Any]) -> Upscaler:
    if arch.name == COMPACT:
        from bildwerk.upscalers.compact import SRVGGNetCompact

        net: torch.nn.Module = SRVGGNetCompact(arch)
    else:
        from bildwerk.upscalers.rrdb import RRDBNet

        net = RRDBNet(arch)
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    names = module_keys(state)
    try:
        net.load_state_dict({names[k]: v.float() for k, v in state.items()}, strict=True)
    except RuntimeError as exc:  # detect() matched the shapes, so this is a damaged file
        raise _unreadable(path, exc) from None
    return Upscaler(
        path=path,
        architecture=arch.name,
        scale=arch.scale,
        purpose="SR" if arch.scale > 1 else "Restoration",
        input_channels=arch.in_channels,
        output_channels=arch.out_channels,
        tags=arch.tags,
        model=net,
        forward=net,
    )


# -- spandrel ---------------------------------------------------------------------------


def _spandrel(why: str = "") -> Any:
    try:
        import spandrel
    except Exception as exc:  # a torchvision built for another torch fails with RuntimeError
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        raise UserError(
            f"{why}spandrel is installed but cannot be imported ({type(exc).__name__}: {first})",
            hint="install the torchvision build made for the installed torch (e.g. for a "
            "CPU torch: pip install torchvision --index-url "
            "https://download.pytorch.org/whl/cpu), or uninstall spandrel and torchvision: "
            f"{OWN} weights load without them",
        ) from None
    return spandrel


def _load_spandrel(path: Path) -> Upscaler:
    if importlib.util.find_spec("spandrel") is None:
        raise MissingExtraError(
            "spandrel",
            SPANDREL_EXTRA,
            f"{path} is no {OWN} upscaler, which bildwerk runs itself; "
            "other architectures (SwinIR, HAT, DAT, …) load through spandrel, with a "
            "torchvision built for the installed torch; that",
        )
    spandrel = _spandrel(f"{path} is no {OWN} upscaler; for other architectures ")
    try:
        desc = spandrel.ModelLoader(device="cpu").load_from_file(path)
    except spandrel.UnsupportedModelError:
        raise UserError(
            f"{path}: not an upscaler architecture bildwerk or spandrel recognises",
            hint=f"use {OWN}, SwinIR, HAT, … weights, or upscale without a model",
        ) from None
    except Exception as exc:  # unreadable pickles and damaged files fail in many ways
        raise _unreadable(path, exc) from None
    if not isinstance(desc, spandrel.ImageModelDescriptor) or desc.purpose not in (
        "SR",
        "Restoration",
    ):
        raise UserError(
            f"{path}: a {getattr(desc, 'purpose', '?')} model, not an upscaler",
            hint="use a super-resolution model (ESRGAN, Real-ESRGAN, SwinIR, …)",
        )

    def forward(x: torch.Tensor) -> torch.Tensor:
        return desc(x)  # type: ignore[no-any-return]

    return Upscaler(
        path=path,
        architecture=str(desc.architecture.id).lower(),
        scale=int(desc.scale),
        purpose=str(desc.purpose),
        input_channels=int(desc.input_channels),
        output_channels=int(desc.output_channels),
        tags=tuple(str(t) for t in desc.tags),
        model=desc.model,
        forward=forward,
        half=bool(desc.supports_half),
    )
