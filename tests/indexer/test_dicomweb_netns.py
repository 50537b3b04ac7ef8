"""Run the Orthanc tests (``test_dicomweb_orthanc.py``) inside a private network namespace, where Orthanc,
which listens on every interface, is reachable from loopback only. The client must be in the same
namespace, so the whole module runs there, in its own pytest process, through ``tests/indexer/netns.py``."""

from __future__ import annotations

import os

import pytest

from tests.components import require
from tests.indexer.netns import run_in_netns


@pytest.mark.skipif(os.environ.get("MEDSEARCH_IN_NETNS") == "1", reason="already inside the namespace")
def test_orthanc_suite_in_a_private_network_namespace() -> None:
    require("orthanc")
    run_in_netns("tests/indexer/test_dicomweb_orthanc.py")
