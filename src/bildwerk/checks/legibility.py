"""Legibility check: read every text block back with OCR the way a viewer would see it,
and look for text nobody asked for.

Raw OCR reads 7 px light-grey text that no person can, so each block is first put through
a small viewing model (:func:`viewed`): luminance only (colour-only contrast does not
read), a contrast loss of ``view_contrast_loss`` (glare, poor screens: text at or below
that luminance ratio vanishes), then averaged down by ``view_scale`` per CSS px (acuity).
What the recogniser reads from that is compared with the expected copy by normalised edit
similarity. Scripts the bundled recogniser cannot read are not read back: never failed,
never passed either — the creative is flagged (``warn``) so a person reads that copy.

Unintended text: AI scenes sometimes carry gibberish lettering. The scene before the
overlay (or the creative with the known copy and logo masked) runs through the text
detector; text outside the product area (product labels are legitimate) fails.

Params (defaults are the module constants): ``min_similarity`` (a number, or a mapping of
script → number merged over :data:`MIN_SIMILARITY`, key ``default`` for others),
``warn_margin``, ``unsupported_scripts``,
``min_charset_coverage``, ``view_scale``, ``view_contrast_loss`` (a ratio ≥ 1),
``unintended``, ``unintended_max_side``, ``unintended_min_score``, ``unintended_min_chars``,
``ignore_product_text``.
"""

from __future__ import annotations

import itertools
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from bildwerk.checks.base import CheckContext, CheckResult, TextSpec, Verdict
from bildwerk.checks.detectors import (
    OCR_MODEL,
    Pixels,
    bool_param,
    find_text,
    float_param,
    ocr_charset,
    opencv,
    recognize,
)
from bildwerk.colour import srgb_decode, srgb_encode
from bildwerk.config.brand import hex_to_rgb
from bildwerk.errors import UserError
from bildwerk.geometry import Box

MIN_SIMILARITY: dict[str, float] = {"latin": 0.8, "cyrillic": 0.8, "greek": 0.8, "cjk": 0.6}
DEFAULT_SIMILARITY = 0.8  # scripts not listed above
WARN_MARGIN = 0.1
UNSUPPORTED_SCRIPTS: tuple[str, ...] = ("arabic", "hebrew")
MIN_CHARSET_COVERAGE = 0.9
VIEW_SCALE = 0.5  # 12 CSS px text is read at 6 px: the OCR limit sits near human acuity
VIEW_CONTRAST_LOSS = 2.0
UNINTENDED = True
UNINTENDED_MAX_SIDE = 384
UNINTENDED_MIN_SCORE = 0.6
UNINTENDED_MIN_CHARS = 3  # letters or digits read: shapes alone often read as "I" or "0"
IGNORE_PRODUCT_TEXT = True

_UNSPACED = frozenset({"cjk"})
_PUNCT = str.maketrans({"‘": "'", "’": "'", "‚": "'", "“": '"', "”": '"', "„": '"', "–": "-"})
_PUNCT.update(str.maketrans({"—": "-", "−": "-", "·": "."}))


# --- text similarity ----------------------------------------------------------------------


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (insertions, deletions, substitutions all cost 1)."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def normalise(text: str, script: str) -> str:
    """Compatibility forms, typographic punctuation, case (a no-op for caseless scripts)
    and whitespace do not count; lines are joined (without spaces for CJK)."""
    text = unicodedata.normalize("NFKC", text).translate(_PUNCT).casefold()
    return "".join(text.split()) if script in _UNSPACED else " ".join(text.split())


def similarity(expected: str, read: str, script: str = "latin") -> float:
    """1 − edit distance / length of the longer string, after :func:`normalise`."""
    a, b = normalise(expected, script), normalise(read, script)
    if not a and not b:
        return 1.0
    return 1.0 - edit_distance(a, b) / max(len(a), len(b))


# --- params -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Params:
    similarity: dict[str, float]
    default_similarity: float
    warn_margin: float
    unsupported: frozenset[str]
    coverage: float
    view_scale: float
    contrast_loss: float
    unintended: bool
    max_side: int
    min_score: float
    min_chars: int
    ignore_product: bool

    @classmethod
    def of(cls, params: Mapping[str, Any]) -> _Params:
        name = LegibilityCheck.name
        raw = params.get("min_similarity", MIN_SIMILARITY)
        if isinstance(raw, Mapping):
            table = {**MIN_SIMILARITY, **{k: float_param(raw, name, k, 0) for k in raw}}
            default = table.get("default", DEFAULT_SIMILARITY)
        else:
            value = float_param(params, name, "min_similarity", DEFAULT_SIMILARITY)
            table, default = {}, value
        scale = float_param(params, name, "view_scale", VIEW_SCALE)
        if scale == 0:
            raise UserError(f"qa params for '{name}': view_scale must be above 0 (1 = off)")
        loss = params.get("view_contrast_loss", VIEW_CONTRAST_LOSS)
        if isinstance(loss, bool) or not isinstance(loss, int | float) or loss < 1:
            raise UserError(
                f"qa params for '{name}': view_contrast_loss must be a ratio ≥ 1, not {loss!r}",
                hint="1 turns the contrast model off; 2 hides text at 2:1 contrast or less",
            )
        return cls(
            similarity=table,
            default_similarity=default,
            warn_margin=float_param(params, name, "warn_margin", WARN_MARGIN),
            unsupported=_names(params.get("unsupported_scripts", UNSUPPORTED_SCRIPTS)),
            coverage=float_param(params, name, "min_charset_coverage", MIN_CHARSET_COVERAGE),
            view_scale=scale,
            contrast_loss=float(loss),
            unintended=bool_param(params, name, "unintended", UNINTENDED),
            max_side=_int_param(params, "unintended_max_side", UNINTENDED_MAX_SIDE, 64),
            min_score=float_param(params, name, "unintended_min_score", UNINTENDED_MIN_SCORE),
            min_chars=_int_param(params, "unintended_min_chars", UNINTENDED_MIN_CHARS, 1),
            ignore_product=bool_param(params, name, "ignore_product_text", IGNORE_PRODUCT_TEXT),
        )

    def threshold(self, script: str) -> float:
        return self.similarity.get(script, self.default_similarity)


def _names(value: Any) -> frozenset[str]:
    return frozenset([value] if isinstance(value, str) else (str(v) for v in value))


def _int_param(params: Mapping[str, Any], key: str, default: int, low: int) -> int:
    value = params.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise UserError(
            f"qa params for 'legibility': {key} must be a whole number ≥ {low}, not {value!r}"
        )
    return value


# --- the viewing model --------------------------------------------------------------------

_LUMA = np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)
_FLARE = 0.05  # WCAG's flare term: black on a screen is never darker than this
_SRGB = np.arange(256, dtype=np.float32) / 255.0
_LINEAR = srgb_decode(_SRGB)


def viewed(rgb: Pixels, scale: float, contrast_loss: float) -> Pixels:
    """What a viewer makes of ``rgb``: luminance only; every pixel's contrast against the
    crop's median loses ``contrast_loss`` (as a ratio); then the result is averaged down by
    ``scale`` (acuity). A heuristic, calibrated so that 12 CSS px text at 4.5:1 reads back
    and 9 px text, or text under 2:1, does not."""
    lum = _LINEAR[rgb] @ _LUMA
    log = np.log(lum + _FLARE)
    ref = float(np.median(log[::2, ::2]))
    delta = log - ref
    delta = np.sign(delta) * np.maximum(0.0, np.abs(delta) - np.log(contrast_loss))
    out = np.clip(np.exp(ref + delta) - _FLARE, 0.0, 1.0)
    srgb = srgb_encode(out)
    grey = np.clip(srgb * 255 + 0.5, 0, 255).astype(np.uint8)
    if scale < 1.0:
        h, w = grey.shape
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        grey = opencv().resize(grey, size, interpolation=opencv().INTER_AREA)
    return np.repeat(grey[:, :, None], 3, axis=2)


# --- reading the known blocks -------------------------------------------------------------


def _clip(box: Box, width: int, height: int) -> Box:
    return Box(max(0, box.x0), max(0, box.y0), min(width, box.x1), min(height, box.y1))


def _pad(box: Box, pad: int) -> Box:
    return Box(box.x0 - pad, box.y0 - pad, box.x1 + pad, box.y1 + pad)


def _ink(crop: Pixels, color: str) -> NDArray[np.bool_]:
    """Pixels nearer the text colour than half way to the crop's median (background)."""
    text = np.array(hex_to_rgb(color), dtype=np.int16)
    background = np.median(crop[::3, ::3].reshape(-1, 3), axis=0)
    gap = float(np.abs(background - text).sum())
    distance = np.abs(crop.astype(np.int16) - text).sum(axis=2)
    mask: NDArray[np.bool_] = distance < max(24.0, gap / 2)
    return mask


def _line_count(spec: TextSpec) -> int:
    lines = spec.text.count("\n") + 1
    if lines == 1 and spec.box.height > 2.2 * spec.font_size:
        lines = max(1, round(spec.box.height / (1.25 * spec.font_size)))
    return lines


def _lines(rgb: Pixels, spec: TextSpec) -> list[Pixels]:
    """One crop per line: the padded block (inside the CTA plate) cut at the emptiest rows
    near where evenly spaced lines would part, each trimmed to its ink."""
    height, width = rgb.shape[:2]
    pad = max(3, round(spec.font_size * 0.25))
    region = _clip(_pad(spec.box, pad), width, height)
    if spec.plate is not None:
        plate = _clip(spec.plate, width, height)
        region = Box(
            max(region.x0, plate.x0),
            max(region.y0, plate.y0),
            min(region.x1, plate.x1),
            min(region.y1, plate.y1),
        )
    if region.width <= 0 or region.height <= 0:
        return []
    crop = rgb[region.y0 : region.y1, region.x0 : region.x1]
    count = _line_count(spec)
    ink = _ink(crop, spec.color)
    top, bottom = spec.box.y0 - region.y0, spec.box.y1 - region.y0
    pitch = (bottom - top) / count
    profile = ink.sum(axis=1).astype(np.float64)
    cuts = [0]
    for k in range(1, count):
        expected = top + k * pitch
        lo = max(cuts[-1] + 1, round(expected - 0.35 * pitch))
        hi = min(len(profile) - 1, round(expected + 0.35 * pitch))
        if lo > hi:
            cuts.append(min(len(profile) - 1, max(cuts[-1] + 1, round(expected))))
            continue
        rows = np.arange(lo, hi + 1)
        cuts.append(int(rows[np.argmin(profile[lo : hi + 1] + np.abs(rows - expected) * 1e-3)]))
    cuts.append(len(profile))
    out = []
    for y0, y1 in itertools.pairwise(cuts):
        columns = np.flatnonzero(ink[y0:y1].any(axis=0))
        x0, x1 = (columns[0], columns[-1] + 1) if len(columns) else (0, crop.shape[1])
        out.append(crop[y0:y1, max(0, x0 - pad) : min(crop.shape[1], x1 + pad)])
    return out


def _coverage(text: str) -> tuple[int, int]:
    """(characters the recogniser cannot output, visible characters) in ``text``."""
    charset = ocr_charset()
    chars = [c for c in unicodedata.normalize("NFKC", text) if not c.isspace()]
    if charset is None:
        return 0, len(chars)
    return sum(c not in charset for c in chars), len(chars)


def _block(rgb: Pixels, spec: TextSpec, p: _Params, density: int) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "role": spec.role,
        "script": spec.script,
        "expected": spec.text,
        "box": list(spec.box.as_tuple()),
    }
    unknown, total = _coverage(spec.text)
    if spec.script in p.unsupported or (total and 1 - unknown / total < p.coverage):
        why = (
            f"has no {spec.script} recogniser"
            if spec.script in p.unsupported
            else f"cannot output {unknown} of its {total} characters"
        )
        reason = f"the bundled OCR model ({OCR_MODEL}) {why}"
        return {**entry, "verdict": "skip", "reason": reason}
    crops = [viewed(c, p.view_scale / density, p.contrast_loss) for c in _lines(rgb, spec)]
    reads = recognize(crops)
    joiner = "" if spec.script in _UNSPACED else " "
    read = joiner.join(r.text for r in reads).strip()
    sim = round(similarity(spec.text, read, spec.script), 4)
    threshold = p.threshold(spec.script)
    verdict = "fail" if sim < threshold else "warn" if sim < threshold + p.warn_margin else "pass"
    entry.update(read=read, similarity=sim, threshold=threshold, lines=len(crops))
    entry["verdict"] = verdict
    if verdict != "pass":
        entry["reason"] = f"reads {read!r} (similarity {sim:.2f}, needs {threshold})"
    return entry


# --- unintended text ----------------------------------------------------------------------


def _overlap(a: Box, b: Box) -> float:
    """Share of ``a``'s area that lies inside ``b``."""
    w = min(a.x1, b.x1) - max(a.x0, b.x0)
    h = min(a.y1, b.y1) - max(a.y0, b.y0)
    return max(0, w) * max(0, h) / max(1, a.width * a.height)


def _masked(rgb: Pixels, boxes: Sequence[Box]) -> Pixels:
    """``rgb`` with each box filled by the median colour of a thin ring around it."""
    out = rgb.copy()
    height, width = rgb.shape[:2]
    for box in boxes:
        inner = _clip(box, width, height)
        ring = _clip(_pad(inner, 4), width, height)
        if inner.width <= 0 or inner.height <= 0:
            continue
        patch = rgb[ring.y0 : ring.y1, ring.x0 : ring.x1].reshape(-1, 3)
        out[inner.y0 : inner.y1, inner.x0 : inner.x1] = np.median(patch, axis=0)
    return out


def _unintended(
    rgb: Pixels, context: CheckContext, p: _Params
) -> tuple[str, list[dict[str, Any]], int]:
    """(source, unintended text found, text ignored in the product area)."""
    cv2 = opencv()
    height, width = rgb.shape[:2]
    known: list[Box] = []
    if context.scene is not None:
        source, src = "scene", np.asarray(context.scene.convert("RGB"))
    else:
        for spec in context.texts:
            known.append(_pad(spec.box, max(3, spec.font_size // 3)))
            if spec.plate is not None:
                known.append(spec.plate)
        if context.logo_box is not None:
            known.append(_pad(context.logo_box, 4))
        source, src = "creative", _masked(rgb, known)
    sy, sx = height / src.shape[0], width / src.shape[1]
    f = min(1.0, p.max_side / max(src.shape[:2]))
    small = src
    if f < 1.0:
        size = (max(1, round(src.shape[1] * f)), max(1, round(src.shape[0] * f)))
        small = cv2.resize(src, size, interpolation=cv2.INTER_AREA)
    ignored = 0
    candidates: list[tuple[Box, Box, float]] = []
    for hit in find_text(small):
        if hit.score < p.min_score:
            continue
        x0, y0, x1, y1 = (v / f for v in hit.box)
        in_src = _clip(Box(int(x0), int(y0), int(np.ceil(x1)), int(np.ceil(y1))), *src.shape[1::-1])
        box = Box(
            round(in_src.x0 * sx),
            round(in_src.y0 * sy),
            round(in_src.x1 * sx),
            round(in_src.y1 * sy),
        )
        if p.ignore_product and context.product_box and _overlap(box, context.product_box) >= 0.5:
            ignored += 1
        elif not any(_overlap(box, k) >= 0.3 for k in known):
            candidates.append((box, in_src, hit.score))
    crops = [src[b.y0 : b.y1, b.x0 : b.x1] for _, b, _ in candidates]
    found = []
    for (box, _, score), read in zip(candidates, recognize(crops), strict=True):
        if sum(c.isalnum() for c in read.text) >= p.min_chars:
            found.append(
                {"text": read.text, "score": round(score, 4), "read_score": round(read.score, 4)}
                | {"box": list(box.as_tuple())}
            )
    return source, found, ignored


# --- the check ----------------------------------------------------------------------------


def _skipped(blocks: Sequence[Mapping[str, Any]]) -> str:
    """'headline, cta not read back: <why>', one clause per distinct reason."""
    roles: dict[str, list[str]] = {}
    for block in blocks:
        roles.setdefault(str(block["reason"]), []).append(str(block["role"]))
    return "; ".join(f"{', '.join(r)} not read back: {why}" for why, r in roles.items())


class LegibilityCheck:
    """Fails copy a viewer cannot read back as written, and unintended text in the scene."""

    name = "legibility"

    def run(self, image: Image.Image, context: CheckContext) -> CheckResult:
        p = _Params.of(context.params)
        rgb = np.asarray(image if image.mode == "RGB" else image.convert("RGB"))
        density = context.channel.density
        blocks = [_block(rgb, spec, p, density) for spec in context.texts]
        evidence: dict[str, Any] = {"blocks": blocks}
        issues = [f"{b['role']} {b['reason']}" for b in blocks if b["verdict"] == "fail"]
        warnings = [f"{b['role']} {b['reason']}" for b in blocks if b["verdict"] == "warn"]
        sims = [float(b["similarity"]) for b in blocks if "similarity" in b]
        if p.unintended:
            source, found, ignored = _unintended(rgb, context, p)
            evidence["unintended"] = {"source": source, "found": found, "ignored": ignored}
            if found:
                first = found[0]
                more = f" and {len(found) - 1} more" if len(found) > 1 else ""
                issues.append(
                    f"unintended text {first['text']!r} in the {source} at {first['box']}{more}"
                )
            sims.append(1.0 - max((float(x["score"]) for x in found), default=0.0))
        score = round(min(sims), 4) if sims else None
        verdict: Verdict = "fail" if issues else "warn" if warnings else "pass"
        reason = "; ".join(issues or warnings) or None
        unread = [b for b in blocks if b["verdict"] == "skip"]
        if verdict == "pass" and unread:
            # Not read back is not legible: a person reads it (fail closed, but not a
            # rejection, since the copy itself may be fine).
            verdict, reason = "warn", _skipped(unread) + "; a person checks it"
            score = None if len(unread) == len(blocks) else score
        return CheckResult(self.name, verdict, score, reason, evidence)
