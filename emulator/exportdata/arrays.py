"""Arrow array helpers shared by the generator and the projection: ranges, list offsets, types."""

from __future__ import annotations

from functools import lru_cache

import pyarrow as pa
import pyarrow.compute as pc

U64 = pa.uint64()
TIMESTAMP_MS = pa.timestamp("ms", tz="UTC")


@lru_cache(maxsize=8)
def _arange_cached(n: int) -> pa.Array:
    return pa.array(range(n), pa.int64())


def arange(n: int) -> pa.Array:
    """0 .. n-1 as int64 (sliced from a cached power-of-two range, so few distinct sizes are built)."""
    size = 1 << max(n - 1, 1).bit_length()
    return _arange_cached(size).slice(0, n)


def offsets(lengths: pa.Array) -> pa.Array:
    """List offsets (int32, one longer than `lengths`) from per-row lengths (or booleans: kept or not)."""
    ends = pc.cumulative_sum(pc.cast(lengths, pa.int32()))
    return pa.concat_arrays([pa.array([0], pa.int32()), pc.cast(ends, pa.int32())])
