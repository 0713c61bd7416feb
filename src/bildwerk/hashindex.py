"""Hamming-radius search over 64-bit perceptual hashes that stays fast at a million entries.

Multi-index hashing (Norouzi, Punjani & Fleet, 2012): split the 64 bits into ``m`` chunks.
If two hashes differ in at most ``r`` bits, by pigeonhole some chunk differs in at most
about ``r / m`` of them (:func:`chunk_flips` has the exact split). Each chunk has a
direct-addressed bucket table (CSR: one offset per possible chunk value into a row
array), so a query looks up every value within those few bits of its own chunks, one
memory read per probe, and verifies the candidates with a popcount over all 64 bits.
``m = r + 1`` (exact chunk matches only) is one point of that family; a cost model picks
the ``m`` that balances probes against candidates for the current size, with tables of
at most a few slots per hash. While a numpy scan is cheaper (below ~50k hashes, or for a
very large radius) the index just scans.

Recent additions sit in a small unsorted tail that queries scan; it is merged into the
tables in one linear pass once it grows, so interleaved ``add``/``query`` calls stay
cheap. Results are exact: identical to :func:`brute_force`.
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
I32 = npt.NDArray[np.int32]
U8 = npt.NDArray[np.uint8]

# Rough costs in microseconds on a 2-core x86 machine (numpy 2.4), from
# benchmarks/bench_dedup.py; only their ratios matter for choosing a layout.
_COST_PROBE = 0.04  # one bucket lookup (a cache miss in a large table)
_COST_CANDIDATE = 0.025  # gather + xor + popcount of one candidate row
_COST_SCAN = 0.0011  # xor + popcount of one row in a full scan
_COST_FIXED = 50.0  # numpy and Python overhead of one indexed query
_TABLE_PER_HASH = 8  # a chunk's bucket table may hold at most this many slots per hash
_MIN_TAIL, _MAX_TAIL = 4096, 32768
_MIN_CHUNKS, _MAX_CHUNKS = 3, 16  # 2 chunks of 32 bits would need 2**32-slot tables


def popcount64(values: U64) -> U8:
    """Set bits per element (numpy >= 2.0 ``bitwise_count``)."""
    counts: U8 = np.bitwise_count(values)
    return counts


def brute_force(hashes: U64, h: int, radius: int) -> tuple[I64, U8]:
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
def _probe_masks(widths: tuple[int, ...], flips: tuple[int, ...]) -> tuple[I64, I64]:
    """Every chunk's flip masks (at most ``flips[i]`` of ``widths[i]`` bits set), all chunks
    concatenated, and how many belong to each chunk."""
    per_chunk = [
        [sum(1 << b for b in chosen) for k in range(f + 1) for chosen in combinations(range(w), k)]
        for w, f in zip(widths, flips, strict=True)
    ]
    counts = np.array([len(c) for c in per_chunk], dtype=np.int64)
    return np.array([x for c in per_chunk for x in c], dtype=np.int64), counts


def chunk_flips(radius: int, m: int) -> tuple[int, ...]:
    """Bits each chunk's probes may flip so that no match within ``radius`` is missed.

    With ``radius = s*m + a`` (``a < m``), a match differs in at most ``s`` bits in one of
    the first ``a + 1`` chunks or in at most ``s - 1`` bits in one of the others (else the
    total would exceed ``radius``); -1 means the chunk needs no probes at all.
    """
    s, a = divmod(radius, m)
    return tuple(s if i <= a else s - 1 for i in range(m))


@cache
def _probe_count(bits: int, flips: int) -> int:
    return sum(comb(bits, k) for k in range(flips + 1))


def query_cost(n: int, radius: int, m: int) -> float:
    """Estimated microseconds of one indexed query with ``m`` chunks over ``n`` hashes."""
    cost = _COST_FIXED
    for bits, flips in zip(chunk_widths(m), chunk_flips(radius, m), strict=True):
        cost += _probe_count(bits, flips) * (_COST_PROBE + _COST_CANDIDATE * n / 2.0**bits)
    return cost


def best_chunks(n: int, radius: int) -> int:
    """The chunk count with the lowest estimated query cost whose bucket tables fit the
    memory cap, or 0 when a plain scan is cheaper."""
    fits = [
        m
        for m in range(_MIN_CHUNKS, _MAX_CHUNKS + 1)
        if 2 ** chunk_widths(m)[0] <= max(_TABLE_PER_HASH * n, 1 << 16)
    ]
    if not fits:
        return 0
    m = min(fits, key=lambda k: (query_cost(n, radius, k), k))
    return m if query_cost(n, radius, m) < _COST_SCAN * n else 0


class HashIndex:
    """Ids with 64-bit hashes; ``query`` returns every id within a Hamming radius.

    ``radius`` is the default query radius and tunes the layout; any other radius can be
    asked for and stays exact (a large one just probes more, or scans). Ids are kept as
    given: adding the same id twice stores it twice. Holds up to 10**8 entries.
    """

    def __init__(self, radius: int, *, chunks: int | None = None) -> None:
        """``chunks`` forces a layout (for benchmarks); by default a cost model picks it."""
        if not 0 <= radius <= 64:
            raise ValueError(f"radius must be within 0..64, got {radius}")
        if chunks is not None and not _MIN_CHUNKS <= chunks <= _MAX_CHUNKS:
            raise ValueError(f"chunks must be within {_MIN_CHUNKS}..{_MAX_CHUNKS}, got {chunks}")
        self.radius = radius
        self._forced = chunks
        self._ids: list[str] = []
        self._hashes: U64 = np.zeros(1024, dtype=np.uint64)
        self._sorted = 0  # rows [0, _sorted) are in the bucket tables, the rest is the tail
        self._widths: tuple[int, ...] = ()  # chunk widths; () = no tables, queries scan
        self._bases: tuple[int, ...] = ()  # first bucket of each chunk
        self._offsets: I32 = np.zeros(1, dtype=np.int32)  # bucket -> first position in _rows
        self._rows: I32 = np.zeros(0, dtype=np.int32)  # rows, grouped by bucket
        self._merge_at = _MIN_TAIL
        self._plans: dict[int, bool] = {}  # radius -> probe the tables (else scan)

    def __len__(self) -> int:
        return len(self._ids)

    @property
    def chunks(self) -> int:
        """Chunks in the current layout (0 while the index is small enough to scan)."""
        return len(self._widths)

    @property
    def nbytes(self) -> int:
        """Bytes held in numpy arrays (hashes, bucket tables); the id strings are extra."""
        return int(self._hashes.nbytes + self._offsets.nbytes + self._rows.nbytes)

    def add(self, id: str, h: int) -> None:
        self.add_many([id], [h])

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
        n = len(self)
        if self._use_tables(r):
            rows, dist = self._probe(h, r)
            # a row that matches in several chunks shows up once per chunk: dict dedupes
            found = dict(zip(rows.tolist(), dist.tolist(), strict=True))
            if n > self._sorted:
                rows, dist = brute_force(self._hashes[self._sorted : n], h, r)
                found.update(zip((rows + self._sorted).tolist(), dist.tolist(), strict=True))
        else:  # small, or a radius so large that probing would cost more than a scan
            rows, dist = brute_force(self._hashes[:n], h, r)
            found = dict(zip(rows.tolist(), dist.tolist(), strict=True))
        return sorted(((self._ids[i], d) for i, d in found.items()), key=lambda t: (t[1], t[0]))

    def _use_tables(self, r: int) -> bool:
        """Whether probing beats scanning at radius ``r`` (decided once per layout)."""
        use = self._plans.get(r)
        if use is None:
            m, n = self.chunks, self._sorted
            use = m > 0 and (bool(self._forced) or query_cost(n, r, m) < _COST_SCAN * n)
            self._plans[r] = use
        return use

    def _probe(self, h: int, r: int) -> tuple[I64, U8]:
        """Rows within ``r`` found through the bucket tables, possibly repeated."""
        masks, counts = _probe_masks(self._widths, chunk_flips(r, self.chunks))
        owns, shift = [], 0
        for base, bits in zip(self._bases, self._widths, strict=True):
            owns.append(((h >> shift) & ((1 << bits) - 1)) | base)  # base has no low bits
            shift += bits
        buckets = np.repeat(np.array(owns, dtype=np.int64), counts) ^ masks
        starts = self._offsets[buckets]
        lengths = self._offsets[buckets + 1] - starts
        total = int(lengths.sum())
        # every position in the probed buckets, without a Python loop
        ahead = np.cumsum(lengths) - lengths
        positions = np.arange(total) + np.repeat(starts - ahead, lengths)
        candidates = self._rows[positions]
        dist = popcount64(self._hashes[candidates] ^ np.uint64(h))
        hit = dist <= r
        return candidates[hit].astype(np.int64), dist[hit]

    def _merge(self) -> None:
        """Move the tail into the bucket tables, re-laying them out when the size calls for
        a different chunk count. Rows within a bucket stay ascending."""
        n = len(self)
        m = self._forced or best_chunks(n, self.radius)
        if m == 0:
            return  # still small: scanning everything is cheapest
        if m != self.chunks:
            self._widths = chunk_widths(m)
            ends = np.cumsum([1 << w for w in self._widths])
            self._bases = tuple(int(e) - (1 << w) for e, w in zip(ends, self._widths, strict=True))
            self._offsets = np.zeros(int(ends[-1]) + 1, dtype=np.int32)
            self._rows = np.zeros(0, dtype=np.int32)
            self._sorted = 0
        values, k = self._hashes[self._sorted : n], n - self._sorted
        new_rows = np.arange(self._sorted, n, dtype=np.int32)
        positions, rows, shift = [], [], 0
        for i, (base, bits) in enumerate(zip(self._bases, self._widths, strict=True)):
            chunk = ((values >> np.uint64(shift)) & np.uint64((1 << bits) - 1)).astype(np.int64)
            shift += bits
            order = np.argsort(chunk, kind="stable")
            chunk = chunk[order]
            # each new row goes to the end of its bucket (positions in the old row array)
            positions.append(self._offsets[chunk + (base + 1)])
            rows.append(new_rows[order])
            # bucket starts move by the new rows in earlier buckets: i*k from earlier chunks
            ahead = np.bincount(chunk, minlength=1 << bits)
            np.cumsum(ahead, out=ahead)
            ahead += i * k
            self._offsets[base + 1 : base + (1 << bits) + 1] += ahead.astype(np.int32)
        if len(self._rows):
            self._rows = np.insert(self._rows, np.concatenate(positions), np.concatenate(rows))
        else:  # first build: the chunks' rows, each sorted by bucket, are the whole array
            self._rows = np.concatenate(rows)
        self._sorted = n
        self._plans.clear()
