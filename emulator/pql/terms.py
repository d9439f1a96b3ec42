"""Helpers of the lowering (emulator/pql/lower.py): dot paths, literals, types, and descriptions."""

from __future__ import annotations

import emulator.pql.ast as ast
import emulator.pql.ir as ir
import emulator.pql.timespan as timespan
from emulator.pql.schema import BOOLEAN, NUMBER, STRING, TIMESTAMP


class OutsideSubset(Exception):
    """The expression parses but the emulator does not evaluate it; `reason` says which part."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def path_of(node: ast.Node) -> tuple[str | int, list[str]] | None:
    """(root name or parameter position, the field names after it) of a dot path; None if not one."""
    parts: list[str] = []
    while isinstance(node, ast.Field):
        parts.insert(0, node.name)
        node = node.target
    if isinstance(node, ast.Name):
        return node.name, parts
    if isinstance(node, ast.Parameter):
        return node.position, parts
    return None


def literal(value: ast.Scalar) -> ir.Const:
    if isinstance(value, bool):
        return ir.Const(value, BOOLEAN)
    if isinstance(value, int | float):
        return ir.Const(value, NUMBER)
    if isinstance(value, str):
        return ir.Const(value, STRING)
    raise OutsideSubset("null literals are not evaluated: use isNull() or isNotNull()")


def type_of(value: ir.Value) -> str:
    if isinstance(value, ir.DatePart):
        return NUMBER
    return value.type


def aligned(left: ir.Value, right: ir.Value) -> tuple[ir.Value, ir.Value]:
    """A string constant compared with a timestamp is read as an ISO 8601 date or date-time."""
    for one, other, swap in ((left, right, False), (right, left, True)):
        if isinstance(other, ir.Const) and other.type == STRING and type_of(one) == TIMESTAMP:
            converted = ir.Const(_iso_ms(str(other.value)), TIMESTAMP)
            return (converted, one) if swap else (one, converted)
    if type_of(left) != type_of(right):
        raise OutsideSubset(f"a {type_of(left)} is compared with a {type_of(right)}")
    return left, right


def _iso_ms(text: str) -> int:
    from datetime import UTC, datetime

    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise OutsideSubset(f"'{text}' is not an ISO 8601 date") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return timespan.to_ms(moment)


def describe(node: ast.Node) -> str:
    path = path_of(node)
    if path is not None:
        root, parts = path
        return ".".join([f"${root}" if isinstance(root, int) else root, *parts])
    if isinstance(node, ast.Method):
        return f"{describe(node.target)}.{node.name}()"
    if isinstance(node, ast.Call):
        return f"{node.name}()"
    if isinstance(node, ast.Literal):
        return repr(node.value)
    return type(node).__name__.lower()
