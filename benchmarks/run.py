"""Run every benchmark and print one table: medians and ratios against the baselines
measured in the same invocation.

    .venv/bin/python benchmarks/run.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_dedup
import bench_delivery
import bench_e2e
import bench_qa
import bench_render
import bench_stamp
import bench_studio


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    results: dict[str, float] = {}
    results.update(bench_studio.run(10 if args.quick else 30))
    results.update(bench_render.run(2 if args.quick else 5))
    results.update(bench_stamp.run(2 if args.quick else 5))
    results.update(bench_delivery.run(1 if args.quick else 3))
    results.update(bench_qa.run(5 if args.quick else 20))
    results.update(bench_dedup.run())
    results.update(bench_e2e.run(1))
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(
        f"machine: {platform.processor() or platform.machine()}, python {platform.python_version()}"
    )
    width = max(len(k) for k in results)
    for key, value in results.items():
        print(f"  {key:<{width}}  {value:10.3f}")


if __name__ == "__main__":
    main()
