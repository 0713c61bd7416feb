"""Planning cost against matrix size: ``plan`` of a brief whose slot matrix holds
10²…10⁷ combinations with ``max_variants: 48`` (issue 10: under 2 s and 200 MB at 10⁷).
Each size is planned in a fresh process, which reports the wall time of load + plan,
the tracemalloc peak of that step and the process's peak RSS; the baseline is the same
brief at 10² combinations, measured in the same run. A flat curve means planning costs
O(budget), not O(matrix).

    .venv/bin/python benchmarks/bench_plan.py [--runs 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

WORKER = textwrap.dedent(
    """\
    import json, resource, sys, time, tracemalloc
    from pathlib import Path
    from bildwerk.config.brand import BrandKit, Palette
    from bildwerk.config.brief import load_brief, resolve_channels
    from bildwerk.stages.plan import make_plan

    brand = BrandKit(name="Bench", palette=Palette(primary="#112233", secondary="#445566",
                     accent="#ff6600", text="#111111", background="#fafafa"))
    tracemalloc.start()
    start = time.perf_counter()
    brief, doc = load_brief(Path(sys.argv[1]))
    plan = make_plan(brief, brand, resolve_channels(brief, doc), doc=doc)
    seconds = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    print(json.dumps({
        "seconds": seconds,
        "traced_peak_mb": peak / 2**20,
        "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "jobs": len(plan.jobs),
        "matrix": plan.full_matrix,
        "strategy": plan.strategy,
    }))
    """
)


def brief_text(exponent: int) -> str:
    """A brief with ``exponent`` slots of ten values: 10**exponent combinations."""
    names = [chr(ord("a") + i) for i in range(exponent)]
    slots = "\n".join(f"    {n}: [{', '.join(f'{n}{v}' for v in range(10))}]" for n in names)
    template = " ".join("{" + n + "}" for n in names)
    return (
        "campaign: bench\nlocales:\n  en-US: {headline: Hi}\nchannels: [og_image]\n"
        f'prompt:\n  template: "{template}"\n  slots:\n{slots}\n'
        "budget: {max_variants: 48, seed: 1}\n"
    )


def measure(path: Path) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    proc = subprocess.run(
        [sys.executable, "-c", WORKER, str(path)],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        timeout=300,
    )
    result: dict[str, float] = json.loads(proc.stdout)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3, help="processes per size (median)")
    parser.add_argument("--max-exponent", type=int, default=7)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for exponent in range(2, args.max_exponent + 1):
            path = Path(tmp) / f"brief-{exponent}.yaml"
            path.write_text(brief_text(exponent), encoding="utf-8")
            runs = [measure(path) for _ in range(args.runs)]
            rows.append(
                {
                    "matrix": runs[0]["matrix"],
                    "jobs": runs[0]["jobs"],
                    "strategy": runs[0]["strategy"],
                    **{
                        key: statistics.median(r[key] for r in runs)
                        for key in ("seconds", "traced_peak_mb", "maxrss_mb")
                    },
                }
            )
    base = rows[0]
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"{'matrix':>10} {'jobs':>5} {'plan s':>8} {'× 10²':>6} {'traced MB':>10} {'RSS MB':>8}")
    for row in rows:
        ratio = row["seconds"] / base["seconds"]
        print(
            f"{row['matrix']:>10} {row['jobs']:>5} {row['seconds']:>8.3f} {ratio:>6.2f}"
            f" {row['traced_peak_mb']:>10.2f} {row['maxrss_mb']:>8.1f}"
        )


if __name__ == "__main__":
    main()
