"""Run the Orthanc tests (``test_dicomweb_orthanc.py``) inside a private network namespace, where Orthanc,
which listens on every interface, is reachable from loopback only. The client must be in the same
namespace, so the whole module runs there, in its own pytest process, through ``tests/indexer/netns.py``."""

from __future__ import annotations

import os

import pytest

from tests.indexer.netns import run_in_netns
from tests.indexer.orthanc import orthanc_installed


@pytest.mark.skipif(os.environ.get("MEDSEARCH_IN_NETNS") == "1", reason="already inside the namespace")
def test_orthanc_suite_in_a_private_network_namespace() -> None:
    if not orthanc_installed():
        pytest.skip("Orthanc is not installed (apt-get install orthanc orthanc-dicomweb)")
    run_in_netns("tests/indexer/test_dicomweb_orthanc.py")
