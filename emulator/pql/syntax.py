"""PQL text -> syntax tree, with Lark (grammar.lark, LALR). A text that does not parse raises `PqlSyntaxError`
naming the line, the column and what was expected there."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import emulator.pql.ast as ast

if TYPE_CHECKING:
    from lark import Lark, Token

GRAMMAR = Path(__file__).with_name("grammar.lark")
MAX_TEXT = 64 * 1024  # far past any real definition; longer texts are refused before parsing
_READABLE = {
    "$END": "the end of the expression",
    "RPAR": "')'",
    "LPAR": "'('",
    "RSQB": "']'",
    "LSQB": "'['",
    "COMMA": "','",
    "DOT": "'.'",
    "NAME": "a name",
    "STRING": "a string",
    "SIGNED_NUMBER": "a number",
    "COMPARE": "a comparison",
    "UNIT": "a time unit",
    "DOLLAR": "'$'",
    "MINUS": "'-'",
    "BANG": "'!'",
    "ADD": "'+'",
    "MUL": "'*'",
    "COLON": "':'",
    "ARROW": "'=>'",
    "MORETHAN": "'>'",
    "LESSTHAN": "'<'",
    "EQUAL": "'='",
}


class PqlSyntaxError(ValueError):
    """The expression does not parse: where (1-based line and column) and why."""

    def __init__(self, message: str, line: int, column: int):
        super().__init__(f"line {line}, column {column}: {message}")
        self.line = line
        self.column = column
        self.reason = message


@cache
def _parser() -> Lark:
    # Imported here: a server that never sees a definition does not pay for Lark at start.
    from lark import Lark

    return Lark(GRAMMAR.read_text(encoding="utf-8"), parser="lalr", propagate_positions=False)


def parse(text: str) -> ast.Node:
    """The syntax tree of a PQL text (pql/text)."""
    from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

    if len(text) > MAX_TEXT:
        raise PqlSyntaxError(f"the expression is longer than {MAX_TEXT} characters", 1, 1)
    if not text.strip():
        raise PqlSyntaxError("the expression is empty", 1, 1)
    try:
        tree = _parser().parse(text)
    except UnexpectedToken as exc:
        at_end = exc.token.type == "$END"
        found = "end of the expression" if at_end else repr(str(exc.token))
        where = _end(text) if at_end else _position(exc, text)
        raise PqlSyntaxError(f"unexpected {found}; expected {_expected(exc.expected)}", *where) from None
    except UnexpectedCharacters as exc:
        position = exc.pos_in_stream or 0
        char = text[position] if position < len(text) else ""
        raise PqlSyntaxError(f"unexpected character {char!r}", exc.line, exc.column) from None
    except UnexpectedEOF as exc:
        raise PqlSyntaxError(
            f"the expression ends early; expected {_expected(exc.expected)}", *_end(text)
        ) from None
    except UnexpectedInput as exc:  # pragma: no cover - Lark's other input errors
        raise PqlSyntaxError(str(exc).splitlines()[0], *_position(exc, text)) from None
    except RecursionError:
        raise PqlSyntaxError("the expression nests too deeply", 1, 1) from None
    try:
        node: ast.Node = _Builder().build(tree)
    except RecursionError:
        raise PqlSyntaxError("the expression nests too deeply", 1, 1) from None
    return node


def _expected(names: Any) -> str:
    readable = sorted({_READABLE.get(name, _keyword(name)) for name in names})
    if len(readable) > 8:
        readable = [*readable[:8], "..."]
    return ", ".join(readable) or "something else"


def _keyword(name: str) -> str:
    # Lark names anonymous keywords by their text in upper case (e.g. AND, OCCURS) or as __ANON_n.
    return f"'{name.lower()}'" if name.isalpha() else name


def _position(exc: Any, text: str) -> tuple[int, int]:
    line, column = getattr(exc, "line", -1), getattr(exc, "column", -1)
    if line is None or line < 1:
        return _end(text)
    return line, column


def _end(text: str) -> tuple[int, int]:
    lines = text.split("\n")
    return len(lines), len(lines[-1]) + 1


class _Builder:
    """Lark tree -> ast nodes (a plain recursive walk: a Transformer would build the same thing slower)."""

    def build(self, tree: Any) -> ast.Node:
        from lark import Token, Tree

        if isinstance(tree, Token):
            raise PqlSyntaxError(f"unexpected {str(tree)!r}", tree.line or 1, tree.column or 1)
        assert isinstance(tree, Tree)
        handler = getattr(self, f"_{tree.data}", None)
        if handler is None:  # pragma: no cover - every rule of the grammar has a handler
            raise PqlSyntaxError(f"unsupported construct {tree.data}", 1, 1)
        node: ast.Node = handler(*tree.children)
        return node

    def _node(self, child: Any) -> ast.Node:
        return self.build(child)

    def _arguments(self, arguments: Any) -> tuple[ast.Node, ...]:
        if arguments is None:
            return ()
        return tuple(self.build(child) for child in arguments.children)

    # literals and names
    def _string(self, token: Token) -> ast.Node:
        raw = str(token)
        if raw.startswith("'"):
            raw = '"' + raw[1:-1].replace('\\"', '"').replace('"', '\\"') + '"'
        try:
            return ast.Literal(json.loads(raw))
        except ValueError:
            return ast.Literal(raw[1:-1])

    def _number(self, token: Token) -> ast.Node:
        raw = str(token)
        if raw.isdigit():
            return ast.Literal(int(raw))
        return ast.Literal(float(raw))

    def _true(self) -> ast.Node:
        return ast.Literal(True)

    def _false(self) -> ast.Node:
        return ast.Literal(False)

    def _null(self) -> ast.Node:
        return ast.Literal(None)

    def _name(self, token: Token) -> ast.Node:
        return ast.Name(str(token))

    def _parameter(self, token: Token) -> ast.Node:
        return ast.Parameter(int(token))

    def _call(self, name: Token, arguments: Any = None) -> ast.Node:
        return ast.Call(str(name), self._arguments(arguments))

    def _array(self, arguments: Any = None) -> ast.Node:
        return ast.Array(self._arguments(arguments))

    def _field(self, target: Any, name: Token) -> ast.Node:
        return ast.Field(self.build(target), str(name))

    def _method(self, target: Any, name: Token, arguments: Any = None) -> ast.Node:
        return ast.Method(self.build(target), str(name), self._arguments(arguments))

    def _filter_(self, target: Any, condition: Any) -> ast.Node:
        return ast.Filter(self.build(target), self.build(condition))

    # operators
    def _compare(self, left: Any, op: Token, right: Any) -> ast.Node:
        return ast.Compare(str(op), self.build(left), self.build(right))

    def _in_(self, value: Any, values: Any) -> ast.Node:
        return ast.In(self.build(value), self.build(values), negated=False)

    def _not_in(self, value: Any, values: Any) -> ast.Node:
        return ast.In(self.build(value), self.build(values), negated=True)

    def _like(self, value: Any, pattern: Any) -> ast.Node:
        return ast.Like(self.build(value), self.build(pattern))

    def _and_(self, left: Any, right: Any) -> ast.Node:
        return ast.And(self.build(left), self.build(right))

    def _or_(self, left: Any, right: Any) -> ast.Node:
        return ast.Or(self.build(left), self.build(right))

    def _not_(self, operand: Any) -> ast.Node:
        return ast.Not(self.build(operand))

    def _arith(self, left: Any, op: Token, right: Any) -> ast.Node:
        return ast.Arith(str(op), self.build(left), self.build(right))

    def _neg(self, operand: Any) -> ast.Node:
        return ast.Negate(self.build(operand))

    def _lambda_(self, head: Any, _arrow: Token, body: Any) -> ast.Node:
        parameter = self.build(head)
        if not isinstance(parameter, ast.Name):
            raise PqlSyntaxError("the left of '=>' must be one parameter name in parentheses", 1, 1)
        return ast.Lambda(parameter.name, self.build(body))

    # quantifiers
    def _quantifier(self, word: Any, *bindings: Any) -> ast.Node:
        return ast.Quantifier(str(word.children[0]), tuple(self._binding(b) for b in bindings))

    def _binding(self, tree: Any) -> ast.Binding:
        children = [c for c in tree.children if not (hasattr(c, "type") and c.type in ("WHERE",))]
        variable, source, *rest = children
        condition = self.build(rest[-1]) if rest else None
        return ast.Binding(str(variable), self.build(source), condition)

    # occurs
    def _occurs(self, value: Any, spec: Any) -> ast.Node:
        kind = spec.data.removeprefix("occurs_")
        parts = list(spec.children)
        target = self.build(value)
        if kind == "offset":
            compare = str(parts.pop(0)) if len(parts) == 5 else "="
            amount_token, unit, direction, time = parts
            amount = float(amount_token) if not str(amount_token).isdigit() else int(amount_token)
            return ast.Occurs(
                target,
                kind,
                self._time(time),
                compare=compare,
                amount=amount,
                unit=_unit(str(unit)),
                direction=str(direction.children[0]),
            )
        if kind == "direction":
            direction, time = parts
            return ast.Occurs(target, kind, self._time(time), direction=str(direction.children[0]))
        if kind == "between":
            first, second = parts
            return ast.Occurs(target, kind, self._time(first), until=self._time(second))
        return ast.Occurs(target, "on", self._time(parts[-1]))

    def _time(self, tree: Any) -> ast.Node:
        if tree.data == "time_word":
            return ast.TimeWord(str(tree.children[0].children[0]))
        if tree.data == "time_relative":
            relative, *count, unit = tree.children
            amount = int(float(count[0])) if count else 1
            return ast.RelativeTime(str(relative.children[0]), _unit(str(unit)), amount)
        return self.build(tree.children[0])


def _unit(word: str) -> str:
    """A time unit in the singular: days -> day, centuries -> century, millennia -> millennium."""
    irregular = {"centuries": "century", "millennia": "millennium"}
    if word in irregular:
        return irregular[word]
    return word[:-1] if word.endswith("s") else word
