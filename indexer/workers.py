"""Run a function over many items in worker processes with a bounded number in flight, in order.
A worker that dies (a native decoder crash) costs only the item that killed it: the pool is rebuilt and
the items that were in flight are retried one at a time."""

from __future__ import annotations

import multiprocessing
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

Item = TypeVar("Item")

CRASHED = "the decoder crashed the worker process"


def _pool(workers: int) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("forkserver"))


def ordered_map(function: Callable[..., Any], items: Iterable[Item], workers: int,
                on_crash: Callable[[Item], Any], *args: Any, in_flight: int = 0) -> Iterator[tuple[Item, Any]]:
    """Yield ``(item, function(item, *args))`` in input order. With ``workers`` 0 it runs in this process.
    At most ``max(in_flight, 2 * workers)`` items are in flight (submitted or finished but not yet
    yielded), so the workers keep going while the caller is busy. An item whose worker dies yields
    ``on_crash(item)``."""
    if workers <= 0:
        for item in items:
            yield item, function(item, *args)
        return
    pool = _pool(workers)
    pending: deque[tuple[Item, Future[Any]]] = deque()
    source = iter(items)
    try:
        while True:
            while len(pending) < max(in_flight, 2 * workers):
                item = next(source, None)
                if item is None:
                    break
                pending.append((item, pool.submit(function, item, *args)))
            if not pending:
                return
            item, future = pending.popleft()
            try:
                yield item, future.result()
            except BrokenProcessPool:
                pool.shutdown(wait=False, cancel_futures=True)
                retry = [item] + [queued for queued, _future in pending]
                pending.clear()
                for again in retry:
                    yield again, _alone(function, again, on_crash, *args)
                pool = _pool(workers)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _alone(function: Callable[..., Any], item: Any, on_crash: Callable[[Any], Any], *args: Any) -> Any:
    with _pool(1) as pool:
        try:
            return pool.submit(function, item, *args).result()
        except BrokenProcessPool:
            return on_crash(item)
