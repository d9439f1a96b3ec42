"""A tenant's seeded population: who is in it, who is event-only, identities, updates and memberships.

A tenant's population is profiles `0 .. size-1`: `count` profiles with a profile record and `empty`
event-only ("empty") profiles spread evenly among them. A profile's values depend only on (seed, tenant,
index), and its membership of a segment only on (seed, tenant, index, segment), so every job of a tenant
sees the same people and a segment has the same members in all of them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.compute as pc

from emulator.exportdata.arrays import U64, arange
from emulator.exportdata.hashing import Hasher, below, chance, key64, low, mix, scaled, u64
from emulator.jobs import DEFAULT_SEGMENT_NS

# Every timestamp of the population lies in this window, whatever the clock says, so that the same seed
# gives the same bytes on any day.
WINDOW_START_MS = int(datetime(2023, 1, 1, tzinfo=UTC).timestamp() * 1000)
WINDOW_END_MS = int(datetime(2024, 1, 1, tzinfo=UTC).timestamp() * 1000)
WINDOW_SECONDS = (WINDOW_END_MS - WINDOW_START_MS) // 1000
# The instant at which `evaluationInfo.segmentation` re-evaluates segments (fixed, for the same reason).
EVALUATED_AT_MS = WINDOW_END_MS

NAMESPACES = ("ECID", "email", "phone")
# Share of profiles (with a profile record) that have each identity; one without any gets an ECID.
_IDENTITY_SHARE = {"ECID": 0.9, "email": 0.8, "phone": 0.6}

NOT_MEMBER, REALIZED, EXISTING, EXITED = 0, 1, 2, 3
STATUS_NAMES = ("", "realized", "existing", "exited")
STATUS_CODES = {name: code for code, name in enumerate(STATUS_NAMES) if name}
# Cumulative shares of a segment's memberships: 15% realized, 25% existing, 10% exited, the rest none.
_STATUS_THRESHOLDS = (0.15, 0.40, 0.50)
_EVALUATION_CHANGE = 0.12  # share of non-members (members) a fresh evaluation brings in (lets go)

BASE_SEGMENTS_PER_TENANT = 3


@dataclass(frozen=True)
class Segment:
    ns: str
    id: str


@dataclass(frozen=True)
class Population:
    """A tenant's people: the same (seed, tenant, count, empty, events) always gives the same population."""

    seed: int
    tenant: str
    count: int
    empty: int = 0
    events_per_profile: tuple[int, int] = (0, 5)

    @property
    def size(self) -> int:
        return self.count + self.empty

    @property
    def key(self) -> int:
        return key64(f"{self.seed}\x00{self.tenant}")

    def base_segments(self) -> tuple[Segment, ...]:
        """Segments every profile of the tenant is evaluated against, whatever the job asks for."""
        return tuple(
            Segment(DEFAULT_SEGMENT_NS, str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.key}/segment/{n}")))
            for n in range(BASE_SEGMENTS_PER_TENANT)
        )


@dataclass(frozen=True)
class EventWindow:
    """Only events ingested strictly after `after_ms` and strictly before `before_ms` (when given)."""

    after_ms: int | None = None
    before_ms: int | None = None


def population_ids(start: int, stop: int) -> pa.Array:
    """Profile indices start .. stop-1 (uint64)."""
    return pc.add(pc.cast(arange(stop - start), U64), u64(start))


def timestamps_ms(h: pa.Array) -> pa.Array:
    """Epoch milliseconds uniform in the population window."""
    seconds = pc.add(below(h, WINDOW_SECONDS), u64(WINDOW_START_MS // 1000))
    millis = scaled(low(h), 1000)
    return pc.cast(pc.add(pc.multiply(seconds, u64(1000)), millis), pa.int64())


def empty_mask(population: Population, ids: pa.Array) -> pa.Array:
    """Which profiles are event-only: exactly `empty` of them, spread evenly over the population."""
    if population.empty == 0:
        return pa.repeat(False, len(ids))
    size, empty = population.size, population.empty
    # Profile i is empty when floor((i+1)*E/N) > floor(i*E/N); integer arithmetic, exact for any size.
    ids64 = pc.cast(ids, U64)
    before = pc.divide(pc.multiply(ids64, u64(empty)), u64(size))
    after = pc.divide(pc.multiply(pc.add(ids64, u64(1)), u64(empty)), u64(size))
    return pc.greater(after, before)


def identity_flags(population: Population, ids: pa.Array, empty: pa.Array) -> dict[str, pa.Array]:
    """Which identity namespaces each profile has; an event-only profile is known by its ECID only."""
    h = Hasher(population.key, ids)("identities")
    email = pc.and_(chance(h, _IDENTITY_SHARE["email"], 16), pc.invert(empty))
    phone = pc.and_(chance(h, _IDENTITY_SHARE["phone"], 32), pc.invert(empty))
    ecid = pc.or_(chance(h, _IDENTITY_SHARE["ECID"], 0), pc.invert(pc.or_(email, phone)))
    return {"ECID": ecid, "email": email, "phone": phone}


def modify_times_ms(population: Population, ids: pa.Array) -> pa.Array:
    """When each profile was last updated (`_repo.modifyDate`, and what `fromIngestTimestamp` compares)."""
    return timestamps_ms(Hasher(population.key, ids)("modifyDate"))


def membership(
    population: Population, ids: pa.Array, empty: pa.Array, segment: Segment, *, evaluated: bool
) -> tuple[pa.Array, pa.Array]:
    """Status code (NOT_MEMBER, REALIZED, EXISTING, EXITED) and epoch-ms qualification time of each profile.

    With `evaluated` (the job's `evaluationInfo.segmentation`), the segment is evaluated afresh at
    EVALUATED_AT_MS: some non-members enter (realized), realized members stay (existing) and some
    existing members leave (exited).
    """
    h = Hasher(population.key, ids)(f"segment\x00{segment.ns}\x00{segment.id}")
    bits = pc.bit_wise_and(h, u64(0xFFFF))
    realized, existing, exited = (u64(int(t * 65536)) for t in _STATUS_THRESHOLDS)
    code = pc.case_when(
        pc.make_struct(empty, pc.less(bits, realized), pc.less(bits, existing), pc.less(bits, exited)),
        pa.scalar(NOT_MEMBER, pa.int8()),
        pa.scalar(REALIZED, pa.int8()),
        pa.scalar(EXISTING, pa.int8()),
        pa.scalar(EXITED, pa.int8()),
        pa.scalar(NOT_MEMBER, pa.int8()),
    )
    when = timestamps_ms(mix(h))
    if not evaluated:
        return code, when
    change = pc.and_(chance(h, _EVALUATION_CHANGE, 16), pc.invert(empty))
    enters = pc.and_(pc.equal(code, NOT_MEMBER), change)
    leaves = pc.and_(pc.equal(code, EXISTING), change)
    code = pc.case_when(
        pc.make_struct(enters, leaves, pc.equal(code, REALIZED)),
        pa.scalar(REALIZED, pa.int8()),
        pa.scalar(EXITED, pa.int8()),
        pa.scalar(EXISTING, pa.int8()),
        code,
    )
    when = pc.if_else(pc.or_(enters, leaves), pa.scalar(EVALUATED_AT_MS, pa.int64()), when)
    return code, when
