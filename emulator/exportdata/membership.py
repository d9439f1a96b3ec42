"""PQL predicates (emulator/pql/ir.py) evaluated over a block of the population, as Arrow compute kernels.

A predicate becomes one boolean per profile, computed a column at a time: only the attributes it reads are
built (from the same seeded recipe the exported records use), and events only when it looks at them. Event
conditions are evaluated over the block's events flattened into one column, then counted per profile with
prefix sums over the list offsets. Nulls follow SQL's three-valued logic; unknown means not a member.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache, reduce
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from emulator.exportdata.arrays import TIMESTAMP_MS
from emulator.exportdata.events import event_lists
from emulator.exportdata.population import EventWindow, Population, Segment
from emulator.exportdata.records import profile_records
from emulator.pql import PQL_TEXT, PqlSyntaxError, compile_expression, ir
from emulator.pql.schema import TIMESTAMP

# Segments with an evaluated definition, and its predicate.
Rules = tuple[tuple[Segment, ir.Predicate], ...]

_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "=": pc.equal,
    "!=": pc.not_equal,
    "<": pc.less,
    "<=": pc.less_equal,
    ">": pc.greater,
    ">=": pc.greater_equal,
}
_DATE_PARTS: dict[str, Callable[[Any], Any]] = {"year": pc.year, "month": pc.month, "day": pc.day}


@lru_cache(maxsize=4096)
def predicate_of(value: str, fmt: str = PQL_TEXT, kind: str = "PQL") -> ir.Predicate | None:
    """The evaluated predicate of a (saved) expression; None when outside the subset."""
    try:
        return compile_expression(value, fmt, kind=kind).predicate
    except PqlSyntaxError:
        return None


def evaluate(predicate: ir.Predicate, population: Population, ids: pa.Array, empty: pa.Array) -> pa.Array:
    """Whether each profile of `ids` (with `empty` marking event-only ones) satisfies the predicate."""
    block = _Block(population, ids, empty, predicate)
    result = block.predicate(predicate, events=False)
    if isinstance(result, pa.Scalar):
        result = pa.repeat(result.as_py() is True, len(ids))
    return pc.fill_null(result, False)


class _Block:
    def __init__(self, population: Population, ids: pa.Array, empty: pa.Array, predicate: ir.Predicate):
        self.population = population
        self.ids = ids
        self.empty = empty
        self.size = len(ids)
        self._columns: dict[str, pa.Array] = {}
        tops = sorted({path.split(".")[0] for path in ir.attributes(predicate)})
        if tops:
            table = profile_records(population, ids, (), columns=tops)
            self._columns = {name: table.column(name).combine_chunks() for name in table.column_names}
        self._events: pa.Array | None = None
        self._event_values: pa.Array | None = None
        self._offsets: pa.Array | None = None

    # -- values

    def value(self, node: ir.Value, events: bool) -> Any:
        if isinstance(node, ir.Const):
            if node.type == TIMESTAMP:
                return pa.scalar(node.value, TIMESTAMP_MS)
            return pa.scalar(node.value)
        if isinstance(node, ir.DatePart):
            return _DATE_PARTS[node.part](self.value(node.value, events))
        if isinstance(node, ir.Attr):
            top, *rest = node.path.split(".")
            column = self._columns[top]
            for name in rest:
                column = pc.struct_field(column, [name])
            return _timestamp(column) if node.type == TIMESTAMP else column
        assert events, "event fields are read inside event conditions only"
        column = self.event_values()
        for name in node.path.split("."):
            column = pc.struct_field(column, [name])
        return _timestamp(column) if node.type == TIMESTAMP else column

    # -- predicates

    def predicate(self, node: ir.Predicate, events: bool) -> Any:
        if isinstance(node, ir.Compare):
            return _COMPARE[node.op](self.value(node.left, events), self.value(node.right, events))
        if isinstance(node, ir.InSet):
            value = self.value(node.value, events)
            if isinstance(value, pa.Scalar):
                value = pa.array([value.as_py()])
            found = pc.is_in(value, value_set=pa.array(list(node.values)))
            valid = pc.is_valid(value)
            return pc.and_kleene(pc.invert(found) if node.negated else found, valid)
        if isinstance(node, ir.Text):
            matched = _text(node, self.value(node.value, events))
            return pc.invert(matched) if node.negated else matched
        if isinstance(node, ir.IsNull):
            value = self.value(node.value, events)
            return pc.is_valid(value) if node.negated else pc.is_null(value)
        if isinstance(node, ir.AllOf):
            return reduce(pc.and_kleene, (self.predicate(item, events) for item in node.items))
        if isinstance(node, ir.AnyOf):
            return reduce(pc.or_kleene, (self.predicate(item, events) for item in node.items))
        if isinstance(node, ir.Negation):
            return pc.invert(self.predicate(node.item, events))
        if isinstance(node, ir.Constant):
            return pa.scalar(node.value)
        if isinstance(node, ir.EventCount):
            counts = self.event_counts(node.condition)
            return _COMPARE[node.op](counts, pa.scalar(node.count, pa.int64()))
        if isinstance(node, ir.EveryEvent):
            scoped = self.event_counts(node.scope)
            both = node.condition if node.scope is None else ir.AllOf((node.scope, node.condition))
            return pc.equal(self.event_counts(both), scoped)
        assert isinstance(node, ir.DistinctEvents)
        return _COMPARE[node.op](self.distinct_counts(node), pa.scalar(node.count, pa.int64()))

    # -- events

    def event_lists(self) -> pa.ListArray:
        if self._events is None:
            self._events = event_lists(self.population, self.ids, self.empty, EventWindow())
        return self._events

    def event_values(self) -> pa.Array:
        if self._event_values is None:
            self._event_values = self.event_lists().flatten()
        return self._event_values

    def matched(self, condition: ir.Predicate | None) -> pa.Array:
        """Which of the block's events satisfy the condition (all when None)."""
        total = len(self.event_values())
        if condition is None:
            return pa.repeat(True, total)
        result = self.predicate(condition, events=True)
        if isinstance(result, pa.Scalar):
            return pa.repeat(result.as_py() is True, total)
        return pc.fill_null(result, False)

    def event_counts(self, condition: ir.Predicate | None) -> pa.Array:
        """Per profile, how many of its events satisfy the condition: prefix sums over the list offsets."""
        offsets = pc.cast(self.event_lists().offsets, pa.int64())
        if condition is None:
            return pc.subtract(offsets.slice(1), offsets.slice(0, self.size))
        ones = pc.cast(self.matched(condition), pa.int64())
        prefix = pa.concat_arrays([pa.array([0], pa.int64()), pc.cumulative_sum(ones)])
        return pc.subtract(pc.take(prefix, offsets.slice(1)), pc.take(prefix, offsets.slice(0, self.size)))

    def distinct_counts(self, node: ir.DistinctEvents) -> pa.Array:
        lists = self.event_lists()
        parents = pc.list_parent_indices(lists)
        keep = pc.and_(self.matched(node.condition), pc.is_valid(self.value(node.field, events=True)))
        table = pa.table(
            {"parent": pc.filter(parents, keep), "value": pc.filter(self.value(node.field, True), keep)}
        )
        grouped = table.group_by("parent").aggregate([("value", "count_distinct")])
        positions = pc.index_in(pa.array(range(self.size), parents.type), value_set=grouped.column("parent"))
        counts = pc.take(grouped.column("value_count_distinct"), positions)
        return pc.fill_null(pc.cast(counts, pa.int64()), 0)


def _timestamp(column: pa.Array) -> pa.Array:
    if pa.types.is_date(column.type):
        return pc.cast(pc.cast(column, pa.timestamp("ms")), TIMESTAMP_MS)
    if pa.types.is_timestamp(column.type):
        return column
    return pc.cast(column, TIMESTAMP_MS)


def _text(node: ir.Text, value: Any) -> Any:
    pattern, ignore = node.pattern, not node.case_sensitive
    if node.kind == "starts":
        return pc.starts_with(value, pattern, ignore_case=ignore)
    if node.kind == "ends":
        return pc.ends_with(value, pattern, ignore_case=ignore)
    if node.kind == "contains":
        return pc.match_substring(value, pattern, ignore_case=ignore)
    if node.kind == "equals":
        if ignore:
            return pc.equal(pc.utf8_lower(value), pattern.lower())
        return pc.equal(value, pattern)
    if node.kind == "like":
        return pc.match_like(value, pattern, ignore_case=ignore)
    if pattern.startswith("(?i)"):
        return pc.match_substring_regex(value, pattern[4:], ignore_case=True)
    return pc.match_substring_regex(value, pattern)
