"""The built-in "studio" backend: packshot-style product scenes without model weights.

It renders what a product photographer builds in a small studio — a paper sweep or a
gradient backdrop, a soft key light, a podium, an arch, a few spheres — in the brand's
colours, stands the product cutout on the floor with a contact shadow, and keeps the
layout's copy and logo zones calm so the overlay text reads. Every choice comes from
keywords in the prompt and slots, else from a seeded RNG, so a request always renders the
same pixels and variants differ in a controlled way.

Smooth fields are computed at reduced resolution and upscaled; shadows are blurred small
and upscaled; only crisp things (props, patterns, the product) are drawn at full size.

The package's modules follow the renderer's steps: :mod:`.scene` (what to build),
:mod:`.palette` (colours), :mod:`.stage` (where things stand), :mod:`.backdrop`,
:mod:`.props` and :mod:`.shadow` (drawing), :mod:`.backend` (the backend itself).
"""

from __future__ import annotations

from bildwerk.backends.studio.backend import StudioBackend, add_grain, render
from bildwerk.backends.studio.palette import Colours, backdrop_in, derive_colours
from bildwerk.backends.studio.scene import (
    BACKDROPS,
    FINISHES,
    MOODS,
    PATTERNS,
    PROPS,
    Scene,
    choose_scene,
    scene_seed,
)
from bildwerk.backends.studio.shadow import draw_reflection, draw_shadows
from bildwerk.backends.studio.stage import Cutout, Stage, load_cutout, plan_stage

__all__ = [
    "BACKDROPS",
    "FINISHES",
    "MOODS",
    "PATTERNS",
    "PROPS",
    "Colours",
    "Cutout",
    "Scene",
    "Stage",
    "StudioBackend",
    "add_grain",
    "backdrop_in",
    "choose_scene",
    "derive_colours",
    "draw_reflection",
    "draw_shadows",
    "load_cutout",
    "plan_stage",
    "render",
    "scene_seed",
]
