"""Cold-start figures of ``medsearch search`` as a user runs it, one fresh process per query: a new text
(torch, transformers and the model load), a prompt already cached in the store (no model: the model's
identity comes from its files, the calibration from the store), and the same prompts answered by a running
``medsearch serve`` that the CLI finds in the store folder (and named with ``--server``): through the fast
client (``medsearch.cli.fast``, no typer), through the full typer CLI, and curl asking the same server for
the same JSON. Seconds of wall time and of the client's CPU (user + system), and whether torch was
imported; the issue's targets are printed beside them. The model is the tiny test SigLIP (the real
checkpoint only makes the uncached path slower); the store holds ``--images`` PNGs.

    PYTHONPATH=. python benchmarks/bench_cli_server.py            # 5 queries each way, 40 images
    PYTHONPATH=. python benchmarks/bench_cli_server.py --queries 10 --images 200
    PYTHONPATH=. python benchmarks/bench_cli_server.py --server-only  # the client rows alone
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PROBE = ("import atexit, runpy, sys\n"
         "atexit.register(lambda: print('TORCH=' + str('torch' in sys.modules), file=sys.stderr))\n"
         "sys.argv = ['medsearch', *sys.argv[1:]]\n"
         "runpy.run_module('medsearch.cli', run_name='__main__')\n")
FULL = PROBE.replace("runpy.run_module('medsearch.cli', run_name='__main__')",
                     "from medsearch.cli.main import app; app(prog_name='medsearch')")
"""The same command through the typer CLI, as it ran before the fast client."""


def _store(base: Path, images: int) -> Path:
    from medsearch.api import Medsearch
    from medsearch.indexer.pipeline import IndexSettings

    from tests.conftest import write_png
    from tests.tiny_siglip import build_tiny_siglip

    model = build_tiny_siglip(base / "model")
    for seed in range(images):
        write_png(base / "images" / f"img{seed:04d}.png", seed)
    with Medsearch.open(base / "store", model=str(model), create=True, writable=True) as engine:
        engine.index([base / "images"], IndexSettings(workers=0))
    return base / "store"


def _timed(args: list[str], env: dict[str, str], probe: str = PROBE) -> tuple[float, float, bool]:
    """(wall s, the child's CPU s, whether it imported torch) of one fresh ``medsearch ARGS`` process."""
    return _process([sys.executable, "-c", probe, *args], env)


def _curl(url: str, text: str, env: dict[str, str]) -> tuple[float, float, bool]:
    """(wall s, CPU s, False) of ``curl`` asking ``url``'s ``/api/search`` for ``text``."""
    return _process(["curl", "-sf", "-G", f"{url}/api/search", "--data-urlencode", f"q={text}"], env)


def _process(command: list[str], env: dict[str, str]) -> tuple[float, float, bool]:
    """(wall s, CPU s, whether it printed TORCH=True) of one run of ``command``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command[-4:])} failed: {done.stderr.strip()}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, "TORCH=True" in done.stderr


def _serve(store: Path, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    server = subprocess.Popen([sys.executable, "-m", "medsearch.cli", "serve", "--store", str(store), "--port",
                               str(port)], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    record = store / "server.json"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and server.poll() is None:
        if record.exists() and json.loads(record.read_text()).get("pid") == server.pid:
            return server
        time.sleep(0.2)
    server.kill()
    raise SystemExit("the server did not start")


def _row(name: str, runs: list[tuple[float, float, bool]], target: str = "") -> None:
    wall = statistics.median(run[0] for run in runs)
    cpu = statistics.median(run[1] for run in runs)
    torch = sum(run[2] for run in runs)
    print(f"  {name:<40} wall {wall:6.2f} s  cpu {cpu:5.2f} s  torch imported {torch}/{len(runs)}  {target}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=5)
    parser.add_argument("--images", type=int, default=40)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--server-only", action="store_true", help="Leave out the in-process rows (the slow ones).")
    options = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    env.pop("MEDSEARCH_SERVER", None)
    with tempfile.TemporaryDirectory() as folder:
        store = _store(Path(folder), options.images)
        texts = [f"a scan number {n}" for n in range(options.queries)]
        here = ["--store", str(store), "--local"]
        new = [] if options.server_only else [_timed(["search", text, *here], env) for text in texts]
        cached = [] if options.server_only else [_timed(["search", text, *here], env) for text in texts]
        server = _serve(store, options.port, env)
        url = f"http://127.0.0.1:{options.port}"
        try:
            rounds = [(_curl(url, text, env),  # the server embeds the text once; each client then asks alike
                       _timed(["search", text, "--store", str(store)], env),
                       _timed(["search", text, "--store", str(store), "--json"], env),
                       _timed(["search", text, "--server", url], env),
                       _timed(["search", text, "--store", str(store)], env, FULL),
                       _curl(url, text, env),
                       _process([sys.executable, "-c", "pass"], env)) for text in texts]  # interleaved: one load
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=120)
    print(f"medsearch search, one fresh process per query ({options.queries} each), {options.images} images, "
          f"tiny model, {os.cpu_count()} cores:")
    if new:
        _row("new text, in this process", new)
        _row("cached prompt, in this process", cached, "(target <= 2 s, torch not imported)")
    _first, found, as_json, named, full, curl, bare = (list(column) for column in zip(*rounds, strict=True))
    _row("server found in the store (fast client)", found, "(target <= 0.5 s wall, <= 0.25 s cpu)")
    _row("  the same, --json", as_json)
    _row("server named with --server", named)
    _row("server found, through the typer CLI", full)
    _row("curl to the server's /api/search", curl)
    _row("python -c pass (the interpreter's start)", bare)


if __name__ == "__main__":
    main()
