"""The seeded profile generator: deterministic per (seed, tenant, index), realistic fields, segment
memberships with every status, event-only profiles and events."""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, date, datetime
from itertools import pairwise
from typing import Any

import pyarrow as pa
import pytest

from emulator.exportdata.pools import EVENT_TYPES, pools
from emulator.exportdata.population import (
    EVALUATED_AT_MS,
    EXISTING,
    EXITED,
    NOT_MEMBER,
    REALIZED,
    STATUS_NAMES,
    WINDOW_END_MS,
    WINDOW_START_MS,
    EventWindow,
    Population,
    Segment,
    empty_mask,
    membership,
    population_ids,
)
from emulator.exportdata.records import profile_records

POPULATION = Population(seed=1, tenant="ORG@AdobeOrg/prod", count=900, empty=100, events_per_profile=(0, 4))
SEGMENT = Segment("ups", "a7d3c0e2-5b1f-4e8a-9c6d-2f4b8e1a3c5d")
WINDOW = (datetime(2023, 1, 1, tzinfo=UTC), datetime(2024, 1, 1, tzinfo=UTC))


def ids(*values: int) -> pa.Array:
    return pa.array(values, pa.uint64())


def rows(
    population: Population = POPULATION, start: int = 0, stop: int | None = None, **kwargs: Any
) -> list[dict[str, Any]]:
    stop = population.size if stop is None else stop
    table = profile_records(population, population_ids(start, stop), (SEGMENT,), **kwargs)
    result: list[dict[str, Any]] = table.to_pylist()
    return result


def test_the_same_inputs_give_the_same_profiles() -> None:
    assert rows(stop=200, events=EventWindow()) == rows(stop=200, events=EventWindow())


def test_a_profile_is_the_same_whatever_else_is_generated_with_it() -> None:
    everyone = rows(stop=300, events=EventWindow())
    picked = profile_records(POPULATION, ids(250, 3, 117), (SEGMENT,), events=EventWindow()).to_pylist()
    assert picked == [everyone[250], everyone[3], everyone[117]]
    assert rows(start=100, stop=150) == rows(stop=150)[100:]


def test_a_profile_depends_on_seed_and_tenant_but_not_on_the_population_size() -> None:
    base = rows(stop=50)
    assert rows(Population(2, POPULATION.tenant, 900, 100), stop=50) != base
    assert rows(Population(1, "OTHER@AdobeOrg/prod", 900, 100), stop=50) != base
    assert rows(Population(1, "ORG@AdobeOrg/dev", 900, 100), stop=50) != base
    # Index i is the same person in a bigger population (unless it is event-only in one of them).
    bigger = rows(Population(1, POPULATION.tenant, 1900, 100), stop=50)
    both = [(a, b) for a, b in zip(base, bigger, strict=True) if a["person"] and b["person"]]
    assert len(both) >= 40 and all(a == b for a, b in both)


def test_exactly_the_empty_profiles_are_event_only_and_spread_out() -> None:
    empty = empty_mask(POPULATION, population_ids(0, POPULATION.size)).to_pylist()
    assert sum(empty) == 100
    positions = [i for i, e in enumerate(empty) if e]
    assert max(b - a for a, b in pairwise(positions)) == 10
    assert not any(empty_mask(Population(1, "t", 50, 0), population_ids(0, 50)).to_pylist())


def test_profile_fields_look_like_xdm_individual_profiles() -> None:
    people = [r for r in rows() if r["person"] is not None]
    assert len(people) == 900
    for row in people:
        identities = dict(row["identityMap"])
        assert identities and set(identities) <= {"ECID", "email", "phone"}
        assert sum(i[0]["primary"] for i in identities.values()) == 1
        if "ECID" in identities:
            assert re.fullmatch(r"\d{38}", identities["ECID"][0]["id"])
            assert identities["ECID"][0]["authenticatedState"] == "ambiguous"
        if "email" in identities:
            assert row["personalEmail"]["address"] == identities["email"][0]["id"]
            assert re.fullmatch(
                r"[a-z0-9]+\.[a-z0-9]+\d{1,3}@[a-z0-9.-]+\.[a-z]+", row["personalEmail"]["address"]
            )
        else:
            assert row["personalEmail"] is None
        if "phone" in identities:
            assert row["mobilePhone"]["number"] == identities["phone"][0]["id"]
            assert re.fullmatch(r"\+\d{1,2}\d{10}", row["mobilePhone"]["number"])
        else:
            assert row["mobilePhone"] is None
        name = row["person"]["name"]
        assert name["firstName"] and name["lastName"]
        assert date(1940, 1, 1) <= row["person"]["birthDate"] < date(2006, 1, 1)
        address = row["homeAddress"]
        assert all(address[k] for k in ("street1", "city", "postalCode", "country", "countryCode"))
        assert "\n" not in address["street1"]
        assert WINDOW[0] <= row["_repo"]["modifyDate"] < WINDOW[1]
    countries = Counter((r["homeAddress"]["country"], r["homeAddress"]["countryCode"]) for r in people)
    assert set(countries) == {
        ("United States", "US"),
        ("United Kingdom", "GB"),
        ("Germany", "DE"),
        ("France", "FR"),
    }
    assert all(
        r["mobilePhone"]["number"].startswith("+49")
        for r in people
        if r["homeAddress"]["countryCode"] == "DE" and r["mobilePhone"]
    )


def test_not_every_profile_has_every_identity_but_all_namespaces_occur() -> None:
    namespaces = Counter(len(dict(r["identityMap"])) for r in rows() if r["person"] is not None)
    assert set(namespaces) >= {1, 2, 3}
    seen = Counter(ns for r in rows() for ns, _ in r["identityMap"])
    assert set(seen) == {"ECID", "email", "phone"}
    assert seen["ECID"] > seen["email"] > seen["phone"] > 0


def test_event_only_profiles_have_an_ecid_and_events_only() -> None:
    empty = [r for r in rows(events=EventWindow()) if r["person"] is None]
    assert len(empty) == 100
    for row in empty:
        assert [ns for ns, _ in row["identityMap"]] == ["ECID"]
        assert row["eventList"]
        assert all(
            row[c] is None
            for c in ("personalEmail", "mobilePhone", "homeAddress", "segmentMembership", "_repo")
        )


def test_any_segment_has_members_with_each_status_and_the_same_in_every_call() -> None:
    everyone = population_ids(0, POPULATION.size)
    empty = empty_mask(POPULATION, everyone)
    for segment_id in ("x", "another-one", SEGMENT.id):
        code, when = membership(POPULATION, everyone, empty, Segment("ups", segment_id), evaluated=False)
        statuses = Counter(code.to_pylist())
        assert all(statuses[c] > 50 for c in (REALIZED, EXISTING, EXITED))
        assert statuses[NOT_MEMBER] > 300
        again, _ = membership(POPULATION, everyone, empty, Segment("ups", segment_id), evaluated=False)
        assert again == code
        assert all(WINDOW_START_MS <= t < WINDOW_END_MS for t in when.to_pylist())
    other_ns, _ = membership(POPULATION, everyone, empty, Segment("AAM", SEGMENT.id), evaluated=False)
    assert other_ns != membership(POPULATION, everyone, empty, SEGMENT, evaluated=False)[0]


def test_an_evaluation_moves_memberships_on() -> None:
    everyone = population_ids(0, POPULATION.size)
    empty = empty_mask(POPULATION, everyone)
    before, _ = membership(POPULATION, everyone, empty, SEGMENT, evaluated=False)
    after, when = membership(POPULATION, everyone, empty, SEGMENT, evaluated=True)
    moves = Counter(zip(before.to_pylist(), after.to_pylist(), strict=True))
    assert moves[(REALIZED, EXISTING)] == before.to_pylist().count(REALIZED)
    assert moves[(NOT_MEMBER, REALIZED)] > 0
    assert moves[(EXISTING, EXITED)] > 0
    assert moves[(EXITED, EXITED)] == before.to_pylist().count(EXITED)
    entered = [
        t
        for b, a, t in zip(before.to_pylist(), after.to_pylist(), when.to_pylist(), strict=True)
        if (b, a) == (0, 1)
    ]
    assert set(entered) == {EVALUATED_AT_MS}


def test_segment_membership_shows_the_profiles_statuses_per_namespace() -> None:
    shown = (Segment("ups", "s1"), Segment("AAM", "s2"), Segment("ups", "s3"))
    table = profile_records(POPULATION, population_ids(0, 300), shown)
    everyone = population_ids(0, 300)
    empty = empty_mask(POPULATION, everyone)
    codes = {s: membership(POPULATION, everyone, empty, s, evaluated=False)[0].to_pylist() for s in shown}
    for index, row in enumerate(table.column("segmentMembership").to_pylist()):
        expected = {
            (s.ns, s.id): STATUS_NAMES[codes[s][index]] for s in shown if codes[s][index] != NOT_MEMBER
        }
        got = {(ns, sid): m["status"] for ns, segments in (row or []) for sid, m in segments}
        assert got == expected


def test_events_stay_in_their_count_range_order_and_ingest_window() -> None:
    table = rows(events=EventWindow())
    for row in table:
        events = row["eventList"]
        if row["person"] is not None:
            assert 0 <= len(events) <= 4
        stamps = [e["timestamp"] for e in events]
        assert stamps == sorted(stamps)
        for event in events:
            lag = event["_acp_system_metadata"]["ingestTime"] - int(event["timestamp"].timestamp() * 1000)
            assert 0 <= lag < 6 * 3600 * 1000
            assert event["eventType"] in EVENT_TYPES
    counts = Counter(len(r["eventList"]) for r in table if r["person"] is not None)
    assert set(counts) == {0, 1, 2, 3, 4}

    after, before = 1_680_000_000_000, 1_690_000_000_000
    windowed = rows(events=EventWindow(after, before))
    assert [r["person"] for r in windowed] == [r["person"] for r in table]
    for full, kept in zip(table, windowed, strict=True):
        expected = [e for e in full["eventList"] if after < e["_acp_system_metadata"]["ingestTime"] < before]
        assert kept["eventList"] == expected


def test_columns_limits_the_fields_built() -> None:
    table = profile_records(POPULATION, ids(1, 2), (SEGMENT,), columns=["person", "identityMap"])
    assert table.column_names == ["identityMap", "person"]
    full = profile_records(POPULATION, ids(1, 2), (SEGMENT,))
    assert table.column("person") == full.column("person")


@pytest.mark.parametrize("seed", [0, 1])
def test_pools_are_built_once_per_seed(seed: int) -> None:
    assert pools(seed) is pools(seed)
    assert len(pools(seed).first_names) == len(pools(seed).streets)
