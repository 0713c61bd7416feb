"""What to build: backdrop, props, pattern, mood and finish, chosen from keywords in the
prompt and slots, else from the request's seeded RNG."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bildwerk.backends.base import SceneRequest

BACKDROPS = ("sweep", "gradient", "softlight")
PROPS = ("podium", "arch", "spheres")
PATTERNS = ("none", "dots", "flutes", "terrazzo")
MOODS = ("neutral", "pastel", "dark", "warm", "cool")  # keyword priority after neutral
FINISHES = ("matte", "marble", "terrazzo")

_KEYWORDS: dict[str, tuple[str, ...]] = {
    "backdrop:sweep": ("sweep", "cyclorama", "seamless", "paper"),
    "backdrop:gradient": ("gradient", "ombre", "fade"),
    "backdrop:softlight": ("soft light", "softlight", "softbox", "glow", "halo", "spotlight"),
    "prop:podium": ("podium", "plinth", "pedestal", "platform", "stand", "display"),
    "prop:arch": ("arch", "archway", "niche", "alcove"),
    "prop:spheres": ("sphere", "spheres", "ball", "balls", "orb", "orbs", "bubble"),
    "pattern:dots": ("pattern", "dots", "dotted", "polka"),
    "pattern:flutes": ("stripes", "striped", "fluted", "ribbed", "lines"),
    "pattern:terrazzo": ("terrazzo", "speckled", "confetti"),
    "finish:marble": ("marble", "stone", "luxury"),
    "finish:terrazzo": ("terrazzo",),
    "mood:warm": ("warm", "sunlit", "sunny", "golden", "summer", "cozy", "autumn"),
    "mood:cool": ("cool", "fresh", "icy", "winter", "clean", "crisp"),
    "mood:dark": ("dark", "night", "moody", "evening", "noir", "dramatic"),
    "mood:pastel": ("pastel", "soft colors", "soft colours", "dreamy", "spring", "candy"),
    "reflection:yes": ("glossy", "reflection", "reflective", "mirror", "acrylic", "polished"),
}


# --------------------------------------------------------------------------- choices


@dataclass(frozen=True)
class Scene:
    """The concrete scene choices; recorded in ``Generated.params``."""

    backdrop: str
    props: tuple[str, ...]
    pattern: str
    mood: str
    finish: str
    reflection: bool
    matched: tuple[str, ...] = ()


def _words(request: SceneRequest) -> str:
    text = " ".join([request.prompt, *(str(v) for v in request.slots.values())])
    return " " + re.sub(r"[^a-z0-9]+", " ", text.lower()) + " "


def _matches(text: str, negative: str) -> set[str]:
    hits = set()
    for tag, words in _KEYWORDS.items():
        if any(f" {w} " in text and f" {w} " not in negative for w in words):
            hits.add(tag)
    return hits


def choose_scene(request: SceneRequest, rng: np.random.Generator) -> Scene:
    """Pick backdrop, props, pattern, mood and finish: keywords first, then the RNG. The
    RNG is always drawn the same number of times so choices stay independent."""
    negative = " " + re.sub(r"[^a-z0-9]+", " ", request.negative_prompt.lower()) + " "
    hits = _matches(_words(request), negative)
    rolls = rng.random(8)

    def pick(kind: str, options: Sequence[str], roll: float, weights: Sequence[float]) -> str:
        named = [o for o in options if f"{kind}:{o}" in hits]
        if named:
            return named[0]
        allowed = [
            (o, w)
            for o, w in zip(options, weights, strict=True)
            if not any(f" {k} " in negative for k in _KEYWORDS.get(f"{kind}:{o}", ()))
        ]
        total = sum(w for _, w in allowed)
        acc = 0.0
        for option, weight in allowed:
            acc += weight / total
            if roll < acc:
                return option
        return allowed[-1][0]

    backdrop = pick("backdrop", BACKDROPS, rolls[0], (0.45, 0.25, 0.3))
    mood = pick("mood", MOODS, rolls[1], (0.5, 0.1, 0.05, 0.2, 0.15))
    pattern = pick("pattern", PATTERNS, rolls[2], (0.6, 0.14, 0.14, 0.12))
    finish = pick("finish", FINISHES, rolls[3], (0.6, 0.25, 0.15))
    named_props = tuple(p for p in PROPS if f"prop:{p}" in hits)
    props = named_props or tuple(
        p
        for p, roll, chance in zip(PROPS, rolls[4:7], (0.55, 0.3, 0.3), strict=True)
        if roll < chance and f" {p} " not in negative
    )
    if backdrop == "gradient" and "arch" in props:  # an arch needs a floor to stand on
        if "prop:arch" not in hits:
            props = tuple(p for p in props if p != "arch")
        elif "backdrop:gradient" not in hits:
            backdrop = "sweep"
    reflection = "reflection:yes" in hits or bool(mood == "dark" and rolls[7] < 0.5)
    return Scene(backdrop, props, pattern, mood, finish, reflection, tuple(sorted(hits)))


def scene_seed(request: SceneRequest) -> int:
    """A process-independent RNG seed from the request seed, prompt, slots and style."""
    doc = json.dumps(
        [request.seed, request.prompt, sorted(request.slots.items()), request.style],
        ensure_ascii=True,
        sort_keys=True,
    )
    return int.from_bytes(hashlib.sha256(doc.encode()).digest()[:8], "big")
