"""medsearch's DICOMweb client against dicomweb-client (PyPI), each on the test suite's hostile server
(``tests/indexer/hostile_dicomweb.py``): a QIDO answer dripped one byte every 0.2 s, and a WADO-RS body
that never ends. Prints, per client and case, the seconds until the call returned or failed (stopped at
30 s) and the peak resident memory. Each run is its own process under a 3 GiB address-space limit.

    python benchmarks/bench_dicomweb_hostile.py            # both clients (dicomweb-client must be importable)
    python benchmarks/bench_dicomweb_hostile.py medsearch drip
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
STOP_S = 30.0


def _rss_mb() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) // 1024 for line in status if line.startswith("VmRSS"))


def _watch(which: str, case: str, started: float, peak: list[int]) -> None:
    while True:
        peak[0] = max(peak[0], _rss_mb())
        time.sleep(0.05)
        if time.monotonic() - started > STOP_S:
            print(f"{which} {case}: still running after {STOP_S:.0f} s, peak RSS {peak[0]} MB (stopped)", flush=True)
            os._exit(0)


def _call(which: str, case: str, url: str, key: tuple[str, str, str]) -> None:
    if which == "dicomweb-client":
        from dicomweb_client.api import DICOMwebClient

        other = DICOMwebClient(url[len("dicomweb+"):], timeout=3)
        other.search_for_instances() if case == "drip" else other.retrieve_instance(*key)
        return
    from medsearch.indexer.dicomweb.client import DicomWebClient
    from medsearch.indexer.dicomweb.http import ClientSettings
    from medsearch.indexer.dicomweb.source import Credentials, parse_source

    source = parse_source(url)
    settings = ClientSettings(timeout_s=3, deadline_s=3, retries=0, max_part_bytes=64 << 20)
    with DicomWebClient(source, Credentials(), settings) as client:
        list(client.search("instances", {})) if case == "drip" else client.retrieve(source.instance_path(*key))


def run_one(which: str, case: str) -> None:
    from tests.indexer.hostile_dicomweb import HostileDicomWeb, make_archive

    archive = make_archive(1, 10)
    server = HostileDicomWeb(archive, mode=case)
    resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))
    started, peak = time.monotonic(), [0]
    threading.Thread(target=_watch, args=(which, case, started, peak), daemon=True).start()
    try:
        _call(which, case, server.url, sorted(archive)[0])
        outcome = "returned"
    except BaseException as error:  # the outcome is what is measured
        outcome = f"{type(error).__name__}: {str(error)[:90]}"
    print(f"{which} {case}: {time.monotonic() - started:.1f} s, peak RSS {peak[0]} MB, {outcome}", flush=True)
    os._exit(0)


if __name__ == "__main__":
    if len(sys.argv) == 3:
        run_one(sys.argv[1], sys.argv[2])
    for which in ("medsearch", "dicomweb-client"):
        for case in ("drip", "endless-multipart"):
            subprocess.run([sys.executable, __file__, which, case], check=False)
