"""Where Arrow work runs: one worker thread for the whole process, never the event loop.

Arrow's allocator (mimalloc) keeps a heap per thread, and each heap holds on to the pages its thread last
used. Counting, rendering and previews spread over the shared default executor's threads (up to six) made
the server's footprint grow with the number of files rendered, a heap per thread that happened to render
(benchmarks/memory_bench.py: +23 MB through a 1,000,000-profile export against a 10,000-profile one). In
one thread the same heap is reused file after file and the footprint stays flat. Work waits its turn.
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
