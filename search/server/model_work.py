"""Model-bound work on threads of its own: heatmaps and uploaded images embedded run on ``THREADS`` threads
apart from the pool that serves ``/api/info`` and queries (which never wait for a thread behind them).

``MEDSEARCH_MODEL_NICE=N`` also runs them, and the text micro-batcher's model calls, N steps lower in CPU
priority than the serving loop (Linux gives each thread its own nice value, and the threads torch starts
for a model call inherit their caller's). On a machine busy with other work this trades model throughput
for the latency of health checks and cached queries (``benchmarks/bench_flood.py``; figures in
``benchmarks/README.md``); it is off by default. Where the value cannot be set, the work runs at the
server's priority."""

from __future__ import annotations

import asyncio
import functools
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

NICE_VARIABLE = "MEDSEARCH_MODEL_NICE"
THREADS = 4
"""Model-bound requests run at once (as many as the admission gates let in)."""

T = TypeVar("T")


def lower_priority() -> None:
    """Lower the calling thread's CPU priority by ``MEDSEARCH_MODEL_NICE`` steps (0 or unset: unchanged; at
    most to 19, the lowest); best effort (not Linux, not allowed, or not a number)."""
    try:
        steps = int(os.environ.get(NICE_VARIABLE) or 0)
        if steps > 0:
            thread = threading.get_native_id()
            os.setpriority(os.PRIO_PROCESS, thread, min(19, os.getpriority(os.PRIO_PROCESS, thread) + steps))
    except (OSError, AttributeError, ValueError):
        pass


class ModelThreads:
    """A pool of ``THREADS`` threads (lowered: ``lower_priority``); ``await run(call, ...)`` runs ``call`` on one."""

    def __init__(self, threads: int = THREADS) -> None:
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="medsearch-model", initializer=lower_priority)

    async def run(self, call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.pool, functools.partial(call, *args, **kwargs))

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
