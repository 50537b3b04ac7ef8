"""Run a function over many items in worker processes with a bounded number in flight, in order.

A worker that dies (a native decoder crash) or overruns the time one item may take costs only the item
that caused it: the pool is replaced and the other items that were in flight are retried one at a time.
Each worker's address space is capped, so one file cannot take the machine's memory, writes no core file,
and dies with the process that started the pool (``medsearch.indexer.lifeline``).
"""

from __future__ import annotations

import multiprocessing
import os
import resource
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, TypeVar

from medsearch.indexer.lifeline import die_with

Item = TypeVar("Item")

CRASHED = "the decoder crashed the worker process"


@dataclass(frozen=True)
class Limits:
    """Per item: seconds it may take, bytes of address space a worker may use (0: no cap)."""

    seconds: float = 300.0
    memory_bytes: int = 8 * 1024**3


def _start_worker(memory_bytes: int, owner: int) -> None:
    """Worker initializer: die with ``owner``, write no core file, cap the address space (0: no cap)."""
    die_with(owner)
    resource.setrlimit(resource.RLIMIT_CORE, (0, resource.getrlimit(resource.RLIMIT_CORE)[1]))
    if memory_bytes > 0:
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))


def _pool(workers: int, limits: Limits) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("forkserver"),
                               initializer=_start_worker, initargs=(limits.memory_bytes, os.getpid()))


def _kill(pool: ProcessPoolExecutor) -> None:
    """Stop a pool whose worker hangs: shutdown alone would wait for it forever."""
    for process in list(getattr(pool, "_processes", {}).values()):
        process.kill()
    pool.shutdown(wait=False, cancel_futures=True)


def ordered_map(function: Callable[..., Any], items: Iterable[Item], workers: int,
                on_failure: Callable[[Item, str], Any], *args: Any, limits: Limits = Limits(),
                in_flight: int = 0) -> Iterator[tuple[Item, Any]]:
    """Yield ``(item, function(item, *args))`` in input order. With ``workers`` 0 it runs in this process
    (no crash, time or memory protection). At most ``max(in_flight, 2 * workers)`` items are in flight
    (submitted or finished but not yet yielded), so the workers keep going while the caller is busy. An
    item that overruns ``limits.seconds``, or crashes its worker again when tried alone, yields
    ``on_failure(item, reason)``. A crash breaks the whole pool and fails every item in flight, so each of
    them is tried alone: only the one that crashes alone is blamed."""
    if workers <= 0:
        for item in items:
            yield item, function(item, *args)
        return
    pool = _pool(workers, limits)
    pending: deque[tuple[Item, Future[Any]]] = deque()
    source = iter(items)
    try:
        while True:
            while len(pending) < max(in_flight, 2 * workers) and (queued := next(source, None)) is not None:
                pending.append((queued, _submit(pool, function, queued, args)))
            if not pending:
                return
            item, future = pending.popleft()
            try:
                yield item, future.result(timeout=limits.seconds)
                continue
            except MemoryError:
                yield item, on_failure(item, _too_big(limits))
                continue
            except BrokenProcessPool:
                pending.appendleft((item, future))
            except FutureTimeout:
                yield item, on_failure(item, f"decoding took longer than {limits.seconds:g} s")
            _kill(pool)
            while pending:
                again, settled = pending.popleft()
                yield again, _alone(function, again, settled, on_failure, limits, *args)
            pool = _pool(workers, limits)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _submit(pool: ProcessPoolExecutor, function: Callable[..., Any], item: Any, args: tuple[Any, ...]) -> Future[Any]:
    """``pool.submit``; on a pool a worker crash has broken since, a future holding that error."""
    try:
        return pool.submit(function, item, *args)
    except BrokenProcessPool as exc:
        future: Future[Any] = Future()
        future.set_exception(exc)
        return future


def _too_big(limits: Limits) -> str:
    return f"decoding needed more than {limits.memory_bytes // 1024**2} MB of memory"


def _alone(function: Callable[..., Any], item: Any, settled: Future[Any], on_failure: Callable[[Any, str], Any],
           limits: Limits, *args: Any) -> Any:
    """``item``'s result: the one its future already holds, else from a fresh one-worker pool."""
    if settled.done() and not settled.cancelled() and settled.exception() is None:
        return settled.result()
    pool = _pool(1, limits)
    try:
        return pool.submit(function, item, *args).result(timeout=limits.seconds)
    except MemoryError:
        return on_failure(item, _too_big(limits))
    except BrokenProcessPool:
        return on_failure(item, CRASHED)
    except FutureTimeout:
        return on_failure(item, f"decoding took longer than {limits.seconds:g} s")
    finally:
        _kill(pool)
