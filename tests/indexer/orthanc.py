"""A real Orthanc (Debian's ``orthanc`` + ``orthanc-dicomweb``) for tests: a config file and storage in a
temporary folder, the DICOMweb plugin on, optional basic auth. Orthanc listens on every interface, so it is
only started inside a private network namespace (``tests/indexer/netns_run.sh``). Started by polling ``/system``
until it answers (bounded), stopped by its PID."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

ORTHANC = Path("/usr/sbin/Orthanc")
DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")


def orthanc_installed() -> bool:
    return ORTHANC.exists() and DICOMWEB_PLUGIN.exists()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Orthanc:
    """``url``: the source URL medsearch takes; ``rest``: an httpx client on Orthanc's REST API."""

    def __init__(self, folder: Path, users: dict[str, str] | None = None, dicomweb_root: str = "/dicom-web/") -> None:
        self.folder, self.users, self.port = folder, users or {}, free_port()
        self.dicomweb_root = dicomweb_root
        self.process: subprocess.Popen[bytes] | None = None
        auth = next(iter(self.users.items()), None)
        self.rest = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", auth=auth, timeout=30)

    @property
    def url(self) -> str:
        return f"dicomweb+http://127.0.0.1:{self.port}{self.dicomweb_root.rstrip('/')}"

    def start(self, deadline_s: float = 30.0) -> Orthanc:
        self.folder.mkdir(parents=True, exist_ok=True)
        config = {
            "Name": "medsearch-test", "StorageDirectory": str(self.folder / "db"),
            "IndexDirectory": str(self.folder / "db"), "HttpPort": self.port, "DicomServerEnabled": False,
            "RemoteAccessAllowed": True, "AuthenticationEnabled": bool(self.users),
            "RegisteredUsers": self.users, "Plugins": [str(DICOMWEB_PLUGIN)],
            "DicomWeb": {"Enable": True, "Root": self.dicomweb_root}, "HttpTimeout": 10,
        }
        (self.folder / "orthanc.json").write_text(json.dumps(config))
        log = open(self.folder / "orthanc.log", "ab")  # noqa: SIM115  (kept open for the process)
        self.process = subprocess.Popen([str(ORTHANC), str(self.folder / "orthanc.json")], stdout=log,
                                        stderr=subprocess.STDOUT)
        ends = time.monotonic() + deadline_s
        while time.monotonic() < ends:
            if self.process.poll() is not None:
                raise RuntimeError(f"Orthanc exited at start: {self.log_tail()}")
            try:
                if self.rest.get("/system").status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"Orthanc did not answer /system within {deadline_s} s: {self.log_tail()}")

    def stop(self, kill: bool = False) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL if kill else signal.SIGTERM)
            self.process.wait(timeout=30)
        self.process = None

    def log_tail(self) -> str:
        path = self.folder / "orthanc.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def upload(self, path: Path) -> dict[str, Any]:
        answer = self.rest.post("/instances", content=path.read_bytes())
        answer.raise_for_status()
        return dict(answer.json())

    def delete_study(self, study_uid: str) -> None:
        found = self.rest.post("/tools/lookup", content=study_uid).json()
        (study,) = [item for item in found if item["Type"] == "Study"]
        self.rest.delete(f"/studies/{study['ID']}").raise_for_status()
