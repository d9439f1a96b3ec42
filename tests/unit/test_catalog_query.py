"""Catalog's listing language (emulator/catalog_query.py), pure: parsing, each filter kind, ordering."""

from __future__ import annotations

from typing import Any

import pytest

from emulator.catalog_query import Collection, Range, parse, property_filter
from emulator.errors import BadRequest

THINGS = Collection(
    kind="things",
    properties=frozenset({"name", "version", "created", "tags", "nested", "flag"}),
    integers=frozenset({"created"}),
    aliases={"thing": lambda object_id, _: [object_id]},
    ranges={
        "createdAfter": Range(("created",), ">"),
        "startAfter": Range(("nested", "start"), ">", seconds=True),
    },
)
ITEMS: list[tuple[str, dict[str, Any]]] = [
    ("a", {"name": "alpha", "version": "1.0.10", "created": 3, "tags": {"t": ["x1", "y"]},
           "nested": {"start": 1_700_000_000}}),
    ("b", {"name": "be*ta", "version": "1.0.9", "created": 1, "flag": True}),
    ("c", {"name": "alpha", "version": "2.0", "created": 2, "tags": {"t": ["z"], "u": ["w:v"]}}),
]  # fmt: skip


def ids(query: str, *properties: str) -> list[str]:
    params = dict(pair.split("=", 1) for pair in query.split("&") if pair)
    return [i for i, _ in parse(params, THINGS, properties).select(ITEMS)]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ["a", "b", "c"]),
        ("name=alpha", ["a", "c"]),
        ("name=!alpha", ["b"]),
        ("name=be**ta", ["b"]),  # `**` is a literal asterisk
        ("name=b*", ["b"]),
        ("flag=true", ["b"]),
        ("created=1,3", ["a", "b"]),
        ("thing=c", ["c"]),
        ("createdAfter=1", ["a", "c"]),
        ("startAfter=1699999999", ["a"]),
        ("startAfter=1699999999000", ["a"]),  # ms for a property in seconds
        ("startAfter=1700000000000", []),
        ("tags=t:*", ["a", "c"]),
        ("tags=t:x*,t:y", ["a"]),
        ("tags=u:w:v", ["c"]),  # the name ends at the first colon
        ("orderBy=desc:created", ["a", "c", "b"]),
        ("orderBy=name,desc:created", ["a", "c", "b"]),
        ("orderBy=asc:flag", ["b", "a", "c"]),  # without the property: last
        ("orderBy=desc:flag", ["b", "a", "c"]),
        ("limit=1&start=1", ["b"]),
        ("offset=2", ["c"]),
        ("offset=2&start=0", ["a", "b", "c"]),
    ],
)
def test_queries(query: str, expected: list[str]) -> None:
    assert ids(query) == expected


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("flag", ["b"]),
        ("!flag", ["a", "c"]),
        ("nested.start", ["a"]),
        ("nested.start>=1700000000", ["a"]),
        ("version>1.0.9", ["a", "c"]),  # versions part by part, not as text
        ("version<=1.0.9", ["b"]),
        ("created<3", ["b", "c"]),
        ("name==alpha", ["a", "c"]),
        ("name=alpha", ["a", "c"]),
        ("name!=alpha", ["b"]),
        ("name~^al", ["a", "c"]),
        ("tags~x", []),  # an object is no text
        ("tags!=x", ["a", "b", "c"]),
    ],
)
def test_property_expressions(expression: str, expected: list[str]) -> None:
    assert ids("", expression) == expected


def test_several_property_expressions_are_anded() -> None:
    assert ids("", "name==alpha", "created>2") == ["a"]


@pytest.mark.parametrize(
    "query",
    ["limit=0", "start=-1", "offset=x", "created=soon", "createdAfter=1.5", "orderBy=up:name",
     "orderBy=colour", "tags=novalue", "tags=:x", "colour=red"],
)  # fmt: skip
def test_bad_queries_name_the_parameter(query: str) -> None:
    with pytest.raises(BadRequest) as raised:
        ids(query)
    assert query.split("=")[0] in raised.value.detail


@pytest.mark.parametrize("expression", ["", "!a==b", "==b", "a.", "a~(", "a~" + "x" * 257])
def test_bad_property_expressions(expression: str) -> None:
    with pytest.raises(BadRequest):
        property_filter(expression)


def test_properties_projects_top_level_fields() -> None:
    query = parse({"properties": "name,missing"}, THINGS)
    assert [query.show(view) for _, view in query.select(ITEMS)] == [
        {"name": "alpha"},
        {"name": "be*ta"},
        {"name": "alpha"},
    ]
    assert query.refers_to({"missing"})
