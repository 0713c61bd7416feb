"""Seeded fractional designs over a slot matrix, in time and memory O(rows), not O(matrix).

A brief's matrix is the product of its slot lists (and seeds); ten slots of five values
are ~10⁷ combinations, so it is never enumerated when only a budget's worth of rows is
wanted. Rows are drawn in cycles of ``m`` rows (``m`` the largest covered dimension):
within a cycle every covered dimension walks a fresh seeded permutation of its values,
so the first cycle covers every value of every covered dimension and each later cycle
covers them again, keeping the design balanced. A row drawn twice is replaced by a
random unused one. Same sizes, count and random state → same rows.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Iterator, Sequence

Row = tuple[int, ...]


def _decode(index: int, sizes: Sequence[int]) -> Row:
    """The row at ``index`` of the product in mixed radix (last dimension fastest)."""
    out: list[int] = []
    for size in reversed(sizes):
        index, digit = divmod(index, size)
        out.append(digit)
    return tuple(reversed(out))


def sampled_rows(sizes: Sequence[int], n: int, rng: random.Random, *, covered: int) -> list[Row]:
    """``min(n, product)`` distinct index rows over dimensions of ``sizes``.

    The first ``covered`` dimensions are the ones whose every value must appear: any
    ``m = max(sizes[:covered])`` leading rows do. When the matrix is at most twice the
    rows wanted it is enumerated (that is still O(n)) to find unused rows; otherwise
    unused rows are found by rejection sampling, which succeeds at least half the time.
    """
    if any(size < 1 for size in sizes):
        return []
    total = math.prod(sizes)
    n = min(n, total)
    cycle = max(sizes[:covered], default=1)
    spare: Iterator[Row] | None = None
    if total <= 2 * n:
        every = list(itertools.product(*(range(size) for size in sizes)))
        rng.shuffle(every)
        spare = iter(every)
    rows: list[Row] = []
    taken: set[Row] = set()
    perms: list[list[int]] = []
    for r in range(n):
        i = r % cycle
        if i == 0:
            perms = [rng.sample(range(size), size) for size in sizes]
        row = tuple(perm[i % len(perm)] for perm in perms)
        while row in taken:
            row = next(spare) if spare is not None else _decode(rng.randrange(total), sizes)
        taken.add(row)
        rows.append(row)
    return rows
