"""bildwerk: an AI image production line for marketing teams.

A campaign brief and a brand kit go in; reproducible, branded, quality-gated image
variants come out. ``Workspace(path).run(brief)`` runs the whole line.

The names below load on first use (PEP 562 module ``__getattr__``): ``import bildwerk``,
``bildwerk --help`` and every spawned worker start without SQLAlchemy, numpy, Pillow or
httpx, which the modules behind these names pull in.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "Capabilities": "bildwerk.backends.base",
    "Generated": "bildwerk.backends.base",
    "GenerationBackend": "bildwerk.backends.base",
    "SceneRequest": "bildwerk.backends.base",
    "CheckResult": "bildwerk.checks.base",
    "BrandKit": "bildwerk.config.brand",
    "load_brand": "bildwerk.config.brand",
    "Brief": "bildwerk.config.brief",
    "load_brief": "bildwerk.config.brief",
    "PRESETS": "bildwerk.config.channels",
    "Channel": "bildwerk.config.channels",
    "BildwerkError": "bildwerk.errors",
    "ConfigError": "bildwerk.errors",
    "InputImageError": "bildwerk.errors",
    "MissingExtraError": "bildwerk.errors",
    "NotFoundError": "bildwerk.errors",
    "ServiceError": "bildwerk.errors",
    "UserError": "bildwerk.errors",
    "WorkspaceError": "bildwerk.errors",
    "RunResult": "bildwerk.runner",
    "init_workspace": "bildwerk.scaffold",
    "PlanSummary": "bildwerk.workspace",
    "Workspace": "bildwerk.workspace",
}

__all__ = [
    "PRESETS",
    "BildwerkError",
    "BrandKit",
    "Brief",
    "Capabilities",
    "Channel",
    "CheckResult",
    "ConfigError",
    "Generated",
    "GenerationBackend",
    "InputImageError",
    "MissingExtraError",
    "NotFoundError",
    "PlanSummary",
    "RunResult",
    "SceneRequest",
    "ServiceError",
    "UserError",
    "Workspace",
    "WorkspaceError",
    "__version__",
    "init_workspace",
    "load_brand",
    "load_brief",
]

if TYPE_CHECKING:  # what type checkers and IDEs see; nothing is imported at run time
    from bildwerk.backends.base import Capabilities, Generated, GenerationBackend, SceneRequest
    from bildwerk.checks.base import CheckResult
    from bildwerk.config.brand import BrandKit, load_brand
    from bildwerk.config.brief import Brief, load_brief
    from bildwerk.config.channels import PRESETS, Channel
    from bildwerk.errors import (
        BildwerkError,
        ConfigError,
        InputImageError,
        MissingExtraError,
        NotFoundError,
        ServiceError,
        UserError,
        WorkspaceError,
    )
    from bildwerk.runner import RunResult
    from bildwerk.scaffold import init_workspace
    from bildwerk.workspace import PlanSummary, Workspace


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'bildwerk' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
