"""What the spine costs: the demo campaign end to end with this code against a named
baseline commit (its own worktree and virtual environment), side by side on this
machine, and a second ``bildwerk qa RUN`` on a warm worker pool against a cold one.

    .venv/bin/python benchmarks/bench_spine.py [--baseline f48dd0b] [--repeat 3]

The baseline checkout and its venv are made once under ``--cache`` (default
``/tmp/bildwerk-bench``) with ``git worktree`` and ``pip install -e '.[qa,publish]'``.
Each measurement runs ``bildwerk run`` as a process on a freshly scaffolded workspace
(nothing cached), alternating baseline and new so drifting load hits both alike; the
figures are medians, the ratio new / baseline (target ≤ 1.05).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _sh(*cmd: str, cwd: Path | None = None) -> str:
    return subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def baseline_env(commit: str, cache: Path) -> Path:
    """The baseline's ``bildwerk`` executable, installed once."""
    tree = cache / f"tree-{commit}"
    venv = cache / f"venv-{commit}"
    exe = venv / "bin" / "bildwerk"
    if exe.is_file() and tree.is_dir():
        return exe
    cache.mkdir(parents=True, exist_ok=True)
    if not tree.exists():
        _sh("git", "worktree", "add", "--detach", str(tree), commit, cwd=REPO)
    _sh(sys.executable, "-m", "venv", str(venv))
    _sh(str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "-e", f"{tree}[qa,publish]")
    return exe


def demo_seconds(exe: Path, workers: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "bench"
        _sh(str(exe), "init", str(root), "--name", "bench")
        started = time.perf_counter()
        _sh(
            str(exe),
            "run",
            str(root / "campaigns" / "summer-sale.yaml"),
            "-w",
            str(root),
            "--workers",
            str(workers),
        )
        return time.perf_counter() - started


def qa_warm_vs_cold(workers: int, repeat: int) -> dict[str, float]:
    """In one process: ``qa`` on a cold pool (started for it), then on the warm one."""
    from bildwerk import Workspace, init_workspace
    from bildwerk.executors.local import close_pools

    out: dict[str, list[float]] = {"cold": [], "warm": []}
    with tempfile.TemporaryDirectory() as tmp:
        root = init_workspace(Path(tmp) / "bench", name="bench")
        ws = Workspace(root)
        run = ws.run(root / "campaigns" / "summer-sale.yaml", workers=workers)
        for _ in range(repeat):
            close_pools()
            started = time.perf_counter()
            ws.qa(run.run_id, workers=workers)
            out["cold"].append(time.perf_counter() - started)
            started = time.perf_counter()
            ws.qa(run.run_id, workers=workers)
            out["warm"].append(time.perf_counter() - started)
        close_pools()
    cold, warm = statistics.median(out["cold"]), statistics.median(out["warm"])
    return {"qa_cold_s": cold, "qa_warm_s": warm, "qa_cold_over_warm": cold / warm}


def run(baseline: str, repeat: int, workers: int, cache: Path) -> dict[str, float]:
    base_exe = baseline_env(baseline, cache)
    new_exe = Path(sys.executable).with_name("bildwerk")
    times: dict[str, list[float]] = {"base": [], "new": []}
    for _ in range(repeat):
        times["base"].append(demo_seconds(base_exe, workers))
        times["new"].append(demo_seconds(new_exe, workers))
    base, new = statistics.median(times["base"]), statistics.median(times["new"])
    out = {"e2e_base_s": base, "e2e_new_s": new, "e2e_new_over_base": new / base}
    out.update(qa_warm_vs_cold(workers, repeat))
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="f48dd0b")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/bildwerk-bench"))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    res = run(args.baseline, args.repeat, args.workers, args.cache)
    if args.json:
        print(json.dumps(res, indent=2))
        return
    print(f"demo campaign, {args.workers} workers, median of {args.repeat}:")
    print(f"  baseline {args.baseline}: {res['e2e_base_s']:.1f} s")
    print(f"  this code:        {res['e2e_new_s']:.1f} s  ({res['e2e_new_over_base']:.3f}×)")
    print(
        f"bildwerk qa on the demo run: cold pool {res['qa_cold_s']:.1f} s, warm pool "
        f"{res['qa_warm_s']:.1f} s (cold / warm {res['qa_cold_over_warm']:.2f}×)"
    )


if __name__ == "__main__":
    main()
