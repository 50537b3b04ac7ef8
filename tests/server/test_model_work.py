"""Model-bound requests run on threads of their own, lowered in CPU priority when ``MEDSEARCH_MODEL_NICE``
says so (Linux: a nice value per thread)."""

from __future__ import annotations

import asyncio
import os
import threading

import pytest
from medsearch.server.model_work import ModelThreads


def _nice_of_a_model_thread() -> tuple[int, str]:
    pool = ModelThreads(threads=1)

    def here() -> tuple[int, str]:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id()), threading.current_thread().name

    try:
        return asyncio.run(pool.run(here))
    finally:
        pool.close()


def test_model_work_runs_on_its_own_threads_at_the_servers_priority_by_default(monkeypatch: pytest.MonkeyPatch
                                                                                ) -> None:
    monkeypatch.delenv("MEDSEARCH_MODEL_NICE", raising=False)
    nice, name = _nice_of_a_model_thread()
    assert name.startswith("medsearch-model") and nice == os.getpriority(os.PRIO_PROCESS, 0)


@pytest.mark.parametrize(("value", "steps"), [("5", 5), ("40", None), ("x", 0)])
def test_model_nice_lowers_only_the_model_threads(monkeypatch: pytest.MonkeyPatch, value: str,
                                                  steps: int | None) -> None:
    monkeypatch.setenv("MEDSEARCH_MODEL_NICE", value)
    mine = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    nice, _name = _nice_of_a_model_thread()
    assert nice == (19 if steps is None else min(19, mine + steps))
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == mine  # the serving thread is not
