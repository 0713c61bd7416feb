"""Hamming-radius queries: HashIndex (multi-index hashing) versus a numpy scan.

For each size, random 64-bit hashes plus planted near-duplicate groups go into the index;
200 queries (half near a stored hash, half random) run at radius 8 and 10. Each query is
timed on the index and on ``brute_force`` back to back (alternating which goes first), so
both see the same machine state, and their answers must be identical. The index time is
the full ``query()`` (ids, sorted); the scan time is the bare numpy scan, which flatters
the baseline. Also shown: the same index forced to ``m = r + 1`` chunks (the textbook
exact-chunk layout) and a pure-Python BK-tree, both for comparison only.

    .venv/bin/python benchmarks/bench_dedup.py [--sizes 10000 100000 1000000] [--json]
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import time
import tracemalloc
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from bildwerk.hashindex import HashIndex, brute_force

RADII = (8, 10)
QUERIES = 200
BK_MAX = 100_000  # a Python BK-tree over a million random hashes takes minutes
BK_QUERIES = 20
U64 = npt.NDArray[np.uint64]


def dataset(n: int, seed: int = 0) -> tuple[list[str], U64, list[int]]:
    """``n`` hashes: random ones plus groups of near-duplicates (1-6 bits flipped), and
    queries near stored hashes (0-12 bits flipped) or random."""
    rng = np.random.default_rng(seed)
    hashes = np.frombuffer(rng.bytes(8 * n), dtype=np.uint64).copy()
    planted = max(n // 100, 10)
    source = rng.integers(0, n, planted)
    target = rng.integers(0, n, planted)
    hashes[target] = [_flip(rng, int(hashes[s]), int(rng.integers(1, 7))) for s in source]
    queries = [
        _flip(rng, int(hashes[rng.integers(0, n)]), int(rng.integers(0, 13)))
        if i % 2 == 0
        else int.from_bytes(rng.bytes(8), "little")
        for i in range(QUERIES)
    ]
    return [f"h{i:07d}" for i in range(n)], hashes, queries


def _flip(rng: np.random.Generator, h: int, k: int) -> int:
    for bit in rng.choice(64, size=k, replace=False).tolist():
        h ^= 1 << bit
    return h


class _Node:
    __slots__ = ("children", "id", "value")

    def __init__(self, value: int, id_: str) -> None:
        self.value, self.id = value, id_
        self.children: dict[int, _Node] = {}


class BKTree:
    """Burkhard-Keller tree: children keyed by their distance to the parent; the triangle
    inequality prunes subtrees whose key is further than ``radius`` from the query's."""

    def __init__(self) -> None:
        self.root: _Node | None = None

    def add(self, id_: str, h: int) -> None:
        if self.root is None:
            self.root = _Node(h, id_)
            return
        node = self.root
        while True:
            d = (node.value ^ h).bit_count()
            child = node.children.get(d)
            if child is None:
                node.children[d] = _Node(h, id_)
                return
            node = child

    def query(self, h: int, radius: int) -> list[tuple[str, int]]:
        found, stack = [], [self.root] if self.root else []
        while stack:
            node = stack.pop()
            d = (node.value ^ h).bit_count()
            if d <= radius:
                found.append((node.id, d))
            stack.extend(c for k, c in node.children.items() if d - radius <= k <= d + radius)
        return sorted(found, key=lambda t: (t[1], t[0]))


def _scan_answer(ids: Sequence[str], hashes: U64, h: int, r: int) -> list[tuple[str, int]]:
    rows, dist = brute_force(hashes, h, r)
    return sorted(
        ((ids[i], int(d)) for i, d in zip(rows, dist, strict=True)), key=lambda t: (t[1], t[0])
    )


def _build(
    ids: list[str], hashes: U64, radius: int, chunks: int | None
) -> tuple[HashIndex, float, int]:
    gc.collect()
    tracemalloc.start()
    started = time.perf_counter()
    index = HashIndex(radius, chunks=chunks)
    index.add_many(ids, hashes)
    seconds = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return index, seconds, peak


def bench_size(n: int) -> dict[str, float]:
    ids, hashes, queries = dataset(n)
    out: dict[str, float] = {}
    for r in RADII:
        index, build_s, peak = _build(ids, hashes, r, None)
        textbook, textbook_build_s, _ = _build(ids, hashes, r, r + 1)
        idx_s: list[float] = []
        scan_s: list[float] = []
        text_s: list[float] = []
        hits = 0
        for i, q in enumerate(queries):
            steps = [("index", index), ("scan", None), ("textbook", textbook)]
            for name, ix in steps if i % 2 == 0 else reversed(steps):
                started = time.perf_counter()
                if ix is None:
                    brute_force(hashes, q, r)
                else:
                    ix.query(q)
                elapsed = time.perf_counter() - started
                {"index": idx_s, "scan": scan_s, "textbook": text_s}[name].append(elapsed)
            expected = _scan_answer(ids, hashes, q, r)
            if index.query(q) != expected or textbook.query(q) != expected:
                raise AssertionError(f"index and scan disagree at n={n}, r={r}, query {q:#x}")
            hits += len(expected)
        key = f"n{n}_r{r}"
        out[f"{key}_index_us"] = statistics.median(idx_s) * 1e6
        out[f"{key}_scan_us"] = statistics.median(scan_s) * 1e6
        out[f"{key}_speedup"] = statistics.median(s / i for s, i in zip(scan_s, idx_s, strict=True))
        out[f"{key}_textbook_us"] = statistics.median(text_s) * 1e6
        out[f"{key}_build_s"] = build_s
        out[f"{key}_textbook_build_s"] = textbook_build_s
        out[f"{key}_index_mb"] = index.nbytes / 1e6
        out[f"{key}_build_peak_mb"] = peak / 1e6
        print(
            f"n={n:>9,} r={r:>2}  chunks={index.chunks}  index {out[f'{key}_index_us']:8.1f} us"
            f"  scan {out[f'{key}_scan_us']:8.1f} us  speedup x{out[f'{key}_speedup']:5.1f}"
            f"  | m=r+1: {out[f'{key}_textbook_us']:8.1f} us"
            f"  | build {build_s:5.2f} s, {index.nbytes / 1e6:6.1f} MB"
            f" (peak {peak / 1e6:6.1f} MB)  | hits/query {hits / len(queries):.2f}"
        )
        del index, textbook
    if n <= BK_MAX:
        out.update(_bench_bk(n, ids, hashes, queries))
    return out


def _bench_bk(n: int, ids: list[str], hashes: U64, queries: list[int]) -> dict[str, float]:
    started = time.perf_counter()
    tree = BKTree()
    for id_, h in zip(ids, hashes.tolist(), strict=True):
        tree.add(id_, h)
    build_s = time.perf_counter() - started
    out = {f"n{n}_bktree_build_s": build_s}
    for r in RADII:
        times = []
        for q in queries[:BK_QUERIES]:
            started = time.perf_counter()
            answer = tree.query(q, r)
            times.append(time.perf_counter() - started)
            if answer != _scan_answer(ids, hashes, q, r):
                raise AssertionError(f"BK-tree and scan disagree at n={n}, r={r}")
        out[f"n{n}_r{r}_bktree_us"] = statistics.median(times) * 1e6
        print(
            f"n={n:>9,} r={r:>2}  BK-tree (pure Python) {out[f'n{n}_r{r}_bktree_us']:10.1f} us"
            f"  build {build_s:5.2f} s"
        )
    return out


def run(sizes: Sequence[int] = (10_000, 100_000, 1_000_000)) -> dict[str, float]:
    """Median microseconds per query for the index and the scan, speedups, build seconds
    and megabytes, per size and radius."""
    results: dict[str, float] = {}
    for n in sizes:
        results.update(bench_size(n))
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    results = run(args.sizes)
    if args.json:
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
