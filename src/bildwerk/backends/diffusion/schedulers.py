"""Schedulers by friendly name ("euler_a", "dpmpp_2m_karras", ...).

A scheduler is rebuilt for every call from the checkpoint's original config, so a batch
never inherits another's timesteps or a previous scheduler's overrides.
"""

from __future__ import annotations

from typing import Any

from bildwerk.backends.diffusion.pipelines import Warm
from bildwerk.errors import UserError

# friendly name -> (diffusers class, overrides of the checkpoint's scheduler config)
SCHEDULERS: dict[str, tuple[str, dict[str, Any]]] = {
    "euler": ("EulerDiscreteScheduler", {}),
    "euler_a": ("EulerAncestralDiscreteScheduler", {}),
    "heun": ("HeunDiscreteScheduler", {}),
    "lms": ("LMSDiscreteScheduler", {}),
    "ddim": ("DDIMScheduler", {}),
    "ddpm": ("DDPMScheduler", {}),
    "pndm": ("PNDMScheduler", {}),
    "dpmpp_2m": (
        "DPMSolverMultistepScheduler",
        {"algorithm_type": "dpmsolver++", "use_karras_sigmas": False},
    ),
    "dpmpp_2m_karras": (
        "DPMSolverMultistepScheduler",
        {"algorithm_type": "dpmsolver++", "use_karras_sigmas": True},
    ),
    "dpmpp_2m_sde": (
        "DPMSolverMultistepScheduler",
        {"algorithm_type": "sde-dpmsolver++", "use_karras_sigmas": False},
    ),
    "dpmpp_2m_sde_karras": (
        "DPMSolverMultistepScheduler",
        {"algorithm_type": "sde-dpmsolver++", "use_karras_sigmas": True},
    ),
    "unipc": ("UniPCMultistepScheduler", {}),
    "lcm": ("LCMScheduler", {}),
}
# SD3 and Flux are flow-matching models; the noise-prediction schedulers do not apply.
FLOW_SCHEDULERS: dict[str, tuple[str, dict[str, Any]]] = {
    "euler": ("FlowMatchEulerDiscreteScheduler", {}),
    "heun": ("FlowMatchHeunDiscreteScheduler", {}),
}


def make_scheduler(diffusers: Any, warm: Warm, name: str | None) -> Any:
    """A fresh scheduler: ``name``'s class (or the checkpoint's own) from the checkpoint's
    original config. Also accepts diffusers class names; unknown names are a UserError
    listing the known ones."""
    if name is None:
        return getattr(diffusers, warm.scheduler_class).from_config(warm.scheduler_config)
    table = FLOW_SCHEDULERS if warm.model.family in ("sd3", "flux") else SCHEDULERS
    lookup = dict(table)
    lookup.update({cls: (cls, {}) for cls, _ in table.values()})
    entry = lookup.get(name) or lookup.get(name.lower().replace("-", "_").replace("+", "p"))
    if entry is None:
        raise UserError(
            f"unknown scheduler '{name}' for {warm.model.architecture}",
            hint=f"use one of: {', '.join(table)}",
        )
    cls_name, overrides = entry
    return getattr(diffusers, cls_name).from_config(warm.scheduler_config, **overrides)
