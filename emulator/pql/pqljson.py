"""`pql/json` (PQL's JSON syntax tree, as Adobe's conversion endpoint writes it) -> syntax tree."""

from __future__ import annotations

import json
from typing import Any

import emulator.pql.ast as ast
from emulator.pql.syntax import PqlSyntaxError

_COMPARISONS = {"=", "!=", "<", "<=", ">", ">="}
MAX_DEPTH = 200


def parse_json(text: str) -> ast.Node:
    try:
        document = json.loads(text)
    except ValueError as exc:
        line, column = getattr(exc, "lineno", 1), getattr(exc, "colno", 1)
        raise PqlSyntaxError(
            f"pql/json is not valid JSON: {getattr(exc, 'msg', exc)}", line, column
        ) from None
    return _node(document, "$", 0)


def _node(raw: Any, where: str, depth: int) -> ast.Node:
    if depth > MAX_DEPTH:
        raise PqlSyntaxError(f"{where}: the expression nests too deeply", 1, 1)
    if not isinstance(raw, dict) or not isinstance(raw.get("nodeType"), str):
        raise PqlSyntaxError(f"{where}: a node must be an object with a 'nodeType'", 1, 1)
    kind = raw["nodeType"]
    if kind == "literal":
        value = raw.get("value")
        if isinstance(value, str | int | float | bool) or value is None:
            if raw.get("literalType") in ("Integer", "Long") and isinstance(value, str) and value.isdigit():
                value = int(value)
            return ast.Literal(value)
        if isinstance(value, list):
            return ast.Array(tuple(ast.Literal(item) for item in value))
        raise PqlSyntaxError(f"{where}.value: not a literal value", 1, 1)
    if kind == "parameterReference":
        position = raw.get("position")
        if not isinstance(position, int) or isinstance(position, bool):
            raise PqlSyntaxError(f"{where}.position: must be an integer", 1, 1)
        return ast.Parameter(position)
    if kind == "variableReference":
        name = raw.get("name")
        if not isinstance(name, str):
            raise PqlSyntaxError(f"{where}.name: must be a string", 1, 1)
        return ast.Name(name)
    if kind == "fieldLookup":
        name = raw.get("fieldName")
        if not isinstance(name, str):
            raise PqlSyntaxError(f"{where}.fieldName: must be a string", 1, 1)
        return ast.Field(_node(raw.get("object"), f"{where}.object", depth + 1), name)
    if kind == "fnApply":
        name = raw.get("fnName")
        params = raw.get("params", [])
        if not isinstance(name, str) or not isinstance(params, list):
            raise PqlSyntaxError(f"{where}: fnApply needs 'fnName' and a 'params' array", 1, 1)
        args = tuple(_node(p, f"{where}.params[{i}]", depth + 1) for i, p in enumerate(params))
        return _apply(name, args)
    raise PqlSyntaxError(f"{where}.nodeType: unknown node type '{kind}'", 1, 1)


def _apply(name: str, args: tuple[ast.Node, ...]) -> ast.Node:
    if name in _COMPARISONS and len(args) == 2:
        return ast.Compare(name, args[0], args[1])
    if name == "and" and args:
        node = args[0]
        for arg in args[1:]:
            node = ast.And(node, arg)
        return node
    if name == "or" and args:
        node = args[0]
        for arg in args[1:]:
            node = ast.Or(node, arg)
        return node
    if name == "not" and len(args) == 1:
        return ast.Not(args[0])
    if name in ("in", "notIn") and len(args) == 2:
        return ast.In(args[0], args[1], negated=name == "notIn")
    if name == "like" and len(args) == 2:
        return ast.Like(args[0], args[1])
    if args:  # a method of its first parameter, e.g. startsWith(name, "Jo")
        return ast.Method(args[0], name, args[1:])
    return ast.Call(name, args)
