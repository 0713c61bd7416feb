"""Lazy access to torch, diffusers and transformers.

The core of bildwerk must start without the ``diffusion`` extra, so nothing here imports
a heavy library at module import time. :func:`libs` imports them on first use and turns a
missing package into :class:`MissingExtraError` naming the extra to install.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
import sys
from dataclasses import dataclass
from functools import lru_cache
from types import ModuleType

from bildwerk.errors import MissingExtraError, UserError

PURPOSE = "The diffusers backend"
_PACKAGES = ("torch", "diffusers", "transformers")


@dataclass(frozen=True)
class Libs:
    """The imported heavy modules (typed loosely: their stubs are incomplete)."""

    torch: ModuleType
    diffusers: ModuleType
    transformers: ModuleType


def require() -> None:
    """Raise :class:`MissingExtraError` unless torch, diffusers and transformers can be
    found; cheap (no import), so backends can fail early at construction."""
    for name in _PACKAGES:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            raise MissingExtraError(name, "diffusion", PURPOSE)


def check_torchvision() -> None:
    """Raise a :class:`UserError` when an installed torchvision cannot be imported.

    diffusers and transformers import torchvision whenever it is installed, so a wheel
    built for another torch (PyPI's CUDA torchvision beside a CPU torch) makes their
    pipeline and image-processor classes fail deep inside a run. bildwerk's extras never
    install torchvision (only the optional ``spandrel`` extra does) and bildwerk does not
    patch a mismatched one into importing: the fix belongs in the environment, so that
    every script using it works, not only bildwerk. Call after importing torch."""
    if importlib.util.find_spec("torchvision") is None:
        return
    try:
        importlib.import_module("torchvision")
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        raise UserError(
            f"torchvision {package_version('torchvision')} is installed but cannot be "
            f"imported beside torch {package_version('torch')} ({type(exc).__name__}: "
            f"{first}); diffusers and transformers import it, so their models cannot load",
            hint="install the torchvision build made for the installed torch (for a CPU "
            "torch: pip install torchvision --index-url https://download.pytorch.org/whl/cpu)"
            ", or uninstall torchvision (and spandrel, the only extra that needs it)",
        ) from None


@lru_cache(maxsize=1)
def _load() -> Libs:
    # deterministic cuBLAS needs this before CUDA initialises; harmless elsewhere
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    modules: dict[str, ModuleType] = {}
    for name in _PACKAGES:
        try:
            modules[name] = importlib.import_module(name)
        except ImportError as exc:
            raise MissingExtraError(name, "diffusion", PURPOSE) from exc
        if name == "torch":  # before diffusers/transformers import torchvision
            check_torchvision()
    return Libs(**modules)


def libs() -> Libs:
    """torch, diffusers and transformers, imported once; MissingExtraError if absent."""
    for name in _PACKAGES:  # a module blocked after the first import must still fail
        if name in sys.modules and sys.modules[name] is None:
            raise MissingExtraError(name, "diffusion", PURPOSE)
    return _load()


def package_version(name: str) -> str | None:
    """Installed version of a distribution, without importing it."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def versions() -> dict[str, str | None]:
    """Versions of the libraries that decide the pixels; recorded with every image."""
    return {n: package_version(n) for n in ("torch", "diffusers", "transformers", "peft")}
