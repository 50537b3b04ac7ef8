"""Worker processes: a crash, a hang or a memory blow-up costs one item, in order, and the rest go on;
``in_flight`` items are submitted ahead of the consumer, so decoding goes on while the caller embeds."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

from medsearch.indexer.workers import CRASHED, Limits, ordered_map


def _work(item: str) -> str:
    if item == "crash":
        os.abort()
    if item == "hang":
        time.sleep(60)
    if item == "huge":
        bytearray(2 * 1024**3)
    return item.upper()


def _failed(item: str, reason: str) -> str:
    return f"failed: {reason}"


def test_failures_cost_one_item_each() -> None:
    items = ["a", "crash", "b", "hang", "c", "huge", "d"]
    limits = Limits(seconds=10.0, memory_bytes=1024**3)  # generous: worker start-up counts on a busy machine
    started = time.monotonic()
    out = dict(ordered_map(_work, items, 2, _failed, limits=limits))
    assert list(out) == items
    assert [out[i] for i in "abcd"] == ["A", "B", "C", "D"]
    assert out["crash"] == f"failed: {CRASHED}"
    assert out["hang"] == "failed: decoding took longer than 10 s"
    assert out["huge"] == "failed: decoding needed more than 1024 MB of memory"
    assert time.monotonic() - started < 120


def test_inline_mode_runs_in_this_process() -> None:
    assert list(ordered_map(_work, ["x", "y"], 0, _failed)) == [("x", "X"), ("y", "Y")]


def _square(item: int) -> int:
    return item * item


def test_in_flight_items_are_submitted_ahead_and_results_stay_in_order() -> None:
    pulled: list[int] = []

    def source() -> Iterator[int]:
        for item in range(12):
            pulled.append(item)
            yield item

    results = ordered_map(_square, source(), 1, lambda item, reason: None, in_flight=5)
    assert next(results) == (0, 0)
    assert len(pulled) == 5
    assert list(results) == [(item, item * item) for item in range(1, 12)]
