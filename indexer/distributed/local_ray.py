"""A local Ray that ends with the process that started it, however that process ends.

Ray started in-process (``ray.init()``) leaves its dashboard and runtime-env agents alive for up to a
minute when the driver is killed. So the local Ray is started by a small keeper process instead, in a
session of its own: the keeper starts Ray (gcs, raylet, agents and workers all land in its session), prints
the address, and waits on a pipe from the driver. When the pipe closes (the driver exited, was killed by
SIGKILL, SIGTERM or Ctrl-C), the keeper kills every process of its session, itself last. The driver joins
that Ray with ``ray.init(address=...)``; Ctrl-C in a terminal reaches the driver only.

Run as ``python -m medsearch.indexer.distributed.local_ray CPUS`` by ``start``, never by hand.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import secrets
import select
import signal
import subprocess
import sys
from pathlib import Path

from medsearch.errors import ModelUnavailable

START_SECONDS = 180.0
"""How long a local Ray may take to start (it took 20 s beside two CPU-bound processes on 2 cores)."""
STOP_SECONDS = 30.0


def start(cpus: int | None) -> str:
    """Start a local Ray with ``cpus`` CPUs (None: all) in a keeper process tied to this one; returns its
    GCS address for ``ray.init(address=...)``, and sets this process's ``RAY_AUTH_MODE`` and
    ``RAY_AUTH_TOKEN`` to the fresh token it requires (Ray's token authentication; the token is never
    written to disk or shown). Raises ModelUnavailable when it does not start in time."""
    token = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    keeper = subprocess.Popen([sys.executable, "-m", __name__, str(cpus or 0)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True,
                              env={**os.environ, **token})
    atexit.register(stop, keeper)  # registered before ray.init, so it runs after Ray's own shutdown
    line = _read_line(keeper, START_SECONDS)
    if not line.startswith("ready "):
        stop(keeper)
        raise ModelUnavailable(f"the local Ray did not start: {line or 'no answer'}")
    _use_token(token)
    return line.removeprefix("ready ")


def _use_token(token: dict[str, str]) -> None:
    """Make this process's Ray present ``token`` (Ray >= 2.50 reads the mode once, so it is read again here,
    as ``ray.init`` itself does when it turns token authentication on; older Rays have none)."""
    os.environ.update(token)
    try:
        from ray._raylet import AuthenticationTokenLoader, Config  # type: ignore[attr-defined]
    except ImportError:
        return
    Config.initialize("")
    AuthenticationTokenLoader.instance().reset_cache()


def stop(keeper: subprocess.Popen[bytes]) -> None:
    """Close the keeper's pipe, which makes it stop the local Ray, and wait for it."""
    if keeper.stdin and not keeper.stdin.closed:
        keeper.stdin.close()
    try:
        keeper.wait(STOP_SECONDS)
    except subprocess.TimeoutExpired:
        kill_session(keeper.pid)


def _read_line(keeper: subprocess.Popen[bytes], seconds: float) -> str:
    """The keeper's first line, or "" once it exits or ``seconds`` pass."""
    assert keeper.stdout is not None
    ready, _, _ = select.select([keeper.stdout], [], [], seconds)
    if not ready:
        return f"no answer within {seconds:.0f} s"
    return keeper.stdout.readline().decode(errors="replace").strip()


def kill_session(session: int) -> None:
    """SIGKILL every process of session ``session`` (this process last, when it is in it)."""
    me = os.getpid()
    for pid in _session_members(session):
        if pid != me:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
    if os.getsid(0) == session:
        os.kill(me, signal.SIGKILL)


def _session_members(session: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # ended meanwhile
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (name) ": state ppid pgrp session ...
        if int(fields[3]) == session:
            members.append(int(entry.name))
    return members


def keep(cpus: int) -> None:
    """The keeper: start Ray, print ``ready ADDRESS``, wait for stdin to close, then end the session."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver's Ctrl-C is the driver's to handle
    try:
        import ray

        ray.init(num_cpus=cpus or None, include_dashboard=False, log_to_driver=False,
                 configure_logging=False)
        address = ray.get_runtime_context().gcs_address
    except Exception as error:  # Ray's own errors, reported in one line to the driver
        print(f"error {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}", flush=True)
        kill_session(os.getsid(0))
        return
    print(f"ready {address}", flush=True)
    while sys.stdin.buffer.read(4096):  # until the driver closes the pipe or dies
        pass
    kill_session(os.getsid(0))


if __name__ == "__main__":
    keep(int(sys.argv[1]))
