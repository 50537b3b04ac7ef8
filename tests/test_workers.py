"""ordered_map keeps ``in_flight`` items submitted ahead of the consumer, so that decoding goes on while the
caller embeds, and still yields every result in input order."""

from __future__ import annotations

from collections.abc import Iterator

from indexer.workers import ordered_map


def _square(item: int) -> int:
    return item * item


def test_in_flight_items_are_submitted_ahead_and_results_stay_in_order() -> None:
    pulled: list[int] = []

    def source() -> Iterator[int]:
        for item in range(12):
            pulled.append(item)
            yield item

    results = ordered_map(_square, source(), 1, lambda item: None, in_flight=5)
    assert next(results) == (0, 0)
    assert len(pulled) == 5
    assert list(results) == [(item, item * item) for item in range(1, 12)]
