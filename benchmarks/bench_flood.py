"""A flood of heatmap requests against ``medsearch serve`` run as a user runs it (its own process), and how
long the cheap routes take meanwhile: ``/api/health``, ``/api/info`` and a search whose text is cached,
asked one after another, ``--interval`` apart, by a prober in a process of its own (as a liveness probe
is; in the flood's own event loop it would wait behind the clients' work too). The prober starts with the
``--flood`` clients, which ask ``/api/explain`` at once (each asks again as soon as it is answered, after
``Retry-After`` when refused, until the probes are done). Printed beside each figure: the same probes with
no flood (the baseline), and how many explains were served (and per second) and refused (503).

The model is the tiny test SigLIP by default, or a random-weight SigLIP of MedSigLIP-448's shape with
``--medsiglip-layers N`` (each explain then costs what N of the real model's 27 layers cost).

    PYTHONPATH=. python benchmarks/bench_flood.py                        # 200 clients, tiny model
    PYTHONPATH=. python benchmarks/bench_flood.py --medsiglip-layers 2
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PROBES = {"health": ("/api/health", {}), "info": ("/api/info", {}), "cached search": ("/api/search", {"q": "a scan"})}


def _model(base: Path, layers: int) -> Path:
    if layers:
        from benchmarks.medsiglip_shape import build_medsiglip_shape

        return build_medsiglip_shape(base / "model", layers=layers)
    from tests.tiny_siglip import build_tiny_siglip

    return build_tiny_siglip(base / "model")


def _store(base: Path, images: int, layers: int) -> Path:
    from medsearch.api import Medsearch
    from medsearch.indexer.pipeline import IndexSettings

    from benchmarks.radiographs import write_pngs

    write_pngs(base / "images", images, side=256)
    with Medsearch.open(base / "store", model=str(_model(base, layers)), create=True, writable=True) as engine:
        engine.index([base / "images"], IndexSettings(workers=0))
    return base / "store"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _serve(store: Path, log: Any) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop("MEDSEARCH_API_TOKEN", None)
    server = subprocess.Popen([sys.executable, "-m", "medsearch.cli", "serve", "--store", str(store), "--port",
                               str(port)], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and server.poll() is None:
        try:
            if httpx.get(f"{base}/api/health", timeout=5).status_code == 200:
                return server, base
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    server.kill()
    raise SystemExit("the server did not start")


def _probe(base: str, rounds: int, interval: float) -> dict[str, list[float]]:
    """``rounds`` of the ``PROBES``, ``interval`` s apart, a new connection each (as a liveness probe)."""
    waits: dict[str, list[float]] = {name: [] for name in PROBES}
    with httpx.Client(base_url=base, timeout=120) as http:
        for _ in range(rounds):
            for name, (path, params) in PROBES.items():
                time.sleep(interval)
                asked = time.perf_counter()
                answer = http.get(path, params=params, headers={"Connection": "close"})
                waits[name].append(time.perf_counter() - asked)
                if answer.status_code != 200:
                    raise SystemExit(f"{path} answered {answer.status_code}: {answer.text[:200]}")
    return waits


async def _probe_apart(base: str, rounds: int, interval: float) -> dict[str, list[float]]:
    """``_probe`` in a process of its own (this script with ``--probe``); its waits."""
    prober = await asyncio.create_subprocess_exec(sys.executable, __file__, "--probe", base, "--rounds", str(rounds),
                                                  "--interval", str(interval), stdout=asyncio.subprocess.PIPE)
    output, _ = await prober.communicate()
    if prober.returncode != 0:
        raise SystemExit("the prober failed")
    waits: dict[str, list[float]] = json.loads(output)
    return waits


async def _flood(base: str, clients: int, rounds: int, interval: float,
                 images: int) -> tuple[dict[str, list[float]], Counter[int | str], float]:
    """The probes' waits under the flood, the explains' statuses, and the flood's seconds."""
    statuses: Counter[int | str] = Counter()
    done = asyncio.Event()
    limits = httpx.Limits(max_connections=clients + 8, max_keepalive_connections=clients + 8)
    async with httpx.AsyncClient(base_url=base, timeout=600, limits=limits) as http:
        async def client(n: int) -> None:
            asks = 0
            while not done.is_set() and asks < 1000:  # bounded: stops when the probes are done
                asks += 1
                try:
                    answer = await http.get("/api/explain", params={"id": 1 + n % images,
                                                                    "text": f"finding {n % 7}", "format": "json"})
                except httpx.TransportError as error:
                    statuses[type(error).__name__] += 1
                    continue
                statuses[answer.status_code] += 1
                if answer.status_code == 503:
                    await asyncio.sleep(float(answer.headers.get("Retry-After", "1")))

        started = time.perf_counter()
        flood = [asyncio.create_task(client(n)) for n in range(clients)]
        try:
            waits = await _probe_apart(base, rounds, interval)
        finally:
            done.set()
        await asyncio.gather(*flood)
    return waits, statuses, time.perf_counter() - started


def _line(name: str, quiet: list[float], flooded: list[float]) -> str:
    return (f"  {name:<14} p50 {statistics.median(flooded) * 1000:8.1f} ms  max {max(flooded) * 1000:8.1f} ms"
            f"   | no flood: p50 {statistics.median(quiet) * 1000:6.1f} ms  max {max(quiet) * 1000:6.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flood", type=int, default=200, help="concurrent explain clients")
    parser.add_argument("--rounds", type=int, default=20, help="probes of each route")
    parser.add_argument("--interval", type=float, default=0.25, help="seconds between two probes")
    parser.add_argument("--images", type=int, default=12)
    parser.add_argument("--medsiglip-layers", type=int, default=0)
    parser.add_argument("--server-log", action="store_true", help="show the server's log on stderr")
    parser.add_argument("--probe", metavar="URL", help=argparse.SUPPRESS)  # the prober's own process
    args = parser.parse_args()
    if args.probe:
        print(json.dumps(_probe(args.probe, args.rounds, args.interval)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        store = _store(Path(tmp), args.images, args.medsiglip_layers)
        server, base = _serve(store, sys.stderr if args.server_log else subprocess.DEVNULL)
        try:
            httpx.get(f"{base}/api/search", params={"q": "a scan"}, timeout=600).raise_for_status()  # cached now
            quiet = asyncio.run(_probe_apart(base, args.rounds, 0))
            flooded, statuses, seconds = asyncio.run(_flood(base, args.flood, args.rounds, args.interval, args.images))
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=120)
    model = f"MedSigLIP shape, {args.medsiglip_layers} layers" if args.medsiglip_layers else "tiny SigLIP"
    print(f"{args.flood} concurrent explain clients ({model}, {os.cpu_count()} cores, load "
          f"{os.getloadavg()[0]:.1f}): explains served {statuses[200]} in {seconds:.0f} s "
          f"({statuses[200] / seconds:.1f}/s), refused {statuses[503]}, "
          f"other {dict((code, n) for code, n in statuses.items() if code not in (200, 503))}")
    for name in PROBES:
        print(_line(name, quiet[name], flooded[name]))
    print(json.dumps({"served": statuses[200], "seconds": round(seconds, 1), "refused": statuses[503],
                      **{name: max(times) for name, times in flooded.items()}}))


if __name__ == "__main__":
    main()
