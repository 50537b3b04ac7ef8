"""The CLI's repeated text queries, locally (each one imports torch and transformers and loads the model)
against ``--server`` (each one an HTTP request to a running ``medsearch serve``): seconds per query, as a
user runs them, one process per query. The model is the tiny test SigLIP (the real checkpoint only makes
the local path slower); the store holds ``--images`` PNGs.

    PYTHONPATH=. python benchmarks/bench_cli_server.py            # 5 queries each way, 40 images
    PYTHONPATH=. python benchmarks/bench_cli_server.py --queries 10 --images 200
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _store(base: Path, images: int) -> tuple[Path, Path]:
    from medsearch.api import Medsearch
    from medsearch.indexer.pipeline import IndexSettings

    from tests.conftest import write_png
    from tests.tiny_siglip import build_tiny_siglip

    model = build_tiny_siglip(base / "model")
    for seed in range(images):
        write_png(base / "images" / f"img{seed:04d}.png", seed)
    with Medsearch.open(base / "store", model=str(model), create=True, writable=True) as engine:
        engine.index([base / "images"], IndexSettings(workers=0))
    return base / "store", model


def _timed(args: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "medsearch.cli", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)
    if done.returncode != 0:
        raise SystemExit(f"medsearch {' '.join(args)} failed: {done.stderr.strip()}")
    return time.perf_counter() - start


def _serve(store: Path, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    server = subprocess.Popen([sys.executable, "-m", "medsearch.cli", "serve", "--store", str(store), "--port",
                               str(port)], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit("the server did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=5)
    parser.add_argument("--images", type=int, default=40)
    parser.add_argument("--port", type=int, default=8765)
    options = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    with tempfile.TemporaryDirectory() as folder:
        store, _model = _store(Path(folder), options.images)
        texts = [f"a scan number {n}" for n in range(options.queries)]
        local = [_timed(["search", text, "--store", str(store)], env) for text in texts]
        server = _serve(store, options.port, env)
        try:
            url = f"http://127.0.0.1:{options.port}"
            remote = [_timed(["search", text, "--server", url], env) for text in texts]
        finally:
            server.terminate()
            server.wait(timeout=60)
    local_s, remote_s = statistics.median(local), statistics.median(remote)
    print(f"cli search, one process per query, {options.images} images, tiny model, {os.cpu_count()} cores:")
    print(f"  local   median {local_s:.2f} s  (min {min(local):.2f}, max {max(local):.2f})")
    print(f"  server  median {remote_s:.2f} s  (min {min(remote):.2f}, max {max(remote):.2f})")
    print(f"  speed-up x{local_s / remote_s:.1f}")


if __name__ == "__main__":
    main()
