"""Run the Ray tests (``test_ray_executor.py``) inside a private network namespace, where the local Ray,
which listens on every interface, is reachable from loopback only (``tests/indexer/netns.py``)."""

from __future__ import annotations

import importlib.util
import os

import pytest

from tests.indexer.netns import run_in_netns


@pytest.mark.skipif(os.environ.get("MEDSEARCH_IN_NETNS") == "1", reason="already inside the namespace")
def test_ray_suite_in_a_private_network_namespace() -> None:
    if importlib.util.find_spec("ray") is None:
        pytest.skip("Ray Data is not installed (pip install 'medsearch[ray]')")
    run_in_netns("tests/indexer/test_ray_executor.py")
