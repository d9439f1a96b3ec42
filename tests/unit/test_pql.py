"""PQL: the grammar parses the documented forms, syntax errors name line and column, the lowering keeps the
evaluated subset and says why anything else is outside it, and relative time is measured from the
population's evaluation instant."""

from __future__ import annotations

import json

import pytest

from emulator.pql import PQL_JSON, PqlSyntaxError, compile_expression, ir, timespan
from emulator.pql.schema import EVALUATION_MS, EVENT_FIELDS, PROFILE_FIELDS
from emulator.pql.syntax import parse

# Every example of Adobe's PQL pages (segmentation-pql/*.md): each parses.
DOCUMENTED = [
    'homeAddress.countryISO = "CA"',
    'homeAddress.countryISO != "CA"',
    "person.birthMonth > 2",
    "person.birthMonth >= 3",
    "person.birthMonth < 2",
    "person.birthMonth <= 2",
    'homeAddress.countryISO = "CA" and person.birthYear = 1985',
    'homeAddress.countryISO = "CA" or person.birthYear = 1985',
    'not (homeAddress.countryISO = "CA")',
    '!(homeAddress.countryISO = "CA")',
    'if (homeAddress.countryISO = "CA", 1, 2)',
    "person.birthMonth in [3, 6, 9]",
    "person.birthMonth notIn [3, 6, 9]",
    'person.favoriteColors.intersects(["red", "blue", "green"])',
    'person1.favoriteColors.intersection(person2.favoriteColors) = ["red", "blue", "green"]',
    "person.favoriteCities.subsetOf(person.visitedCities)",
    'person.eatenFoods.supersetOf(["sushi", "pizza"])',
    'person.favoriteColors.includes("red")',
    "person.orders.storeId.distinct().count() > 1",
    "orders.groupBy(storeId)",
    "person.filter(age >= 21)",
    "numbers.map(square)",
    "orders.topN(price, 5)",
    "orders.bottomN(price, 5)",
    "orders.topN(price, 5).head()",
    'city like "%es%"',
    'person.name.startsWith("Joe")',
    'person.name.doesNotStartWith("Joe")',
    'person.emailAddress.endsWith(".com")',
    'person.emailAddress.doesNotEndWith(".com")',
    'person.emailAddress.contains("2010@gm")',
    'person.emailAddress.doesNotContain("2010@gm")',
    'person.name.equals("John")',
    'person.name.notEqualTo("John")',
    'person.name.matches("(?i)^John")',
    'emailAddress.regexGroup("@(\\\\w+)", 1)',
    "person.birthMonth = currentMonth()",
    "person.birthdate.getMonth() = 6",
    "product.saleYear = currentYear()",
    "person.birthday.getYear() in [1991, 1992, 1993, 1994, 1995]",
    "person.birthDay = currentDayOfMonth()",
    "product.sale.getDayOfMonth() <= 15",
    "product.saleDate occurs last week",
    "product.saleDate occurs between date(2015, 1, 8) and date(2017, 7, 1)",
    "product.saleDate occurs = 3 hours before now",
    "person.birthday occurs = 3 days before today",
    "timestamp occurs on date(2019,12,31)",
    "X.timestamp occurs before today",
    "X.timestamp occurs <= 3 days before now",
    "orders.count()",
    "orders.sum(order.price)",
    "orders.average(order.price)",
    "orders.min(order.price)",
    "orders.max(order.price)",
    'exists E from xEvent where (E.commerce.item.price > 50), I from E.productListItems where I.SKU = "PS"',
    'forall E from xEvent where (E.commerce.item.price > 50), I from E.productListItems where I.SKU = "PS"',
    'exists E from xEvent : E.eventType = "commerce.purchases"',
    "homeAddress.stateProvince = workAddress.stateProvince",
    "$1.homeAddress.stateProvince = $1.homeAddress.stateProvince",
    "(Profile) => Profile.homeAddress.stateProvince = Profile.workAddress.stateProvince",
    'xEvent[eventType = "commerce.purchases"].count() > 2',
    'select X from xEvent where X.eventType = "commerce.checkouts"',
]


@pytest.mark.parametrize("text", DOCUMENTED)
def test_every_documented_example_parses(text: str) -> None:
    parse(text)


@pytest.mark.parametrize(
    ("text", "line", "column", "words"),
    [
        ("homeAddress.city = ", 1, 20, "end of the expression"),
        ('homeAddress.city = "Berlin', 1, 20, "unexpected character"),
        ("a ==== b", 1, 4, "unexpected '='"),
        ("(a = 1", 1, 7, "expected ')'"),
        ("a = 1 and\n  b =", 2, 6, "end of the expression"),
        ("a = 1 b = 2", 1, 7, "unexpected 'b'"),
        ("   ", 1, 1, "empty"),
        ("a occurs 3 parsecs before now", 1, 12, "unexpected"),
    ],
)
def test_a_syntax_error_names_line_and_column(text: str, line: int, column: int, words: str) -> None:
    with pytest.raises(PqlSyntaxError) as raised:
        parse(text)
    assert (raised.value.line, raised.value.column) == (line, column), raised.value
    assert words in str(raised.value)


def test_a_huge_or_deeply_nested_expression_is_refused_cleanly() -> None:
    with pytest.raises(PqlSyntaxError):
        parse("a = " + "x" * 70_000)
    deep = "(" * 5000 + "a = 1" + ")" * 5000
    try:
        rule = compile_expression(deep)
    except PqlSyntaxError as exc:
        assert "nests too deeply" in str(exc)
    else:
        assert rule.evaluated or rule.reason


EVALUATED = [
    'homeAddress.city = "Berlin"',
    'homeAddress.countryCode in ["DE", "FR"] and not (homeAddress.city = "Paris")',
    'person.name.firstName.startsWith("jo", false)',
    'person.name.lastName.doesNotEndWith("er")',
    'personalEmail.address.contains("@gmail")',
    'person.name.firstName.equals("Anna")',
    'person.name.firstName.matches("(?i)^an")',
    'homeAddress.city like "%burg%"',
    "mobilePhone.number.isNull()",
    "personalEmail.address.isNotNull()",
    "person.birthDate < date(1970, 1, 1)",
    "person.birthDate.getYear() in [1980, 1981]",
    "person.birthDate.getMonth() = currentMonth()",
    "person.birthDate occurs between date(1980, 1, 1) and date(1989, 12, 31)",
    '_repo.modifyDate > "2023-06-01"',
    "_repo.modifyDate occurs last month",
    "_repo.modifyDate occurs <= 30 days before now",
    "_repo.modifyDate occurs before today",
    'xEvent[eventType = "commerce.purchases"].count() > 2',
    'exists E from xEvent where E.eventType = "commerce.checkouts"',
    "exists E from xEvent where E.timestamp occurs last 3 months",
    'forall E from xEvent where E.eventType.startsWith("web.")',
    '(select E from xEvent where E.eventType = "application.launch").count() >= 1',
    "xEvent.count() = 0",
    'xEvent.eventType.includes("commerce.purchases")',
    'xEvent.eventType.intersects(["commerce.purchases", "commerce.checkouts"])',
    'xEvent.eventType.supersetOf(["web.webpagedetails.pageViews", "commerce.purchases"])',
    'xEvent.eventType.subsetOf(["web.webpagedetails.pageViews", "web.webinteraction.linkClicks"])',
    "xEvent.eventType.distinct().count() >= 3",
    '$1.homeAddress.countryCode = "US"',
    '(Profile) => Profile.homeAddress.countryCode = "GB"',
    'if (homeAddress.countryCode = "DE", person.birthDate < date(1980, 1, 1), true)',
]


@pytest.mark.parametrize("text", EVALUATED)
def test_the_subset_is_evaluated(text: str) -> None:
    rule = compile_expression(text)
    assert rule.evaluated, rule.reason
    hash(rule.predicate)  # rules key caches


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ('workAddress.country = "US"', "no attribute 'workAddress.country'"),
        ("person.favoriteColors.intersects(['red'])", "no attribute"),
        ('orders.topN(price, 5).head() = "x"', "not"),
        ('emailAddress.regexGroup("@(\\\\w+)", 1) = "x"', "not"),
        ("exists E from xEvent where E.x = 1, I from E.items where I.y = 2", "nested arrays"),
        ("xEvent[commerce.order.price > 50].count() > 0", "no field 'commerce.order.price'"),
        ("homeAddress.city = 5", "is compared with"),
        ('person.name.firstName.matches("(?s)a")', "(?i)"),
        ('select E from xEvent where E.eventType = "a"', "makes an array"),
        ("a.b + 1 > 2", "not"),
    ],
)
def test_outside_the_subset_is_accepted_with_a_reason(text: str, why: str) -> None:
    rule = compile_expression(text)
    assert not rule.evaluated
    assert rule.reason is not None and why in rule.reason, rule.reason


def test_arl_expressions_are_accepted_but_not_evaluated() -> None:
    rule = compile_expression('homeAddress.city = "Berlin"', kind="ARL")
    assert not rule.evaluated and "ARL" in (rule.reason or "")


def test_pql_json_is_read_as_its_text_form() -> None:
    document = {
        "nodeType": "fnApply",
        "fnName": "=",
        "params": [
            {
                "nodeType": "fieldLookup",
                "fieldName": "countryCode",
                "object": {
                    "nodeType": "fieldLookup",
                    "fieldName": "homeAddress",
                    "object": {"nodeType": "parameterReference", "position": 1},
                },
            },
            {"nodeType": "literal", "literalType": "String", "value": "DE"},
        ],
    }
    assert compile_expression(json.dumps(document), PQL_JSON) == compile_expression(
        'homeAddress.countryCode = "DE"'
    )
    # The documented example compares two attributes the population does not have: parsed, not evaluated.
    documented = '{"nodeType":"fnApply","fnName":"=","params":[{"nodeType":"fieldLookup","fieldName":"a","object":{"nodeType":"parameterReference","position":1}},{"nodeType":"fieldLookup","fieldName":"b","object":{"nodeType":"parameterReference","position":1}}]}'  # noqa: E501
    assert not compile_expression(documented, PQL_JSON).evaluated
    for broken in ("{", '{"nodeType": "spaceship"}', "[]", '{"nodeType": "fieldLookup"}'):
        with pytest.raises(PqlSyntaxError):
            compile_expression(broken, PQL_JSON)


def test_relative_time_is_measured_from_the_evaluation_instant() -> None:
    assert timespan.date_ms(2024, 1, 1) == EVALUATION_MS
    last_month = compile_expression("_repo.modifyDate occurs last month").predicate
    assert last_month == ir.AllOf(
        (
            ir.Compare(
                ">=",
                ir.Attr("_repo.modifyDate", "timestamp"),
                ir.Const(timespan.date_ms(2023, 12, 1), "timestamp"),
            ),
            ir.Compare("<", ir.Attr("_repo.modifyDate", "timestamp"), ir.Const(EVALUATION_MS, "timestamp")),
        )
    )
    year = compile_expression("person.birthDate.getYear() = currentYear()").predicate
    assert isinstance(year, ir.Compare) and year.right == ir.Const(2024, "number")


def test_calendar_arithmetic() -> None:
    jan31 = timespan.date_ms(2023, 1, 31)
    assert timespan.shift(jan31, 1, "month") == timespan.date_ms(2023, 2, 28)
    assert timespan.shift(jan31, -1, "year") == timespan.date_ms(2022, 1, 31)
    assert timespan.shift(jan31, 2, "week") == timespan.date_ms(2023, 2, 14)
    assert timespan.truncate(timespan.date_ms(2023, 6, 15) + 5, "month") == timespan.date_ms(2023, 6, 1)
    assert timespan.truncate(timespan.date_ms(2024, 1, 4), "week") == timespan.date_ms(2024, 1, 1)  # a Monday
    assert timespan.truncate(timespan.date_ms(2024, 5, 5), "decade") == timespan.date_ms(2020, 1, 1)


def test_the_schema_names_only_fields_the_records_have() -> None:
    from emulator.exportdata.events import event_lists
    from emulator.exportdata.population import EventWindow, Population, empty_mask, population_ids
    from emulator.exportdata.records import profile_records

    population = Population(seed=1, tenant="O/prod", count=20, empty=2)
    ids = population_ids(0, population.size)
    table = profile_records(population, ids, ())
    for path in PROFILE_FIELDS:
        top, *rest = path.split(".")
        kind = table.schema.field(top).type
        for name in rest:
            kind = kind.field(name).type
    events = event_lists(population, ids, empty_mask(population, ids), EventWindow()).type.value_type
    for path in EVENT_FIELDS:
        kind = events
        for name in path.split("."):
            kind = kind.field(name).type


def test_starting_the_app_loads_neither_the_grammar_nor_lark() -> None:
    """PQL is loaded with the first definition: a server that never sees one does not pay for it."""
    import subprocess
    import sys

    code = (
        "import sys; from emulator.app import create_app; create_app(); "
        "assert not {'lark', 'emulator.pql', 'emulator.pql.lower'} & set(sys.modules), 'imported at start'"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
