"""Listing export jobs: the query (limit, offset cursor or skip, start, page, status, sort), the page, and
AEP's relative `link.next`."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from itertools import islice

from emulator.errors import BadRequest
from emulator.lifecycle import STATUSES
from emulator.params import int_param
from emulator.store import ExportJob, TenantState

DEFAULT_LIMIT = 50
MAX_LIMIT = 1000
# ASCII digits only: `\d` also matches other scripts' digits, which int() may reject.
_CURSOR = re.compile(r"([0-9]{1,18})_([0-9]{1,18})")
_SKIP = re.compile(r"[0-9]{1,9}")
# Past any real store; also keeps islice() within its index range for absurd start/page values.
MAX_SKIP = 10**12
SORT_FIELDS = {
    "creationTime": "createdTime",
    "createdTime": "createdTime",
    "updateTime": "updateTime",
}


@dataclass(frozen=True)
class ListQuery:
    limit: int
    cursor: tuple[int, int] | None
    skip: int
    status: str | None
    sort_field: str  # "createdTime" | "updateTime"
    descending: bool
    raw_sort: str | None


@dataclass(frozen=True)
class JobPage:
    records: list[ExportJob]
    query: ListQuery
    page_offset: str
    has_more: bool


def first_page(state: TenantState, query: ListQuery, refresh: Callable[[ExportJob], None]) -> JobPage:
    """The page `query` asks for; `refresh` brings a job's status up to the clock."""
    candidates = _ordered(state, query, refresh)
    if query.status is not None:
        candidates = (job for job in candidates if job.progress.status == query.status)
    candidates = islice(candidates, query.skip, None)
    records = list(islice(candidates, query.limit))
    has_more = next(candidates, None) is not None
    last = records[-1] if records else None
    return JobPage(records, query, _cursor(last, query) if last else "", has_more)


def _ordered(
    state: TenantState, query: ListQuery, refresh: Callable[[ExportJob], None]
) -> Iterator[ExportJob]:
    if query.sort_field == "createdTime":
        jobs = state.jobs_descending(query.cursor) if query.descending else state.jobs_ascending(query.cursor)
        for job in jobs:
            refresh(job)
            yield job
        return
    # updateTime moves as jobs progress, so it has no standing index: sort on demand.
    for job in state.jobs.values():
        refresh(job)
    keyed = sorted(((job.progress.updated_ms, job.id), job) for job in state.jobs.values())
    if query.descending:
        keyed.reverse()
    for key, job in keyed:
        if query.cursor is not None and (key >= query.cursor if query.descending else key <= query.cursor):
            continue
        yield job


def parse_list_query(params: Mapping[str, str]) -> ListQuery:
    limit = min(int_param(params, "limit", DEFAULT_LIMIT, minimum=1), MAX_LIMIT)
    cursor = None
    skip = int_param(params, "start", 0, minimum=0)
    offset = params.get("offset")
    if offset:
        match = _CURSOR.fullmatch(offset)
        if match:
            cursor = (int(match.group(1)), int(match.group(2)))
        elif _SKIP.fullmatch(offset):
            skip += int(offset)
        else:
            raise BadRequest(
                f"Query parameter 'offset' must be a cursor '<timeMs>_<id>' or a number, got '{offset}'"
            )
    page = int_param(params, "page", 1, minimum=1)
    skip += (page - 1) * limit
    status = params.get("status")
    if status is not None and status.upper() not in STATUSES:
        raise BadRequest(f"Query parameter 'status' must be one of {', '.join(STATUSES)}, got '{status}'")
    raw_sort = params.get("sort")
    sort_field, descending = "createdTime", True
    if raw_sort:
        name, _, direction = raw_sort.partition(":")
        if name not in SORT_FIELDS or direction not in ("", "asc", "desc"):
            raise BadRequest(
                f"Query parameter 'sort' must be creationTime|updateTime[:asc|:desc], got '{raw_sort}'"
            )
        sort_field, descending = SORT_FIELDS[name], direction != "asc"
    return ListQuery(
        limit=limit,
        cursor=cursor,
        skip=min(skip, MAX_SKIP),
        status=status.upper() if status else None,
        sort_field=sort_field,
        descending=descending,
        raw_sort=raw_sort,
    )


def next_link(page: JobPage) -> str:
    """Relative, like AEP's: `/export/jobs/?limit=N&offset=<cursor>`; "" on the last page."""
    if not page.has_more:
        return ""
    link = f"/export/jobs/?limit={page.query.limit}&offset={page.page_offset}"
    if page.query.status:
        link += f"&status={page.query.status}"
    if page.query.raw_sort:
        link += f"&sort={page.query.raw_sort}"
    return link


def _cursor(job: ExportJob, query: ListQuery) -> str:
    time_ms = job.progress.updated_ms if query.sort_field == "updateTime" else job.progress.created_ms
    return f"{time_ms}_{job.id}"
