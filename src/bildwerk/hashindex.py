"""Hamming-radius search over 64-bit perceptual hashes that stays fast at a million entries.

Multi-index hashing (Norouzi, Punjani & Fleet, 2012): split the 64 bits into ``m`` chunks.
If two hashes differ in at most ``r`` bits, by pigeonhole at least one chunk differs in at
most ``r // m`` bits. Every chunk value goes into one sorted key array (chunk number in the
high word, so one ``searchsorted`` serves all chunks); a query probes each value within
``r // m`` bits of its own chunks and verifies the few candidates with a popcount over all
64 bits. ``m = r + 1`` (exact chunk matches) is one point of that family; a cost model picks
the ``m`` that balances probes against candidates for the current size, and below a few
thousand entries a plain numpy scan wins, so the index scans until it is worth building.

Recent additions sit in an unsorted tail that queries scan; the tail is merged into the
sorted arrays once it grows (a linear timsort merge of two sorted runs), so interleaved
``add``/``query`` calls stay cheap. Results are exact: identical to :func:`brute_force`.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from itertools import combinations
from math import comb

import numpy as np
import numpy.typing as npt

U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]

# Relative costs in microseconds on a 2-core x86 laptop-class machine (numpy 2.4), measured
# with benchmarks/bench_dedup.py; only their ratios matter for choosing a layout.
_COST_PROBE = 0.09  # two binary searches into the key array
_COST_CANDIDATE = 0.008  # gather + xor + popcount of one candidate row
_COST_SCAN = 0.0014  # xor + popcount of one row in a full scan
_COST_FIXED = 40.0  # numpy call overhead of one indexed query
_MIN_TAIL, _MAX_TAIL = 4096, 32768
_MAX_CHUNKS = 16


def popcount64(values: U64) -> npt.NDArray[np.uint8]:
    """Set bits per element (numpy >= 2.0 ``bitwise_count``)."""
    counts: npt.NDArray[np.uint8] = np.bitwise_count(values)
    return counts


def brute_force(hashes: U64, h: int, radius: int) -> tuple[I64, npt.NDArray[np.uint8]]:
    """Rows of ``hashes`` within ``radius`` bits of ``h`` and their distances, rows ascending:
    the exact baseline the index is measured and tested against."""
    distances = popcount64(np.bitwise_xor(hashes, np.uint64(h)))
    rows: I64 = np.flatnonzero(distances <= radius).astype(np.int64)
    return rows, distances[rows]


def chunk_widths(m: int) -> tuple[int, ...]:
    """Split 64 bits into ``m`` near-equal chunks, wider ones first."""
    base, extra = divmod(64, m)
    return tuple(base + 1 if i < extra else base for i in range(m))


@cache
def _flip_masks(bits: int, max_flips: int) -> U64:
    """Every ``bits``-bit mask with at most ``max_flips`` set bits, fewest first."""
    masks = [
        sum(1 << b for b in chosen)
        for k in range(max_flips + 1)
        for chosen in combinations(range(bits), k)
    ]
    return np.array(masks, dtype=np.uint64)


def _probes(bits: int, flips: int) -> int:
    return sum(comb(bits, k) for k in range(flips + 1))


def query_cost(n: int, radius: int, m: int) -> float:
    """Estimated microseconds of one indexed query with ``m`` chunks over ``n`` hashes."""
    flips = radius // m
    cost = _COST_FIXED
    for bits in chunk_widths(m):
        probes = _probes(bits, flips)
        cost += probes * (_COST_PROBE + _COST_CANDIDATE * n / 2.0**bits)
    return cost


def best_chunks(n: int, radius: int) -> int:
    """The chunk count with the lowest estimated query cost, or 0 when scanning wins."""
    options = range(2, min(radius + 1, _MAX_CHUNKS) + 1) if radius >= 1 else range(2, 3)
    m = min(options, key=lambda k: (query_cost(n, radius, k), k))
    return m if query_cost(n, radius, m) < _COST_SCAN * n else 0


class HashIndex:
    """Ids with 64-bit hashes; ``query`` returns every id within a Hamming radius.

    ``radius`` is the default query radius and tunes the layout; any other radius can be
    asked for and stays exact (a large one just probes more, or scans). Ids are kept as
    given: adding the same id twice stores it twice.
    """

    def __init__(self, radius: int) -> None:
        if not 0 <= radius <= 64:
            raise ValueError(f"radius must be within 0..64, got {radius}")
        self.radius = radius
        self._ids: list[str] = []
        self._hashes: U64 = np.zeros(1024, dtype=np.uint64)
        self._sorted = 0  # rows [0, _sorted) are in the chunk tables, the rest is the tail
        self._m = 0  # chunks in the tables; 0 = no tables, every query scans
        self._keys: U64 = np.zeros(0, dtype=np.uint64)
        self._rows: npt.NDArray[np.int32] = np.zeros(0, dtype=np.int32)
        self._merge_at = _MIN_TAIL

    def __len__(self) -> int:
        return len(self._ids)

    @property
    def chunks(self) -> int:
        """Chunks in the current layout (0 while the index is small enough to scan)."""
        return self._m

    @property
    def nbytes(self) -> int:
        """Bytes held in numpy arrays (hashes, keys, rows); ids are the caller's strings."""
        return int(self._hashes.nbytes + self._keys.nbytes + self._rows.nbytes)

    def add(self, id: str, h: int) -> None:
        self.add_many([id], np.array([h], dtype=np.uint64))

    def add_many(self, ids: Sequence[str], hashes: npt.ArrayLike) -> None:
        """Add ids with their hashes (a numpy uint64 array is the fast path)."""
        values = np.asarray(hashes, dtype=np.uint64).reshape(-1)
        if len(values) != len(ids):
            raise ValueError(f"{len(ids)} ids but {len(values)} hashes")
        n = len(self._ids)
        if n + len(values) > len(self._hashes):
            grown = np.zeros(max(2 * len(self._hashes), n + len(values)), dtype=np.uint64)
            grown[:n] = self._hashes[:n]
            self._hashes = grown
        self._hashes[n : n + len(values)] = values
        self._ids.extend(ids)
        if len(self) >= self._merge_at:
            self._merge()
            self._merge_at = len(self) + min(max(len(self) // 8, _MIN_TAIL), _MAX_TAIL)

    def query(self, h: int, radius: int | None = None) -> list[tuple[str, int]]:
        """``(id, distance)`` for every entry within ``radius`` bits of ``h``, nearest first,
        ties by id."""
        r = self.radius if radius is None else radius
        if r < 0:
            raise ValueError(f"radius must be >= 0, got {r}")
        h = int(h)
        if not 0 <= h < 1 << 64:
            raise ValueError(f"hash must be an unsigned 64-bit integer, got {h}")
        rows, dist = self._search(h, r)
        found = [(self._ids[i], int(d)) for i, d in zip(rows.tolist(), dist.tolist(), strict=True)]
        found.sort(key=lambda item: (item[1], item[0]))
        return found

    def _search(self, h: int, r: int) -> tuple[I64, npt.NDArray[np.uint8]]:
        n = len(self)
        if self._m == 0 or query_cost(self._sorted, r, self._m) >= _COST_SCAN * self._sorted:
            return brute_force(self._hashes[:n], h, r)
        rows, dist = self._probe(h, r)
        tail_rows, tail_dist = brute_force(self._hashes[self._sorted : n], h, r)
        return (
            np.concatenate([rows, tail_rows + self._sorted]),
            np.concatenate([dist, tail_dist]),
        )

    def _chunk_keys(self, values: U64) -> U64:
        """Chunk ``i`` of every value, tagged with ``i`` in the high word: shape ``(m*len,)``."""
        parts, shift = [], 0
        for i, bits in enumerate(chunk_widths(self._m)):
            chunk = (values >> np.uint64(shift)) & np.uint64((1 << bits) - 1)
            parts.append(chunk | np.uint64(i << 32))
            shift += bits
        return np.concatenate(parts)

    def _probe(self, h: int, r: int) -> tuple[I64, npt.NDArray[np.uint8]]:
        flips, shift, probes = r // self._m, 0, []
        for i, bits in enumerate(chunk_widths(self._m)):
            own = ((h >> shift) & ((1 << bits) - 1)) | (i << 32)
            probes.append(_flip_masks(bits, flips) ^ np.uint64(own))
            shift += bits
        wanted = np.concatenate(probes)
        starts = np.searchsorted(self._keys, wanted, side="left")
        lengths = np.searchsorted(self._keys, wanted, side="right") - starts
        total = int(lengths.sum())
        if total == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.uint8)
        # positions of every key in the probed ranges, without a Python loop
        offsets = np.cumsum(lengths) - lengths
        positions = np.arange(total) + np.repeat(starts - offsets, lengths)
        candidates = self._rows[positions]
        dist = popcount64(self._hashes[candidates] ^ np.uint64(h))
        hit = dist <= r
        # a row matching in several chunks shows up once per chunk
        rows, first = np.unique(candidates[hit], return_index=True)
        return rows.astype(np.int64), dist[hit][first]

    def _merge(self) -> None:
        """Move the tail into the chunk tables, re-laying them out if the size calls for it."""
        n = len(self)
        m = best_chunks(n, self.radius)
        if m == 0:
            return  # still small: scanning everything is cheapest
        if m != self._m:
            self._m, self._sorted = m, 0
            self._keys = np.zeros(0, dtype=np.uint64)
            self._rows = np.zeros(0, dtype=np.int32)
        new = np.arange(self._sorted, n, dtype=np.int32)
        keys = self._chunk_keys(self._hashes[self._sorted : n])
        rows = np.tile(new, self._m)
        order = np.argsort(keys, kind="stable")
        keys = np.concatenate([self._keys, keys[order]])
        rows = np.concatenate([self._rows, rows[order]])
        # two sorted runs: timsort merges them in linear time
        order = np.argsort(keys, kind="stable")
        self._keys, self._rows, self._sorted = keys[order], rows[order], n
