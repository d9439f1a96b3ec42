"""Seeded XDM Individual Profile records, built a column at a time for any profile indices."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime

import pyarrow as pa
import pyarrow.compute as pc

from emulator.exportdata.arrays import TIMESTAMP_MS, U64, arange, offsets
from emulator.exportdata.events import event_lists
from emulator.exportdata.hashing import Hasher, below, digits, low, mix, scaled, u64
from emulator.exportdata.pools import LOCALES, Pools, pools
from emulator.exportdata.population import (
    NAMESPACES,
    NOT_MEMBER,
    STATUS_NAMES,
    EventWindow,
    Population,
    Segment,
    empty_mask,
    identity_flags,
    membership,
    modify_times_ms,
)

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

_BIRTH_FIRST_DAY = (datetime(1940, 1, 1) - datetime(1970, 1, 1)).days
_BIRTH_DAYS = (datetime(2006, 1, 1) - datetime(1940, 1, 1)).days
_AUTHENTICATED_STATE = {"ECID": "ambiguous", "email": "authenticated", "phone": "authenticated"}
_STATUS_TYPE = pa.struct([("status", pa.string()), ("lastQualificationTime", TIMESTAMP_MS)])
_MEMBERSHIP_TYPE = pa.map_(pa.string(), pa.map_(pa.string(), _STATUS_TYPE))
# (population, ids, empty, segment, evaluated) -> (status code, qualification time) of each profile.
Statuses = Callable[[Population, pa.Array, pa.Array, Segment, bool], tuple[pa.Array, pa.Array]]


def hashed_statuses(
    population: Population, ids: pa.Array, empty: pa.Array, segment: Segment, evaluated: bool
) -> tuple[pa.Array, pa.Array]:
    return membership(population, ids, empty, segment, evaluated=evaluated)


def profile_records(
    population: Population,
    ids: pa.Array,
    segments: Sequence[Segment],
    *,
    evaluated: bool = False,
    events: EventWindow | None = None,
    columns: Iterable[str] | None = None,
    statuses: Statuses = hashed_statuses,
) -> pa.Table:
    """XDM Individual Profile rows for profile indices `ids` (ascending or not, any length).

    `segments` are those shown in `segmentMembership` (where the profile has a status); `events` adds
    `eventList` with the profile's ExperienceEvents in that ingestion window; `columns` limits the
    top-level fields built (in PROFILE_COLUMNS order, `eventList` last); `statuses` decides each
    profile's status in a segment (the deterministic hash unless the caller knows the segment's definition).
    """
    ids = pc.cast(ids, U64)
    wanted = set(PROFILE_COLUMNS if columns is None else columns)
    pool = pools(population.seed)
    hasher = Hasher(population.key, ids)
    empty = empty_mask(population, ids)
    flags = identity_flags(population, ids, empty)
    # A person's names, address and phone prefix come from one locale.
    h = hasher("person")
    locale = scaled(low(h), len(LOCALES))
    base = pc.multiply(locale, u64(pool.per_locale))
    first_index = pc.add(base, below(h, pool.per_locale))
    last_index = pc.add(base, below(mix(h), pool.per_locale))
    address_index = pc.add(base, below(mix(mix(h)), pool.per_locale))
    email = _emails(pool, hasher, first_index, last_index)
    phone_prefix = pc.take(pool.phone_prefixes, locale)
    phone = pc.binary_join_element_wise(phone_prefix, digits(hasher("phone"), 10), "")
    built: dict[str, pa.Array] = {}
    if "identityMap" in wanted:
        built["identityMap"] = _identity_map(hasher, flags, email, phone)
    if "person" in wanted:
        days = pc.cast(below(hasher("birthDate"), _BIRTH_DAYS), pa.int32())
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
        built["segmentMembership"] = _segment_membership(
            population, ids, empty, segments, evaluated, statuses
        )
    if "_repo" in wanted:
        modified = pc.cast(modify_times_ms(population, ids), TIMESTAMP_MS)
        built["_repo"] = pa.StructArray.from_arrays([modified], names=["modifyDate"], mask=empty)
    if events is not None and (columns is None or EVENT_COLUMN in wanted):
        built[EVENT_COLUMN] = event_lists(population, ids, empty, events)
    order = [*PROFILE_COLUMNS, EVENT_COLUMN]
    names_in_order = [name for name in order if name in built]
    return pa.Table.from_arrays([built[name] for name in names_in_order], names=names_in_order)


def _emails(pool: Pools, hasher: Hasher, first_index: pa.Array, last_index: pa.Array) -> pa.Array:
    h = hasher("email")
    number = pc.cast(below(h, 1000), pa.string())
    domain = pc.take(pool.email_domains, scaled(low(h), len(pool.email_domains)))
    first, last = pc.take(pool.email_first, first_index), pc.take(pool.email_last, last_index)
    return pc.binary_join_element_wise(first, ".", last, number, "@", domain, "")


def _identity_map(hasher: Hasher, flags: dict[str, pa.Array], email: pa.Array, phone: pa.Array) -> pa.Array:
    h = hasher("ECID")
    # ECIDs are 38 decimal digits.
    ecid = pc.binary_join_element_wise(digits(h, 18), digits(mix(h), 18), digits(mix(mix(h)), 2), "")
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
        items.append(pa.ListArray.from_arrays(arange(n + 1), identity))
    identity_map, _ = sparse_map(list(NAMESPACES), items, [flags[ns] for ns in NAMESPACES])
    return identity_map


def _segment_membership(
    population: Population,
    ids: pa.Array,
    empty: pa.Array,
    segments: Sequence[Segment],
    evaluated: bool,
    statuses: Statuses,
) -> pa.Array:
    """map<namespace, map<segmentId, {status, lastQualificationTime}>>; null when in no segment."""
    by_namespace: dict[str, list[Segment]] = {}
    for segment in segments:
        by_namespace.setdefault(segment.ns, []).append(segment)
    inner_maps: list[pa.Array] = []
    inner_present: list[pa.Array] = []
    status_names = pa.array(STATUS_NAMES)
    for namespace_segments in by_namespace.values():
        values: list[pa.Array] = []
        present: list[pa.Array] = []
        for segment in namespace_segments:
            code, when = statuses(population, ids, empty, segment, evaluated)
            values.append(
                pa.StructArray.from_arrays(
                    [pc.take(status_names, code), pc.cast(when, TIMESTAMP_MS)],
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


def sparse_map(
    keys: Sequence[str], values: Sequence[pa.Array], present: Sequence[pa.Array]
) -> tuple[pa.MapArray, pa.Array]:
    """Per row, a map of `keys[k] -> values[k][row]` for each k where `present[k][row]`.

    Also returns which rows have at least one entry. All `values` have the same type and length.
    """
    n = len(present[0])
    width = len(keys)
    position = arange(n * width)
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
    mapped = pa.MapArray.from_arrays(offsets(per_row_total), entry_keys, entry_values)
    return mapped, pc.greater(per_row_total, pa.scalar(0, pa.int32()))


def _sum_columns(columns: Sequence[pa.Array]) -> pa.Array:
    total = columns[0]
    for column in columns[1:]:
        total = pc.add(total, column)
    return total


def _with_nulls(array: pa.Array, null: pa.Array) -> pa.Array:
    """`array` with the rows where `null` is true set to null (nested types included)."""
    if not pc.any(null).as_py():
        return array
    return pc.if_else(null, pa.scalar(None, array.type), array)
