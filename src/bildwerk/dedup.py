"""Perceptual near-duplicate detection: two 64-bit hashes per image, a pairwise rule, and
clusters that keep the best-scored member.

pHash (DCT of the 32x32 grey image) sees layout and tone but is blind to colour, so the
same scene with the product in red and in blue looks identical to it. A second hash
records the colour make-up (dark and neutral area, six hue bins), each bin stored as a
thermometer code so that the Hamming distance between two colour hashes is the L1
distance between their quantised histograms (imagehash's ``colorhash`` stores fractions
as binary numbers, where 7 and 8 differ in four bits). A pair is a near-duplicate when
both distances are small; the defaults come from ``benchmarks/dedup_eval.py``.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from types import ModuleType
from typing import Any

import numpy as np
from PIL import Image

from bildwerk.errors import MissingExtraError
from bildwerk.hashindex import HashIndex

# Chosen with benchmarks/dedup_eval.py (it prints the whole grid): on its synthetic
# product scenes, recall 0.97 over JPEG/resize/crop/brightness copies while merging about
# 1-2 % of the distinct variants of one template. pHash gives out on 10 % crops.
PHASH_MAX = 14
COLOUR_MAX = 2

_COLOUR_SIDE = 64  # pixels per side the colour histogram is taken at
_LEVELS = 8  # thermometer bits per histogram bin; 8 bins x 8 bits = 64
_VIVID_FLOOR = 0.01  # mean colourfulness below which an image counts as mostly grey


@dataclass(frozen=True)
class ImageHashes:
    """The two 64-bit hashes of one image."""

    phash: int
    colour: int


@dataclass(frozen=True)
class Cluster:
    """Connected near-duplicates. ``members`` are ordered best first; ``keep`` is the best
    (highest score, then smallest id) and the rest are ``duplicates`` of it."""

    keep: str
    members: tuple[str, ...]

    @property
    def duplicates(self) -> tuple[str, ...]:
        return self.members[1:]


@cache
def _imagehash() -> ModuleType:
    try:
        return importlib.import_module("imagehash")
    except ImportError as exc:
        raise MissingExtraError("imagehash", "qa", "Duplicate detection") from exc


def phash64(image: Image.Image) -> int:
    """imagehash's 64-bit pHash as an int, first bit most significant."""
    bits: Any = _imagehash().phash(image).hash  # an 8x8 bool array; imagehash is untyped
    value = 0
    for bit in np.asarray(bits, dtype=bool).reshape(-1).tolist():
        value = (value << 1) | int(bit)
    return value


def colour_hash(image: Image.Image) -> int:
    """64-bit colour hash of 8 bins, each a thermometer code of ``round(8 * sqrt(share))``.

    Bins: dark and neutral (share of the area), then red, yellow, green, cyan, blue and
    magenta as shares of the colourfulness ``(saturation * value)**2``, so a vivid product
    on a large muted backdrop still weighs enough to register when it changes colour.
    Membership is soft (a pixel near a hue or saturation boundary counts partly in both
    bins), so compression or brightness shifts move the shares a little instead of
    flipping whole bins. Nearly grey images keep small hue shares (the colourfulness is
    normalised by at least a floor) so noise in them cannot add up to a colour.
    """
    small = image.convert("RGB").resize((_COLOUR_SIDE, _COLOUR_SIDE), Image.Resampling.BOX)
    hsv = np.asarray(small.convert("HSV"), dtype=np.float64) / 255.0
    hue, sat, val = hsv[..., 0].ravel(), hsv[..., 1].ravel(), hsv[..., 2].ravel()
    dark = np.clip((0.25 - val) / 0.13, 0.0, 1.0)
    neutral = (1.0 - dark) * np.clip((0.3 - sat) / 0.2, 0.0, 1.0)
    vivid = (sat * val) ** 2
    position = hue * 6.0  # hue bin centres at 0..5: red, yellow, green, cyan, blue, magenta
    low = np.floor(position)
    upper = position - low
    low_bin = low.astype(np.int64) % 6
    hues = np.bincount(low_bin, vivid * (1.0 - upper), minlength=6).astype(np.float64)
    hues += np.bincount((low_bin + 1) % 6, vivid * upper, minlength=6)
    hues /= max(float(vivid.sum()), _VIVID_FLOOR * vivid.size)
    shares = np.concatenate([[dark.mean(), neutral.mean()], hues])
    levels = np.rint(_LEVELS * np.sqrt(shares)).astype(np.int64)
    code = 0
    for i, level in enumerate(levels.tolist()):
        code |= ((1 << level) - 1) << (_LEVELS * i)
    return code


def hash_image(image: Image.Image) -> ImageHashes:
    """Both hashes of an image; deterministic for the same pixels."""
    return ImageHashes(phash=phash64(image), colour=colour_hash(image))


def distance(a: ImageHashes, b: ImageHashes) -> tuple[int, int]:
    """``(phash_hamming, colour_hamming)``."""
    return (a.phash ^ b.phash).bit_count(), (a.colour ^ b.colour).bit_count()


def is_near_duplicate(
    a: ImageHashes, b: ImageHashes, *, phash_max: int = PHASH_MAX, colour_max: int = COLOUR_MAX
) -> bool:
    """Same picture within the tolerance of re-encoding, resizing, light crops and
    brightness changes: both distances at most their thresholds."""
    p, c = distance(a, b)
    return p <= phash_max and c <= colour_max


def cluster(
    items: Sequence[tuple[str, ImageHashes, float]],
    *,
    phash_max: int = PHASH_MAX,
    colour_max: int = COLOUR_MAX,
) -> list[Cluster]:
    """Connected components of the near-duplicate relation over ``(id, hashes, score)``.

    Every item lands in exactly one cluster (singletons included). A NaN score ranks last.
    Output does not depend on input order: clusters come best ``keep`` first (score
    descending, then id).
    """
    ids = [item[0] for item in items]
    if len(set(ids)) != len(ids):
        raise ValueError("cluster() needs unique ids")
    index = HashIndex(phash_max)
    index.add_many(ids, [hashes.phash for _, hashes, _ in items])
    position = {id_: i for i, id_ in enumerate(ids)}
    parent = list(range(len(items)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, (_, hashes, _) in enumerate(items):
        for other, _ in index.query(hashes.phash):
            j = position[other]
            if j > i and distance(hashes, items[j][1])[1] <= colour_max:
                parent[root(j)] = root(i)
    groups: dict[int, list[int]] = {}
    for i in range(len(items)):
        groups.setdefault(root(i), []).append(i)

    def order(i: int) -> tuple[float, str]:
        score = items[i][2]
        return (math.inf if math.isnan(score) else -score, ids[i])

    ranked = [sorted(members, key=order) for members in groups.values()]
    ranked.sort(key=lambda members: order(members[0]))
    return [Cluster(keep=ids[m[0]], members=tuple(ids[i] for i in m)) for m in ranked]


@dataclass(frozen=True)
class OperatingPoint:
    """Pair classification at one threshold pair: duplicates found (recall), share of
    flagged pairs that are duplicates (precision), distinct pairs flagged (false-positive
    rate)."""

    phash_max: int
    colour_max: int
    recall: float
    precision: float
    false_positive_rate: float


def evaluate(
    duplicates: Sequence[tuple[ImageHashes, ImageHashes]],
    distinct: Sequence[tuple[ImageHashes, ImageHashes]],
    phash_grid: Iterable[int],
    colour_grid: Iterable[int],
) -> list[OperatingPoint]:
    """Score ``is_near_duplicate`` on labelled pairs at every threshold pair of the grid."""
    dup = np.array([distance(a, b) for a, b in duplicates], dtype=np.int64).reshape(-1, 2)
    neg = np.array([distance(a, b) for a, b in distinct], dtype=np.int64).reshape(-1, 2)
    colours = list(colour_grid)
    points = []
    for p in phash_grid:
        for c in colours:
            found = int(np.sum((dup[:, 0] <= p) & (dup[:, 1] <= c)))
            wrong = int(np.sum((neg[:, 0] <= p) & (neg[:, 1] <= c)))
            flagged = found + wrong
            points.append(
                OperatingPoint(
                    phash_max=p,
                    colour_max=c,
                    recall=found / max(len(dup), 1),
                    precision=found / flagged if flagged else 1.0,
                    false_positive_rate=wrong / max(len(neg), 1),
                )
            )
    return points
