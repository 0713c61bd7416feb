"""End-to-end throughput: creatives per minute for the demo campaign, 1 vs 2 workers.

Each measurement scaffolds a fresh workspace (nothing cached) and times
``Workspace.run``; the baseline is the 1-worker run measured in the same invocation.

    .venv/bin/python benchmarks/bench_e2e.py [--repeat 1]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bildwerk import Workspace, init_workspace


def _once(workers: int) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        root = init_workspace(Path(tmp) / "bench", name="bench")
        started = time.perf_counter()
        result = Workspace(root).run(root / "campaigns" / "summer-sale.yaml", workers=workers)
        elapsed = time.perf_counter() - started
        if result.failed:
            raise SystemExit(f"benchmark run had failures: {result.errors}")
        return elapsed, result.generated


def run(repeat: int = 1, workers: tuple[int, ...] = (1, 2)) -> dict[str, float]:
    out: dict[str, float] = {}
    for n in workers:
        times, count = [], 0
        for _ in range(repeat):
            elapsed, count = _once(n)
            times.append(elapsed)
        med = statistics.median(times)
        out[f"e2e_seconds_w{n}"] = med
        out[f"e2e_creatives_per_min_w{n}"] = count / med * 60
        out["e2e_creatives"] = count
    if len(workers) > 1:
        out["e2e_speedup_w2_vs_w1"] = (
            out[f"e2e_seconds_w{workers[0]}"] / out[f"e2e_seconds_w{workers[-1]}"]
        )
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args(argv)
    res = run(args.repeat)
    print(f"demo campaign: {int(res['e2e_creatives'])} creatives, median of {args.repeat} run(s)")
    for n in (1, 2):
        print(
            f"  workers={n}: {res[f'e2e_seconds_w{n}']:.1f} s  "
            f"{res[f'e2e_creatives_per_min_w{n}']:.0f} creatives/min"
        )
    print(f"  speed-up 2 workers vs 1 (baseline): {res['e2e_speedup_w2_vs_w1']:.2f}×")


if __name__ == "__main__":
    sys.exit(main())
