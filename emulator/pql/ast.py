"""PQL syntax trees: small frozen (hashable) nodes, as the parser builds them from the grammar."""

from __future__ import annotations

from dataclasses import dataclass

Scalar = str | int | float | bool | None


@dataclass(frozen=True)
class Literal:
    value: Scalar


@dataclass(frozen=True)
class Name:
    """A bare name: a profile attribute, a bound variable, or (inside `xEvent[...]`) an item's field."""

    name: str


@dataclass(frozen=True)
class Parameter:
    """`$1`: the first input parameter (the profile)."""

    position: int


@dataclass(frozen=True)
class Field:
    target: Node
    name: str


@dataclass(frozen=True)
class Method:
    target: Node
    name: str
    args: tuple[Node, ...]


@dataclass(frozen=True)
class Call:
    name: str
    args: tuple[Node, ...]


@dataclass(frozen=True)
class Array:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Filter:
    """`array[condition]`: the items for which the condition holds (fields of the item are bare names)."""

    target: Node
    condition: Node


@dataclass(frozen=True)
class Compare:
    op: str  # = != < <= > >=
    left: Node
    right: Node


@dataclass(frozen=True)
class In:
    value: Node
    values: Node
    negated: bool


@dataclass(frozen=True)
class Like:
    value: Node
    pattern: Node


@dataclass(frozen=True)
class And:
    left: Node
    right: Node


@dataclass(frozen=True)
class Or:
    left: Node
    right: Node


@dataclass(frozen=True)
class Not:
    operand: Node


@dataclass(frozen=True)
class Arith:
    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class Negate:
    operand: Node


@dataclass(frozen=True)
class Binding:
    variable: str
    source: Node
    condition: Node | None


@dataclass(frozen=True)
class Quantifier:
    kind: str  # exists | forall | select
    bindings: tuple[Binding, ...]


# -- occurs ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TimeWord:
    word: str  # now | today | yesterday | tomorrow


@dataclass(frozen=True)
class RelativeTime:
    """`last month`, `this year`, `last 30 days` (the `amount` units before or after the current one)."""

    which: str  # this | last | next
    unit: str
    amount: int = 1


@dataclass(frozen=True)
class Occurs:
    """`value occurs ...`: kind is offset (`<= 3 days before now`), direction (`before today`), on
    (`on date(...)`, `last month`) or between (`between A and B`)."""

    value: Node
    kind: str
    time: Node
    until: Node | None = None  # the second bound of `between`
    compare: str | None = None
    amount: int | float | None = None
    unit: str | None = None
    direction: str | None = None  # before | after | from


@dataclass(frozen=True)
class Lambda:
    parameter: str
    body: Node


Node = (
    Literal
    | Name
    | Parameter
    | Field
    | Method
    | Call
    | Array
    | Filter
    | Compare
    | In
    | Like
    | And
    | Or
    | Not
    | Arith
    | Negate
    | Quantifier
    | TimeWord
    | RelativeTime
    | Occurs
    | Lambda
)
