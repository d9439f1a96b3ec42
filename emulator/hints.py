"""Near misses: why a request did not get what its client meant, and which route it was closest to.

A request that matches no route, that the gateway refuses, or that fails validation keeps AEP's exact
answer; the app adds the one-line `hint` as the response's `x-emulator-hint` header and journals the full
report (`NearMiss.to_json`): the closest routes, ranked, each with what differs. A request that was served
but carried a query parameter its operation does not read, or a misspelt sandbox header, gets a hint too:
it was served, but not as its client meant.

Pure functions of what the request carried: nothing here runs for a request that needs no hint.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from emulator.errors import (
    INVALID_API_KEY,
    INVALID_TOKEN,
    MISSING_API_KEY,
    MISSING_ORG,
    MISSING_TOKEN,
    ORG_NOT_ENTITLED,
    GatewayRule,
    SchemaViolation,
)

MAX_HINT_CHARS = 600  # the header line; the journal keeps the full report
MAX_CLOSEST = 3
# A route is "close" when aligning its segments with the request's costs at most this much (each segment
# added, dropped or replaced costs 1, a segment differing only in case or spelling less).
MAX_ROUTE_COST = 1.5
# AEP's service roots, longest first: a path under one root whose rest is a route's rest under another is
# the classic mix-up (`/data/core/ups/export/batches/...` for `/data/foundation/export/batches/...`).
SERVICE_ROOTS = (
    "/data/foundation/catalog",
    "/data/foundation/export",
    "/data/core/ups/export",
    "/data/foundation",
    "/data/core/ups",
    "/data/core",
    "/ims",
)
ROOT_SWAP_COST = 0.5
SANDBOX_HEADER = "x-sandbox-name"
TOKEN_HINT = "a token from POST /ims/token/v3"

Route = tuple[str, str]  # method, path template (`{name}` for a path parameter)


@dataclass(frozen=True)
class Closest:
    route: str  # "GET /data/core/ups/export/jobs/{job_id}"
    differences: tuple[str, ...]


@dataclass(frozen=True)
class NearMiss:
    kind: str  # route | method | gateway | validation | query | header
    hint: str
    closest: tuple[Closest, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "hint": self.hint,
            "closest": [{"route": c.route, "differences": list(c.differences)} for c in self.closest],
        }


def _miss(kind: str, summary: str, closest: Sequence[Closest]) -> NearMiss:
    return NearMiss(kind, one_line(summary), tuple(closest))


def one_line(text: str) -> str:
    """`text` as a header value: printable ASCII on one line (anything else escaped), at most
    MAX_HINT_CHARS."""
    safe = text.encode("ascii", "backslashreplace").decode("ascii")
    safe = "".join(c if " " <= c <= "~" else f"\\x{ord(c):02x}" for c in safe)
    return safe if len(safe) <= MAX_HINT_CHARS else safe[: MAX_HINT_CHARS - 3] + "..."


# -- routing: no route, or not this method -------------------------------------------------------------


def route_miss(method: str, path: str, routes: Iterable[Route], allowed: Sequence[str] = ()) -> NearMiss:
    """No route serves `method path` (or, with `allowed`, the path is served for those methods only):
    the closest routes, ranked, and what differs from each. A route for another method counts as one
    difference more than the same path for this one."""
    ranked = []
    literals = frozenset(s for _, template in routes for s in template.split("/") if s and s[0] != "{")
    for route_method, template in routes:
        cost, differences = _closest_form(path, template, literals)
        if route_method != method:
            cost += 1.0
            differences = (f"method {method} should be {route_method}", *differences)
        ranked.append((cost, route_method != method, route_method, template, differences))
    ranked.sort(key=lambda item: (item[0], item[1]))
    # The best, and those nearly as close (a much worse second guess only adds noise to the line).
    cutoff = min(MAX_ROUTE_COST, ranked[0][0] + 0.4) if ranked else 0.0
    close = [item for item in ranked if item[0] <= cutoff][:MAX_CLOSEST]
    if allowed:
        head = f"{method} is not served at {path} (it serves {', '.join(allowed)})"
    else:
        head = f"no route for {method} {path}"
    if not close:
        prefixes = sorted({_service_prefix(t) for _, t in routes if not t.startswith("/_emulator")})
        return _miss("route", f"{head}, and none is close; the emulator serves {', '.join(prefixes)}", ())
    closest = [Closest(f"{m} {template}", differences) for _, _, m, template, differences in close]
    summary = f"{head}; closest: " + " | ".join(f"{c.route} ({'; '.join(c.differences)})" for c in closest)
    return _miss("method" if allowed else "route", summary, closest)


def _service_prefix(template: str) -> str:
    parts = template.split("/")
    return "/".join(parts[:4]) if template.startswith("/data/") else template


def _root(path: str) -> str | None:
    return next((r for r in SERVICE_ROOTS if path == r or path.startswith(r + "/")), None)


def _closest_form(path: str, template: str, literals: frozenset[str]) -> tuple[float, tuple[str, ...]]:
    """`_compare`, or the comparison of what follows each one's service root when the roots differ."""
    cost, differences = _compare(path, template, literals)
    got_root, want_root = _root(path), _root(template)
    if got_root is not None and want_root is not None and got_root != want_root:
        tail_cost, tail = _compare(path[len(got_root) :] or "/", template[len(want_root) :] or "/", literals)
        if tail_cost + ROOT_SWAP_COST < cost:
            swap = f"'{got_root}' should be '{want_root}'"
            return tail_cost + ROOT_SWAP_COST, (swap, *tail)
    return cost, differences


def _compare(
    path: str, template: str, literals: frozenset[str] = frozenset()
) -> tuple[float, tuple[str, ...]]:
    """How far `path` is from `template`, segment by segment (an edit distance), and the differences. A
    path parameter matches any segment, but a word some route spells out (`jobs`) only at a cost."""
    got = path.split("/")[1:]
    want = template.split("/")[1:]

    def _segment_cost(got: str, want: str) -> float:
        cost = _word_cost(got, want)
        return 0.5 if cost == 0 and want.startswith("{") and got in literals else cost

    rows, cols = len(got) + 1, len(want) + 1
    cost = [[0.0] * cols for _ in range(rows)]
    for i in range(rows):
        cost[i][0] = float(i)
    for j in range(cols):
        cost[0][j] = float(j)
    for i in range(1, rows):
        for j in range(1, cols):
            cost[i][j] = min(
                cost[i - 1][j] + 1,
                cost[i][j - 1] + 1,
                cost[i - 1][j - 1] + _segment_cost(got[i - 1], want[j - 1]),
            )
    # Walk back: runs of edits become one difference each.
    ops: list[tuple[str, str | None, str | None]] = []
    i, j = len(got), len(want)
    while i or j:
        if i and j and cost[i][j] == cost[i - 1][j - 1] + _segment_cost(got[i - 1], want[j - 1]):
            ops.append(
                ("same" if _segment_cost(got[i - 1], want[j - 1]) == 0 else "swap", got[i - 1], want[j - 1])
            )
            i, j = i - 1, j - 1
        elif i and cost[i][j] == cost[i - 1][j] + 1:
            ops.append(("extra", got[i - 1], None))
            i -= 1
        else:
            ops.append(("missing", None, want[j - 1]))
            j -= 1
    ops.reverse()
    return cost[-1][-1], tuple(_describe(ops))


def _word_cost(got: str, want: str) -> float:
    if got == want or (want.startswith("{") and got):
        return 0.0
    if got.lower() == want.lower():
        return 0.25
    if not want.startswith("{") and difflib.SequenceMatcher(None, got.lower(), want.lower()).ratio() >= 0.75:
        return 0.5
    return 1.0


def _describe(ops: list[tuple[str, str | None, str | None]]) -> list[str]:
    differences: list[str] = []
    run: list[tuple[str, str | None, str | None]] = []
    before: list[str] = []

    def flush() -> None:
        if not run:
            return
        got = "/".join(g for _, g, _ in run if g is not None)
        want = "/".join(w for _, _, w in run if w is not None)
        at = "/" + "/".join(before)
        if not want and got == "" and len(run) == 1:
            differences.append("trailing slash: the route has none")
        elif not got and want == "" and len(run) == 1:
            differences.append("the route ends with a slash")
        elif not want:
            differences.append(f"extra segment(s) '{got}' after '{at}'")
        elif not got:
            differences.append(f"missing segment(s) '{want}' after '{at}'")
        elif got.lower() == want.lower():
            differences.append(f"'{got}' should be '{want}' (paths are case-sensitive)")
        else:
            differences.append(f"'{got}' should be '{want}' (after '{at}')")
        before.extend(w for _, _, w in run if w is not None)
        run.clear()

    for op in ops:
        if op[0] == "same":
            flush()
            before.append(op[2] or "")
        else:
            run.append(op)
    flush()
    return differences


# -- the gateway --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """What a hint may look at: the request as the client sent it."""

    method: str
    path: str
    headers: Mapping[str, str]  # case-insensitive lookups (aiohttp's CIMultiDictProxy)
    query: Mapping[str, str]
    content_type: str
    route: str | None  # "GET /template" of the matched route; None when none matched


_HEADER_FIX = {
    "authorization": f"send 'Authorization: Bearer <token>' ({TOKEN_HINT})",
    "x-api-key": "send your API client id as x-api-key",
    "x-gw-ims-org-id": "send your IMS org id (...@AdobeOrg) as x-gw-ims-org-id",
}


def gateway_miss(
    request: Request, rule: GatewayRule | None, *, strict: bool, minted_client: str | None = None
) -> NearMiss:
    """The gateway refused the request (`rule`; None for its content-type rule): which header is
    missing or malformed, and what to send instead."""
    headers = request.headers
    if rule is MISSING_TOKEN:
        difference = "header Authorization is missing: " + _HEADER_FIX["authorization"]
        difference += _similar_headers("authorization", headers)
    elif rule is INVALID_TOKEN:
        scheme, _, token = headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            difference = f"Authorization must be 'Bearer <token>', got scheme '{scheme[:40]}'"
        elif not token.strip():
            difference = "Authorization has no token after 'Bearer'"
        else:
            difference = (
                "the token is not one this emulator's IMS minted, or it has expired on the emulator clock "
                f"(--auth strict: use {TOKEN_HINT})"
            )
    elif rule is MISSING_API_KEY:
        difference = "header x-api-key is missing or empty: " + _HEADER_FIX["x-api-key"]
        difference += _similar_headers("x-api-key", headers)
    elif rule is INVALID_API_KEY:
        difference = (
            f"x-api-key '{headers.get('x-api-key', '')[:80]}' is not the client id the token was minted for"
            + (f" ('{minted_client}')" if minted_client else "")
        )
    elif rule is MISSING_ORG:
        difference = "header x-gw-ims-org-id is missing or empty: " + _HEADER_FIX["x-gw-ims-org-id"]
        difference += _similar_headers("x-gw-ims-org-id", headers)
    elif rule is ORG_NOT_ENTITLED:
        org = headers.get("x-gw-ims-org-id", "")[:80]
        difference = f"org '{org}' is not one the token's client may use (--credentials)"
    else:  # the content-type rule
        sent = headers.get("Content-Type")
        difference = f"{request.method} needs 'Content-Type: application/json', got " + (
            f"'{sent[:80]}'" if sent else "no Content-Type"
        )
    route = request.route or f"{request.method} {request.path}"
    return _miss("gateway", f"{route}: {difference}", (Closest(route, (difference,)),))


def _similar_headers(wanted: str, headers: Mapping[str, str]) -> str:
    names = sorted({name.lower() for name in headers})
    similar = difflib.get_close_matches(wanted, names, n=2, cutoff=0.6)
    similar += [n for n in names if n not in similar and _squashed(n) == _squashed(wanted)]
    if not similar:
        return ""
    return f" (you sent {', '.join(repr(n) for n in similar)}: did you mean {wanted}?)"


def _squashed(name: str) -> str:
    return name.lower().replace("-", "").replace("_", "").removeprefix("x")


# -- validation and query parameters -------------------------------------------------------------------


def validation_miss(request: Request, detail: str, violation: SchemaViolation | None) -> NearMiss:
    """The request reached its route and was refused as invalid (body or query)."""
    differences: list[str] = []
    if violation is not None:
        differences.append(f"{violation.json_path}: {violation.message} (rule: {violation.rule})")
        differences.extend(_did_you_mean(violation))
    else:
        differences.append(detail)
    route = request.route or f"{request.method} {request.path}"
    return _miss("validation", f"{route}: {'; '.join(differences)}", (Closest(route, tuple(differences)),))


def _did_you_mean(violation: SchemaViolation) -> list[str]:
    found: list[str] = []
    if violation.rule == "required":
        for missing in violation.missing:
            close = _close(missing, [k for k in violation.present if k not in violation.known])
            if close:
                found.append(f"you sent '{close}': did you mean '{missing}'?")
    elif violation.rule == "additionalProperties":
        for extra in violation.unexpected:
            close = _close(extra, violation.known)
            if close:
                found.append(f"'{extra}' is not a field here: did you mean '{close}'?")
    return found


def _close(word: str, candidates: Iterable[str]) -> str | None:
    pool = list(candidates)
    for candidate in pool:
        if candidate.lower() == word.lower():
            return candidate
    matches = difflib.get_close_matches(word, pool, n=1, cutoff=0.75)
    return matches[0] if matches else None


def unknown_query_differences(request: Request) -> list[str]:
    if not request.query or request.route is None:
        return []
    known = query_parameters().get(request.route)
    if known is None:
        return []
    differences = []
    for name in dict.fromkeys(request.query):
        if name in known:
            continue
        close = _close(name, known)
        suggestion = (
            f": did you mean '{close}'?" if close else f" (it reads: {', '.join(sorted(known)) or 'none'})"
        )
        differences.append(f"query parameter '{name}' is not read here and was ignored{suggestion}")
    return differences


def served_miss(request: Request) -> NearMiss | None:
    """A request that was served, but with a query parameter its operation ignores or a sandbox header
    that is not `x-sandbox-name` (so the sandbox was `prod`): None when neither."""
    differences = unknown_query_differences(request)
    if SANDBOX_HEADER not in request.headers:
        lookalikes = sorted({n.lower() for n in request.headers if "sandbox" in n.lower()})
        if lookalikes:
            differences.append(
                f"header {', '.join(repr(n) for n in lookalikes)} is not read: the sandbox is named by "
                f"{SANDBOX_HEADER} (absent, so 'prod' was used)"
            )
    if not differences:
        return None
    route = request.route or f"{request.method} {request.path}"
    kind = "query" if request.query and differences[0].startswith("query") else "header"
    return _miss(kind, f"{route}: {'; '.join(differences)}", (Closest(route, tuple(differences)),))


@cache
def query_parameters() -> dict[str, frozenset[str]]:
    """Each operation's query parameters ("GET /path" -> names), from the OpenAPI route metadata: an
    operation's list is what its handler reads. Catalog's operations are left out: any property of its
    objects is a filter there, and it refuses an unknown one with a 400 of its own."""
    from emulator.openapi import load_metadata

    metadata = load_metadata()
    parameters: Mapping[str, Any] = metadata["parameters"]
    tags: Mapping[str, Any] = metadata["tags"]
    known: dict[str, frozenset[str]] = {}
    for key, operation in metadata["operations"].items():
        if operation.get("tag") == "catalog":
            continue
        names = [*tags.get(operation.get("tag"), {}).get("parameters", []), *operation.get("parameters", [])]
        known[key] = frozenset(
            parameters[name]["name"] for name in names if parameters[name].get("in") == "query"
        )
    return known
