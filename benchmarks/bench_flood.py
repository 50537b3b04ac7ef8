"""A flood of heatmap requests against ``medsearch serve`` run as a user runs it (its own process), and how
long the cheap routes take meanwhile: ``/api/health``, ``/api/info`` and a search whose text is cached,
asked one after another by a separate prober while ``--flood`` clients ask ``/api/explain`` at once (each
client asks again as soon as it is answered, until the probes are done). Printed beside each figure: the
same probes with no flood (the baseline), and how many explains were served and refused (503).

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


async def _probe(http: httpx.AsyncClient, rounds: int) -> dict[str, list[float]]:
    waits: dict[str, list[float]] = {name: [] for name in PROBES}
    for _ in range(rounds):
        for name, (path, params) in PROBES.items():
            asked = time.perf_counter()
            answer = await http.get(path, params=params, headers={"Connection": "close"})  # as a liveness probe
            waits[name].append(time.perf_counter() - asked)
            if answer.status_code != 200:
                raise SystemExit(f"{path} answered {answer.status_code}: {answer.text[:200]}")
    return waits


async def _flood(base: str, clients: int, rounds: int,
                 images: int) -> tuple[dict[str, list[float]], Counter[int | str]]:
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

        flood = [asyncio.create_task(client(n)) for n in range(clients)]
        while sum(statuses.values()) < clients // 2:  # the flood is on before the first probe
            await asyncio.sleep(0.05)
        async with httpx.AsyncClient(base_url=base, timeout=120) as prober:
            waits = await _probe(prober, rounds)
        done.set()
        await asyncio.gather(*flood)
    return waits, statuses


async def _quiet(base: str, rounds: int) -> dict[str, list[float]]:
    async with httpx.AsyncClient(base_url=base, timeout=120) as prober:
        return await _probe(prober, rounds)


def _line(name: str, quiet: list[float], flooded: list[float]) -> str:
    return (f"  {name:<14} p50 {statistics.median(flooded) * 1000:8.1f} ms  max {max(flooded) * 1000:8.1f} ms"
            f"   | no flood: p50 {statistics.median(quiet) * 1000:6.1f} ms  max {max(quiet) * 1000:6.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flood", type=int, default=200, help="concurrent explain clients")
    parser.add_argument("--rounds", type=int, default=20, help="probes of each route")
    parser.add_argument("--images", type=int, default=12)
    parser.add_argument("--medsiglip-layers", type=int, default=0)
    parser.add_argument("--server-log", action="store_true", help="show the server's log on stderr")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = _store(Path(tmp), args.images, args.medsiglip_layers)
        server, base = _serve(store, sys.stderr if args.server_log else subprocess.DEVNULL)
        try:
            httpx.get(f"{base}/api/search", params={"q": "a scan"}, timeout=600).raise_for_status()  # cached now
            quiet = asyncio.run(_quiet(base, args.rounds))
            flooded, statuses = asyncio.run(_flood(base, args.flood, args.rounds, args.images))
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=120)
    model = f"MedSigLIP shape, {args.medsiglip_layers} layers" if args.medsiglip_layers else "tiny SigLIP"
    print(f"{args.flood} concurrent explain clients ({model}, {os.cpu_count()} cores, load "
          f"{os.getloadavg()[0]:.1f}): explains served {statuses[200]}, refused {statuses[503]}, "
          f"other {dict((code, n) for code, n in statuses.items() if code not in (200, 503))}")
    for name in PROBES:
        print(_line(name, quiet[name], flooded[name]))
    print(json.dumps({"served": statuses[200], "refused": statuses[503],
                      **{name: max(times) for name, times in flooded.items()}}))


if __name__ == "__main__":
    main()
