"""Lazy access to torch, diffusers and transformers.

The core of bildwerk must start without the ``diffusion`` extra, so nothing here imports
a heavy library at module import time. :func:`libs` imports them on first use and turns a
missing package into :class:`MissingExtraError` naming the extra to install.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import logging
import os
import sys
from dataclasses import dataclass
from functools import lru_cache
from types import ModuleType

from bildwerk.errors import MissingExtraError
from bildwerk.torchcompat import ensure_torchvision

log = logging.getLogger(__name__)

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


def _usable_torchvision() -> None:
    """Make torchvision importable, or else absent.

    transformers and diffusers import torchvision whenever it is installed, and a wheel
    built for another torch variant (PyPI's CUDA torchvision beside a CPU torch) fails in
    that import, so every model class would fail to load. ``torchcompat`` repairs the
    import the way the upscaler needs it; should that fail too, we hide torchvision (we
    use nothing from it) so the libraries take their PIL fallbacks.
    """
    try:
        ensure_torchvision()
    except Exception as exc:
        for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[name]
        sys.modules["torchvision"] = None  # type: ignore[assignment]
        log.warning("ignoring torchvision, which cannot be imported: %s", exc)


@lru_cache(maxsize=1)
def _load() -> Libs:
    # deterministic cuBLAS needs this before CUDA initialises; harmless elsewhere
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    modules: dict[str, ModuleType] = {}
    for name in _PACKAGES:
        try:
            modules[name] = importlib.import_module(name)
            if name == "torch":  # before diffusers/transformers probe for torchvision
                _usable_torchvision()
        except ImportError as exc:
            raise MissingExtraError(name, "diffusion", PURPOSE) from exc
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
