"""Seeded XDM Individual Profile records and their ExperienceEvents, generated column-wise.

Faker makes a few thousand profiles a second, far too slow for exports of millions. So Faker runs once per
seed, to fill pools of realistic values (names, addresses, e-mail domains), and every value of a profile is
picked from those pools by a counter-based hash of (seed, tenant, profile index, field). Any profile can be
generated on its own, in any order, with the same result; whole columns are computed at once with pyarrow.

A tenant's population is profiles `0 .. size-1`: `count` profiles with a profile record and `empty`
event-only ("empty") profiles spread evenly among them. A profile's values depend only on (seed, tenant,
index), and its membership of a segment only on (seed, tenant, index, segment), so every job of a tenant
sees the same people and a segment has the same members in all of them.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache, lru_cache

import faker
import pyarrow as pa
import pyarrow.compute as pc

# Every timestamp of the population lies in this window, whatever the clock says, so that the same seed
# gives the same bytes on any day.
WINDOW_START_MS = int(datetime(2023, 1, 1, tzinfo=UTC).timestamp() * 1000)
WINDOW_END_MS = int(datetime(2024, 1, 1, tzinfo=UTC).timestamp() * 1000)
# The instant at which `evaluationInfo.segmentation` re-evaluates segments (fixed, for the same reason).
EVALUATED_AT_MS = WINDOW_END_MS
_WINDOW_SECONDS = (WINDOW_END_MS - WINDOW_START_MS) // 1000
_BIRTH_FIRST_DAY = (datetime(1940, 1, 1) - datetime(1970, 1, 1)).days
_BIRTH_DAYS = (datetime(2006, 1, 1) - datetime(1940, 1, 1)).days
_MAX_EVENT_LAG_SECONDS = 6 * 3600  # events are ingested up to 6 hours after they happen

NAMESPACES = ("ECID", "email", "phone")
# Share of profiles (with a profile record) that have each identity; one without any gets an ECID.
_IDENTITY_SHARE = {"ECID": 0.9, "email": 0.8, "phone": 0.6}
_AUTHENTICATED_STATE = {"ECID": "ambiguous", "email": "authenticated", "phone": "authenticated"}

NOT_MEMBER, REALIZED, EXISTING, EXITED = 0, 1, 2, 3
STATUS_NAMES = ("", "realized", "existing", "exited")
STATUS_CODES = {name: code for code, name in enumerate(STATUS_NAMES) if name}
# Cumulative shares of a segment's memberships: 15% realized, 25% existing, 10% exited, the rest none.
_STATUS_THRESHOLDS = (0.15, 0.40, 0.50)
_EVALUATION_CHANGE = 0.12  # share of non-members (members) a fresh evaluation brings in (lets go)

DEFAULT_SEGMENT_NS = "ups"
BASE_SEGMENTS_PER_TENANT = 3
_POOL_SIZE = 1000  # values of each kind, shared out among the locales
# Faker locale, homeAddress.country, homeAddress.countryCode, phone country calling code.
_LOCALES = (
    ("en_US", "United States", "US", "+1"),
    ("en_GB", "United Kingdom", "GB", "+44"),
    ("de_DE", "Germany", "DE", "+49"),
    ("fr_FR", "France", "FR", "+33"),
)
EVENT_TYPES = (
    "web.webpagedetails.pageViews",
    "web.webinteraction.linkClicks",
    "commerce.productViews",
    "commerce.productListAdds",
    "commerce.checkouts",
    "commerce.purchases",
    "application.launch",
    "message.feedback",
)

_U64 = pa.uint64()
_TIMESTAMP = pa.timestamp("ms", tz="UTC")


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
        return _key64(f"{self.seed}\x00{self.tenant}")

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


# -- value pools (Faker, once per seed) --------------------------------------------------------------


@dataclass(frozen=True)
class Pools:
    """Per locale, `per_locale` consecutive entries of each aligned pool."""

    per_locale: int
    phone_prefixes: pa.Array
    first_names: pa.Array
    last_names: pa.Array
    email_first: pa.Array  # first names made e-mail-safe, aligned with first_names
    email_last: pa.Array
    email_domains: pa.Array
    streets: pa.Array
    cities: pa.Array
    postal_codes: pa.Array
    countries: pa.Array
    country_codes: pa.Array
    event_types: pa.Array


@lru_cache(maxsize=4)
def pools(seed: int) -> Pools:
    """Realistic values from Faker, made once per seed (Faker is deterministic for a seed and version)."""
    first: list[str] = []
    last: list[str] = []
    streets: list[str] = []
    cities: list[str] = []
    postal: list[str] = []
    countries: list[str] = []
    codes: list[str] = []
    per_locale = _POOL_SIZE // len(_LOCALES)
    for number, (locale, country, code, _) in enumerate(_LOCALES):
        fake = faker.Faker(locale)
        fake.seed_instance(seed * 31 + number)
        for _ in range(per_locale):
            first.append(fake.first_name())
            last.append(fake.last_name())
            streets.append(fake.street_address().replace("\n", ", "))
            cities.append(fake.city())
            postal.append(fake.postcode())
            countries.append(country)
            codes.append(code)
    fake = faker.Faker("en_US")
    fake.seed_instance(seed)
    domains = sorted({fake.free_email_domain() for _ in range(50)})
    return Pools(
        per_locale=per_locale,
        phone_prefixes=pa.array([prefix for *_, prefix in _LOCALES]),
        first_names=pa.array(first),
        last_names=pa.array(last),
        email_first=pa.array([_email_safe(name) for name in first]),
        email_last=pa.array([_email_safe(name) for name in last]),
        email_domains=pa.array(domains),
        streets=pa.array(streets),
        cities=pa.array(cities),
        postal_codes=pa.array(postal),
        countries=pa.array(countries),
        country_codes=pa.array(codes),
        event_types=pa.array(EVENT_TYPES),
    )


def _email_safe(name: str) -> str:
    ascii_only = name.lower().encode("ascii", "ignore").decode()
    return "".join(c for c in ascii_only if c.isalnum()) or "user"


# -- the counter-based hash ---------------------------------------------------------------------------


def _key64(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


@cache
def _u64(value: int) -> pa.Scalar:
    return pa.scalar(value, _U64)


def _mix(x: pa.Array) -> pa.Array:
    """SplitMix64's finalizer: a bijection of uint64 whose output bits all depend on every input bit."""
    x = pc.bit_wise_xor(x, pc.shift_right(x, _u64(30)))
    x = pc.multiply(x, _u64(0xBF58476D1CE4E5B9))
    x = pc.bit_wise_xor(x, pc.shift_right(x, _u64(27)))
    x = pc.multiply(x, _u64(0x94D049BB133111EB))
    return pc.bit_wise_xor(x, pc.shift_right(x, _u64(31)))


class Hasher:
    """Independent 64-bit hashes of the same rows for each named field (or event, by ordinal)."""

    def __init__(self, key: int, ids: pa.Array, salt: pa.Array | None = None):
        base = pc.multiply(pc.cast(ids, _U64), _u64(0x9E3779B97F4A7C15))
        if salt is not None:
            base = pc.bit_wise_xor(base, _mix(pc.add(pc.cast(salt, _U64), _u64(0xD1B54A32D192ED03))))
        self._base = base
        self._key = key

    def __call__(self, field: str) -> pa.Array:
        return _mix(pc.bit_wise_xor(self._base, _u64(_key64(f"{self._key}\x00{field}"))))


def _high(h: pa.Array) -> pa.Array:
    return pc.shift_right(h, _u64(32))


def _low(h: pa.Array) -> pa.Array:
    return pc.bit_wise_and(h, _u64(0xFFFFFFFF))


def _scaled(bits32: pa.Array, n: int) -> pa.Array:
    """Uniform in [0, n) from 32 uniform bits (n < 2**32): multiply and shift, no modulo bias to speak of."""
    return pc.shift_right(pc.multiply(bits32, _u64(n)), _u64(32))


def _below(h: pa.Array, n: int) -> pa.Array:
    return _scaled(_high(h), n)


def _chance(h: pa.Array, share: float, shift: int = 0) -> pa.Array:
    """True for about `share` of rows, decided by 16 bits of `h` starting at `shift`."""
    bits = pc.bit_wise_and(pc.shift_right(h, _u64(shift)), _u64(0xFFFF))
    return pc.less(bits, _u64(int(share * 65536)))


def _timestamps_ms(h: pa.Array) -> pa.Array:
    """Epoch milliseconds uniform in the population window."""
    seconds = pc.add(_below(h, _WINDOW_SECONDS), _u64(WINDOW_START_MS // 1000))
    millis = _scaled(_low(h), 1000)
    return pc.cast(pc.add(pc.multiply(seconds, _u64(1000)), millis), pa.int64())


def _digits(h: pa.Array, width: int) -> pa.Array:
    """A string of exactly `width` decimal digits (width <= 18) from a hash."""
    value = pc.shift_right(h, _u64(64 - int(width * 3.3219280948873626)))
    return pc.utf8_lpad(pc.cast(value, pa.string()), width=width, padding="0")


# -- the population ----------------------------------------------------------------------------------


def empty_mask(population: Population, ids: pa.Array) -> pa.Array:
    """Which profiles are event-only: exactly `empty` of them, spread evenly over the population."""
    if population.empty == 0:
        return pa.repeat(False, len(ids))
    size, empty = population.size, population.empty
    # Profile i is empty when floor((i+1)*E/N) > floor(i*E/N); integer arithmetic, exact for any size.
    ids64 = pc.cast(ids, _U64)
    before = pc.divide(pc.multiply(ids64, _u64(empty)), _u64(size))
    after = pc.divide(pc.multiply(pc.add(ids64, _u64(1)), _u64(empty)), _u64(size))
    return pc.greater(after, before)


def identity_flags(population: Population, ids: pa.Array, empty: pa.Array) -> dict[str, pa.Array]:
    """Which identity namespaces each profile has; an event-only profile is known by its ECID only."""
    h = Hasher(population.key, ids)("identities")
    email = pc.and_(_chance(h, _IDENTITY_SHARE["email"], 16), pc.invert(empty))
    phone = pc.and_(_chance(h, _IDENTITY_SHARE["phone"], 32), pc.invert(empty))
    ecid = pc.or_(_chance(h, _IDENTITY_SHARE["ECID"], 0), pc.invert(pc.or_(email, phone)))
    return {"ECID": ecid, "email": email, "phone": phone}


def modify_times_ms(population: Population, ids: pa.Array) -> pa.Array:
    """When each profile was last updated (`_repo.modifyDate`, and what `fromIngestTimestamp` compares)."""
    return _timestamps_ms(Hasher(population.key, ids)("modifyDate"))


def membership(
    population: Population, ids: pa.Array, empty: pa.Array, segment: Segment, *, evaluated: bool
) -> tuple[pa.Array, pa.Array]:
    """Status code (NOT_MEMBER, REALIZED, EXISTING, EXITED) and epoch-ms qualification time of each profile.

    With `evaluated` (the job's `evaluationInfo.segmentation`), the segment is evaluated afresh at
    EVALUATED_AT_MS: some non-members enter (realized), realized members stay (existing) and some
    existing members leave (exited).
    """
    h = Hasher(population.key, ids)(f"segment\x00{segment.ns}\x00{segment.id}")
    bits = pc.bit_wise_and(h, _u64(0xFFFF))
    realized, existing, exited = (_u64(int(t * 65536)) for t in _STATUS_THRESHOLDS)
    code = pc.case_when(
        pc.make_struct(empty, pc.less(bits, realized), pc.less(bits, existing), pc.less(bits, exited)),
        pa.scalar(NOT_MEMBER, pa.int8()),
        pa.scalar(REALIZED, pa.int8()),
        pa.scalar(EXISTING, pa.int8()),
        pa.scalar(EXITED, pa.int8()),
        pa.scalar(NOT_MEMBER, pa.int8()),
    )
    when = _timestamps_ms(_mix(h))
    if not evaluated:
        return code, when
    change = pc.and_(_chance(h, _EVALUATION_CHANGE, 16), pc.invert(empty))
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


# -- records -----------------------------------------------------------------------------------------

PROFILE_COLUMNS = (
    "identityMap",
    "person",
    "personalEmail",
    "mobilePhone",
    "homeAddress",
    "segmentMembership",
    "_repo",
)
EVENT_COLUMN = "eventList"


def profile_records(
    population: Population,
    ids: pa.Array,
    segments: Sequence[Segment],
    *,
    evaluated: bool = False,
    events: EventWindow | None = None,
    columns: Iterable[str] | None = None,
) -> pa.Table:
    """XDM Individual Profile rows for profile indices `ids` (ascending or not, any length).

    `segments` are those shown in `segmentMembership` (where the profile has a status); `events` adds
    `eventList` with the profile's ExperienceEvents in that ingestion window; `columns` limits the
    top-level fields built (in PROFILE_COLUMNS order, `eventList` last).
    """
    ids = pc.cast(ids, _U64)
    wanted = set(PROFILE_COLUMNS if columns is None else columns)
    pool = pools(population.seed)
    hasher = Hasher(population.key, ids)
    empty = empty_mask(population, ids)
    flags = identity_flags(population, ids, empty)
    # A person's names, address and phone prefix come from one locale.
    h = hasher("person")
    locale = _scaled(_low(h), len(_LOCALES))
    base = pc.multiply(locale, _u64(pool.per_locale))
    first_index = pc.add(base, _below(h, pool.per_locale))
    last_index = pc.add(base, _below(_mix(h), pool.per_locale))
    address_index = pc.add(base, _below(_mix(_mix(h)), pool.per_locale))
    email = _emails(pool, hasher, first_index, last_index)
    phone_prefix = pc.take(pool.phone_prefixes, locale)
    phone = pc.binary_join_element_wise(phone_prefix, _digits(hasher("phone"), 10), "")
    built: dict[str, pa.Array] = {}
    if "identityMap" in wanted:
        built["identityMap"] = _identity_map(hasher, flags, email, phone)
    if "person" in wanted:
        days = pc.cast(_below(hasher("birthDate"), _BIRTH_DAYS), pa.int32())
        birth_days = pc.add(days, pa.scalar(_BIRTH_FIRST_DAY, pa.int32()))
        person_name = pa.StructArray.from_arrays(
            [pc.take(pool.first_names, first_index), pc.take(pool.last_names, last_index)],
            names=["firstName", "lastName"],
        )
        built["person"] = pa.StructArray.from_arrays(
            [person_name, pc.cast(birth_days, pa.date32())], names=["name", "birthDate"], mask=empty
        )
    if "personalEmail" in wanted:
        built["personalEmail"] = pa.StructArray.from_arrays(
            [email], names=["address"], mask=pc.invert(flags["email"])
        )
    if "mobilePhone" in wanted:
        built["mobilePhone"] = pa.StructArray.from_arrays(
            [phone], names=["number"], mask=pc.invert(flags["phone"])
        )
    if "homeAddress" in wanted:
        address = address_index
        built["homeAddress"] = pa.StructArray.from_arrays(
            [
                pc.take(pool.streets, address),
                pc.take(pool.cities, address),
                pc.take(pool.postal_codes, address),
                pc.take(pool.countries, address),
                pc.take(pool.country_codes, address),
            ],
            names=["street1", "city", "postalCode", "country", "countryCode"],
            mask=empty,
        )
    if "segmentMembership" in wanted:
        built["segmentMembership"] = _segment_membership(population, ids, empty, segments, evaluated)
    if "_repo" in wanted:
        modified = pc.cast(modify_times_ms(population, ids), _TIMESTAMP)
        built["_repo"] = pa.StructArray.from_arrays([modified], names=["modifyDate"], mask=empty)
    if events is not None and (columns is None or EVENT_COLUMN in wanted):
        built[EVENT_COLUMN] = event_lists(population, ids, empty, events)
    order = [*PROFILE_COLUMNS, EVENT_COLUMN]
    names_in_order = [name for name in order if name in built]
    return pa.Table.from_arrays([built[name] for name in names_in_order], names=names_in_order)


def _emails(pool: Pools, hasher: Hasher, first_index: pa.Array, last_index: pa.Array) -> pa.Array:
    h = hasher("email")
    number = pc.cast(_below(h, 1000), pa.string())
    domain = pc.take(pool.email_domains, _scaled(_low(h), len(pool.email_domains)))
    first, last = pc.take(pool.email_first, first_index), pc.take(pool.email_last, last_index)
    return pc.binary_join_element_wise(first, ".", last, number, "@", domain, "")


def _identity_map(hasher: Hasher, flags: dict[str, pa.Array], email: pa.Array, phone: pa.Array) -> pa.Array:
    h = hasher("ECID")
    # ECIDs are 38 decimal digits.
    ecid = pc.binary_join_element_wise(_digits(h, 18), _digits(_mix(h), 18), _digits(_mix(_mix(h)), 2), "")
    # The primary identity: e-mail when known, else the ECID, else the phone.
    primary = {
        "email": flags["email"],
        "ECID": pc.and_(flags["ECID"], pc.invert(flags["email"])),
        "phone": pc.and_(flags["phone"], pc.invert(pc.or_(flags["email"], flags["ECID"]))),
    }
    values = {"ECID": ecid, "email": email, "phone": phone}
    items: list[pa.Array] = []
    for namespace in NAMESPACES:
        n = len(values[namespace])
        identity = pa.StructArray.from_arrays(
            [
                values[namespace],
                pa.repeat(_AUTHENTICATED_STATE[namespace], n),
                primary[namespace],
            ],
            names=["id", "authenticatedState", "primary"],
        )
        items.append(pa.ListArray.from_arrays(_arange(n + 1), identity))
    identity_map, _ = sparse_map(list(NAMESPACES), items, [flags[ns] for ns in NAMESPACES])
    return identity_map


def _segment_membership(
    population: Population,
    ids: pa.Array,
    empty: pa.Array,
    segments: Sequence[Segment],
    evaluated: bool,
) -> pa.Array:
    """map<namespace, map<segmentId, {status, lastQualificationTime}>>; null when in no segment."""
    by_namespace: dict[str, list[Segment]] = {}
    for segment in segments:
        by_namespace.setdefault(segment.ns, []).append(segment)
    inner_maps: list[pa.Array] = []
    inner_present: list[pa.Array] = []
    statuses = pa.array(STATUS_NAMES)
    for namespace_segments in by_namespace.values():
        values: list[pa.Array] = []
        present: list[pa.Array] = []
        for segment in namespace_segments:
            code, when = membership(population, ids, empty, segment, evaluated=evaluated)
            values.append(
                pa.StructArray.from_arrays(
                    [pc.take(statuses, code), pc.cast(when, _TIMESTAMP)],
                    names=["status", "lastQualificationTime"],
                )
            )
            present.append(pc.not_equal(code, NOT_MEMBER))
        inner, any_present = sparse_map([s.id for s in namespace_segments], values, present)
        inner_maps.append(inner)
        inner_present.append(any_present)
    if not inner_maps:
        return pa.nulls(len(ids), _MEMBERSHIP_TYPE)
    outer, any_membership = sparse_map(list(by_namespace), inner_maps, inner_present)
    return _with_nulls(outer, pc.invert(any_membership))


_STATUS_TYPE = pa.struct([("status", pa.string()), ("lastQualificationTime", _TIMESTAMP)])
_MEMBERSHIP_TYPE = pa.map_(pa.string(), pa.map_(pa.string(), _STATUS_TYPE))


def sparse_map(
    keys: Sequence[str], values: Sequence[pa.Array], present: Sequence[pa.Array]
) -> tuple[pa.MapArray, pa.Array]:
    """Per row, a map of `keys[k] -> values[k][row]` for each k where `present[k][row]`.

    Also returns which rows have at least one entry. All `values` have the same type and length.
    """
    n = len(present[0])
    width = len(keys)
    position = _arange(n * width)
    row = pc.divide(position, pa.scalar(width, pa.int64()))
    slot = pc.subtract(position, pc.multiply(row, pa.scalar(width, pa.int64())))
    # Entries in row-major order: row 0's keys in order, then row 1's, ...
    permutation = pc.add(pc.multiply(slot, pa.scalar(n, pa.int64())), row)
    keep = pc.take(pa.concat_arrays([pc.cast(p, pa.bool_()) for p in present]), permutation)
    entry_keys = pc.filter(pc.take(pa.array(list(keys)), slot), keep)
    entry_values = pc.filter(pc.take(pa.concat_arrays(list(values)), permutation), keep)
    counts = pa.concat_arrays([pc.cast(p, pa.int32()) for p in present])
    per_row = pc.cast(counts, pa.int32())
    per_row_total = _sum_columns([per_row.slice(k * n, n) for k in range(width)])
    offsets = _offsets(per_row_total)
    mapped = pa.MapArray.from_arrays(offsets, entry_keys, entry_values)
    return mapped, pc.greater(per_row_total, pa.scalar(0, pa.int32()))


def _sum_columns(columns: Sequence[pa.Array]) -> pa.Array:
    total = columns[0]
    for column in columns[1:]:
        total = pc.add(total, column)
    return total


def _offsets(lengths: pa.Array) -> pa.Array:
    """List offsets (int32, one longer than `lengths`) from per-row lengths."""
    ends = pc.cumulative_sum(pc.cast(lengths, pa.int32()))
    return pa.concat_arrays([pa.array([0], pa.int32()), pc.cast(ends, pa.int32())])


def _with_nulls(array: pa.Array, null: pa.Array) -> pa.Array:
    """`array` with the rows where `null` is true set to null (nested types included)."""
    if not pc.any(null).as_py():
        return array
    return pc.if_else(null, pa.scalar(None, array.type), array)


@lru_cache(maxsize=8)
def _arange_cached(n: int) -> pa.Array:
    return pa.array(range(n), pa.int64())


def _arange(n: int) -> pa.Array:
    """0 .. n-1 as int64 (sliced from a cached power-of-two range, so few distinct sizes are built)."""
    size = 1 << max(n - 1, 1).bit_length()
    return _arange_cached(size).slice(0, n)


def population_ids(start: int, stop: int) -> pa.Array:
    """Profile indices start .. stop-1 (uint64)."""
    return pc.add(pc.cast(_arange(stop - start), _U64), _u64(start))


# -- events ------------------------------------------------------------------------------------------

_EVENT_SYSTEM_TYPE = pa.struct([("ingestTime", pa.int64())])


def event_counts(population: Population, ids: pa.Array, empty: pa.Array) -> pa.Array:
    """How many ExperienceEvents each profile has; an event-only profile has at least one."""
    low, high = population.events_per_profile
    h = Hasher(population.key, pc.cast(ids, _U64))("events")
    counts = pc.add(_below(h, high - low + 1), _u64(low))
    if low == 0:
        counts = pc.if_else(pc.and_(empty, pc.equal(counts, _u64(0))), _u64(1), counts)
    return pc.cast(counts, pa.int32())


def event_lists(population: Population, ids: pa.Array, empty: pa.Array, window: EventWindow) -> pa.Array:
    """Each profile's events, oldest first: list<{_id, timestamp, eventType, _acp_system_metadata}>."""
    counts = event_counts(population, ids, empty)
    offsets = _offsets(counts)
    total = offsets[-1].as_py()
    parents = pc.list_parent_indices(pa.ListArray.from_arrays(offsets, pa.nulls(total, pa.int8())))
    ordinal = pc.subtract(_arange(total), pc.cast(pc.take(offsets, parents), pa.int64()))
    profile_ids = pc.take(pc.cast(ids, _U64), parents)
    hasher = Hasher(population.key, profile_ids, salt=ordinal)
    h = hasher("event")
    # Spread a profile's events over the window in order: ordinal k of n falls in the k-th slice.
    per_profile = pc.cast(pc.take(counts, parents), _U64)
    slice_seconds = pc.divide(_u64(_WINDOW_SECONDS), per_profile)
    seconds = pc.add(
        pc.multiply(pc.cast(ordinal, _U64), slice_seconds),
        pc.shift_right(pc.multiply(_high(h), slice_seconds), _u64(32)),
    )
    happened = pc.add(
        pc.multiply(pc.add(seconds, _u64(WINDOW_START_MS // 1000)), _u64(1000)), _scaled(_low(h), 1000)
    )
    lag = pc.multiply(_below(_mix(h), _MAX_EVENT_LAG_SECONDS), _u64(1000))
    ingested = pc.cast(pc.add(happened, lag), pa.int64())
    keep = pa.repeat(True, total)
    if window.after_ms is not None:
        keep = pc.and_(keep, pc.greater(ingested, pa.scalar(window.after_ms, pa.int64())))
    if window.before_ms is not None:
        keep = pc.and_(keep, pc.less(ingested, pa.scalar(window.before_ms, pa.int64())))
    event_ids = pc.binary_join_element_wise(_digits(hasher("eventId"), 18), _digits(_mix(h), 14), "")
    pool = pools(population.seed)
    records = pa.StructArray.from_arrays(
        [
            event_ids,
            pc.cast(pc.cast(happened, pa.int64()), _TIMESTAMP),
            pc.take(pool.event_types, _scaled(_low(_mix(_mix(h))), len(pool.event_types))),
            pa.StructArray.from_arrays([ingested], fields=list(_EVENT_SYSTEM_TYPE)),
        ],
        names=["_id", "timestamp", "eventType", "_acp_system_metadata"],
    )
    if window.after_ms is None and window.before_ms is None:
        return pa.ListArray.from_arrays(offsets, records)
    # New offsets: how many kept events precede each profile's first event.
    kept_before = _offsets(pc.cast(keep, pa.int32()))
    return pa.ListArray.from_arrays(pc.take(kept_before, offsets), pc.filter(records, keep))
