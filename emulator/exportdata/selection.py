"""Which rows a batch holds and which of them each file holds, counted block by block.

Counting (for the job's counters and the batch's `recordCount`) streams over the population and keeps only
a count per block; a file's rows are selected again, from the blocks that hold them, when it is rendered.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from emulator.exportdata.audience import segment_statuses
from emulator.exportdata.population import (
    EXISTING,
    EXITED,
    NAMESPACES,
    REALIZED,
    Population,
    empty_mask,
    identity_flags,
    modify_times_ms,
    population_ids,
)
from emulator.exportdata.spec import BatchSpec, SegmentFilter, Selection

# Rows are selected this many population indices at a time (the unit of the streaming count).
BLOCK = 32_768
# Rows are generated and written (one Parquet row group each) this many at a time.
CHUNK = 16_384


@dataclass(frozen=True)
class Plan:
    """A batch's rows, counted without keeping them: selected rows per population block."""

    block_counts: tuple[int, ...]
    by_namespace: tuple[tuple[str, int], ...]

    @property
    def total(self) -> int:
        return sum(self.block_counts)


def select(population: Population, selection: Selection, start: int, stop: int) -> pa.Array:
    """The population indices in [start, stop) that the selection keeps, ascending (uint64)."""
    ids = population_ids(start, stop)
    empty = empty_mask(population, ids)
    keep = pa.repeat(True, len(ids)) if selection.empty_profiles else pc.invert(empty)
    if selection.updated_after_ms is not None:
        updated = modify_times_ms(population, ids)
        keep = pc.and_(keep, pc.greater(updated, pa.scalar(selection.updated_after_ms, pa.int64())))
    timed = selection.qualified_from_ms is not None or selection.qualified_to_ms is not None
    if selection.segments:
        keep = pc.and_(keep, _any_membership(population, selection, ids, empty, selection.segments))
    elif timed:
        # A qualification window alone: any membership of the segments the profile is evaluated for.
        everything = frozenset((REALIZED, EXISTING, EXITED))
        shown = tuple(SegmentFilter(s, everything) for s in selection.shown)
        keep = pc.and_(keep, _any_membership(population, selection, ids, empty, shown))
    return pc.filter(ids, keep)


def _any_membership(
    population: Population,
    selection: Selection,
    ids: pa.Array,
    empty: pa.Array,
    filters: Sequence[SegmentFilter],
) -> pa.Array:
    member = pa.repeat(False, len(ids))
    rules = dict(selection.rules)
    for one in filters:
        code, when = segment_statuses(
            population,
            ids,
            empty,
            one.segment,
            evaluated=selection.evaluated,
            predicate=rules.get(one.segment),
        )
        matched = pc.is_in(code, value_set=pa.array(sorted(one.statuses), pa.int8()))
        if selection.qualified_from_ms is not None:
            matched = pc.and_(matched, pc.greater_equal(when, selection.qualified_from_ms))
        if selection.qualified_to_ms is not None:
            matched = pc.and_(matched, pc.less_equal(when, selection.qualified_to_ms))
        member = pc.or_(member, matched)
    return member


def make_plan(population: Population, selection: Selection) -> Plan:
    """Count the selected rows block by block (and their identity namespaces), keeping only the counts."""
    counts: list[int] = []
    namespaces = dict.fromkeys(NAMESPACES, 0)
    for start in range(0, population.size, BLOCK):
        chosen = select(population, selection, start, min(start + BLOCK, population.size))
        counts.append(len(chosen))
        if len(chosen):
            flags = identity_flags(population, chosen, empty_mask(population, chosen))
            for namespace, present in flags.items():
                namespaces[namespace] += pc.sum(pc.cast(present, pa.int64())).as_py() or 0
    return Plan(tuple(counts), tuple((ns, n) for ns, n in namespaces.items() if n))


def file_count(spec: BatchSpec, plan: Plan) -> int:
    return -(-plan.total // spec.max_records_per_file)


def file_rows(spec: BatchSpec, plan: Plan, index: int) -> Iterator[pa.Array]:
    """The population indices of file `index`'s rows, in chunks of at most CHUNK."""
    first = index * spec.max_records_per_file
    last = min(first + spec.max_records_per_file, plan.total)
    pending: list[pa.Array] = []
    pending_rows = 0
    seen = 0
    for block, count in enumerate(plan.block_counts):
        if seen + count <= first:
            seen += count
            continue
        if seen >= last:
            break
        start = block * BLOCK
        chosen = select(spec.population, spec.selection, start, min(start + BLOCK, spec.population.size))
        wanted = chosen.slice(max(first - seen, 0), last - max(first, seen))
        seen += count
        pending.append(wanted)
        pending_rows += len(wanted)
        while pending_rows >= CHUNK:
            joined = pa.concat_arrays(pending)
            yield joined.slice(0, CHUNK)
            rest = joined.slice(CHUNK)
            pending, pending_rows = [rest], len(rest)
    if pending_rows:
        yield pa.concat_arrays(pending)
