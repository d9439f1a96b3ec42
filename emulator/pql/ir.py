"""The evaluable subset of PQL: typed predicates over a profile's attributes and events.

`emulator/pql/lower.py` turns a syntax tree into these nodes, or says why it cannot; the Arrow evaluator
(`emulator/exportdata/membership.py`) turns them into boolean columns, one node at a time. Every node is a
frozen dataclass of tuples and scalars: a rule is hashable, so caches can be keyed on it.

Nulls follow SQL's three-valued logic: a comparison with a missing value is unknown, `not` of unknown is
unknown, and a profile is a member only when its predicate is true.
"""

from __future__ import annotations

from dataclasses import dataclass

from emulator.pql.ast import Scalar

# -- values ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Attr:
    """A profile attribute (a dot path of emulator.pql.schema.PROFILE_FIELDS)."""

    path: str
    type: str


@dataclass(frozen=True)
class EventAttr:
    """A field of the event being looked at (emulator.pql.schema.EVENT_FIELDS)."""

    path: str
    type: str


@dataclass(frozen=True)
class Const:
    value: Scalar  # a timestamp is epoch milliseconds
    type: str


@dataclass(frozen=True)
class DatePart:
    """year, month or day (of month) of a timestamp value, UTC."""

    part: str
    value: Value


Value = Attr | EventAttr | Const | DatePart


# -- predicates ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Compare:
    op: str  # = != < <= > >=
    left: Value
    right: Value


@dataclass(frozen=True)
class InSet:
    value: Value
    values: tuple[Scalar, ...]
    negated: bool


@dataclass(frozen=True)
class Text:
    """String tests: starts, ends, contains, equals (all with case sensitivity), like (SQL % and _), and
    matches (a regular expression, searched)."""

    kind: str
    value: Value
    pattern: str
    case_sensitive: bool = True
    negated: bool = False


@dataclass(frozen=True)
class IsNull:
    value: Value
    negated: bool


@dataclass(frozen=True)
class AllOf:
    items: tuple[Predicate, ...]


@dataclass(frozen=True)
class AnyOf:
    items: tuple[Predicate, ...]


@dataclass(frozen=True)
class Negation:
    item: Predicate


@dataclass(frozen=True)
class Constant:
    value: bool


@dataclass(frozen=True)
class EventCount:
    """How many of the profile's events satisfy `condition` (all of them when None), compared to `count`."""

    condition: Predicate | None
    op: str
    count: int


@dataclass(frozen=True)
class EveryEvent:
    """Every event of the profile (that satisfies `scope`, when given) satisfies `condition`."""

    condition: Predicate
    scope: Predicate | None = None


@dataclass(frozen=True)
class DistinctEvents:
    """How many distinct values of an event field the profile's events (satisfying `condition`) carry."""

    condition: Predicate | None
    field: EventAttr
    op: str
    count: int


Predicate = (
    Compare
    | InSet
    | Text
    | IsNull
    | AllOf
    | AnyOf
    | Negation
    | Constant
    | EventCount
    | EveryEvent
    | DistinctEvents
)


def uses_events(predicate: Predicate) -> bool:
    """Whether evaluating the predicate needs the profiles' events."""
    if isinstance(predicate, EventCount | EveryEvent | DistinctEvents):
        return True
    if isinstance(predicate, AllOf | AnyOf):
        return any(uses_events(item) for item in predicate.items)
    if isinstance(predicate, Negation):
        return uses_events(predicate.item)
    return False


def attributes(predicate: Predicate) -> set[str]:
    """The profile attributes a predicate reads."""
    found: set[str] = set()

    def value(node: Value) -> None:
        if isinstance(node, Attr):
            found.add(node.path)
        elif isinstance(node, DatePart):
            value(node.value)

    def walk(node: Predicate | None) -> None:
        if node is None:
            return
        if isinstance(node, Compare):
            value(node.left)
            value(node.right)
        elif isinstance(node, InSet | Text | IsNull):
            value(node.value)
        elif isinstance(node, AllOf | AnyOf):
            for item in node.items:
                walk(item)
        elif isinstance(node, Negation):
            walk(node.item)

    walk(predicate)
    return found
