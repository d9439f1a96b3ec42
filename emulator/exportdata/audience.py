"""Segment membership that follows the definitions: a profile's status in a segment, and a segment job's
counts, computed block by block over the tenant's population.

A segment with an evaluated PQL definition has as members exactly the profiles its predicate holds for;
among them the deterministic hash decides who is `realized` (newly qualified) and who `existing`. Nobody
has `exited` it: the population does not change, so no profile stops qualifying. A segment without one
(no definition, or an expression outside the evaluated subset) keeps the hash membership of
emulator/exportdata/population.py.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence

import pyarrow as pa
import pyarrow.compute as pc

from emulator.exportdata.membership import Rules, evaluate, predicate_of
from emulator.exportdata.population import (
    EXISTING,
    EXITED,
    NAMESPACES,
    NOT_MEMBER,
    REALIZED,
    STATUS_NAMES,
    Population,
    Segment,
    empty_mask,
    identity_flags,
    membership,
    population_ids,
)
from emulator.exportdata.spec import population_tenant
from emulator.exportdata.worker import offload
from emulator.pql import PQL_TEXT, ir
from emulator.segment_job_view import SegmentCount, SegmentCounts
from emulator.segment_jobs import SegmentJob

BLOCK = 32_768
_CACHE_SIZE = 1024


def segment_statuses(
    population: Population,
    ids: pa.Array,
    empty: pa.Array,
    segment: Segment,
    *,
    evaluated: bool,
    predicate: ir.Predicate | None,
) -> tuple[pa.Array, pa.Array]:
    """Status code and qualification time of each profile in `segment` (see the module's docstring)."""
    if predicate is None:
        return membership(population, ids, empty, segment, evaluated=evaluated)
    hashed, when = membership(population, ids, empty, segment, evaluated=False)
    member = evaluate(predicate, population, ids, empty)
    code = pc.case_when(
        pc.make_struct(pc.and_(member, pc.equal(hashed, REALIZED)), member),
        pa.scalar(REALIZED, pa.int8()),
        pa.scalar(EXISTING, pa.int8()),
        pa.scalar(NOT_MEMBER, pa.int8()),
    )
    return code, when


def rules_lookup(rules: Rules) -> dict[Segment, ir.Predicate]:
    return dict(rules)


def statuses_with(
    rules: Rules,
) -> Callable[[Population, pa.Array, pa.Array, Segment, bool], tuple[pa.Array, pa.Array]]:
    """A profile-records `statuses` function that follows these segments' definitions."""
    lookup = rules_lookup(rules)

    def statuses(
        population: Population, ids: pa.Array, empty: pa.Array, segment: Segment, evaluated: bool
    ) -> tuple[pa.Array, pa.Array]:
        return segment_statuses(
            population, ids, empty, segment, evaluated=evaluated, predicate=lookup.get(segment)
        )

    return statuses


def job_rules(job: SegmentJob) -> Rules:
    rules = []
    for ref in job.segments:
        expression = ref.expression
        predicate = predicate_of(
            expression.get("value", ""), expression.get("format", PQL_TEXT), expression.get("type", "PQL")
        )
        if predicate is not None:
            rules.append((Segment("ups", ref.id), predicate))
    return tuple(rules)


def count_segments(population: Population, segments: Sequence[Segment], rules: Rules) -> SegmentCounts:
    """Each segment's members (realized or existing), by namespace and by status, over the population."""
    lookup = rules_lookup(rules)
    members = dict.fromkeys((s.id for s in segments), 0)
    by_namespace = {s.id: dict.fromkeys(NAMESPACES, 0) for s in segments}
    by_status = {s.id: dict.fromkeys(STATUS_NAMES[1:], 0) for s in segments}
    for start in range(0, population.size, BLOCK):
        ids = population_ids(start, min(start + BLOCK, population.size))
        empty = empty_mask(population, ids)
        flags = identity_flags(population, ids, empty)
        for segment in segments:
            code, _ = segment_statuses(
                population, ids, empty, segment, evaluated=False, predicate=lookup.get(segment)
            )
            member = pc.is_in(code, value_set=pa.array([REALIZED, EXISTING], pa.int8()))
            members[segment.id] += _count(member)
            for namespace, present in flags.items():
                by_namespace[segment.id][namespace] += _count(pc.and_(member, present))
            for status, name in ((REALIZED, "realized"), (EXISTING, "existing"), (EXITED, "exited")):
                by_status[segment.id][name] += _count(pc.equal(code, status))
        # Arrow's allocator keeps freed pages for reuse: handed back, memory stays flat however large the
        # population.
        pa.default_memory_pool().release_unused()
    return SegmentCounts(
        population.size,
        {
            sid: SegmentCount(
                members[sid],
                {ns: n for ns, n in by_namespace[sid].items() if n},
                {status: n for status, n in by_status[sid].items() if n},
            )
            for sid in members
        },
    )


def _count(mask: pa.Array) -> int:
    return int(pc.sum(pc.cast(mask, pa.int64())).as_py() or 0)


class Audience:
    """Segment jobs' counts, computed when a job first shows them and kept (bounded LRU)."""

    def __init__(self, seed: int):
        self.seed = seed
        self.reset()

    def reset(self) -> None:
        self._by_job: OrderedDict[str, SegmentCounts] = OrderedDict()

    async def prepare(self, jobs: Sequence[SegmentJob]) -> None:
        """Count these jobs' members in the Arrow worker thread (a large population takes a while)."""
        for job in jobs:
            if job.id not in self._by_job:
                counts = await offload(self._count, job)
                self._store(job.id, counts)

    def job_counts(self, job: SegmentJob) -> SegmentCounts:
        cached = self._by_job.get(job.id)
        if cached is not None:
            self._by_job.move_to_end(job.id)
            return cached
        counts = self._count(job)
        self._store(job.id, counts)
        return counts

    def _store(self, job_id: str, counts: SegmentCounts) -> None:
        self._by_job[job_id] = counts
        if len(self._by_job) > _CACHE_SIZE:
            self._by_job.popitem(last=False)

    def _count(self, job: SegmentJob) -> SegmentCounts:
        profiles = job.scenario.profiles
        population = Population(
            seed=self.seed,
            tenant=population_tenant(job.tenant.org, job.tenant.sandbox),
            count=profiles.count,
            empty=profiles.empty_profiles,
            events_per_profile=profiles.events_per_profile,
        )
        segments = [Segment("ups", ref.id) for ref in job.segments]
        return count_segments(population, segments, job_rules(job))
