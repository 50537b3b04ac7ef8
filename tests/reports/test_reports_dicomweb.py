"""Structured reports fetched from a real Orthanc over DICOMweb are read as their study's report, as they
are from a folder. Orthanc listens on every interface, so the test runs inside a private network namespace
(``tests/indexer/netns.py``): ``tests/reports/orthanc_reports.py`` in a pytest process of its own there."""

from __future__ import annotations

import os

import pytest

from tests.components import require


@pytest.mark.skipif(os.environ.get("MEDSEARCH_IN_NETNS") == "1", reason="already inside the namespace")
def test_in_a_private_network_namespace() -> None:
    from tests.indexer.netns import run_in_netns

    require("orthanc")
    run_in_netns("tests/reports/orthanc_reports.py")
