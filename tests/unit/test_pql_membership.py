"""The Arrow evaluator of PQL predicates agrees, profile by profile, with a plain-Python reading of the same
predicate over the exported records and events; statuses and counts follow the membership."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from emulator.exportdata.audience import count_segments, segment_statuses
from emulator.exportdata.events import event_lists
from emulator.exportdata.membership import evaluate
from emulator.exportdata.population import (
    EXISTING,
    EXITED,
    NOT_MEMBER,
    REALIZED,
    EventWindow,
    Population,
    Segment,
    empty_mask,
    identity_flags,
    population_ids,
)
from emulator.exportdata.records import profile_records
from emulator.pql import compile_expression, ir
from tests.unit.test_pql import EVALUATED

POPULATION = Population(seed=7, tenant="PQLORG@AdobeOrg/prod", count=400, empty=20)
IDS = population_ids(0, POPULATION.size)
EMPTY = empty_mask(POPULATION, IDS)
ROWS = profile_records(POPULATION, IDS, ()).to_pylist()
EVENTS = event_lists(POPULATION, IDS, EMPTY, EventWindow()).to_pylist()


def _ms(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return int(value.replace(tzinfo=value.tzinfo or UTC).timestamp() * 1000)
    if isinstance(value, date):
        return int(datetime(value.year, value.month, value.day, tzinfo=UTC).timestamp() * 1000)
    return int(value)


def _get(document: Any, path: str) -> Any:
    for name in path.split("."):
        document = document.get(name) if isinstance(document, dict) else None
    return document


class Reference:
    """A slow, obvious reading of a predicate for one profile (None: unknown)."""

    def __init__(self, row: dict[str, Any], events: list[dict[str, Any]]):
        self.row = row
        self.events = events

    def value(self, node: ir.Value, event: dict[str, Any] | None) -> Any:
        if isinstance(node, ir.Const):
            return node.value
        if isinstance(node, ir.DatePart):
            ms = self.value(node.value, event)
            if ms is None:
                return None
            moment = datetime.fromtimestamp(ms / 1000, UTC)
            return {"year": moment.year, "month": moment.month, "day": moment.day}[node.part]
        source = self.row if isinstance(node, ir.Attr) else event
        raw = _get(source, node.path)
        return _ms(raw) if node.type == "timestamp" else raw

    def test(self, node: ir.Predicate, event: dict[str, Any] | None = None) -> bool | None:
        if isinstance(node, ir.Compare):
            left, right = self.value(node.left, event), self.value(node.right, event)
            if left is None or right is None:
                return None
            return {
                "=": left == right,
                "!=": left != right,
                "<": left < right,
                "<=": left <= right,
                ">": left > right,
                ">=": left >= right,
            }[node.op]
        if isinstance(node, ir.InSet):
            value = self.value(node.value, event)
            if value is None:
                return None
            return (value in node.values) != node.negated
        if isinstance(node, ir.Text):
            value = self.value(node.value, event)
            if value is None:
                return None
            text, pattern = (
                (value, node.pattern) if node.case_sensitive else (value.lower(), node.pattern.lower())
            )
            if node.kind == "like":
                regex = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
                found = re.fullmatch(regex, text, re.S) is not None
            elif node.kind == "matches":
                flags = re.I if pattern.startswith("(?i)") else 0
                found = re.search(pattern.removeprefix("(?i)"), value, flags) is not None
            else:
                found = {
                    "starts": text.startswith(pattern),
                    "ends": text.endswith(pattern),
                    "contains": pattern in text,
                    "equals": text == pattern,
                }[node.kind]
            return found != node.negated
        if isinstance(node, ir.IsNull):
            return (self.value(node.value, event) is None) != node.negated
        if isinstance(node, ir.AllOf):
            results = [self.test(item, event) for item in node.items]
            return False if False in results else None if None in results else True
        if isinstance(node, ir.AnyOf):
            results = [self.test(item, event) for item in node.items]
            return True if True in results else None if None in results else False
        if isinstance(node, ir.Negation):
            result = self.test(node.item, event)
            return None if result is None else not result
        if isinstance(node, ir.Constant):
            return node.value
        if isinstance(node, ir.EventCount):
            count = sum(
                1 for e in self.events if node.condition is None or self.test(node.condition, e) is True
            )
            return self.test(ir.Compare(node.op, ir.Const(count, "number"), ir.Const(node.count, "number")))
        if isinstance(node, ir.EveryEvent):
            scoped = [e for e in self.events if node.scope is None or self.test(node.scope, e) is True]
            return all(self.test(node.condition, e) is True for e in scoped)
        assert isinstance(node, ir.DistinctEvents)
        values = {
            _get(e, node.field.path)
            for e in self.events
            if (node.condition is None or self.test(node.condition, e) is True)
            and _get(e, node.field.path) is not None
        }
        return self.test(ir.Compare(node.op, ir.Const(len(values), "number"), ir.Const(node.count, "number")))


@pytest.mark.parametrize("text", EVALUATED)
def test_the_arrow_evaluator_agrees_with_a_plain_reading(text: str) -> None:
    predicate = compile_expression(text).predicate
    assert predicate is not None
    fast = evaluate(predicate, POPULATION, IDS, EMPTY).to_pylist()
    slow = [
        Reference(row, events or []).test(predicate) is True for row, events in zip(ROWS, EVENTS, strict=True)
    ]
    assert fast == slow
    assert all(isinstance(member, bool) for member in fast)


def test_the_subset_selects_real_people() -> None:
    """The examples are not vacuous: most select some but not all of the population."""
    chosen = [
        sum(evaluate(compile_expression(t).predicate, POPULATION, IDS, EMPTY).to_pylist()) for t in EVALUATED
    ]  # type: ignore[arg-type]
    assert sum(0 < n < POPULATION.size for n in chosen) >= len(EVALUATED) * 2 // 3


def test_an_evaluated_segment_has_exactly_its_members_and_no_exits() -> None:
    segment = Segment("ups", "de")
    predicate = compile_expression('homeAddress.countryCode = "DE"').predicate
    code, when = segment_statuses(POPULATION, IDS, EMPTY, segment, evaluated=True, predicate=predicate)
    codes = code.to_pylist()
    for row, status in zip(ROWS, codes, strict=True):
        german = (row["homeAddress"] or {}).get("countryCode") == "DE"
        assert (status in (REALIZED, EXISTING)) == german
        assert status != EXITED
    assert {REALIZED, EXISTING, NOT_MEMBER} == set(codes)
    assert len(when) == len(codes)


def test_a_segment_without_a_rule_keeps_the_hash() -> None:
    segment = Segment("ups", "no-definition")
    code, _ = segment_statuses(POPULATION, IDS, EMPTY, segment, evaluated=False, predicate=None)
    assert EXITED in code.to_pylist()  # the hash membership has every status


def test_counts_are_the_members_by_namespace_and_status() -> None:
    segment = Segment("ups", "fr")
    predicate = compile_expression('homeAddress.countryCode = "FR"').predicate
    assert predicate is not None
    counts = count_segments(POPULATION, [segment], ((segment, predicate),))
    members = evaluate(predicate, POPULATION, IDS, EMPTY)
    flags = identity_flags(POPULATION, IDS, EMPTY)
    one = counts.segments["fr"]
    assert counts.total_profiles == POPULATION.size
    assert one.members == sum(members.to_pylist())
    for namespace, present in flags.items():
        assert (
            one.by_namespace.get(namespace, 0)
            == pc.sum(pc.cast(pc.and_(members, present), pa.int64())).as_py()
        )
    assert sum(one.by_status.values()) == one.members and "exited" not in one.by_status
