"""Where Arrow work runs: one worker thread for the whole process, never the event loop.

Arrow's allocator (mimalloc) keeps a heap per thread, and what a heap keeps after a render (even once
`release_unused` has run) stays with its thread. Counts and renders spread over the shared default
executor's threads (up to six) left such a heap in each of them, so the server's peak grew with the number
of files rendered: benchmarks/memory_bench.py measured +23 MB through a 1,000,000-profile export against a
10,000-profile one, +15 MB with all Arrow work in this one thread (8 MB of which is the file byte cache,
full in the large export). Work waits its turn; the event loop stays free.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")

_EXECUTOR = ThreadPoolExecutor(max_workers=1, thread_name_prefix="arrow")


async def offload(work: Callable[..., T], *args: object) -> T:
    """`work(*args)` in the Arrow worker thread, awaited from the event loop."""
    return await asyncio.get_running_loop().run_in_executor(_EXECUTOR, work, *args)
