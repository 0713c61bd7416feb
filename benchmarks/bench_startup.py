"""Start-up: wall time of ``bildwerk --help`` against ``python -c pass`` (the interpreter
alone), each the median of ``--runs`` fresh processes, runs of the two interleaved so both
see the same machine state. The budget is 0.3 s for ``--help`` on an idle machine.

    .venv/bin/python benchmarks/bench_startup.py [--runs 5] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

COMMANDS: dict[str, list[str]] = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "bildwerk --help": [sys.executable, "-m", "bildwerk", "--help"],
    "import bildwerk": [sys.executable, "-c", "import bildwerk"],
}


def wall(cmd: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    for cmd in COMMANDS.values():  # warm the file cache; not timed
        wall(cmd)
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(args.runs):
        for name, cmd in COMMANDS.items():
            times[name].append(wall(cmd))
    medians = {name: statistics.median(ts) for name, ts in times.items()}
    base = medians["python -c pass"]
    if args.json:
        print(json.dumps({"runs": args.runs, "median_s": medians}))
        return
    for name, median in medians.items():
        extra = "" if name == "python -c pass" else f"  (+{median - base:.3f} s over python)"
        print(f"{name:18} median {median:.3f} s of {args.runs}{extra}")


if __name__ == "__main__":
    main()
