"""Profile Query Language: parse a segment definition's expression and lower it to the evaluable subset.

`compile_expression(value, format)` parses (pql/text with the Lark grammar in grammar.lark, or pql/json) and
raises `PqlSyntaxError` (line, column, reason) when the expression does not parse. A parsed expression is a
`Rule`: its predicate (emulator/pql/ir.py) when the emulator evaluates it, or the reason it does not, in
which case its members come from the deterministic hash that segment ids without a definition use. Pure
Python: the Arrow evaluator is emulator/exportdata/membership.py.
"""

from __future__ import annotations

from dataclasses import dataclass

from emulator.pql import ir
from emulator.pql.lower import lower
from emulator.pql.syntax import PqlSyntaxError, parse
from emulator.pql.terms import OutsideSubset

PQL_TEXT = "pql/text"
PQL_JSON = "pql/json"
FORMATS = (PQL_TEXT, PQL_JSON)

__all__ = ["FORMATS", "PQL_JSON", "PQL_TEXT", "PqlSyntaxError", "Rule", "compile_expression", "ir"]


@dataclass(frozen=True)
class Rule:
    """A definition's expression, compiled: `predicate` when evaluated, else `reason` says why not."""

    predicate: ir.Predicate | None
    reason: str | None = None

    @property
    def evaluated(self) -> bool:
        return self.predicate is not None


def compile_expression(value: str, fmt: str = PQL_TEXT, *, kind: str = "PQL") -> Rule:
    """Parse and lower an expression; `PqlSyntaxError` when it does not parse."""
    if fmt == PQL_JSON:
        from emulator.pql.pqljson import parse_json

        tree = parse_json(value)
    else:
        tree = parse(value)
    if kind != "PQL":
        return Rule(None, f"expressions of type {kind} are not evaluated")
    try:
        return Rule(lower(tree))
    except OutsideSubset as exc:
        return Rule(None, exc.reason)
    except RecursionError:
        return Rule(None, "the expression nests too deeply to evaluate")
