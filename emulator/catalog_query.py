"""Catalog's listing language, as "Filter Catalog data" (filter-data.md) documents it: `limit`/`start`
paging, `orderBy` on several properties, simple filters (`name=a,b`, `name=!a`), `tags`, the `property`
parameter, and `properties` projection. Pure: it works on the objects' wire views (id -> JSON object).

A query is parsed once (every 400 is raised then, naming the parameter), then applied to the views.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from emulator.errors import BadRequest
from emulator.params import int_param

DEFAULT_LIMIT = 20  # filter-data.md, "Limit returned objects": at most 20 objects without `limit`
MAX_LIMIT = 100  # "The global limit for all other Catalog queries is 100 objects"; larger is taken as 100
MAX_PATTERN = 256  # characters of a `~` regular expression
MAX_PROPERTY_PARAMETERS = 20  # `property` parameters in one query (ANDed)
MAX_VALUES = 100  # comma-separated values of one simple filter

View = Mapping[str, Any]
Item = tuple[str, View]  # an object's id and its wire view
Predicate = Callable[[str, View], bool]

# Parameters that shape the answer rather than filter on a property of the same name.
PAGING = frozenset({"limit", "start", "offset", "orderBy", "sort", "properties"})
MISSING = object()


@dataclass(frozen=True)
class Range:
    """A documented range filter: the parameter compares `path` of the view with `operator`."""

    path: tuple[str, ...]
    operator: str  # ">" or "<"
    seconds: bool = False  # the property holds epoch seconds (availableDates); the parameter may be ms


@dataclass(frozen=True)
class Collection:
    """What a collection's query may name."""

    kind: str  # "dataSets" or "batches", for messages
    properties: frozenset[str]  # top-level properties its objects show (simple filters work on each)
    integers: frozenset[str] = frozenset()  # documented integer filters: values must be integers
    aliases: Mapping[str, Callable[[str, View], list[Any]]] = field(default_factory=dict)
    ranges: Mapping[str, Range] = field(default_factory=dict)
    accepted: frozenset[str] = frozenset()  # documented parameters that change nothing here


@dataclass(frozen=True)
class CatalogQuery:
    collection: Collection
    filters: tuple[Predicate, ...]
    order: tuple[tuple[str, bool], ...]  # (property, descending), first key first
    start: int
    limit: int
    properties: frozenset[str] | None
    names: frozenset[str]  # top-level properties the query filters or sorts on, or asks to show

    def refers_to(self, names: Iterable[str]) -> bool:
        return not self.names.isdisjoint(names)

    def matches(self, item: Item) -> bool:
        object_id, view = item
        return all(test(object_id, view) for test in self.filters)

    def select(self, items: Iterable[Item]) -> list[Item]:
        """The page: matching objects, ordered, from `start`, at most `limit`."""
        found = [item for item in items if self.matches(item)]
        for name, descending in reversed(self.order):  # stable sorts, last key first
            found = _sorted(found, name, descending)
        return found[self.start : self.start + self.limit]

    def show(self, view: View) -> dict[str, Any]:
        return project(view, self.properties)


def parse(
    params: Mapping[str, str], collection: Collection, property_values: Sequence[str] = ()
) -> CatalogQuery:
    """`params` is the query string (one value per name); `property_values` every `property` parameter."""
    limit = min(int_param(params, "limit", DEFAULT_LIMIT, minimum=1), MAX_LIMIT)
    offset = int_param(params, "offset", 0)  # the older name of `start`; checked even when `start` wins
    start = int_param(params, "start", offset)
    names: set[str] = set()
    order = _order(params, collection)
    names.update(name for name, _ in order)
    properties = parse_properties(params)
    if properties is not None:
        names.update(properties)
    filters: list[Predicate] = []
    for name, raw in params.items():
        if name in PAGING or name == "property" or name in collection.accepted:
            continue
        if name == "tags":
            filters.append(_tags_filter(raw))
            names.add("tags")
        elif name in collection.ranges:
            filters.append(_range_filter(name, raw, collection.ranges[name]))
            names.add(collection.ranges[name].path[0])
        elif name in collection.aliases:
            filters.append(_alias_filter(name, raw, collection.aliases[name], collection))
        elif name in collection.properties:
            filters.append(_simple_filter(name, raw, collection))
            names.add(name)
        else:
            raise BadRequest(
                f"Query parameter '{name}' is not a filter of {collection.kind}: use one of its properties "
                f"({', '.join(sorted(collection.properties | collection.aliases.keys()))}), "
                f"{', '.join(sorted(collection.ranges))}, tags, property, properties, orderBy, limit or start"
            )
    if len(property_values) > MAX_PROPERTY_PARAMETERS:
        raise BadRequest(f"Query parameter 'property' is given more than {MAX_PROPERTY_PARAMETERS} times")
    for expression in property_values:
        test, path = property_filter(expression)
        filters.append(test)
        names.add(path[0])
    return CatalogQuery(collection, tuple(filters), order, start, limit, properties, frozenset(names))


def parse_properties(params: Mapping[str, str]) -> frozenset[str] | None:
    raw = params.get("properties")
    if not raw:
        return None
    return frozenset(p.strip() for p in raw.split(",") if p.strip()) or None


def project(view: View, properties: frozenset[str] | None) -> dict[str, Any]:
    """Catalog's `properties=a,b`: only those top-level fields (an object without any of them is `{}`)."""
    if properties is None:
        return dict(view)
    return {k: v for k, v in view.items() if k in properties}


# -- orderBy ----------------------------------------------------------------------------------------

_ORDER_KEY = re.compile(r"(?:(asc|desc):)?([A-Za-z][A-Za-z0-9_]*)")


def _order(params: Mapping[str, str], collection: Collection) -> tuple[tuple[str, bool], ...]:
    """`orderBy=asc:created,updated` or `orderBy=name,desc:updated` (`sort=` is the older spelling):
    sort by the first, ties by the next; no direction means ascending."""
    name = "orderBy" if params.get("orderBy") else "sort"
    raw = params.get(name)
    if not raw:
        return ()
    sortable = collection.properties | {"id"}
    keys = []
    for part in raw.split(","):
        match = _ORDER_KEY.fullmatch(part)
        if not match or match.group(2) not in sortable:
            raise BadRequest(
                f"Invalid {name} '{raw}': use [asc:|desc:]PROPERTY[,[asc:|desc:]PROPERTY...], "
                f"PROPERTY one of "
                f"{', '.join(sorted(sortable))}"
            )
        keys.append((match.group(2), match.group(1) == "desc"))
    return tuple(keys)


def _sorted(items: list[Item], name: str, descending: bool) -> list[Item]:
    """Objects without the property (or with an object as its value) come last in either direction."""
    present: list[tuple[tuple[int, Any], Item]] = []
    absent: list[Item] = []
    for item in items:
        value = item[0] if name == "id" else item[1].get(name, MISSING)
        key = _sort_key(value)
        if key is None:
            absent.append(item)
        else:
            present.append((key, item))
    present.sort(key=lambda pair: pair[0], reverse=descending)
    return [item for _, item in present] + absent


def _sort_key(value: Any) -> tuple[int, Any] | None:
    if isinstance(value, bool):
        return (0, int(value))
    if isinstance(value, int | float):
        return (1, value)
    if isinstance(value, str):
        return (2, value)
    return None


# -- simple filters -------------------------------------------------------------------------------


def _values(name: str, raw: str) -> tuple[bool, list[str]]:
    """`a,b` -> (False, [a, b]); `!a,b` -> (True, [a, b]): the object's value in (or not in) the list."""
    negated = raw.startswith("!")
    values = (raw[1:] if negated else raw).split(",")
    if len(values) > MAX_VALUES:
        raise BadRequest(f"Query parameter '{name}' has more than {MAX_VALUES} values")
    return negated, values


def _check_integers(name: str, values: list[str], collection: Collection) -> None:
    if name in collection.integers:
        for value in values:
            if not re.fullmatch(r"-?[0-9]{1,19}", value):
                raise BadRequest(
                    f"Query parameter '{name}' must be an integer (or a comma-separated list), got '{value}'"
                )


def _simple_filter(name: str, raw: str, collection: Collection) -> Predicate:
    negated, values = _values(name, raw)
    _check_integers(name, values, collection)
    matchers = [_name_matcher(v) if name == "name" else v.__eq__ for v in values]

    def test(_: str, view: View) -> bool:
        value = view.get(name, MISSING)
        if value is not MISSING and not isinstance(value, dict | list):
            text = scalar_text(value)
            found = any(match(text) for match in matchers)
        else:
            found = False
        return found != negated

    return test


def _alias_filter(
    name: str, raw: str, read: Callable[[str, View], list[Any]], collection: Collection
) -> Predicate:
    """A documented filter not named after a property (`dataSet`, `batch`): `read` gives its values."""
    negated, values = _values(name, raw)
    _check_integers(name, values, collection)
    wanted = set(values)

    def test(object_id: str, view: View) -> bool:
        found = any(scalar_text(v) in wanted for v in read(object_id, view))
        return found != negated

    return test


def _range_filter(name: str, raw: str, spec: Range) -> Predicate:
    if not re.fullmatch(r"-?[0-9]{1,19}", raw):
        raise BadRequest(f"Query parameter '{name}' must be an integer (epoch milliseconds), got '{raw}'")
    bound = int(raw)
    if spec.seconds and abs(bound) >= 10**11:
        bound //= 1000  # a timestamp in ms for a property in seconds (no seconds value is this large)

    def test(_: str, view: View) -> bool:
        value = lookup(view, spec.path)
        if isinstance(value, bool) or not isinstance(value, int):
            return False
        return value > bound if spec.operator == ">" else value < bound

    return test


def scalar_text(value: Any) -> str:
    """How a property's value reads in a query string."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return str(value)


def _name_matcher(pattern: str) -> Callable[[str], bool]:
    """filter-data.md: `name` supports `*` wildcards (matching any characters, none included); `**` is a
    literal asterisk."""
    if "*" not in pattern:
        return pattern.__eq__
    parts = []
    for piece in re.split(r"(\*\*|\*)", pattern):
        parts.append(".*" if piece == "*" else re.escape("*" if piece == "**" else piece))
    compiled = re.compile("".join(parts), re.DOTALL)
    return lambda text: compiled.fullmatch(text) is not None


# -- tags -----------------------------------------------------------------------------------------


def _tags_filter(raw: str) -> Predicate:
    """`tags=NAME:VALUE,NAME2:*,NAME3:prefix*`: every pair must hold (AND); a value may use `*`."""
    pairs = []
    for pair in raw.split(","):
        tag, colon, pattern = pair.partition(":")
        if not colon or not tag:
            raise BadRequest(
                f"Invalid tags '{raw}': use TAG_NAME:TAG_VALUE pairs separated by commas "
                "(TAG_VALUE may use *)"
            )
        pairs.append((tag, _glob(pattern)))

    def test(_: str, view: View) -> bool:
        tags = view.get("tags")
        if not isinstance(tags, dict):
            return False
        return all(
            isinstance(tags.get(tag), list) and any(isinstance(v, str) and match(v) for v in tags[tag])
            for tag, match in pairs
        )

    return test


def _glob(pattern: str) -> Callable[[str], bool]:
    if pattern == "*":
        return lambda _: True
    if "*" not in pattern:
        return pattern.__eq__
    compiled = re.compile(".*".join(re.escape(piece) for piece in pattern.split("*")), re.DOTALL)
    return lambda text: compiled.fullmatch(text) is not None


# -- the property parameter -----------------------------------------------------------------------

_PROPERTY = re.compile(
    r"(?P<negated>!)?(?P<path>[A-Za-z_@$][^=!<>~]*?)(?:(?P<operator>==|!=|<=|>=|=|<|>|~)(?P<value>.*))?",
    re.DOTALL,
)


def property_filter(expression: str) -> tuple[Predicate, tuple[str, ...]]:
    """One `property` expression (filter-data.md, "Using the property parameter"): `name` (exists),
    `!name` (does not exist), `name~REGEX`, `name==V` (also `name=V`), `name!=V`, `<`, `<=`, `>`, `>=`.
    The property may be a dot path into nested objects (`schemaRef.id`)."""
    match = _PROPERTY.fullmatch(expression)
    if not match or (match.group("negated") and match.group("operator")):
        raise BadRequest(
            f"Invalid property '{expression}': use PROPERTY, !PROPERTY, PROPERTY~REGEX, or PROPERTY "
            "followed by ==, !=, <, <=, > or >= and a value"
        )
    path = tuple(match.group("path").split("."))
    if any(not part for part in path):
        raise BadRequest(f"Invalid property '{expression}': an empty name in the path")
    operator, operand = match.group("operator"), match.group("value")
    if operator is None:
        exists = not match.group("negated")
        return (lambda _, view: (lookup(view, path) is not MISSING) == exists), path
    if operator == "~":
        search = _regex(expression, operand)
        return (
            lambda _, view: _is_text(lookup(view, path)) and search(scalar_text(lookup(view, path)))
        ), path
    if operator in ("==", "=", "!="):
        equal = _name_matcher(operand) if path == ("name",) else operand.__eq__

        def compare_equal(_: str, view: View) -> bool:
            value = lookup(view, path)
            if value is MISSING or isinstance(value, dict | list):
                return operator == "!="
            return equal(scalar_text(value)) != (operator == "!=")

        return compare_equal, path

    def compare(_: str, view: View) -> bool:
        value = lookup(view, path)
        if value is MISSING or isinstance(value, dict | list):
            return False
        order = _compare(value, operand)
        return order is not None and _ORDERED[operator](order)

    return compare, path


_ORDERED: dict[str, Callable[[int], bool]] = {
    "<": lambda order: order < 0,
    "<=": lambda order: order <= 0,
    ">": lambda order: order > 0,
    ">=": lambda order: order >= 0,
}
_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")
_VERSION = re.compile(r"[0-9]+(\.[0-9]+)+")


def _compare(value: Any, operand: str) -> int | None:
    """-1, 0 or 1: numbers as numbers, versions (`1.0.3`) part by part, other text as text."""
    text = scalar_text(value)
    left: Any
    right: Any
    if isinstance(value, int | float) and not isinstance(value, bool) and _NUMBER.fullmatch(operand):
        left, right = value, float(operand)
    elif _VERSION.fullmatch(text) and _VERSION.fullmatch(operand):
        left, right = _version(text), _version(operand)
        width = max(len(left), len(right))
        left, right = left + (0,) * (width - len(left)), right + (0,) * (width - len(right))
    elif _NUMBER.fullmatch(text) and _NUMBER.fullmatch(operand):
        left, right = float(text), float(operand)
    else:
        left, right = text, operand
    return int(left > right) - int(left < right)


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def _is_text(value: Any) -> bool:
    return value is not MISSING and not isinstance(value, dict | list)


def _regex(expression: str, pattern: str) -> Callable[[str], bool]:
    """RE2 (linear time, no backtracking, no backreferences): no pattern can stall the emulator."""
    if len(pattern) > MAX_PATTERN:
        raise BadRequest(
            f"Invalid property '{expression[:40]}...': the regular expression is longer than "
            f"{MAX_PATTERN} characters"
        )
    import re2  # google-re2; imported on first use

    options = re2.Options()
    options.max_mem = 1 << 20
    options.log_errors = False
    try:
        compiled = re2.compile(pattern, options)
    except re2.error as exc:
        raise BadRequest(f"Invalid property '{expression}': bad regular expression ({exc})") from None
    return lambda text: compiled.search(text) is not None


def lookup(view: View, path: tuple[str, ...]) -> Any:
    """The value at a dot path of the view, or MISSING."""
    value: Any = view
    for part in path:
        if not isinstance(value, dict) or part not in value:
            return MISSING
        value = value[part]
    return value
