"""Studio backend cost per 1080×1350 scene versus a bare composite.

Renders N portrait scenes with the sample serum cutout (seeds 0..N-1, so backdrops, props
and patterns vary) and, in the same run, the floor cost of any compositor: ``Image.new``
of the same size plus one alpha composite of the same, already resized product. Warm-up
renders are excluded. Target: median <= 100 ms per scene on one core.

    .venv/bin/python benchmarks/bench_studio.py [--n 30]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from PIL import Image

from bildwerk.backends.base import SceneRequest
from bildwerk.backends.studio import StudioBackend, load_cutout
from bildwerk.config.channels import PRESETS
from bildwerk.geometry import Box, plan_layout
from bildwerk.samples import draw_serum

WIDTH, HEIGHT = 1080, 1350
WARMUP = 3
TARGET_MS = 100.0
PALETTE = {
    "primary": "#1f3a5f",
    "secondary": "#9bb7d4",
    "accent": "#e07a5f",
    "text": "#1b1b1b",
    "background": "#f4f1ec",
}


def _request(seed: int, product: Path) -> SceneRequest:
    channel = PRESETS["instagram_feed"]
    layout = plan_layout(WIDTH, HEIGHT, channel.unsafe, 0.06)
    return SceneRequest(
        key=f"bench-{seed}",
        prompt="",
        negative_prompt="",
        slots={},
        seed=seed,
        width=WIDTH,
        height=HEIGHT,
        palette=PALETTE,
        layout=layout,
        product=product,
    )


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _time_studio(backend: StudioBackend, requests: list[SceneRequest]) -> list[float]:
    times = []
    for request in requests:
        start = time.perf_counter()
        backend.generate([request])
        times.append(time.perf_counter() - start)
    return times


def _time_bare(product: Image.Image, box: Box, n: int) -> list[float]:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        canvas = Image.new("RGB", (WIDTH, HEIGHT), (240, 238, 234))
        canvas.paste(product, (box.x0, box.y0), product)
        times.append(time.perf_counter() - start)
    return times


def run(n: int) -> dict[str, float]:
    """Median and p90 ms per studio scene, the bare-composite median, and their ratio."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "serum.png"
        draw_serum().save(path)
        backend = StudioBackend()
        for seed in range(WARMUP):
            backend.generate([_request(10_000 + seed, path)])
        studio = _time_studio(backend, [_request(seed, path) for seed in range(n)])
        (placed,) = backend.generate([_request(0, path)])
        assert placed.product_box is not None
        box = placed.product_box
        product = load_cutout(path).image.resize((box.width, box.height), Image.Resampling.LANCZOS)
        _time_bare(product, box, WARMUP)
        bare = _time_bare(product, box, n)
    results = {
        "studio_median_ms": statistics.median(studio) * 1000,
        "studio_p90_ms": _percentile(studio, 0.9) * 1000,
        "studio_bare_composite_ms": statistics.median(bare) * 1000,
    }
    results["studio_ratio"] = results["studio_median_ms"] / results["studio_bare_composite_ms"]
    _print(results, n)
    return results


def _print(results: dict[str, float], n: int) -> None:
    print(f"studio backend, {n} scenes of {WIDTH}x{HEIGHT} (warm-up {WARMUP} excluded)")
    print(f"  {'case':<28}{'median ms':>10}{'p90 ms':>10}")
    print(
        f"  {'studio scene':<28}{results['studio_median_ms']:>10.1f}"
        f"{results['studio_p90_ms']:>10.1f}"
    )
    print(
        f"  {'bare composite (baseline)':<28}{results['studio_bare_composite_ms']:>10.2f}{'':>10}"
    )
    verdict = "ok" if results["studio_median_ms"] <= TARGET_MS else "OVER TARGET"
    print(
        f"  studio/bare = {results['studio_ratio']:.1f}x; median target <= {TARGET_MS:.0f} ms:"
        f" {verdict}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=30, help="scenes to time")
    run(parser.parse_args().n)


if __name__ == "__main__":
    main()
