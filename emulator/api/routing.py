"""The route table compiled for lookup: a request's method and path to its handler in a few dict lookups.

Every template has at most one `{name}` segment, and it is the last segment or the one before it (the
compiler refuses any other shape), so a path is looked up whole, then without its last segment, then
without its last two: no regular expression and no scan of the routes. It matches as aiohttp's router
does: on the path with `%2F` still encoded, a parameter is one non-empty segment without `{` or `}`,
decoded after the match, and a path served for other methods only is a 405 listing them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import NamedTuple

from emulator.api.common import Handler, RouteGroup


class Resolved(NamedTuple):
    handler: Handler | None  # None: no route for this method (see `allowed`) or none at all
    group: RouteGroup
    params: Mapping[str, str]  # read-only: the empty one is shared
    template: str | None  # the matched route's path template
    allowed: tuple[str, ...] = ()  # the methods served at this path, when `handler` is None


class _Target(NamedTuple):
    group: RouteGroup
    template: str
    handlers: dict[str, Handler]  # method -> handler
    name: str = ""  # the path parameter's name; "" for a template without one


_NO_PARAMS: Mapping[str, str] = MappingProxyType({})


class RouteTable:
    def __init__(self, groups: Iterable[RouteGroup]):
        self.groups = tuple(groups)
        self.templates = tuple((method, path) for group in self.groups for method, path, _ in group.routes)
        self._static: dict[str, _Target] = {}
        self._last: dict[str, _Target] = {}  # `/a/b/{x}`, keyed by `/a/b`
        self._inner: dict[tuple[str, str], _Target] = {}  # `/a/{x}/c`, keyed by (`/a`, `c`)
        for group in self.groups:
            for method, template, handler in group.routes:
                self._target(group, template).handlers[method] = handler

    def _target(self, group: RouteGroup, template: str) -> _Target:
        head, _, last = template.rpartition("/")
        if "{" not in template:
            return self._static.setdefault(template, _Target(group, template, {}))
        if _is_param(last) and "{" not in head:
            return self._last.setdefault(head, _Target(group, template, {}, last[1:-1]))
        head, _, inner = head.rpartition("/")
        if _is_param(inner) and "{" not in head and "{" not in last:
            return self._inner.setdefault((head, last), _Target(group, template, {}, inner[1:-1]))
        raise ValueError(f"route template {template!r}: one parameter, as the last or next-to-last segment")

    def resolve(self, method: str, path: str) -> Resolved:
        """`path` is the request's path with `%2F` still encoded (aiohttp's `rel_url.path_safe`)."""
        target = self._static.get(path)
        value = ""
        if target is None:
            head, _, value = path.rpartition("/")
            target = self._last.get(head)
            if target is None:
                head, _, inner = head.rpartition("/")
                target = self._inner.get((head, value))
                value = inner
            if target is not None and (not value or "{" in value or "}" in value):
                target = None
        if target is None:
            return Resolved(None, self.group_of(path), _NO_PARAMS, None)
        params = {target.name: _unquote(value)} if target.name else _NO_PARAMS
        handler = target.handlers.get(method)
        if handler is None:
            return Resolved(None, target.group, params, target.template, tuple(sorted(target.handlers)))
        return Resolved(handler, target.group, params, target.template)

    def group_of(self, path: str) -> RouteGroup:
        """The group of a path no route serves: the first whose prefix it starts with (or is)."""
        return next(g for g in self.groups if path.startswith(g.prefix) or path == g.prefix[:-1])


def _is_param(segment: str) -> bool:
    return segment.startswith("{") and segment.endswith("}") and segment.count("{") == 1


def _unquote(value: str) -> str:
    """The decoding aiohttp applies to a path parameter matched on the `%2F`-encoded path."""
    return value.replace("%2F", "/").replace("%25", "%") if "%" in value else value
