"""The compiled route table: every route of the app found by its own path, and aiohttp's matching rules
(a parameter is one non-empty segment without braces, decoded after the match; 405 lists the methods)."""

from __future__ import annotations

import pytest

from emulator.api.common import Call, RouteGroup
from emulator.api.routing import RouteTable
from emulator.app import ROUTE_GROUPS
from emulator.errors import Envelope


async def _handler(call: Call) -> None:  # type: ignore[empty-body]
    ...


async def _other(call: Call) -> None:  # type: ignore[empty-body]
    ...


GROUP = RouteGroup(
    "/a/",
    Envelope.PROBLEM,
    gateway=False,
    routes=(
        ("GET", "/a/items", _handler),
        ("POST", "/a/items", _other),
        ("POST", "/a/items/bulk-get", _other),
        ("GET", "/a/items/{item_id}", _handler),
        ("DELETE", "/a/items/{item_id}", _other),
        ("GET", "/a/batches/{batch_id}/files", _other),
    ),
)
TABLE = RouteTable((GROUP, RouteGroup("/", Envelope.PROBLEM, gateway=False)))


def test_every_route_of_the_app_resolves_to_its_own_handler() -> None:
    table = RouteTable(ROUTE_GROUPS)
    for group in ROUTE_GROUPS:
        for method, template, handler in group.routes:
            path = template.replace("{", "x").replace("}", "")  # `{job_id}` -> `xjob_id`
            found = table.resolve(method, path)
            assert (found.handler, found.group, found.template) == (handler, group, template)


@pytest.mark.parametrize(
    ("method", "path", "handler", "params"),
    [
        ("GET", "/a/items", _handler, {}),
        ("POST", "/a/items", _other, {}),
        ("GET", "/a/items/42", _handler, {"item_id": "42"}),
        ("DELETE", "/a/items/42", _other, {"item_id": "42"}),
        ("GET", "/a/batches/b1/files", _other, {"batch_id": "b1"}),
        ("GET", "/a/items/a%2Fb", _handler, {"item_id": "a/b"}),  # one segment, decoded after the match
        ("GET", "/a/items/100%25", _handler, {"item_id": "100%"}),
    ],
)
def test_paths_resolve_with_their_parameters(method: str, path: str, handler: object, params: dict) -> None:
    found = TABLE.resolve(method, path)
    assert (found.handler, found.params, found.allowed) == (handler, params, ())


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", "/a/items", ("GET", "POST")),
        ("GET", "/a/items/bulk-get", ("POST",)),  # the literal route wins over the parameter
        ("PATCH", "/a/items/7", ("DELETE", "GET")),
    ],
)
def test_a_path_served_for_other_methods_lists_them(method: str, path: str, allowed: tuple[str, ...]) -> None:
    found = TABLE.resolve(method, path)
    assert (found.handler, found.allowed, found.group) == (None, allowed, GROUP)


@pytest.mark.parametrize(
    "path",
    ["/a/items/", "/a/items/{x}", "/a/items/x}", "/a/items/1/2", "/a/batches//files", "/a", "/b/items"],
)
def test_no_route_falls_in_the_group_of_its_prefix(path: str) -> None:
    found = TABLE.resolve("GET", path)
    assert (found.handler, found.allowed, found.template) == (None, (), None)
    assert found.group.prefix == ("/a/" if path.startswith("/a") else "/")


def test_a_template_of_another_shape_is_refused() -> None:
    with pytest.raises(ValueError, match="one parameter"):
        RouteTable(
            (RouteGroup("/", Envelope.PROBLEM, gateway=False, routes=(("GET", "/{a}/x/y", _handler),)),)
        )
