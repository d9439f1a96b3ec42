"""A profile's ExperienceEvents: how many, when they happened and were ingested, and their list column."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from emulator.exportdata.arrays import TIMESTAMP_MS, U64, arange, offsets
from emulator.exportdata.hashing import Hasher, below, digits, high, low, mix, scaled, u64
from emulator.exportdata.pools import pools
from emulator.exportdata.population import WINDOW_SECONDS, WINDOW_START_MS, EventWindow, Population

_MAX_EVENT_LAG_SECONDS = 6 * 3600  # events are ingested up to 6 hours after they happen
_EVENT_SYSTEM_TYPE = pa.struct([("ingestTime", pa.int64())])


def event_counts(population: Population, ids: pa.Array, empty: pa.Array) -> pa.Array:
    """How many ExperienceEvents each profile has; an event-only profile has at least one."""
    first, last = population.events_per_profile
    h = Hasher(population.key, pc.cast(ids, U64))("events")
    counts = pc.add(below(h, last - first + 1), u64(first))
    if first == 0:
        counts = pc.if_else(pc.and_(empty, pc.equal(counts, u64(0))), u64(1), counts)
    return pc.cast(counts, pa.int32())


def event_lists(population: Population, ids: pa.Array, empty: pa.Array, window: EventWindow) -> pa.Array:
    """Each profile's events, oldest first: list<{_id, timestamp, eventType, _acp_system_metadata}>."""
    counts = event_counts(population, ids, empty)
    list_offsets = offsets(counts)
    total = list_offsets[-1].as_py()
    parents = pc.list_parent_indices(pa.ListArray.from_arrays(list_offsets, pa.nulls(total, pa.int8())))
    ordinal = pc.subtract(arange(total), pc.cast(pc.take(list_offsets, parents), pa.int64()))
    profile_ids = pc.take(pc.cast(ids, U64), parents)
    hasher = Hasher(population.key, profile_ids, salt=ordinal)
    h = hasher("event")
    # Spread a profile's events over the window in order: ordinal k of n falls in the k-th slice.
    per_profile = pc.cast(pc.take(counts, parents), U64)
    slice_seconds = pc.divide(u64(WINDOW_SECONDS), per_profile)
    seconds = pc.add(
        pc.multiply(pc.cast(ordinal, U64), slice_seconds),
        pc.shift_right(pc.multiply(high(h), slice_seconds), u64(32)),
    )
    happened = pc.add(
        pc.multiply(pc.add(seconds, u64(WINDOW_START_MS // 1000)), u64(1000)), scaled(low(h), 1000)
    )
    lag = pc.multiply(below(mix(h), _MAX_EVENT_LAG_SECONDS), u64(1000))
    ingested = pc.cast(pc.add(happened, lag), pa.int64())
    keep = pa.repeat(True, total)
    if window.after_ms is not None:
        keep = pc.and_(keep, pc.greater(ingested, pa.scalar(window.after_ms, pa.int64())))
    if window.before_ms is not None:
        keep = pc.and_(keep, pc.less(ingested, pa.scalar(window.before_ms, pa.int64())))
    event_ids = pc.binary_join_element_wise(digits(hasher("eventId"), 18), digits(mix(h), 14), "")
    pool = pools(population.seed)
    records = pa.StructArray.from_arrays(
        [
            event_ids,
            pc.cast(pc.cast(happened, pa.int64()), TIMESTAMP_MS),
            pc.take(pool.event_types, scaled(low(mix(mix(h))), len(pool.event_types))),
            pa.StructArray.from_arrays([ingested], fields=list(_EVENT_SYSTEM_TYPE)),
        ],
        names=["_id", "timestamp", "eventType", "_acp_system_metadata"],
    )
    if window.after_ms is None and window.before_ms is None:
        return pa.ListArray.from_arrays(list_offsets, records)
    # New offsets: how many kept events precede each profile's first event.
    kept_before = offsets(pc.cast(keep, pa.int32()))
    return pa.ListArray.from_arrays(pc.take(kept_before, list_offsets), pc.filter(records, keep))
