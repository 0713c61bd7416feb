"""Choosing a rendition's encoder quality: to a perceptual target, under a byte ceiling.

Two bounded, deterministic searches over the integer quality scale:

* :func:`search_ssim` finds the lowest quality whose decoded luma SSIM reaches a delivery
  profile's target. ``ln(1 - SSIM)`` is close to linear in quality over a few steps for
  all three codecs, so after the first encode (at a fixed slope) each guess is a secant:
  between the closest miss and hit once the target is bracketed, else through the two
  measurements nearest it (at most :data:`_MAX_STEP` away), always strictly inside the
  bracket and away from its ends while it is wide (codec curves bend: libwebp's above 80).
  It stops when the model puts the threshold at a hit (no encode one step below to confirm
  it) or the bracket closes: typically 2-4 encodes, never more than ``max_encodes``.
* :func:`fit_budget` lowers the quality until the file fits a byte budget, guided by a
  per-format model of bytes against quality (at most ``max_encodes`` guided tries, then
  ``min_quality``). It runs only when the quality chosen first breaks the budget, so the
  budget stays a ceiling on the perceptual target, never a target itself.

Both only read measured sizes and SSIMs, so the same frame gives the same choice.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

# Model of output size against quality: ln(bytes) at qualities 5, 10, ..., 100, relative
# to the default, averaged over six varied synthetic creatives (smooth to heavy grain,
# 320 to 1920 px). Per image, ln(bytes) ~ a + b * curve(q): one measured size fixes a,
# two fix b as well. The curves carry what a constant slope misses: libwebp's step above
# 75, flattening at low q.
_CURVE_STEP = 5
# fmt: off
_CURVES: dict[str, tuple[float, ...]] = {
    "avif": (-2.06, -1.85, -1.73, -1.53, -1.41, -1.20, -1.01, -0.81, -0.58, -0.36,
             -0.18, 0.00, 0.11, 0.34, 0.52, 0.75, 0.93, 1.28, 1.67, 2.26),
    "webp": (-1.58, -1.41, -1.24, -1.11, -0.99, -0.89, -0.79, -0.70, -0.62, -0.55,
             -0.48, -0.41, -0.34, -0.28, -0.21, 0.00, 0.28, 0.70, 1.26, 1.57),
    "jpeg": (-2.07, -1.74, -1.48, -1.27, -1.11, -0.98, -0.87, -0.78, -0.69, -0.62,
             -0.55, -0.47, -0.37, -0.27, -0.16, 0.00, 0.19, 0.79, 1.30, 2.39),
}
# fmt: on
# The last guided guess aims this much lower again: missing it means min_quality.
_LAST_GUESS_MARGIN = 0.95
# d ln(1 - SSIM) / d quality before two measurements give a secant: about -0.015 (AVIF,
# 1920 px) to -0.04 (WebP, 480 px) on the benchmark creatives.
_SSIM_SLOPE = -0.03
_SLOPE_RANGE = (-0.3, -0.003)
# Extrapolation beyond the measured side moves at most this many quality steps.
_MAX_STEP = 20
_OVERSTEP = 2
# Inside a bracket wider than 4 steps, guesses keep this fraction of it from either end.
_SAFEGUARD = 0.2


@dataclass(frozen=True)
class Trial:
    """One encode of a search: its quality, bytes and (SSIM search only) luma SSIM."""

    quality: int
    data: bytes
    ssim: float = 1.0


def search_ssim(
    run: Callable[[int], Trial],
    target: float,
    start: int,
    *,
    lowest: int,
    highest: int,
    max_encodes: int,
    budget: int | None = None,
) -> tuple[Trial, dict[int, Trial]]:
    """Lowest quality in ``lowest..highest`` whose SSIM reaches ``target``, as far as
    ``max_encodes`` encodes can tell; when none does, the highest SSIM tried. Returns it
    and every trial (the budget search reuses them).

    A miss already over ``budget`` ends the search: any quality that could reach the
    target is larger still, and the budget search takes over from there."""
    trials: dict[int, Trial] = {}
    quality: int | None = max(lowest, min(highest, start))
    while quality is not None:
        trials[quality] = run(quality)
        last = trials[quality]
        if budget is not None and last.ssim < target and len(last.data) > budget:
            break
        quality = _next_ssim_quality(trials, target, lowest, highest, max_encodes)
    hits = [t for t in trials.values() if t.ssim >= target]
    if hits:
        return min(hits, key=lambda t: t.quality), trials
    return max(trials.values(), key=lambda t: (t.ssim, -t.quality)), trials


def _next_ssim_quality(
    trials: dict[int, Trial], target: float, lowest: int, highest: int, max_encodes: int
) -> int | None:
    hit = min((q for q, t in trials.items() if t.ssim >= target), default=None)
    miss = max(
        (q for q, t in trials.items() if t.ssim < target and (hit is None or q < hit)),
        default=None,
    )
    if len(trials) >= max_encodes:
        return None
    floor = lowest if miss is None else miss + 1  # candidates lie in floor..ceiling
    ceiling = highest if hit is None else hit - 1
    if floor > ceiling:
        return None
    if hit is not None and miss is not None:
        guess = _crossing(trials[miss], trials[hit], target)  # inside the bracket
        if guess >= hit:
            return None  # the model puts the threshold at the hit: no encode to confirm it
        if hit - miss > 4:
            keep = _SAFEGUARD * (hit - miss)
            guess = max(math.ceil(miss + keep), min(math.floor(hit - keep), guess))
    else:
        side = [t for t in trials.values() if (t.ssim >= target) == (hit is not None)]
        guess = _extrapolate(side, target)
        if hit is not None and guess >= hit:
            return None
        # two steps past the model's guess, to bracket the target sooner than creeping up
        # to it from one side (the curves bend towards the far side)
        guess += _OVERSTEP if hit is None else -_OVERSTEP
        anchor = hit if hit is not None else miss
        assert anchor is not None
        guess = max(anchor - _MAX_STEP, min(anchor + _MAX_STEP, guess))
    return max(floor, min(ceiling, guess))


def _crossing(a: Trial, b: Trial, target: float, slope: float | None = None) -> int:
    """Quality where ln(1 - SSIM) crosses ln(1 - target) on the line through ``a`` and
    ``b`` (or through ``a`` at ``slope``); rounded up, better a hit than a miss."""
    if slope is None:
        measured = (_u(b.ssim) - _u(a.ssim)) / (b.quality - a.quality)
        slope = max(_SLOPE_RANGE[0], min(_SLOPE_RANGE[1], measured))
    return math.ceil(a.quality + (_u(target) - _u(a.ssim)) / slope - 1e-9)


def _extrapolate(side: list[Trial], target: float) -> int:
    """Guess from trials all on one side of the target: a secant through the two nearest
    it, or the default slope through the nearest alone."""
    near = sorted(side, key=lambda t: (abs(_u(t.ssim) - _u(target)), t.quality))
    if len(near) > 1:
        return _crossing(near[0], near[1], target)
    return _crossing(near[0], near[0], target, _SSIM_SLOPE)


def _u(ssim: float) -> float:
    return math.log(max(1e-6, 1.0 - ssim))


def fit_budget(
    run: Callable[[int], bytes],
    fmt: str,
    budget: int,
    *,
    min_quality: int,
    max_encodes: int,
    margin: float,
    tried: dict[int, bytes],
) -> tuple[int, bytes]:
    """Highest quality below the lowest one in ``tried`` (all over ``budget``) found to
    fit; ``min_quality`` (maybe still over budget) when none of the guided encodes did.
    The encode that broke the budget counts towards ``max_encodes``, other ``tried`` ones
    (an SSIM search's misses below it) inform the model without counting."""
    trials = dict(tried)
    extra = len(tried) - 1
    quality = _next_budget_quality(trials, budget, fmt, min_quality, max_encodes + extra, margin)
    while quality is not None:
        trials[quality] = run(quality)
        quality = _next_budget_quality(
            trials, budget, fmt, min_quality, max_encodes + extra, margin
        )
    fitting = [q for q, data in trials.items() if len(data) <= budget]
    best = max(fitting) if fitting else min(trials)
    return best, trials[best]


def _next_budget_quality(
    trials: dict[int, bytes],
    budget: int,
    fmt: str,
    min_quality: int,
    max_encodes: int,
    margin: float,
) -> int | None:
    """Next quality to encode, or None when done.

    Done when the first encode fits (the search never goes above it), when no integer
    quality is left between the best fit and the lowest failure, or when the model says
    no higher quality would fit. Up to ``max_encodes`` guided encodes; if none fits, one
    more at ``min_quality``.
    """
    sizes = {q: len(d) for q, d in trials.items()}
    over = min((q for q, n in sizes.items() if n > budget), default=None)
    if over is None:
        return None
    fit_q = max((q for q, n in sizes.items() if n <= budget), default=None)
    if fit_q is None and over <= min_quality:
        return None
    if fit_q is None and len(sizes) >= max_encodes:
        return min_quality
    if fit_q is not None and (over - fit_q <= 1 or len(sizes) >= max_encodes):
        return None
    target = budget * margin
    if fit_q is None and len(sizes) == max_encodes - 1:
        target *= _LAST_GUESS_MARGIN  # better a little low than falling to the floor
    guess = math.floor(predict(fmt, _anchors(sizes, over, fit_q), target))
    if fit_q is not None:
        return guess if fit_q < guess < over else None
    return max(min_quality, min(over - 1, guess))


def _anchors(sizes: dict[int, int], over: int, fit_q: int | None) -> list[tuple[int, int]]:
    """Measurements nearest the budget: the lowest failure with the best fit, else with
    the next failure above it, else alone."""
    above = sorted(q for q in sizes if q > over)
    partner = fit_q if fit_q is not None else (above[0] if above else None)
    points = [(over, sizes[over])]
    return points if partner is None else [*points, (partner, sizes[partner])]


def predict(fmt: str, points: list[tuple[int, int]], target: float) -> float:
    """Quality at which the size model through ``points`` reaches ``target`` bytes."""
    (q0, n0), b = points[0], 1.0
    if len(points) == 2:
        (q1, n1) = points[1]
        span = _curve(fmt, q1) - _curve(fmt, q0)
        if abs(span) > 1e-3:
            b = max(0.25, min(4.0, math.log(n1 / n0) / span))
    return _inverse_curve(fmt, _curve(fmt, q0) + math.log(target / n0) / b)


def _curve(fmt: str, quality: float) -> float:
    """Piecewise-linear model curve, extended linearly beyond its ends."""
    values = _CURVES[fmt]
    i = max(0, min(len(values) - 2, int(quality // _CURVE_STEP) - 1))
    q0 = (i + 1) * _CURVE_STEP
    return values[i] + (quality - q0) * (values[i + 1] - values[i]) / _CURVE_STEP


def _inverse_curve(fmt: str, value: float) -> float:
    """Quality at which the (strictly increasing) model curve equals ``value``."""
    values = _CURVES[fmt]
    i = 0
    while i < len(values) - 2 and values[i + 1] < value:
        i += 1
    q0 = (i + 1) * _CURVE_STEP
    return q0 + (value - values[i]) * _CURVE_STEP / (values[i + 1] - values[i])
