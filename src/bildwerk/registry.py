"""Plugin registry. Built-in backends are registered exactly like third-party ones: by
name, through the ``bildwerk.backends`` entry-point group, plus a default list so an
uninstalled source checkout still finds them."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

from bildwerk.errors import UserError

BACKEND_GROUP = "bildwerk.backends"

# name -> "module:attribute" of a zero-argument factory (usually the class itself)
DEFAULT_BACKENDS: dict[str, str] = {
    "studio": "bildwerk.backends.studio:StudioBackend",
    "diffusers": "bildwerk.backends.diffusers:DiffusersBackend",
    "openai": "bildwerk.backends.openai_images:OpenAIImagesBackend",
    "stability": "bildwerk.backends.stability:StabilityBackend",
}


def _load(target: str) -> Callable[[], Any]:
    module, _, attr = target.partition(":")
    obj: Callable[[], Any] = getattr(importlib.import_module(module), attr)
    return obj


def backend_names() -> list[str]:
    names = set(DEFAULT_BACKENDS)
    names.update(ep.name for ep in entry_points(group=BACKEND_GROUP))
    return sorted(names)


def backend_target(name: str) -> str:
    """The 'module:attr' a backend name resolves to; entry points override defaults."""
    for ep in entry_points(group=BACKEND_GROUP):
        if ep.name == name:
            return str(ep.value)
    if name in DEFAULT_BACKENDS:
        return DEFAULT_BACKENDS[name]
    raise UserError(
        f"unknown generation backend '{name}'",
        hint=f"use one of: {', '.join(backend_names())}",
    )


_instances: dict[str, Any] = {}


def get_backend(name: str) -> Any:
    """One instance per process and backend name, so heavy backends stay warm."""
    if name not in _instances:
        _instances[name] = _load(backend_target(name))()
    return _instances[name]
