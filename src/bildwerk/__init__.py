"""bildwerk: an AI image production line for marketing teams.

A campaign brief and a brand kit go in; reproducible, branded, quality-gated image
variants come out. ``Workspace(path).run(brief)`` runs the whole line.
"""

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
    UserError,
    WorkspaceError,
)
from bildwerk.runner import RunResult
from bildwerk.scaffold import init_workspace
from bildwerk.workspace import PlanSummary, Workspace

__version__ = "0.1.0"

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
    "UserError",
    "Workspace",
    "WorkspaceError",
    "__version__",
    "init_workspace",
    "load_brand",
    "load_brief",
]
