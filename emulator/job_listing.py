"""Listing export jobs: the query (limit, offset cursor or skip, start, page, status, sort), the page, and
AEP's relative `link.next`."""

from __future__ import annotations

import bisect
import re
from collections.abc import Mapping
from dataclasses import dataclass

from emulator.errors import BadRequest
from emulator.lifecycle import STATUSES
from emulator.params import int_param
from emulator.store import ExportJob, TenantState

DEFAULT_LIMIT = 50
MAX_LIMIT = 1000
# ASCII digits only: `\d` also matches other scripts' digits, which int() may reject.
_CURSOR = re.compile(r"([0-9]{1,18})_([0-9]{1,18})")
_SKIP = re.compile(r"[0-9]{1,9}")
# Past any real store.
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


def first_page(state: TenantState, query: ListQuery, now_ms: int) -> JobPage:
    """The page `query` asks for, at `now_ms`: positions in the tenant's sorted index (store.JobIndex), so
    the cost is the page's, whatever the number of jobs, the sort or the status filter."""
    state.index.settle(now_ms)  # every job's stored status is now its status at `now_ms`
    keys = state.index.keys(query.sort_field, query.status)
    wanted = query.limit + 1  # one more tells whether there is a next page
    if query.descending:
        end = len(keys) if query.cursor is None else bisect.bisect_left(keys, query.cursor)
        end -= query.skip
        chosen = keys[max(end - wanted, 0) : max(end, 0)][::-1]
    else:
        begin = 0 if query.cursor is None else bisect.bisect_right(keys, query.cursor)
        begin += query.skip
        chosen = keys[begin : begin + wanted]
    records = [state.jobs[job_id] for _, job_id in chosen[: query.limit]]
    last = records[-1] if records else None
    return JobPage(records, query, _cursor(last, query) if last else "", len(chosen) > query.limit)


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
