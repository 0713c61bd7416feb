"""Technical image quality: resolution, sharpness, noise, clipping, banding, naturalness.

Each sub-measure gets its own verdict from thresholds in params; the check's verdict is
the worst of them and its score the lowest sub-score. All are measured outside the brand
overlay (text, plates, logo), which is crisp and flat by construction and would otherwise
hide a soft or noisy scene. Measures that depend on scale (sharpness, naturalness) run on
a grey copy resampled to a fixed area, so a 600 px ad and a 1920 px hero compare; those
that live at the pixel level (noise, clipping, banding) read the full-resolution luma.

Params (``qa.checks.technical.params``), defaults in the module constants below:

- ``warn_sharpness`` (500) / ``min_sharpness`` (200): variance of the Laplacian in the
  16th-sharpest 16 px tile of the 512²-area grey copy. Tiles, not the whole frame,
  because a packshot is mostly smooth backdrop: it is soft only if even its sharpest
  parts are. Studio creatives measure 1200-3400; a Gaussian blur of σ = 2 master px
  (1080 wide) brings them to 350-600, σ = 3 to 150-300.
- ``warn_noise`` (4) / ``max_noise`` (8): noise σ in 8-bit levels, from the median
  absolute deviation of the finest diagonal (Haar HH) wavelet band (Donoho's
  estimator); the studio backend's deliberate grain measures ~1-1.5.
- ``warn_clipped`` (0.02) / ``max_clipped`` (0.10): share of pixels at luma ≥ 254 or
  ≤ 1. A backdrop that is deliberately pure white (or black) at most of the frame's
  border is a design choice, not clipping, so that polarity is not counted then.
- ``warn_banding`` (0.25) / ``max_banding`` (0.5): share of sampled pixels lying in
  staircase bands (see :func:`banding`); above ``max_banding`` it fails only for
  posterised steps (median ≥ 2 levels): 1-level steps over long bands only warn.
- ``warn_naturalness`` (0.35) / ``min_naturalness`` (0): the BRISQUE-style score of
  :func:`naturalness`; it never fails by default because the score is an untrained
  heuristic.
- ``min_width`` / ``min_height``: default to the channel's master size (the largest
  rendition must not be upscaled).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from bildwerk.checks.base import CheckContext, CheckResult, Verdict
from bildwerk.geometry import Box

WARN_SHARPNESS, MIN_SHARPNESS = 500.0, 200.0
WARN_NOISE, MAX_NOISE = 4.0, 8.0
WARN_CLIPPED, MAX_CLIPPED = 0.02, 0.10
WARN_BANDING, MAX_BANDING = 0.25, 0.5
WARN_NATURALNESS, MIN_NATURALNESS = 0.35, 0.0
DEFAULTS: Mapping[str, float] = {
    "warn_sharpness": WARN_SHARPNESS,
    "min_sharpness": MIN_SHARPNESS,
    "warn_noise": WARN_NOISE,
    "max_noise": MAX_NOISE,
    "warn_clipped": WARN_CLIPPED,
    "max_clipped": MAX_CLIPPED,
    "warn_banding": WARN_BANDING,
    "max_banding": MAX_BANDING,
    "warn_naturalness": WARN_NATURALNESS,
    "min_naturalness": MIN_NATURALNESS,
}

WORK_AREA = 512 * 512  # pixels of the grey copy for scale-dependent measures
TILE = 16  # tiles on that copy, for sharpness and naturalness
SHARP_RANK = 16  # sharpness is that of the 16th sharpest tile: ~1.6 % of the frame
BACKDROP_BORDER = 0.6  # this share of the border clipped = an intentional white/black backdrop
LINE_STEP = 4  # banding reads every 4th row and column at full resolution
MIN_BAND = 6  # a flat run at least this long (px) between two steps is a band
MAX_STEP = 8  # larger jumps are edges, not quantisation steps

Floats = NDArray[np.float64]
Mask = NDArray[np.bool_]
_ORDER: dict[str, int] = {"pass": 0, "warn": 1, "fail": 2}


@dataclass
class Measure:
    """One sub-measure: its value, verdict, score (0..1) and reason."""

    value: float
    verdict: Verdict = "pass"
    score: float = 1.0
    reason: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "value": round(self.value, 4),
            "verdict": self.verdict,
            "score": round(self.score, 3),
            **self.extra,
        }


def _grade(
    value: float, params: Mapping[str, Any], key: str, higher_is_better: bool, what: str
) -> Measure:
    """Verdict from ``warn_<key>`` and ``min_<key>``/``max_<key>``, and a score that falls
    linearly from 1 at the warn line to 0 at the fail line."""
    limit = f"{'min' if higher_is_better else 'max'}_{key}"
    warn = float(params.get(f"warn_{key}", DEFAULTS[f"warn_{key}"]))
    fail = float(params.get(limit, DEFAULTS[limit]))
    sign = -1.0 if higher_is_better else 1.0  # work as "higher is worse"
    past, span = sign * (value - warn), sign * (fail - warn)
    score = 1.0 if past <= 0 else max(0.0, 1.0 - past / span) if span > 0 else 0.0
    side = "below" if higher_is_better else "above"
    if sign * (value - fail) > 0:
        return Measure(value, "fail", score, f"{what} {value:.3g} {side} {fail:.3g}")
    if past > 0:
        return Measure(value, "warn", score, f"{what} {value:.3g} {side} {warn:.3g}")
    return Measure(value, "pass", score)


# --- shared image preparation -------------------------------------------------------------


def overlay_mask(context: CheckContext, shape: tuple[int, int], scale: float) -> Mask:
    """True where the brand overlay (text, plates, logo) covers a ``shape`` image that is
    ``scale`` × the master."""
    mask = np.zeros(shape, dtype=bool)
    boxes: list[Box] = [t.box for t in context.texts]
    boxes += [t.plate for t in context.texts if t.plate is not None]
    boxes += [b for b in (context.logo_box,) if b is not None]
    for b in boxes:
        y0, y1 = int(b.y0 * scale), math.ceil(b.y1 * scale)
        x0, x1 = int(b.x0 * scale), math.ceil(b.x1 * scale)
        mask[max(0, y0) : max(0, y1), max(0, x0) : max(0, x1)] = True
    return mask


def work_copy(grey: Image.Image) -> tuple[Floats, float]:
    """The grey image resampled to WORK_AREA pixels (box filter), and the scale used."""
    scale = math.sqrt(WORK_AREA / (grey.width * grey.height))
    size = (max(8, round(grey.width * scale)), max(8, round(grey.height * scale)))
    small = grey.resize(size, Image.Resampling.BOX)
    return np.asarray(small, dtype=np.float64), size[0] / grey.width


# --- sharpness --------------------------------------------------------------------------------


def laplacian(img: Floats) -> Floats:
    out: Floats = (
        img[:-2, 1:-1] + img[2:, 1:-1] + img[1:-1, :-2] + img[1:-1, 2:] - 4 * img[1:-1, 1:-1]
    )
    return out


def sharpness(work: Floats, covered: Mask) -> tuple[float, float]:
    """(Laplacian variance of the SHARP_RANK-th sharpest tile outside the overlay, global).

    A fixed rank, not a percentile: a small product on a large soft backdrop is sharp
    when the product is, whatever the share of backdrop.
    """
    lap = laplacian(work)
    cov = covered[1:-1, 1:-1]
    th, tw = lap.shape[0] // TILE, lap.shape[1] // TILE
    tiles = lap[: th * TILE, : tw * TILE].reshape(th, TILE, tw, TILE)
    var = tiles.var(axis=(1, 3))
    free = ~cov[: th * TILE, : tw * TILE].reshape(th, TILE, tw, TILE).any(axis=(1, 3))
    chosen = np.sort(var[free] if free.any() else var.ravel())[::-1]
    global_var = float(lap[~cov].var()) if (~cov).any() else float(lap.var())
    return float(chosen[min(SHARP_RANK, len(chosen)) - 1]), global_var


# --- noise ------------------------------------------------------------------------------------


def noise_sigma(luma: NDArray[np.uint8]) -> float:
    """Noise σ (8-bit levels): median |HH| / 0.6745 of the orthonormal Haar transform.

    The finest diagonal band holds almost no image content, so its robust spread is the
    noise; edges are few and the median ignores them. ``2·|HH|`` is an integer, so the
    median is interpolated within its bin (grouped median) rather than jumping in
    0.74-level steps at low noise.
    """
    h, w = (luma.shape[0] // 2) * 2, (luma.shape[1] // 2) * 2
    x = luma[:h, :w].astype(np.int16)
    twice = np.abs(x[0::2, 0::2] - x[0::2, 1::2] - x[1::2, 0::2] + x[1::2, 1::2])
    counts = np.bincount(twice.ravel())
    below = np.cumsum(counts) - counts
    half = twice.size / 2
    k = int(np.searchsorted(below + counts, half, side="right"))
    k = min(k, len(counts) - 1)
    median_twice = max(0.0, k - 0.5 + float(half - below[k]) / max(1, int(counts[k])))
    return median_twice / 2 / 0.6745


# --- clipping ---------------------------------------------------------------------------------


def clipping(luma: NDArray[np.uint8], covered: Mask) -> tuple[float, dict[str, Any]]:
    """Share of clipped pixels outside the overlay, not counting an intentional pure
    white/black backdrop (most of the border clipped at that end)."""
    border = np.concatenate([luma[0], luma[-1], luma[:, 0], luma[:, -1]])
    high, low = luma >= 254, luma <= 1
    white_bg = bool((border >= 254).mean() >= BACKDROP_BORDER)
    black_bg = bool((border <= 1).mean() >= BACKDROP_BORDER)
    counted = ~covered
    n = max(1, int(counted.sum()))
    highlights = 0.0 if white_bg else float((high & counted).sum() / n)
    shadows = 0.0 if black_bg else float((low & counted).sum() / n)
    extra = {
        "highlights": round(highlights, 4),
        "shadows": round(shadows, 4),
        "white_backdrop": white_bg,
        "black_backdrop": black_bg,
    }
    return highlights + shadows, extra


# --- banding ----------------------------------------------------------------------------------


def _bands(lines: NDArray[np.int16]) -> tuple[int, int, list[int]]:
    """Staircase bands along each row of ``lines``: (band px, total px, step heights).

    A band is a run of identical values, at least MIN_BAND long, entered and left by
    steps of the same sign of 1..MAX_STEP levels: the signature of a smooth gradient
    quantised too coarsely. Dither or grain breaks the runs; edges are larger jumps;
    a flat backdrop has no steps; texture has no runs.
    """
    n, w = lines.shape
    d = np.diff(lines.astype(np.int32), axis=1)
    # One sentinel column (an "edge") between rows so runs never wrap across lines.
    pad = np.full((n, 1), MAX_STEP + 1, dtype=np.int32)
    flat = np.concatenate([pad, d, pad], axis=1).ravel()
    zero = flat == 0
    edges = np.diff(zero.astype(np.int8))
    starts = np.flatnonzero(edges == 1) + 1
    ends = np.flatnonzero(edges == -1) + 1
    length = ends - starts
    before, after = flat[starts - 1], flat[ends]
    small = (np.abs(before) <= MAX_STEP) & (np.abs(after) <= MAX_STEP)
    band = (length + 1 >= MIN_BAND) & small & (np.sign(before) == np.sign(after))
    steps = np.abs(before[band])
    return int((length[band] + 1).sum()), n * w, steps.tolist()


def banding(luma: NDArray[np.uint8]) -> tuple[float, float]:
    """(share of sampled pixels in staircase bands, median step height in levels).

    Rows and columns are read separately and the worse direction counts: a vertical
    gradient bands along columns only, and its flat rows must not dilute that.
    """
    rows = luma[::LINE_STEP].astype(np.int16)
    cols = luma[:, ::LINE_STEP].T.astype(np.int16)
    band_r, total_r, steps_r = _bands(rows)
    band_c, total_c, steps_c = _bands(cols)
    steps = steps_r + steps_c
    share = max(band_r / max(1, total_r), band_c / max(1, total_c))
    return share, float(np.median(steps)) if steps else 0.0


# --- BRISQUE-style naturalness ----------------------------------------------------------------

_KERNEL = np.exp(-0.5 * (np.arange(-3, 4) / (7 / 6)) ** 2).astype(np.float32)
_KERNEL /= _KERNEL.sum()

F32 = NDArray[np.float32]


def _blur(img: F32) -> F32:
    """7-tap Gaussian (σ = 7/6, as BRISQUE), separable, edges reflected; accumulates in
    place because temporaries dominate numpy's cost at this size."""
    p = np.pad(img, 3, mode="reflect")
    h, w = img.shape
    rows = np.zeros((h, w + 6), dtype=np.float32)
    for i, k in enumerate(_KERNEL):
        rows += k * p[i : i + h, :]
    out = np.zeros((h, w), dtype=np.float32)
    for i, k in enumerate(_KERNEL):
        out += k * rows[:, i : i + w]
    return out


def mscn(img: F32) -> tuple[F32, F32]:
    """Mean-subtracted contrast-normalised coefficients and the local σ map."""
    mu = _blur(img)
    sigma = np.sqrt(np.abs(_blur(img * img) - mu * mu)).astype(np.float32, copy=False)
    out: F32 = (img - mu) / (sigma + 1.0)
    return out, sigma


@cache
def _shape_tables() -> tuple[Floats, Floats]:
    """α grid and Γ(2/α)² / (Γ(1/α)Γ(3/α)), which is increasing in α (moment matching)."""
    alphas = np.arange(0.2, 10.0, 0.001)
    lg = np.array([[math.lgamma(k / a) for k in (1, 2, 3)] for a in alphas])
    rho = np.exp(2 * lg[:, 1] - lg[:, 0] - lg[:, 2])
    return alphas, rho


def _solve_alpha(ratio: float) -> float:
    alphas, rho = _shape_tables()
    i = int(np.clip(np.searchsorted(rho, ratio), 0, len(alphas) - 1))
    return float(alphas[i])


def ggd_shape(x: F32) -> tuple[float, float]:
    """Generalised Gaussian fit by moment matching: (shape α, variance)."""
    m2 = float(np.mean(x * x))
    m1 = float(np.mean(np.abs(x)))
    return _solve_alpha(m1 * m1 / max(m2, 1e-12)), m2


def aggd_fit(x: F32) -> tuple[float, float]:
    """Asymmetric GGD fit: (shape α, mean-shift η)."""
    sq = x.astype(np.float64) ** 2
    neg = x < 0
    n_left, n_right = int(neg.sum()), int((x > 0).sum())
    m2 = float(sq.mean())
    left_sq = float(sq[neg].sum())
    sl = math.sqrt(left_sq / n_left) if n_left else 1e-6
    sr = math.sqrt((m2 * x.size - left_sq) / n_right) if n_right else 1e-6
    gamma = sl / max(sr, 1e-12)
    m1 = float(np.abs(x).mean(dtype=np.float64))
    r_hat = m1 * m1 / max(m2, 1e-12)
    big_r = r_hat * (gamma**3 + 1) * (gamma + 1) / (gamma**2 + 1) ** 2
    alpha = _solve_alpha(big_r)
    g1, g2, g3 = (math.lgamma(k / alpha) for k in (1, 2, 3))
    ratio = math.exp(0.5 * (g1 - g3))
    eta = (sr - sl) * ratio * math.exp(g2 - g1)
    return alpha, eta


@dataclass(frozen=True)
class Pristine:
    """A soft range a feature keeps on undistorted images (see :func:`naturalness`)."""

    lo: float
    hi: float
    slack: float  # distance outside the range at which the feature's score reaches 0

    def score(self, v: float) -> float:
        out = max(self.lo - v, v - self.hi, 0.0)
        return max(0.0, 1.0 - out / self.slack)


PRISTINE: Mapping[str, Pristine] = {
    "mscn_alpha": Pristine(1.0, 3.6, 0.4),
    "pair_alpha": Pristine(0.35, 1.1, 0.3),
    "pair_eta": Pristine(-0.03, 0.12, 0.06),
}


def naturalness(work: Floats, covered: Mask) -> tuple[float, dict[str, float]]:
    """BRISQUE-style feature score in 0..1 (1 = statistics of an undistorted image).

    This is Mittal et al.'s *feature* extraction (MSCN coefficients, a GGD fit to them and
    asymmetric GGD fits to the products of horizontally, vertically and diagonally
    neighbouring coefficients), not BRISQUE's trained SVR, which cannot ship offline. Each
    feature is instead held against a broad range (``PRISTINE``) that undistorted photos
    (MSCN shape α ≈ 2-3) and clean studio renders (α ≈ 1.1-1.8) both keep; what falls
    outside is a distortion signature: very peaky MSCN (α < 1: blocking, posterisation,
    over-smoothing) or decorrelated neighbours (η < 0: strong noise). The score is the
    worst feature's. Only textured tiles count (local σ above a quarter of the image's
    90th percentile, as NIQE selects sharp patches): flat backdrops say nothing. Being
    uncalibrated against human ratings, it warns but does not fail by default.
    """
    coeffs, sigma = mscn(work.astype(np.float32))
    th, tw = work.shape[0] // TILE, work.shape[1] // TILE
    if th == 0 or tw == 0:
        return 1.0, {}
    crop = (slice(0, th * TILE), slice(0, tw * TILE))
    tile_sigma = sigma[crop].reshape(th, TILE, tw, TILE).mean(axis=(1, 3))
    free = ~covered[crop].reshape(th, TILE, tw, TILE).any(axis=(1, 3))
    active = (
        free & (tile_sigma >= 0.25 * np.percentile(tile_sigma[free], 90)) if free.any() else free
    )
    if not active.any():
        return 1.0, {}
    keep = np.repeat(np.repeat(active, TILE, 0), TILE, 1)
    c = np.full_like(coeffs, np.nan)
    c[crop] = np.where(keep, coeffs[crop], np.nan)
    alpha, _ = ggd_shape(c[~np.isnan(c)])
    pairs = (
        c[:, :-1] * c[:, 1:],
        c[:-1, :] * c[1:, :],
        c[:-1, :-1] * c[1:, 1:],
        c[:-1, 1:] * c[1:, :-1],
    )
    fits = [aggd_fit(p[~np.isnan(p)]) for p in pairs]
    feats = {
        "mscn_alpha": alpha,
        "pair_alpha": float(np.mean([f[0] for f in fits])),
        "pair_eta": float(np.mean([f[1] for f in fits])),
    }
    score = min(PRISTINE[k].score(v) for k, v in feats.items())
    return score, {k: round(v, 4) for k, v in feats.items()}


# --- the check --------------------------------------------------------------------------------


def _resolution(image: Image.Image, context: CheckContext) -> Measure:
    """The largest rendition is the channel's master: the image must not be smaller."""
    master_w, master_h = context.channel.master_size
    need_w = int(context.params.get("min_width", master_w))
    need_h = int(context.params.get("min_height", master_h))
    small = image.width < need_w or image.height < need_h
    return Measure(
        float(image.width),
        "fail" if small else "pass",
        min(1.0, image.width / need_w, image.height / need_h),
        f"{image.width}×{image.height} is smaller than {need_w}×{need_h}" if small else None,
        {"size": [image.width, image.height], "required": [need_w, need_h]},
    )


class TechnicalCheck:
    """Worst of resolution, sharpness, noise, clipping, banding and naturalness."""

    name = "technical"

    def run(self, image: Image.Image, context: CheckContext) -> CheckResult:
        p = context.params
        grey = image.convert("L")
        luma = np.asarray(grey)
        work, scale = work_copy(grey)
        full_mask = overlay_mask(context, luma.shape, 1.0)
        work_mask = overlay_mask(context, work.shape, scale)

        sharp, global_var = sharpness(work, work_mask)
        clipped, clip_extra = clipping(luma[::2, ::2], full_mask[::2, ::2])
        band_share, step = banding(luma)
        nat, feats = naturalness(work, work_mask)
        measures = {
            "resolution": _resolution(image, context),
            "sharpness": _grade(sharp, p, "sharpness", True, "sharpness (Laplacian variance)"),
            "noise": _grade(noise_sigma(luma), p, "noise", False, "noise σ (levels)"),
            "clipping": _grade(clipped, p, "clipped", False, "clipped share"),
            "banding": _grade(band_share, p, "banding", False, "banded share"),
            "naturalness": _grade(nat, p, "naturalness", True, "naturalness (BRISQUE-style)"),
        }
        measures["sharpness"].extra["global_variance"] = round(global_var, 2)
        measures["clipping"].extra.update(clip_extra)
        measures["banding"].extra["median_step"] = step
        if measures["banding"].verdict == "fail" and step < 2:  # visible, not posterised
            measures["banding"].verdict = "warn"
            measures["banding"].reason = f"banded share {band_share:.3g} in 1-level steps"
        measures["naturalness"].extra["features"] = feats

        worst = max(measures.values(), key=lambda m: _ORDER[m.verdict]).verdict
        reasons = [m.reason for m in measures.values() if m.verdict == worst and m.reason]
        evidence = {k: m.to_json() for k, m in measures.items()}
        score = round(min(m.score for m in measures.values()), 3)
        return CheckResult(self.name, worst, score, "; ".join(reasons) or None, evidence)
