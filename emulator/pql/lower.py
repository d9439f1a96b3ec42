"""Syntax tree -> the evaluable subset (emulator/pql/ir.py), or `OutsideSubset` saying why not.

The subset: comparisons, `and`/`or`/`not`, `in`/`notIn`, the string functions (`like`, `startsWith`, ...,
`matches`), `isNull`/`isNotNull`, dates (`date(...)`, `getYear()`..., `currentYear()`..., `occurs`), and
`if(...)`, on the profile attributes of emulator/pql/schema.py; and conditions over a profile's events:
`xEvent[...].count()`, `exists`/`forall`/`select ... from xEvent where ...`, `xEvent.<field>.includes(...)`,
`.intersects(...)`, `.supersetOf(...)`, `.subsetOf(...)`, `.distinct().count()`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import emulator.pql.ast as ast
import emulator.pql.ir as ir
import emulator.pql.schema as schema
import emulator.pql.timespan as timespan
from emulator.pql.schema import BOOLEAN, NUMBER, STRING, TIMESTAMP
from emulator.pql.terms import OutsideSubset, aligned, describe, literal, path_of, type_of

PROFILE, EVENT = "profile", "event"
_FLIP = {"=": "=", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
_TEXT_METHODS = {
    "startsWith": ("starts", False),
    "doesNotStartWith": ("starts", True),
    "endsWith": ("ends", False),
    "doesNotEndWith": ("ends", True),
    "contains": ("contains", False),
    "doesNotContain": ("contains", True),
    "equals": ("equals", False),
    "notEqualTo": ("equals", True),
}
_DATE_PARTS = {"getYear": "year", "getMonth": "month", "getDayOfMonth": "day"}


@dataclass(frozen=True)
class _Scope:
    variables: dict[str, str] = field(default_factory=dict)  # name -> PROFILE | EVENT
    implicit: str = PROFILE  # what a bare attribute name refers to


@dataclass(frozen=True)
class _Events:
    """A profile's events, those satisfying `condition` (all when None)."""

    condition: ir.Predicate | None


@dataclass(frozen=True)
class _EventValues:
    """One field of those events, as an array."""

    events: _Events
    field: ir.EventAttr
    distinct: bool = False


@dataclass(frozen=True)
class _Count:
    """`.count()` of events, or of distinct values."""

    of: _Events | _EventValues


def lower(node: ast.Node, now_ms: int = schema.EVALUATION_MS) -> ir.Predicate:
    """The predicate a definition's syntax tree says, relative times measured from `now_ms`."""
    return _Lowering(now_ms).predicate(node, _Scope())


class _Lowering:
    def __init__(self, now_ms: int):
        self.now_ms = now_ms

    # -- predicates -----------------------------------------------------------------------------

    def predicate(self, node: ast.Node, scope: _Scope) -> ir.Predicate:
        if isinstance(node, ast.Lambda):
            return self.predicate(node.body, _Scope({**scope.variables, node.parameter: PROFILE}))
        if isinstance(node, ast.And):
            return ir.AllOf((self.predicate(node.left, scope), self.predicate(node.right, scope)))
        if isinstance(node, ast.Or):
            return ir.AnyOf((self.predicate(node.left, scope), self.predicate(node.right, scope)))
        if isinstance(node, ast.Not):
            return ir.Negation(self.predicate(node.operand, scope))
        if isinstance(node, ast.Literal) and isinstance(node.value, bool):
            return ir.Constant(node.value)
        if isinstance(node, ast.Compare):
            return self.compare(node, scope)
        if isinstance(node, ast.In):
            return self.membership(node, scope)
        if isinstance(node, ast.Like):
            return ir.Text("like", self.text_value(node.value, scope), self.string(node.pattern, "like"))
        if isinstance(node, ast.Method):
            return self.method_predicate(node, scope)
        if isinstance(node, ast.Quantifier):
            return self.quantifier(node, scope)
        if isinstance(node, ast.Occurs):
            return self.occurs(node, scope)
        if isinstance(node, ast.Call) and node.name == "if" and len(node.args) == 3:
            test = self.predicate(node.args[0], scope)
            yes, no = (self.predicate(arg, scope) for arg in node.args[1:])
            return ir.AnyOf((ir.AllOf((test, yes)), ir.AllOf((ir.Negation(test), no))))
        raise OutsideSubset(f"{describe(node)} is not a condition the emulator evaluates")

    def compare(self, node: ast.Compare, scope: _Scope) -> ir.Predicate:
        left, right = self.operand(node.left, scope), self.operand(node.right, scope)
        op = node.op
        if isinstance(right, _Count) and not isinstance(left, _Count):
            left, right, op = right, left, _FLIP[op]
        if isinstance(left, _Count):
            if not (isinstance(right, ir.Const) and right.type == NUMBER and float(right.value).is_integer()):  # type: ignore[arg-type]
                raise OutsideSubset("a count is compared with a whole number only")
            count = int(right.value)  # type: ignore[arg-type]
            if isinstance(left.of, _EventValues):
                return ir.DistinctEvents(left.of.events.condition, left.of.field, op, count)
            return ir.EventCount(left.of.condition, op, count)
        if not isinstance(left, ir.Attr | ir.EventAttr | ir.Const | ir.DatePart) or not isinstance(
            right, ir.Attr | ir.EventAttr | ir.Const | ir.DatePart
        ):
            raise OutsideSubset(f"{describe(node)}: only values can be compared")
        left, right = aligned(left, right)
        if isinstance(left, ir.Const) and isinstance(right, ir.Const):
            raise OutsideSubset(f"{describe(node)} compares two constants")
        if op not in ("=", "!=") and type_of(left) == BOOLEAN:
            raise OutsideSubset("booleans are compared with = and != only")
        return ir.Compare(op, left, right)

    def membership(self, node: ast.In, scope: _Scope) -> ir.Predicate:
        value = self.value(node.value, scope)
        if not isinstance(node.values, ast.Array):
            raise OutsideSubset("'in' and 'notIn' take a literal array, e.g. [\"DE\", \"FR\"]")
        items = tuple(self.constant(item, type_of(value)) for item in node.values.items)
        return ir.InSet(value, tuple(item.value for item in items), node.negated)

    def method_predicate(self, node: ast.Method, scope: _Scope) -> ir.Predicate:
        name, args = node.name, node.args
        if name in _TEXT_METHODS:
            kind, negated = _TEXT_METHODS[name]
            if not 1 <= len(args) <= (1 if kind == "equals" else 2):
                raise OutsideSubset(f"{name}() takes a string (and, except equals, a case flag)")
            case_sensitive = True
            if len(args) == 2:
                flag = args[1]
                if not (isinstance(flag, ast.Literal) and isinstance(flag.value, bool)):
                    raise OutsideSubset(f"{name}(): the case flag is true or false")
                case_sensitive = flag.value
            value = self.text_value(node.target, scope)
            return ir.Text(kind, value, self.string(args[0], name), case_sensitive, negated)
        if name == "matches" and len(args) == 1:
            pattern = self.string(args[0], name)
            if "(?" in pattern.replace("(?i)", ""):
                raise OutsideSubset(
                    "matches(): only the (?i) flag of Java's regular expressions is evaluated"
                )
            return ir.Text("matches", self.text_value(node.target, scope), pattern)
        if name in ("isNull", "isNotNull") and not args:
            return ir.IsNull(self.value(node.target, scope), negated=name == "isNotNull")
        target = self.operand(node.target, scope)
        if isinstance(target, _EventValues) and not target.distinct:
            return self.array_predicate(name, target, args)
        raise OutsideSubset(f"{describe(node)} is not a condition the emulator evaluates")

    def array_predicate(self, name: str, values: _EventValues, args: tuple[ast.Node, ...]) -> ir.Predicate:
        kind = values.field.type
        events = values.events.condition

        def matching(value: ir.Predicate) -> ir.Predicate:
            return value if events is None else ir.AllOf((events, value))

        def one_of(items: tuple[ast.Node, ...]) -> ir.Predicate:
            consts = tuple(self.constant(item, kind).value for item in items)
            return ir.InSet(values.field, consts, negated=False)

        if name == "includes" and len(args) == 1:
            equal = ir.Compare("=", values.field, self.constant(args[0], kind))
            return ir.EventCount(matching(equal), ">", 0)
        if name in ("intersects", "supersetOf", "subsetOf") and len(args) == 1:
            array = args[0]
            if not isinstance(array, ast.Array):
                raise OutsideSubset(f"{name}() takes a literal array")
            if name == "intersects":
                return ir.EventCount(matching(one_of(array.items)), ">", 0)
            if name == "subsetOf":
                return ir.EveryEvent(one_of(array.items), scope=events)
            each = tuple(
                ir.EventCount(matching(ir.Compare("=", values.field, self.constant(item, kind))), ">", 0)
                for item in array.items
            )
            return ir.AllOf(each) if each else ir.Constant(True)
        raise OutsideSubset(f"the array function {name}() is not evaluated")

    def quantifier(self, node: ast.Quantifier, scope: _Scope) -> ir.Predicate:
        events = self.quantified_events(node, scope)
        if node.kind == "exists":
            return ir.EventCount(events.condition, ">", 0)
        if node.kind == "forall":
            return ir.EveryEvent(events.condition or ir.Constant(True))
        raise OutsideSubset(
            "'select' makes an array, not a condition: count it, e.g. (select ...).count() > 0"
        )

    def quantified_events(self, node: ast.Quantifier, scope: _Scope) -> _Events:
        if len(node.bindings) != 1:
            raise OutsideSubset("quantifiers over nested arrays (several 'from' bindings) are not evaluated")
        binding = node.bindings[0]
        source = self.operand(binding.source, scope)
        if not isinstance(source, _Events):
            raise OutsideSubset(f"only {schema.EVENTS} can be quantified over")
        inner = _Scope({**scope.variables, binding.variable: EVENT}, scope.implicit)
        condition = source.condition
        if binding.condition is not None:
            extra = self.predicate(binding.condition, inner)
            condition = extra if condition is None else ir.AllOf((condition, extra))
        return _Events(condition)

    def occurs(self, node: ast.Occurs, scope: _Scope) -> ir.Predicate:
        value = self.value(node.value, scope)
        if type_of(value) != TIMESTAMP:
            raise OutsideSubset("'occurs' applies to dates and timestamps")

        def at(op: str, ms: int) -> ir.Predicate:
            return ir.Compare(op, value, ir.Const(ms, TIMESTAMP))

        def within(start: int, end: int) -> ir.Predicate:
            return ir.AllOf((at(">=", start), at("<", end)))

        if node.kind == "between":
            assert node.until is not None
            start, _ = self.interval(node.time)
            _, end = self.interval(node.until)
            return within(start, end)
        time = self.time_or_value(node.time, scope)
        if node.kind == "on":
            if not isinstance(time, tuple):
                raise OutsideSubset("'occurs on' an attribute is not evaluated")
            return within(*time)
        if node.kind == "direction":
            if not isinstance(time, tuple):
                op = {"before": "<", "after": ">", "from": ">="}[node.direction or "after"]
                return ir.Compare(op, value, time)
            start, end = time
            if node.direction == "before":
                return at("<", start)
            return at(">=", end if node.direction == "after" else start)
        if not isinstance(time, tuple):
            raise OutsideSubset("'occurs' with an offset from an attribute is not evaluated")
        assert node.amount is not None and node.unit is not None and node.compare is not None
        if not float(node.amount).is_integer() or node.amount < 0:
            raise OutsideSubset("'occurs' counts whole, non-negative units")
        amount, unit = int(node.amount), node.unit
        anchor = time[0]
        before = node.direction == "before"
        point = self.shifted(anchor, -amount if before else amount, unit)
        op = node.compare
        if op in ("=", "!="):
            start = timespan.truncate(point, unit)
            exact = within(start, self.shifted(start, 1, unit))
            return exact if op == "=" else ir.Negation(exact)
        # "<= 3 days before now": at most three days before, so between then and now.
        closer = {"<=": (">=" if before else "<="), "<": (">" if before else "<")}
        farther = {">=": ("<=" if before else ">="), ">": ("<" if before else ">")}
        if op in closer:
            near = at("<=", anchor) if before else at(">=", anchor)
            return ir.AllOf((at(closer[op], point), near))
        return at(farther[op], point)

    # -- values ---------------------------------------------------------------------------------

    def operand(self, node: ast.Node, scope: _Scope) -> ir.Value | _Events | _EventValues | _Count:
        """A value, or one of the event shapes that only some functions accept."""
        if isinstance(node, ast.Method) and node.name == "count" and not node.args:
            target = self.operand(node.target, scope)
            if isinstance(target, _Events):
                return _Count(target)
            if isinstance(target, _EventValues):
                if target.distinct:
                    return _Count(target)
                present = ir.IsNull(target.field, negated=True)
                condition = target.events.condition
                return _Count(_Events(present if condition is None else ir.AllOf((condition, present))))
            raise OutsideSubset(f"count() of {describe(node.target)} is not evaluated")
        if isinstance(node, ast.Method) and node.name == "distinct" and not node.args:
            target = self.operand(node.target, scope)
            if isinstance(target, _EventValues):
                return _EventValues(target.events, target.field, distinct=True)
            raise OutsideSubset(f"distinct() of {describe(node.target)} is not evaluated")
        if isinstance(node, ast.Filter):
            target = self.operand(node.target, scope)
            if not isinstance(target, _Events):
                raise OutsideSubset(f"only {schema.EVENTS} can be filtered with [...]")
            condition = self.predicate(node.condition, _Scope(scope.variables, EVENT))
            if target.condition is not None:
                condition = ir.AllOf((target.condition, condition))
            return _Events(condition)
        if isinstance(node, ast.Quantifier) and node.kind == "select":
            return self.quantified_events(node, scope)
        path = path_of(node)
        if path is not None:
            root, parts = path
            return self.resolve(root, parts, scope)
        return self.value(node, scope)

    def resolve(self, root: str | int, parts: list[str], scope: _Scope) -> ir.Value | _Events | _EventValues:
        kind = scope.implicit
        if isinstance(root, int):
            if root != 1:
                raise OutsideSubset(f"${root}: a definition has one parameter, the profile ($1)")
            kind = PROFILE
        elif root in scope.variables:
            kind = scope.variables[root]
        else:
            parts = [root, *parts]
        if kind == PROFILE and parts and parts[0] == schema.EVENTS:
            events = _Events(None)
            if len(parts) == 1:
                return events
            dotted = ".".join(parts[1:])
            if dotted not in schema.EVENT_FIELDS:
                raise OutsideSubset(f"events have no field '{dotted}' in the emulator's population")
            return _EventValues(events, ir.EventAttr(dotted, schema.EVENT_FIELDS[dotted]))
        dotted = ".".join(parts)
        if kind == EVENT:
            if dotted not in schema.EVENT_FIELDS:
                raise OutsideSubset(f"events have no field '{dotted}' in the emulator's population")
            return ir.EventAttr(dotted, schema.EVENT_FIELDS[dotted])
        if dotted not in schema.PROFILE_FIELDS:
            raise OutsideSubset(f"profiles have no attribute '{dotted}' in the emulator's population")
        return ir.Attr(dotted, schema.PROFILE_FIELDS[dotted])

    def value(self, node: ast.Node, scope: _Scope) -> ir.Value:
        if isinstance(node, ast.Literal):
            return literal(node.value)
        if isinstance(node, ast.Negate) and isinstance(node.operand, ast.Literal):
            number = node.operand.value
            if isinstance(number, int | float) and not isinstance(number, bool):
                return ir.Const(-number, NUMBER)
        if isinstance(node, ast.Call):
            return self.call(node)
        if isinstance(node, ast.Method) and node.name in _DATE_PARTS and not node.args:
            target = self.value(node.target, scope)
            if type_of(target) != TIMESTAMP:
                raise OutsideSubset(f"{node.name}() applies to dates and timestamps")
            return ir.DatePart(_DATE_PARTS[node.name], target)
        shaped = isinstance(node, ast.Filter | ast.Quantifier) or (
            isinstance(node, ast.Method) and node.name in ("count", "distinct") and not node.args
        )
        if path_of(node) is not None or shaped:
            operand = self.operand(node, scope)
            if isinstance(operand, ir.Attr | ir.EventAttr | ir.Const | ir.DatePart):
                return operand
        raise OutsideSubset(f"{describe(node)} is not a value the emulator evaluates")

    def text_value(self, node: ast.Node, scope: _Scope) -> ir.Value:
        value = self.value(node, scope)
        if type_of(value) != STRING:
            raise OutsideSubset("string functions apply to strings")
        return value

    def call(self, node: ast.Call) -> ir.Const:
        now = timespan.to_datetime(self.now_ms)
        current = {"currentYear": now.year, "currentMonth": now.month, "currentDayOfMonth": now.day}
        if node.name in current and not node.args:
            return ir.Const(current[node.name], NUMBER)
        if node.name == "date" and len(node.args) == 3:
            numbers = [arg.value for arg in node.args if isinstance(arg, ast.Literal)]
            if len(numbers) == 3 and all(isinstance(n, int) and not isinstance(n, bool) for n in numbers):
                try:
                    return ir.Const(timespan.date_ms(*numbers), TIMESTAMP)  # type: ignore[arg-type]
                except ValueError as exc:
                    raise OutsideSubset(f"date{tuple(numbers)}: {exc}") from None
        raise OutsideSubset(f"the function {node.name}() is not evaluated")

    def constant(self, node: ast.Node, kind: str) -> ir.Const:
        value = self.value(node, _Scope())
        if not isinstance(value, ir.Const):
            raise OutsideSubset("array items must be constants")
        _, converted = aligned(ir.Attr("", kind), value)
        if type_of(converted) != kind:
            raise OutsideSubset(f"{value.value!r} is not a {kind}")
        assert isinstance(converted, ir.Const)
        return converted

    def string(self, node: ast.Node, where: str) -> str:
        if isinstance(node, ast.Literal) and isinstance(node.value, str):
            return node.value
        raise OutsideSubset(f"{where}: the pattern must be a string literal")

    # -- time -----------------------------------------------------------------------------------

    def time_or_value(self, node: ast.Node, scope: _Scope) -> tuple[int, int] | ir.Value:
        if isinstance(node, ast.TimeWord | ast.RelativeTime | ast.Call):
            return self.interval(node)
        value = self.value(node, scope)
        if type_of(value) != TIMESTAMP:
            raise OutsideSubset("'occurs' compares with dates and timestamps")
        return value

    def interval(self, node: ast.Node) -> tuple[int, int]:
        """The span a time word, relative time or date literal stands for: [start, end)."""
        now = self.now_ms
        day = timespan.FIXED_MS["day"]
        if isinstance(node, ast.TimeWord):
            today = timespan.truncate(now, "day")
            spans = {
                "now": (now, now + 1),
                "today": (today, today + day),
                "yesterday": (today - day, today),
                "tomorrow": (today + day, today + 2 * day),
            }
            return spans[node.word]
        if isinstance(node, ast.RelativeTime):
            current = timespan.truncate(now, node.unit)
            if node.which == "this":
                return current, self.shifted(current, node.amount, node.unit)
            if node.which == "last":
                return self.shifted(current, -node.amount, node.unit), current
            following = self.shifted(current, 1, node.unit)
            return following, self.shifted(following, node.amount, node.unit)
        if isinstance(node, ast.Call):
            start = self.call(node)
            if start.type != TIMESTAMP:
                raise OutsideSubset(f"{node.name}() is not a time")
            assert isinstance(start.value, int)
            return start.value, start.value + day
        raise OutsideSubset(f"{describe(node)} is not a time the emulator evaluates")

    def shifted(self, ms: int, amount: int, unit: str) -> int:
        try:
            return timespan.shift(ms, amount, unit)
        except (ValueError, OverflowError) as exc:
            raise OutsideSubset(f"{amount} {unit}s from the evaluation instant: {exc}") from None
