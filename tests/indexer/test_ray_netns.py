"""Run the Ray tests (``test_ray_executor.py``, ``test_ray_kill.py``) inside a private network namespace,
where the local Ray, which listens on every interface, is reachable from loopback only
(``tests/indexer/netns.py``)."""

from __future__ import annotations

import os

import pytest

from tests.components import require
from tests.indexer.netns import run_in_netns


@pytest.mark.skipif(os.environ.get("MEDSEARCH_IN_NETNS") == "1", reason="already inside the namespace")
def test_ray_suite_in_a_private_network_namespace() -> None:
    require("ray")
    run_in_netns("tests/indexer/test_ray_executor.py", "tests/indexer/test_ray_kill.py")
