"""Query-time text embedding runs on ``MEDSEARCH_QUERY_THREADS`` torch threads (default 1), and gives the
process its thread count back; larger text batches keep every thread."""

from __future__ import annotations

from typing import Any

import pytest


def _threads_inside(embedder: Any, texts: list[str]) -> int:
    import torch

    seen: list[int] = []
    hook = embedder.model.text_model.register_forward_pre_hook(lambda *_: seen.append(torch.get_num_threads()))
    try:
        embedder.embed_texts(texts)
    finally:
        hook.remove()
    return seen[0]


@pytest.mark.parametrize(("setting", "texts", "expected"), [(None, 1, 1), ("2", 1, 2), (None, 9, 3)])
def test_a_query_runs_on_its_own_threads(tiny_embedder: Any, monkeypatch: pytest.MonkeyPatch,
                                          setting: str | None, texts: int, expected: int) -> None:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        if setting is None:
            monkeypatch.delenv("MEDSEARCH_QUERY_THREADS", raising=False)
        else:
            monkeypatch.setenv("MEDSEARCH_QUERY_THREADS", setting)
        assert _threads_inside(tiny_embedder, [f"text {n}" for n in range(texts)]) == expected
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)
